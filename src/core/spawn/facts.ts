/**
 * Admission's facts, gathered inside the admission transaction once reconcile has closed the
 * runs that ended: the live runs and the caps, the name's health and last starts, the names
 * it requires, the host's queue, the environment and the port pool. Reads only: `decide`
 * (admission.ts) decides on them and record.ts writes what it decided.
 */
import type { Config } from '../config/types.js';
import { envLeaseState, gcReason, getEnv } from '../envs.js';
import { type AgentCandidate, notRuns } from '../hostcap.js';
import { isSameProcess, type ProcessIdentity } from '../identity.js';
import { modeAt } from '../policy.js';
import { exhaustedMessage } from '../ports/pool.js';
import { getHealth, HOST_BREAKER_KEY } from '../runs/health.js';
import { liveRuns, type RunRow } from '../runs/registry.js';
import type { State } from '../state.js';
import type { AdmissionFacts, EnvFacts, HostBreaker, PortFacts } from './admission.js';
import type { SpawnRequest, ThrottleCap } from './deps.js';
import type { LimitMechanism } from './launch.js';

/** One admission attempt's input: the request, and what its caller knows of the host and of its own place. */
export interface AttemptInput {
  readonly req: SpawnRequest;
  readonly throttle: ThrottleCap;
  /** agent-pattern processes on the host, read outside the transaction */
  readonly agents: readonly AgentCandidate[];
  /** the caller, as a waiter's queue row records it */
  readonly self: ProcessIdentity;
  /** the caller's place in the queue, once it has one */
  readonly queueId: number | undefined;
  /** the caller waits (--wait) */
  readonly waiting: boolean;
  /** ports something listens on (read only with --port) */
  readonly listening: Set<number>;
  /** how the run's limits are enforced, recorded with it */
  readonly mechanism: LimitMechanism;
  /** the command asking, as its events name it (default spawn) */
  readonly command?: string | undefined;
}

export interface Gathered {
  readonly facts: AdmissionFacts;
  /** queue rows of waiters whose process died: they lose their place */
  readonly deadWaiters: readonly number[];
}

export function gatherFacts(state: State, config: Config, input: AttemptInput, now: number): Gathered {
  const { req, throttle } = input;
  const live = liveRuns(state);
  const aliveRun = live.find((r) => r.name === req.name);
  const last = (sql: string, ...args: unknown[]) => (state.db.prepare(sql).get(...args) as { t: number | null }).t ?? undefined;
  const inGroup = new Map<string, number>();
  for (const r of live) inGroup.set(r.grp, (inGroup.get(r.grp) ?? 0) + 1);
  const queue = queueFacts(state, req, input.queueId, inGroup);
  const unmanaged = config.spawn.countUnmanaged ? notRuns(input.agents, live).length : 0;
  const facts: AdmissionFacts = {
    now,
    name: req.name,
    group: req.group,
    health: getHealth(state, req.name),
    alive: aliveRun ? { runId: aliveRun.id, pid: aliveRun.pid } : undefined,
    lastStartOfName: last('SELECT MAX(started_at) AS t FROM runs WHERE name = ?', req.name),
    cooldownMs: config.spawn.cooldownMs,
    lastStartAny: last('SELECT MAX(started_at) AS t FROM runs'),
    minIntervalMs: config.spawn.minIntervalMs,
    requires: req.requires.map((n) => requireFacts(state, live, n, now)),
    // AGENTCTL_DISABLE_THROTTLE turns the resource-based cap off (maxAgents Infinity); --max still holds
    cap: { max: req.max, levelMax: throttle.maxAgents, level: throttle.level, managed: inGroup.get(req.group) ?? 0, hostManaged: live.length, unmanaged },
    ahead: queue.ahead,
    hostAhead: queue.hostAhead,
    hostBreaker: state.getKv<HostBreaker>(HOST_BREAKER_KEY)?.value,
    env: req.env !== undefined ? envFacts(state, req.env, now) : undefined,
    ports: req.ports ? portFacts(state, config.ports, req.ports, input.listening, now) : undefined,
  };
  return { facts, deadWaiters: queue.dead };
}

/** A required name: running and healthy (problem null), or what is wrong with it. */
function requireFacts(state: State, live: readonly RunRow[], name: string, now: number): AdmissionFacts['requires'][number] {
  const r = live.find((x) => x.name === name);
  if (!r) return { name, problem: 'not running' };
  if (r.state !== 'running') return { name, problem: r.state };
  const h = getHealth(state, name);
  if (modeAt(h, now) !== 'closed') return { name, problem: `circuit ${modeAt(h, now).replace('_', '-')}` };
  if (h.consecutiveFailures > 0) return { name, problem: `failing: ${h.reason ?? h.lastFailure}` };
  return { name, problem: null };
}

/**
 * The host's queue: the waiters that died, and the live ones ahead of the caller (higher
 * priority, or the same priority and queued earlier; everyone, for a caller not queued):
 * those of its group for the group's cap, and those of any group whose group has room for
 * the host's cap (a waiter held by its own --max cannot take a host slot).
 */
function queueFacts(state: State, req: SpawnRequest, queueId: number | undefined, inGroup: ReadonlyMap<string, number>): { ahead: number; hostAhead: number; dead: number[] } {
  const rows = state.db.prepare('SELECT id, grp, priority, max, pid, start_time, boot_id FROM queue ORDER BY priority, id').all() as Array<{
    id: number;
    grp: string;
    priority: number;
    max: number | null;
    pid: number;
    start_time: string;
    boot_id: string;
  }>;
  const dead: number[] = [];
  const queued = rows.filter((q) => {
    if (q.id === queueId || isSameProcess({ pid: q.pid, startTime: q.start_time, bootId: q.boot_id })) return true;
    dead.push(q.id);
    return false;
  });
  const before = queueId === undefined ? queued : queued.filter((q) => q.id !== queueId && (q.priority < req.priority || (q.priority === req.priority && q.id < queueId)));
  const ahead = before.filter((q) => q.grp === req.group).length;
  const hostAhead = before.filter((q) => q.max === null || (inGroup.get(q.grp) ?? 0) < q.max).length;
  return { ahead, hostAhead, dead };
}

function envFacts(state: State, name: string, now: number): EnvFacts {
  const e = getEnv(state, name);
  return { name, exists: e !== undefined, gcDue: e ? gcReason(e, now) : undefined };
}

/** Free ports for a lease of `want`, counted as leasePorts takes them (up to `want`). */
function portFacts(state: State, range: { from: number; to: number }, want: number, listening: ReadonlySet<number>, now: number): PortFacts {
  const leased = new Set((state.db.prepare('SELECT port FROM port_leases WHERE port BETWEEN ? AND ?').all(range.from, range.to) as Array<{ port: number }>).map((r) => r.port));
  let free = 0;
  for (let p = range.from; p <= range.to && free < want; p++) if (!leased.has(p) && !listening.has(p)) free++;
  return { want, free, exhausted: free < want ? exhaustedMessage(state, range, want, envLeaseState(state, now)) : undefined };
}
