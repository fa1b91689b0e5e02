/**
 * The run registry: every spawn is a row with its process identity, read back only through
 * these functions. Ending a run is runs/end.ts; noticing that one ended is runs/reconcile.ts.
 */
import type { LoadedConfig } from '../config/types.js';
import { bootId, getIdentity, isSameProcess, type ProcessIdentity } from '../identity.js';
import type { FailureType, PolicySettings } from '../policy.js';
import type { State } from '../state.js';

export type RunState = 'starting' | 'running' | 'exited' | 'failed' | 'lost' | 'stopped';

export interface RunRow {
  readonly id: string;
  readonly name: string;
  readonly grp: string;
  readonly priority: number;
  /** `batch`: a job of `spawn --each`, supervised in the foreground by its batch */
  readonly mode: 'foreground' | 'detached' | 'batch';
  readonly state: RunState;
  readonly pid: number | null;
  readonly start_time: string | null;
  readonly boot_id: string | null;
  readonly pgid: number | null;
  readonly sup_pid: number | null;
  readonly sup_start_time: string | null;
  readonly command: string;
  readonly cwd: string;
  readonly ports: string | null;
  readonly config_hash: string | null;
  readonly limits: string | null;
  readonly limit_mechanism: string | null;
  readonly timeout_ms: number | null;
  readonly log_path: string | null;
  readonly exit_code: number | null;
  readonly signal: string | null;
  readonly failure: FailureType | null;
  readonly started_at: number;
  readonly ended_at: number | null;
  /** CPU time (user + system) of its tree, recorded at its end; null while live or when unknown */
  readonly cpu_ms: number | null;
  /** the largest peak RSS (VmHWM) of its process seen so far; null when never read */
  readonly peak_rss_bytes: number | null;
  /** set by `agentctl up`: the fleet file and the entry's hash (core/agents/) */
  readonly fleet_file?: string | null;
  readonly fleet_hash?: string | null;
  /** set by `spawn -d --restart` (core/spawn/restart.ts) */
  readonly restart_policy?: string | null;
  readonly restart_retries?: number | null;
  readonly restart_attempt?: number | null;
  readonly restart_failures?: number | null;
  readonly restart_spec?: string | null;
  readonly restart_status?: string | null;
  readonly restart_at?: number | null;
  readonly restart_next?: string | null;
}

/** A reservation older than this with no PID belongs to a spawner that died mid-start. */
export const STARTING_TIMEOUT_MS = 30_000;

export interface RegistryDeps {
  readonly now: number;
  readonly lookup: (pid: number) => ProcessIdentity | undefined;
  readonly minUptimeMs: number;
  readonly policy: PolicySettings;
  readonly command: string;
  /** cap on a detached run's log; the older half moves to <log>.prev. @default none */
  readonly logMaxBytes?: number;
}

let counter = 0;
/** Run ids sort by start time: base-36 milliseconds, then pid and a counter for uniqueness. */
export function newRunId(now: number, pid = process.pid): string {
  counter = (counter + 1) % 1296;
  return `r${now.toString(36).padStart(9, '0')}${(pid % 46656).toString(36).padStart(3, '0')}${counter.toString(36).padStart(2, '0')}`;
}

export function liveRuns(state: State): RunRow[] {
  return state.db.prepare('SELECT * FROM runs WHERE ended_at IS NULL ORDER BY started_at').all() as RunRow[];
}

export function getRun(state: State, id: string): RunRow | undefined {
  return state.db.prepare('SELECT * FROM runs WHERE id = ?').get(id) as RunRow | undefined;
}

/** The identity a run row holds, when it has one. */
export function runIdentity(r: RunRow): ProcessIdentity | undefined {
  return r.pid !== null && r.start_time !== null && r.boot_id !== null ? { pid: r.pid, startTime: r.start_time, bootId: r.boot_id } : undefined;
}

/** Is the run's own process still the one we started? */
export function runAlive(r: RunRow, lookup: RegistryDeps['lookup']): boolean {
  const id = runIdentity(r);
  return id !== undefined && isSameProcess(id, lookup);
}

/** Is the run's supervisor (a detached run's shell, a foreground run's agentctl, or the spawner while it starts) still alive? */
export function supervisorAlive(r: RunRow, lookup: RegistryDeps['lookup']): boolean {
  if (r.sup_pid === null || r.sup_start_time === null) return false;
  return isSameProcess({ pid: r.sup_pid, startTime: r.sup_start_time, bootId: r.boot_id ?? bootId() }, lookup);
}

/** Registry settings from the config: how reconcile classifies and caps. */
export function registryFor(config: LoadedConfig, now: number, command: string): RegistryDeps {
  const s = config.config.spawn;
  return { now, lookup: getIdentity, minUptimeMs: s.minUptimeMs, policy: s.policy, command, logMaxBytes: s.logMaxBytes };
}
