/** The restart policy's one decision (core/restart.ts): spawn -d --restart, up and dlq retry share it. */
import { describe, expect, it } from 'vitest';
import { afterRun, DEFAULT_POLICY, HEALTHY, type NameHealth } from '../../src/core/policy.js';
import { type RestartFacts, restartDecision, restartsAfter, storedRestart } from '../../src/core/restart.js';
import { planInstance } from '../../src/core/agents/plan.js';

const NOW = 1_000_000_000;
const facts = (over: Partial<RestartFacts> = {}): RestartFacts => ({
  policy: 'on-failure',
  state: 'failed',
  failure: 'crash',
  exitCode: 1,
  signal: null,
  retries: null,
  failuresBefore: 0,
  health: HEALTHY,
  startedAt: NOW - 60_000,
  endedAt: NOW,
  now: NOW,
  minUptimeMs: 10_000,
  ...over,
});
/** The health finishRun leaves after a failure of this type, as policy.ts computes it. */
const after = (failure: 'crash' | 'startup_error', before: NameHealth = HEALTHY): NameHealth =>
  afterRun(before, { failure, runtimeMs: failure === 'crash' ? 60_000 : 1_000, endedAt: NOW, startsLastHour: 1 }, DEFAULT_POLICY);

describe('restartsAfter', () => {
  it('on-failure restarts failures only, always restarts any end, never none', () => {
    expect([restartsAfter('on-failure', 'failed'), restartsAfter('on-failure', 'exited')]).toEqual([true, false]);
    expect([restartsAfter('always', 'failed'), restartsAfter('always', 'exited')]).toEqual([true, true]);
    expect([restartsAfter('never', 'failed'), restartsAfter('never', 'exited')]).toEqual([false, false]);
  });
  it("is what up's plan follows for a run that ended", () => {
    const base = { hash: 'h', downed: false, restartChanged: false };
    const last = (state: string) => ({ runId: 'r1', state, failure: state === 'failed' ? 'crash' : null, exitCode: state === 'failed' ? 1 : 0, fleetHash: 'h' });
    expect(planInstance({ ...base, restart: 'always', last: last('exited') }).action).toBe('start');
    expect(planInstance({ ...base, restart: 'on-failure', last: last('exited') }).action).toBe('none');
    expect(planInstance({ ...base, restart: 'on-failure', last: last('failed') }).action).toBe('start');
    expect(planInstance({ ...base, restart: 'never', last: last('failed') }).action).toBe('none');
  });
});

describe('storedRestart', () => {
  it('reads back only the policies and retries agentctl writes into a DLQ entry', () => {
    expect(storedRestart({ policy: 'always', retries: null })).toEqual({ policy: 'always', retries: null });
    expect(storedRestart({ policy: 'on-failure', retries: 3 })).toEqual({ policy: 'on-failure', retries: 3 });
    for (const bad of [undefined, null, 'always', { policy: 'never', retries: null }, { policy: 'always', retries: -1 }, { policy: 'always', retries: 1.5 }, { policy: 'always' }]) {
      expect(storedRestart(bad)).toBeUndefined();
    }
  });
});

describe('restartDecision', () => {
  it('a crash restarts after the failure backoff (60 s·2ⁿ), a startup error after the startup backoff (300 s·2ⁿ)', () => {
    expect(restartDecision(facts({ health: after('crash') }))).toMatchObject({ action: 'restart', at: NOW + 60_000, failures: 1 });
    const second = after('crash', after('crash'));
    expect(restartDecision(facts({ health: second, failuresBefore: 1 }))).toMatchObject({ action: 'restart', at: NOW + 120_000, failures: 2 });
    expect(restartDecision(facts({ failure: 'startup_error', health: after('startup_error') }))).toMatchObject({ action: 'restart', at: NOW + 300_000 });
  });
  it('never before now, even when the backoff has passed', () => {
    expect(restartDecision(facts({ health: { ...after('crash'), notBefore: NOW - 5 } }))).toMatchObject({ action: 'restart', at: NOW });
  });
  it('on-failure: a clean exit ends the policy; always: restarts it, at most once per min uptime', () => {
    expect(restartDecision(facts({ state: 'exited', failure: null, exitCode: 0 }))).toMatchObject({ action: 'end', status: 'done' });
    expect(restartDecision(facts({ policy: 'always', state: 'exited', failure: null, exitCode: 0 }))).toMatchObject({ action: 'restart', at: NOW, failures: 0 });
    const quick = facts({ policy: 'always', state: 'exited', failure: null, exitCode: 0, startedAt: NOW - 2_000 });
    expect(restartDecision(quick)).toMatchObject({ action: 'restart', at: NOW + 8_000 });
  });
  it('a stop ends the policy under either policy, failure or not', () => {
    for (const policy of ['on-failure', 'always'] as const) {
      expect(restartDecision(facts({ policy, state: 'stopped', failure: null, signal: 'SIGTERM', exitCode: null }))).toMatchObject({ action: 'end', status: 'stopped' });
    }
  });
  it('--retries N: the (N+1)th failure in a row gives up into the DLQ, with the reason', () => {
    expect(restartDecision(facts({ retries: 2, failuresBefore: 1, health: after('crash') }))).toMatchObject({ action: 'restart', failures: 2 });
    const d = restartDecision(facts({ retries: 2, failuresBefore: 2, health: after('crash') }));
    expect(d).toEqual({ action: 'give_up', reason: 'gave up after 2 retries (--retries 2), last crash, exit 1', dlq: true });
    expect(restartDecision(facts({ retries: 0, health: after('crash') }))).toMatchObject({ action: 'give_up', dlq: true });
  });
  it('a breaker opened by this end gives up without a second DLQ entry (recording the end made one)', () => {
    const open: NameHealth = { ...after('crash'), mode: 'open', reason: '3 consecutive failures, last crash' };
    expect(restartDecision(facts({ health: open }))).toEqual({ action: 'give_up', reason: 'circuit open: 3 consecutive failures, last crash', dlq: false });
  });
});
