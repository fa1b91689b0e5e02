import { describe, expect, it } from 'vitest';
import { type DueEnv, excusedLock, planEnvGc, refusedEvent, removedEvent, worktreeParents, worktreeToCheck } from '../../src/core/env-gc/plan.js';
import { dueReason, type EnvRow } from '../../src/core/envs.js';

const NOW = 1_800_000_000_000;
const HOUR = 3_600_000;
const alive = { halfCreated: false, ownerAlive: true };

function env(over: Partial<EnvRow> = {}): EnvRow {
  return {
    name: 'e1',
    created_at: NOW - 2 * HOUR,
    expires_at: NOW + HOUR,
    owner_pid: 4000,
    owner_start_time: '100',
    owner_boot_id: 'b',
    worktree: '/srv/wt/e1',
    repo: '/srv/repo',
    branch: null,
    status: 'ready',
    creator_pid: null,
    creator_start_time: null,
    creator_boot_id: null,
    ...over,
  };
}

const due = (over: Partial<DueEnv> = {}): DueEnv => ({ env: env(), reason: 'expired', live: alive, ports: [7000], inUse: [], worktreeProblems: [], ...over });

describe('dueReason', () => {
  it('past its TTL, or its owner gone (a reused owner PID is a gone owner), or half-created', () => {
    expect(dueReason(env({ expires_at: NOW }), NOW, alive)).toBe(`expired ${new Date(NOW).toISOString()}`);
    expect(dueReason(env(), NOW, { ...alive, ownerAlive: false })).toBe('owner PID 4000 is gone');
    expect(dueReason(env({ status: 'creating', creator_pid: 77 }), NOW, { ...alive, halfCreated: true })).toBe('half-created: env create (PID 77) ended before it finished');
  });

  it('stays while it lives: in time, owner running, or its env create still running (however old)', () => {
    expect(dueReason(env(), NOW, alive)).toBeUndefined();
    expect(dueReason(env({ status: 'creating', expires_at: 0 }), NOW, alive)).toBeUndefined();
  });
});

describe('planEnvGc', () => {
  it('removes a due environment with nothing to lose', () => {
    expect(planEnvGc(due(), false)).toEqual({ kind: 'remove', problems: [], unlock: undefined });
  });

  it('a live process in it refuses it, --force or not', () => {
    const d = due({ inUse: [{ pid: 4100, why: 'its working folder /srv/wt/e1 is inside the worktree' }], worktreeProblems: ['1 uncommitted change(s)'] });
    const r = planEnvGc(d, true);
    expect(r).toEqual({
      kind: 'refuse',
      problems: ['in use by PID 4100: its working folder /srv/wt/e1 is inside the worktree', '1 uncommitted change(s)'],
      inUse: d.inUse,
      fix: 'stop those processes first; --force does not override this',
    });
  });

  it('a worktree path on record that is not absolute and normalised refuses it, --force or not (never handed to git)', () => {
    const d = due({ env: env({ worktree: '/srv/wt/../../etc' }) });
    const r = planEnvGc(d, true);
    expect(r.kind).toBe('refuse');
    expect(r.kind === 'refuse' && r.fix).toBe('fix or remove the row by hand');
    expect(worktreeToCheck(d.env)).toBeUndefined();
    expect(worktreeToCheck(env({ worktree: 'relative/wt' }))).toBeUndefined();
    expect(worktreeToCheck(env())).toEqual({ repo: '/srv/repo', worktree: '/srv/wt/e1' });
  });

  it('unsaved or unpushed work refuses it unless --force', () => {
    const d = due({ worktreeProblems: ['2 commit(s) on no other branch or remote (unpushed)'] });
    expect(planEnvGc(d, false)).toMatchObject({ kind: 'refuse', fix: 'pass --force to remove anyway' });
    expect(planEnvGc(d, true)).toEqual({ kind: 'remove', problems: ['2 commit(s) on no other branch or remote (unpushed)'], unlock: undefined });
  });

  it("a half-created environment lifts git's own initializing lock, no other", () => {
    expect(excusedLock({ halfCreated: true, ownerAlive: true })).toBe('initializing');
    expect(excusedLock(alive)).toBeUndefined();
    expect(planEnvGc(due({ live: { halfCreated: true, ownerAlive: true } }), false)).toMatchObject({ kind: 'remove', unlock: 'initializing' });
  });
});

describe('what env-gc records', () => {
  it('a refusal says why and what fixes it', () => {
    const d = due({ worktreeProblems: ['locked (mine)'] });
    const r = planEnvGc(d, false);
    if (r.kind !== 'refuse') throw new Error('expected a refusal');
    expect(refusedEvent(d, r)).toEqual({
      command: 'env-gc',
      kind: 'env.gc_refused',
      subject: 'e1',
      reason: 'expired, but worktree /srv/wt/e1 has locked (mine); pass --force to remove anyway',
      data: { in_use: [] },
    });
    expect(refusedEvent(due({ env: env({ worktree: null }), inUse: [{ pid: 1, why: 'x' }] }), { kind: 'refuse', problems: ['p'], inUse: [], fix: 'f' }).reason).toBe(
      'expired, but the environment has p; f',
    );
  });

  it('a removal names the ports released and what --force overrode', () => {
    expect(removedEvent(due(), [7000, 7001], true, ['1 uncommitted change(s)'])).toEqual({
      command: 'env-gc',
      kind: 'env.removed',
      subject: 'e1',
      reason: 'expired; released ports 7000, 7001; removed worktree /srv/wt/e1 (--force: 1 uncommitted change(s))',
      data: { ports: [7000, 7001], worktree: '/srv/wt/e1' },
    });
    expect(removedEvent(due({ env: env({ worktree: null }) }), [], false, []).reason).toBe('expired; released ports none');
  });

  it("looks for forgotten worktrees beside every environment's, due or not", () => {
    const m = worktreeParents([env(), env({ name: 'e2', worktree: '/srv/wt/e2' }), env({ name: 'e3', repo: null }), env({ name: 'e4', repo: '/other', worktree: '/tmp/x/e4' })]);
    expect([...m].map(([repo, parents]) => [repo, [...parents]])).toEqual([
      ['/srv/repo', ['/srv/wt']],
      ['/other', ['/tmp/x']],
    ]);
  });
});
