/**
 * The restart policy, pure: whether a run that ended is started again, and when. One engine
 * for the three callers: `spawn -d --restart` (its supervisor asks after each end,
 * core/spawn/restart.ts), `up` (an [[agents]] entry's `restart`, core/agents/plan.ts) and
 * `dlq retry` (which restores the policy the entry's run had). The delay is the name's health
 * as policy.ts left it when the end was recorded (startup errors 300 s·2ⁿ, crashes 60 s·2ⁿ,
 * configurable), and a restart is always admitted again: never around the breaker or the caps.
 */
import type { RestartPolicy } from './config/types.js';
import type { NameHealth } from './policy.js';

export type { RestartPolicy } from './config/types.js';

/** The policies `spawn -d --restart` takes (`never` is simply no --restart). */
export const RESTART_POLICIES = ['on-failure', 'always'] as const;

/**
 * How long a waiting supervisor sleeps before it asks admission again after a refusal with no
 * retry time (a full cap). Each ask starts a node process (about 100 ms of CPU), and writes no
 * event: a restart held for a day would otherwise fill the event history.
 */
export const RESTART_POLL_MS = 5_000;

/**
 * The restart policy a dead-letter entry's run had (its context's `restart`), for `dlq retry`
 * to start it again under: undefined when it had none or the stored value is not one agentctl writes.
 */
export function storedRestart(x: unknown): { policy: (typeof RESTART_POLICIES)[number]; retries: number | null } | undefined {
  if (typeof x !== 'object' || x === null) return undefined;
  const { policy, retries } = x as { policy?: unknown; retries?: unknown };
  if (!(RESTART_POLICIES as readonly unknown[]).includes(policy)) return undefined;
  if (retries !== null && !(Number.isSafeInteger(retries) && (retries as number) >= 0)) return undefined;
  return { policy: policy as (typeof RESTART_POLICIES)[number], retries: retries as number | null };
}

/** Does the policy start a run again that ended this way (`exited`: it succeeded; `failed`: it did not)? */
export function restartsAfter(policy: RestartPolicy, ended: 'exited' | 'failed'): boolean {
  if (policy === 'never') return false;
  return ended === 'failed' || policy === 'always';
}

/** What is known when a run under a restart policy has ended and its end is recorded. */
export interface RestartFacts {
  readonly policy: RestartPolicy;
  /** the run's recorded state: exited, failed, stopped (stop, down, reap) or lost */
  readonly state: string;
  readonly failure: string | null;
  readonly exitCode: number | null;
  readonly signal: string | null;
  /** --retries: restarts allowed after failures in a row; null for no limit (the breaker's) */
  readonly retries: number | null;
  /** failed runs in a row in this chain before this one */
  readonly failuresBefore: number;
  /** the name's health once this end was recorded (its backoff, its breaker) */
  readonly health: NameHealth;
  readonly startedAt: number;
  readonly endedAt: number;
  readonly now: number;
  /** spawn.min_uptime: a clean exit under `always` restarts at most once per this long */
  readonly minUptimeMs: number;
}

export type RestartDecision =
  /** wait until `at`, then ask admission again; `failures` in a row so far */
  | { readonly action: 'restart'; readonly at: number; readonly failures: number; readonly why: string }
  /** give up into the dead-letter queue (`dlq`: false when recording the end already put it there) */
  | { readonly action: 'give_up'; readonly reason: string; readonly dlq: boolean }
  /** the policy ends without a failure to report: a clean exit under on-failure, a stop */
  | { readonly action: 'end'; readonly status: 'done' | 'stopped'; readonly reason: string };

const how = (f: RestartFacts) => `${f.failure ?? 'failed'}, ${f.exitCode !== null ? `exit ${f.exitCode}` : (f.signal ?? 'status unknown')}`;

/** The decision after one end: end the policy, give up into the DLQ, or restart at a time. */
export function restartDecision(f: RestartFacts): RestartDecision {
  if (f.state === 'stopped') return { action: 'end', status: 'stopped', reason: 'stopped on purpose: the restart policy ends with it' };
  if (f.state === 'lost') return { action: 'end', status: 'done', reason: 'its exit status is unknown: not restarted' };
  const failed = f.state === 'failed';
  if (!restartsAfter(f.policy, failed ? 'failed' : 'exited')) return { action: 'end', status: 'done', reason: `exited 0; restart = ${f.policy} leaves it` };
  if (!failed) {
    // a clean exit is no failure for the breaker: bound the loop to one start per min uptime
    const at = Math.max(f.now, f.startedAt + f.minUptimeMs, f.health.notBefore);
    return { action: 'restart', at, failures: 0, why: `exited 0; restart = always` };
  }
  // recording the end opened the breaker (and parked the run in the DLQ): give up there
  if (f.health.mode === 'open') return { action: 'give_up', reason: `circuit open: ${f.health.reason ?? 'repeated failures'}`, dlq: false };
  const failures = f.failuresBefore + 1;
  if (f.retries !== null && failures > f.retries) {
    return { action: 'give_up', reason: `gave up after ${f.retries} ${f.retries === 1 ? 'retry' : 'retries'} (--retries ${f.retries}), last ${how(f)}`, dlq: true };
  }
  const at = Math.max(f.now, f.health.notBefore);
  return { action: 'restart', at, failures, why: `${how(f)}; restart ${failures}${f.retries !== null ? ` of ${f.retries}` : ''} after the backoff` };
}
