/**
 * What one frame of the live view shows, gathered cheaply: one walk of /proc (procs.ts), a few
 * reads of the state, the throttle reading throttle-status takes (at most once a second, so a
 * short interval does not write a sample every frame), and a reconcile (a write transaction)
 * only every few seconds or when the slot bell says a run ended.
 */
import type { LoadedConfig } from '../config/types.js';
import { hostAgents, type HostAgents, unmanagedAgents } from '../hostcap.js';
import { bootId, getIdentity, type ProcessIdentity } from '../identity.js';
import { measure, type MeasureDeps, type ThrottleReport } from '../measure.js';
import { modeAt, type NameHealth } from '../policy.js';
import type { ProcInfo } from '../proc.js';
import { HOST_BREAKER_KEY } from '../runs/health.js';
import { reconcileAll } from '../runs/reconcile.js';
import { liveRuns, runAlive, type RunRow } from '../runs/registry.js';
import type { State } from '../state.js';
import { cpuPercent, type LiveProc, treeOf, treeUsage, walkProcs } from './procs.js';

/** A live run as a frame shows it. */
export interface LiveRun {
  readonly run_id: string;
  readonly name: string;
  readonly group: string;
  readonly state: string;
  readonly pid: number | null;
  /** CPU used by the run's process tree since the previous frame, % of one core; null on the first frame or when unknown */
  readonly cpu_pct: number | null;
  /** resident memory of the run's process tree */
  readonly rss_bytes: number | null;
  /** processes in the run's tree (its own and its descendants) */
  readonly processes: number | null;
  readonly uptime_ms: number;
  /** earlier runs of the same name still in the history (pm2's ↺) */
  readonly restarts: number;
  readonly ports: readonly number[];
}

export interface LiveThrottle {
  readonly level: number;
  readonly name: string;
  readonly raw_level: number;
  readonly reasons: readonly string[];
  readonly disabled: boolean;
  readonly memory_used_pct: number;
  readonly cpu_used_pct: number;
  readonly load_per_core: number;
}

/** One frame's facts: `--json` prints this, one document per line. */
export interface LiveSnapshot {
  readonly timestamp: string;
  readonly interval_ms: number;
  readonly throttle: LiveThrottle;
  readonly host: HostAgents;
  /** spawns waiting for a slot (`spawn --wait`) whose process still runs */
  readonly queue: { readonly waiting: number };
  /** names whose breaker is open or half-open, and whether the host-wide breaker is open */
  readonly breakers: { readonly open: readonly string[]; readonly half_open: readonly string[]; readonly host_open: boolean };
  readonly runs: readonly LiveRun[];
}

/** A new throttle reading at most this often (each one records a sample). */
export const MEASURE_EVERY_MS = 1_000;
/** A reconcile (a write transaction) at most this often, unless the slot bell rang. */
export const RECONCILE_EVERY_MS = 5_000;

export interface LiveDeps extends MeasureDeps {
  readonly config: LoadedConfig;
  readonly state: State;
  /** the command the events and reconcile are recorded under (`ps`, `top`) */
  readonly command: string;
  readonly intervalMs: number;
  /** the table walk; walkProcs by default */
  readonly walk?: () => LiveProc[];
}

/** The ports a row holds, read as untrusted: whole numbers in range, or none. */
export function parsePorts(text: string | null): number[] {
  if (!text) return [];
  try {
    const v: unknown = JSON.parse(text);
    return Array.isArray(v) ? v.filter((p): p is number => Number.isInteger(p) && (p as number) > 0 && (p as number) < 65536) : [];
  } catch {
    return [];
  }
}

/** Gathers frames, keeping what the next frame measures against (CPU readings, restart counts). */
export class LiveGatherer {
  private prevCpu = new Map<string, { cpuTicks: number; at: number }>();
  private restarts = new Map<string, number>();
  private report: ThrottleReport | undefined;
  private measuredAt = -Infinity;
  private reconciledAt = -Infinity;
  private reconcileDue = true;

  constructor(private readonly deps: LiveDeps) {}

  /** The slot bell rang: a run ended or a waiter left; the next frame reconciles. */
  reconcileSoon(): void {
    this.reconcileDue = true;
  }

  async next(): Promise<LiveSnapshot> {
    const { deps } = this;
    const { state, config } = deps;
    let now = deps.now();
    if (this.reconcileDue || now - this.reconciledAt >= RECONCILE_EVERY_MS) {
      reconcileAll(state, config, now, deps.command);
      this.reconciledAt = now;
      this.reconcileDue = false;
    }
    const linux = process.platform === 'linux';
    const walked = (deps.walk ?? walkProcs)();
    const procs: ProcInfo[] = linux ? walked.filter((p) => p.argv.length > 0).map((p) => ({ pid: p.pid, argv: p.argv, cmdline: p.argv.join(' ') })) : await deps.listProcesses();
    if (!this.report || now - this.measuredAt >= MEASURE_EVERY_MS) {
      this.report = await measure({ ...deps, listProcesses: () => Promise.resolve(procs) }, config.config, state, deps.command);
      this.measuredAt = deps.now();
    }
    now = deps.now();
    const boot = bootId();
    const byPid = new Map(walked.map((p) => [p.pid, p]));
    const lookup = (pid: number): ProcessIdentity | undefined => {
      if (!linux) return getIdentity(pid);
      const p = byPid.get(pid);
      return p && p.state !== 'Z' && p.state !== 'X' ? { pid, startTime: p.startTicks, bootId: boot } : undefined;
    };
    const live = state.guard(() => liveRuns(state));
    const runs = live.map((r) => this.row(r, walked, lookup, now));
    const seen = new Set(live.map((r) => r.id));
    for (const id of [...this.prevCpu.keys()]) if (!seen.has(id.split(':')[0]!)) this.prevCpu.delete(id);
    for (const id of [...this.restarts.keys()]) if (!seen.has(id)) this.restarts.delete(id);
    const r = this.report;
    const running = live.filter((x) => x.pid === null || runAlive(x, lookup));
    const host = hostAgents(config.config, { managed: running.length, unmanaged: unmanagedAgents(procs, running, config.config.agents).length, level: r.throttle_level, disabled: r.disabled });
    return {
      timestamp: new Date(now).toISOString(),
      interval_ms: deps.intervalMs,
      throttle: {
        level: r.throttle_level,
        name: r.throttle_params.name,
        raw_level: r.raw_level,
        reasons: r.reasons,
        disabled: r.disabled,
        memory_used_pct: r.memory_used_pct,
        cpu_used_pct: r.cpu_used_pct,
        load_per_core: r.load_per_core,
      },
      host,
      queue: { waiting: this.waiting(lookup) },
      breakers: this.breakers(now),
      runs,
    };
  }

  private row(r: RunRow, walked: readonly LiveProc[], lookup: (pid: number) => ProcessIdentity | undefined, now: number): LiveRun {
    const alive = r.pid !== null && runAlive(r, lookup);
    const usage = alive ? treeUsage(treeOf(walked, r.pid)) : undefined;
    // a CPU reading belongs to one process: keyed by run and start time, so a reused PID starts afresh
    const key = `${r.id}:${r.start_time ?? ''}`;
    let cpu: number | null = null;
    if (usage && usage.processes > 0) {
      cpu = cpuPercent(this.prevCpu.get(key), { cpuTicks: usage.cpuTicks, at: now });
      this.prevCpu.set(key, { cpuTicks: usage.cpuTicks, at: now });
    }
    return {
      run_id: r.id,
      name: r.name,
      group: r.grp,
      state: r.state,
      pid: r.pid,
      cpu_pct: cpu,
      rss_bytes: usage && usage.processes > 0 ? usage.rssBytes : null,
      processes: usage && usage.processes > 0 ? usage.processes : null,
      uptime_ms: Math.max(0, now - r.started_at),
      restarts: this.restartsOf(r),
      ports: parsePorts(r.ports),
    };
  }

  /** Earlier runs of the name still in the history; counted once per run (the index on name, started_at finds them). */
  private restartsOf(r: RunRow): number {
    let n = this.restarts.get(r.id);
    if (n === undefined) {
      const { state } = this.deps;
      n = state.guard(
        () => (state.db.prepare('SELECT COUNT(*) AS n FROM runs WHERE name = ? AND (started_at < ? OR (started_at = ? AND id < ?))').get(r.name, r.started_at, r.started_at, r.id) as { n: number }).n,
      );
      this.restarts.set(r.id, n);
    }
    return n;
  }

  /** Waiters in the host queue whose process is still the one that queued. */
  private waiting(lookup: (pid: number) => ProcessIdentity | undefined): number {
    const { state } = this.deps;
    const rows = state.guard(() => state.db.prepare('SELECT pid, start_time, boot_id FROM queue').all() as Array<{ pid: number; start_time: string; boot_id: string }>);
    return rows.filter((q) => {
      const id = Number.isInteger(q.pid) && q.pid > 0 ? lookup(q.pid) : undefined;
      return id !== undefined && id.startTime === String(q.start_time) && id.bootId === q.boot_id;
    }).length;
  }

  private breakers(now: number): LiveSnapshot['breakers'] {
    const { state } = this.deps;
    const rows = state.guard(() => state.db.prepare('SELECT name, value FROM health ORDER BY name').all() as Array<{ name: string; value: string }>);
    const open: string[] = [];
    const half: string[] = [];
    for (const row of rows) {
      let h: NameHealth;
      try {
        h = JSON.parse(row.value) as NameHealth;
      } catch {
        continue; // a row someone else wrote: not ours to show
      }
      const mode = modeAt(h, now);
      if (mode === 'open') open.push(row.name);
      else if (mode === 'half_open') half.push(row.name);
    }
    const hb = state.getKv<{ notBefore?: unknown }>(HOST_BREAKER_KEY)?.value;
    return { open, half_open: half, host_open: typeof hb?.notBefore === 'number' && hb.notBefore > now };
  }
}
