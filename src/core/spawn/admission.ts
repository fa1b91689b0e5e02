/**
 * Admission control: one pure decision from facts gathered inside one BEGIN IMMEDIATE
 * transaction (facts.ts), so concurrent spawners see each other's reservations. Every refusal
 * is decided here: the checks run in a fixed order (docs/spawn.md, "Admission") and the first
 * that refuses names its reason and when to retry.
 */
import { formatDuration } from '../units.js';
import { type BreakerMode, modeAt, type NameHealth } from '../policy.js';

/** fleet_full and fleet_unreachable come after the local decision, from the fleet's leases (spawn/fleet.ts). */
export type RefusalReason = 'breaker_open' | 'backoff' | 'already_running' | 'cooldown' | 'rate_limit' | 'dependency' | 'no_slot' | 'no_ports' | 'fleet_full' | 'fleet_unreachable';

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
  /**
   * Two caps. The throttle level's max agents caps all agents on the host: registered runs of
   * every group plus agents agentctl did not start. `--max` caps the caller's group within it.
   */
  readonly cap: {
    /** --max, when given: the group's cap */
    readonly max: number | undefined;
    /** the throttle level's max agents: the host's cap (Infinity when throttling is off) */
    readonly levelMax: number;
    readonly level: number;
    /** live registered runs in the caller's group */
    readonly managed: number;
    /** live registered runs in all groups */
    readonly hostManaged: number;
    /** agent-pattern processes agentctl did not start */
    readonly unmanaged: number;
  };
  /** live waiters of the caller's group ahead of it */
  readonly ahead: number;
  /** live waiters of any group ahead of it (priority, then age) that could take a host slot */
  readonly hostAhead: number;
  /** the host-wide startup-failure breaker, while open */
  readonly hostBreaker?: HostBreaker | undefined;
  /** with --env: the environment the run would use */
  readonly env?: EnvFacts | undefined;
  /** with --port N: the pool's free ports for the lease */
  readonly ports?: PortFacts | undefined;
}

/** The environment a run asks for with --env. */
export interface EnvFacts {
  readonly name: string;
  readonly exists: boolean;
  /** why env-gc would remove it (it would take the ports and worktree from the run), if it would */
  readonly gcDue: string | undefined;
}

/** The ports a run asks for with --port, and what the pool has. */
export interface PortFacts {
  readonly want: number;
  /** ports in the pool neither leased nor listened on */
  readonly free: number;
  /** the pool's state, for the message: set when fewer are free than wanted */
  readonly exhausted: string | undefined;
}

/** The host-wide startup-failure breaker (kv `breaker.host`): open until notBefore. */
export interface HostBreaker {
  readonly openedAt: number;
  readonly notBefore: number;
  readonly reason: string;
  readonly failures: ReadonlyArray<{ readonly name: string; readonly run_id: string; readonly at: number; readonly exit_code: number | null; readonly signal?: string | null }>;
}

/** Which cap a no_slot refusal or an admission is keyed to. */
export type CapKind = 'host' | 'group';

export type Decision =
  | { readonly admit: true; readonly trial: boolean; readonly slot: { used: number; limit: number; kind: CapKind }; readonly host: { used: number; limit: number } }
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
      /** for no_slot: the slots in use and the limit that bit, and which one it is */
      readonly slot?: { used: number; limit: number; kind: CapKind };
      /** for fleet_full: the fleet-wide count of the group and the hosts holding it */
      readonly fleet?: FleetCount;
    };

/** A group's leases across the fleet against its cap. */
export interface FleetCount {
  readonly group: string;
  readonly used: number;
  readonly cap: number;
  readonly hosts: ReadonlyArray<{ readonly host: string; readonly n: number }>;
}

/** A decision that refuses. */
export type Refusal = Extract<Decision, { admit: false }>;

/** `exit 1`, or the signal a crash ended with. */
export const howEnded = (x: { exit_code: number | null; signal?: string | null }) => (x.exit_code !== null ? `exit ${x.exit_code}` : (x.signal ?? 'unknown'));

const at = (t: number) => new Date(t).toISOString().slice(11, 19);

/** The first check that refuses, in the documented order; else admit. */
export function decide(f: AdmissionFacts): Decision {
  const mode = modeAt(f.health, f.now);
  return breakerRefusal(f, mode) ?? nameRefusal(f, mode) ?? dependencyRefusal(f) ?? slotRefusal(f) ?? envRefusal(f) ?? portRefusal(f) ?? admit(f, mode);
}

/** Checks 0-1: the host's breaker, then the name's. */
function breakerRefusal(f: AdmissionFacts, mode: BreakerMode): Refusal | undefined {
  const { now, name } = f;
  const hb = f.hostBreaker;
  if (hb && hb.notBefore > now) {
    const recent = hb.failures
      .slice(-5)
      .map((x) => `${x.name} ${howEnded(x)}`)
      .join(', ');
    return {
      admit: false,
      reason: 'breaker_open',
      exitCode: 69,
      message: `host breaker open: ${hb.reason} (${recent}); new spawns on this host paused until ${at(hb.notBefore)} UTC (in ${formatDuration(hb.notBefore - now)}), or run: agentctl breaker reset --host`,
      retryAt: hb.notBefore,
    };
  }
  if (mode === 'open') {
    return {
      admit: false,
      reason: 'breaker_open',
      exitCode: 69,
      message: `circuit open for ${name}: ${f.health.reason ?? 'repeated failures'}; a trial run is allowed after ${at(f.health.notBefore)} UTC (in ${formatDuration(f.health.notBefore - now)}), or run: agentctl breaker reset ${name}`,
      retryAt: f.health.notBefore,
    };
  }
  return undefined;
}

/** Checks 2-5: one instance per name, then when the name (or any spawn) may start again. */
function nameRefusal(f: AdmissionFacts, mode: BreakerMode): Refusal | undefined {
  const { now, name } = f;
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
    return {
      admit: false,
      reason: 'cooldown',
      exitCode: 75,
      message: `${name} started ${formatDuration(now - f.lastStartOfName)} ago; cooldown is ${formatDuration(f.cooldownMs)}, retry in ${formatDuration(retryAt - now)}`,
      retryAt,
    };
  }
  if (f.minIntervalMs > 0 && f.lastStartAny !== undefined && now - f.lastStartAny < f.minIntervalMs) {
    const retryAt = f.lastStartAny + f.minIntervalMs;
    return {
      admit: false,
      reason: 'rate_limit',
      exitCode: 75,
      message: `a spawn ran ${formatDuration(now - f.lastStartAny)} ago; at most one per ${formatDuration(f.minIntervalMs)} on this host, retry in ${formatDuration(retryAt - now)}`,
      retryAt,
    };
  }
  return undefined;
}

/** Check 6: every --requires name running and healthy. */
function dependencyRefusal(f: AdmissionFacts): Refusal | undefined {
  const bad = f.requires.filter((r) => r.problem !== null);
  if (!bad.length) return undefined;
  return { admit: false, reason: 'dependency', exitCode: 69, message: `${f.name} requires ${bad.map((r) => `${r.name} (${r.problem})`).join(', ')}` };
}

/** Check 7: a slot in the group (with --max), then on the host, not claimed by waiters ahead. */
function slotRefusal(f: AdmissionFacts): Refusal | undefined {
  const { name, cap: c } = f;
  // the group's cap first: while the group is full, free host slots cannot help
  if (c.max !== undefined) {
    const used = c.managed;
    if (used >= c.max || used + f.ahead >= c.max) {
      // more can run than the cap allows (a lower --max than the runs had): say so, not "3 of 1"
      const full = used > c.max ? `${used} running, over --max ${c.max}` : `${used} of ${c.max} (--max ${c.max})`;
      const why = used >= c.max ? `group ${f.group}: ${full}` : `group ${f.group}: ${c.max - used} free of ${c.max}, ${f.ahead} waiting ahead`;
      return noSlot(name, why, { used, limit: c.max, kind: 'group' });
    }
  }
  const hostUsed = c.hostManaged + c.unmanaged;
  if (hostUsed >= c.levelMax || hostUsed + f.hostAhead >= c.levelMax) {
    const who = `${c.hostManaged} started by agentctl, ${c.unmanaged} other agent${c.unmanaged === 1 ? '' : 's'}`;
    // agents started by hand, or a level that rose, can put more on the host than its cap
    const full = hostUsed > c.levelMax ? `${hostUsed} agents, over the cap of ${c.levelMax} at level ${c.level}` : `${hostUsed} of ${c.levelMax} agents at level ${c.level}`;
    const why = hostUsed >= c.levelMax ? `host: ${full} (${who})` : `host: ${c.levelMax - hostUsed} free of ${c.levelMax} agents at level ${c.level}, ${f.hostAhead} waiting ahead`;
    return noSlot(name, why, { used: hostUsed, limit: c.levelMax, kind: 'host' });
  }
  return undefined;
}

/** Check 8: with --env, the environment exists and env-gc is not due to remove it. */
function envRefusal(f: AdmissionFacts): Refusal | undefined {
  const e = f.env;
  if (!e) return undefined;
  if (!e.exists) return { admit: false, reason: 'dependency', exitCode: 69, message: `${f.name} needs environment ${e.name}, which does not exist; create it with agentctl env create ${e.name}` };
  if (e.gcDue)
    return { admit: false, reason: 'dependency', exitCode: 69, message: `${f.name} needs environment ${e.name}, which env-gc will remove (${e.gcDue}); create a new one with agentctl env create` };
  return undefined;
}

/** Check 9: with --port N, N free ports in the pool (a waiter keeps its place while they are short). */
function portRefusal(f: AdmissionFacts): Refusal | undefined {
  const p = f.ports;
  if (!p || p.free >= p.want) return undefined;
  return { admit: false, reason: 'no_ports', exitCode: 75, message: `no ports for ${f.name}: ${p.exhausted}` };
}

/**
 * After admission the run's leased ports are proven free by binding them; when the pool runs
 * out while a taken one is swapped, the admitted run is refused after all.
 */
export function portsTakenRefusal(name: string): Refusal {
  return { admit: false, reason: 'no_ports', exitCode: 75, message: `no ports for ${name}: the pool ran out while proving leased ports free` };
}

/** Every check passed: the slot taken is keyed to whichever cap has fewer left. */
function admit(f: AdmissionFacts, mode: BreakerMode): Decision {
  const c = f.cap;
  const hostUsed = c.hostManaged + c.unmanaged;
  const slot =
    c.max !== undefined && c.max - c.managed <= c.levelMax - hostUsed
      ? { used: c.managed + 1, limit: c.max, kind: 'group' as const }
      : { used: hostUsed + 1, limit: c.levelMax, kind: 'host' as const };
  return { admit: true, trial: mode === 'half_open', slot, host: { used: hostUsed + 1, limit: c.levelMax } };
}

function noSlot(name: string, why: string, slot: { used: number; limit: number; kind: CapKind }): Refusal {
  return { admit: false, reason: 'no_slot', exitCode: 75, message: `no slot for ${name}: ${why}; wait with --wait, or see agentctl ps`, slot };
}
