/**
 * Admission control: one decision from facts gathered inside one BEGIN IMMEDIATE transaction,
 * so concurrent spawners see each other's reservations. The checks run in a fixed order and
 * the first that refuses names its reason and when to retry.
 */
import { formatDuration } from '../units.js';
import { modeAt, type NameHealth } from './policy.js';

export type RefusalReason = 'breaker_open' | 'backoff' | 'already_running' | 'cooldown' | 'rate_limit' | 'dependency' | 'no_slot' | 'no_ports';

export interface AdmissionFacts {
  readonly now: number;
  readonly name: string;
  readonly group: string;
  readonly health: NameHealth;
  /** a live run with this name */
  readonly alive: { readonly runId: string; readonly pid: number | null } | undefined;
  readonly lastStartOfName: number | undefined;
  readonly cooldownMs: number;
  readonly lastStartAny: number | undefined;
  readonly minIntervalMs: number;
  /** each required name and what is wrong with it (null when running and healthy) */
  readonly requires: ReadonlyArray<{ readonly name: string; readonly problem: string | null }>;
  readonly cap: {
    /** --max, when given */
    readonly max: number | undefined;
    /** the throttle level's max agents */
    readonly levelMax: number;
    readonly level: number;
    /** live registered runs in the group */
    readonly managed: number;
    /** agent-pattern processes agentctl did not start */
    readonly unmanaged: number;
  };
  /** live waiters ahead of this caller in the group's queue */
  readonly ahead: number;
}

export type Decision =
  | { readonly admit: true; readonly trial: boolean; readonly slot: { used: number; limit: number } }
  | {
      readonly admit: false;
      readonly reason: RefusalReason;
      /** 69 refused (breaker, dependency) or 75 try later */
      readonly exitCode: 69 | 75;
      readonly message: string;
      /** earliest time a retry can succeed, when known */
      readonly retryAt?: number;
      readonly runId?: string;
      readonly pid?: number | null;
      /** for no_slot: the slots in use and the group's limit */
      readonly slot?: { used: number; limit: number };
    };

const at = (t: number) => new Date(t).toISOString().slice(11, 19);

export function decide(f: AdmissionFacts): Decision {
  const { now, name } = f;
  const mode = modeAt(f.health, now);
  if (mode === 'open') {
    return {
      admit: false,
      reason: 'breaker_open',
      exitCode: 69,
      message: `circuit open for ${name}: ${f.health.reason ?? 'repeated failures'}; a trial run is allowed after ${at(f.health.notBefore)} UTC (in ${formatDuration(f.health.notBefore - now)}), or run: agentctl breaker reset ${name}`,
      retryAt: f.health.notBefore,
    };
  }
  if (f.alive) {
    return {
      admit: false,
      reason: 'already_running',
      exitCode: 75,
      message: `${name} is already running (run ${f.alive.runId}${f.alive.pid !== null ? `, PID ${f.alive.pid}` : ', starting'}); one instance per name`,
      runId: f.alive.runId,
      pid: f.alive.pid,
    };
  }
  if (mode === 'closed' && f.health.notBefore > now) {
    return {
      admit: false,
      reason: 'backoff',
      exitCode: 75,
      message: `${name} is backing off after ${f.health.reason ?? 'a failure'}: no start before ${at(f.health.notBefore)} UTC (in ${formatDuration(f.health.notBefore - now)})`,
      retryAt: f.health.notBefore,
    };
  }
  if (f.cooldownMs > 0 && f.lastStartOfName !== undefined && now - f.lastStartOfName < f.cooldownMs) {
    const retryAt = f.lastStartOfName + f.cooldownMs;
    return { admit: false, reason: 'cooldown', exitCode: 75, message: `${name} started ${formatDuration(now - f.lastStartOfName)} ago; cooldown is ${formatDuration(f.cooldownMs)}, retry in ${formatDuration(retryAt - now)}`, retryAt };
  }
  if (f.minIntervalMs > 0 && f.lastStartAny !== undefined && now - f.lastStartAny < f.minIntervalMs) {
    const retryAt = f.lastStartAny + f.minIntervalMs;
    return { admit: false, reason: 'rate_limit', exitCode: 75, message: `a spawn ran ${formatDuration(now - f.lastStartAny)} ago; at most one per ${formatDuration(f.minIntervalMs)} on this host, retry in ${formatDuration(retryAt - now)}`, retryAt };
  }
  const bad = f.requires.filter((r) => r.problem !== null);
  if (bad.length) {
    return { admit: false, reason: 'dependency', exitCode: 69, message: `${name} requires ${bad.map((r) => `${r.name} (${r.problem})`).join(', ')}` };
  }
  const c = f.cap;
  const limit = Math.min(c.max ?? Number.POSITIVE_INFINITY, c.levelMax);
  const used = c.managed + c.unmanaged;
  // waiters ahead of us take the free slots first
  if (used >= limit || used + f.ahead >= limit) {
    const why =
      used >= limit
        ? `${used} of ${limit} slots in use in group ${f.group} (${c.managed} started by agentctl, ${c.unmanaged} other agent${c.unmanaged === 1 ? '' : 's'}; limit ${c.max !== undefined && c.max <= c.levelMax ? `--max ${c.max}` : `throttle level ${c.level} allows ${c.levelMax}`})`
        : `${limit - used} free slot${limit - used === 1 ? '' : 's'} in group ${f.group}, ${f.ahead} waiting ahead`;
    return { admit: false, reason: 'no_slot', exitCode: 75, message: `no slot for ${name}: ${why}; wait with --wait, or see agentctl ps`, slot: { used, limit } };
  }
  return { admit: true, trial: mode === 'half_open', slot: { used: used + 1, limit } };
}
