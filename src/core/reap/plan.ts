/**
 * reap's rules, pure: which runs are lost, overdue, hung or shed, which agents are orphans, which
 * zombies to report, what to record. Facts come in (run rows and their fates, the process table,
 * progress records, limits, the throttle reading); findings and actions with their reasons go
 * out. Nothing here reads /proc or the db or sends a signal: core/reap/apply.ts gathers the
 * facts, acts, and checks each process's identity again right before signalling it.
 */
import type { Ended } from '../kill.js';
import { type OrphanFacts, orphanVerdict } from '../orphans.js';
import { type ProcDetail, programName } from '../proc.js';
import type { RunFate } from '../runs/reconcile.js';
import type { RunRow } from '../runs/registry.js';
import type { EventInput } from '../state.js';
import { redactText } from '../text.js';
import { formatDuration } from '../units.js';

export type FindingKind = 'gone' | 'pid_reused' | 'timeout' | 'hung' | 'orphan' | 'zombie' | 'shed';

export interface Finding {
  readonly kind: FindingKind;
  readonly pid: number | null;
  readonly run_id: string | null;
  readonly name: string | null;
  readonly reason: string;
  /** closed: recorded, no signal; ended: signalled; would_end / would_close under --dry-run; reported: nothing to do here */
  readonly action: 'closed' | 'ended' | 'would_end' | 'would_close' | 'reported' | 'failed';
  readonly ended?: Ended;
}

export interface ReapResult {
  readonly dry_run: boolean;
  readonly skipped?: string;
  readonly findings: readonly Finding[];
}

/** What a run's group had done when reap last looked: hung means none of it moved for the idle window. */
export interface Progress {
  readonly ticks: number;
  readonly log: number;
  readonly since: number;
}

/** A registered run to end, and why. */
export interface RunAction {
  readonly run: RunRow;
  readonly kind: 'timeout' | 'hung' | 'shed';
  readonly reason: string;
  /** counts against the worker (overdue, hung), or a deliberate stop (shed) */
  readonly timedOut: boolean;
}

/** An unregistered process to end, and why; `startTicks` is its identity as the table showed it. */
export interface ProcessAction {
  readonly pid: number;
  readonly startTicks: number;
  readonly reason: string;
}

/** The limits in force: flags over config; 0 turns a rule off. */
export interface ReapLimits {
  readonly timeoutMs: number;
  readonly idleMs: number;
}

/** A live run as reap sees it. */
export interface LiveRun {
  readonly run: RunRow;
  /** ours to signal (our user's, not agentctl's own process); other users' runs still count for --shed */
  readonly ours: boolean;
  /** its group's CPU ticks and log size now, and the record from the last look; only when --idle is on */
  readonly progress?: { readonly ticks: number; readonly log: number; readonly prev: Progress | undefined } | undefined;
}

/** The throttle reading, for --shed. */
export interface Pressure {
  readonly level: number;
  readonly maxAgents: number;
  readonly reasons: readonly string[];
  /** agents running outside any registered run */
  readonly unmanaged: number;
}

export const progressKey = (id: string) => `progress:${id}`;
const PROGRESS_PREFIX = 'progress:';

/**
 * Rules 1-2: runs whose process is gone, or whose PID now names another process, are closed,
 * never signalled. Only fates that say `lost`: an alive run, one that exited (reconcile records
 * how, a stop marker included) or one being recorded by its supervisor is not reap's.
 */
export function planLost(runs: ReadonlyArray<{ readonly run: RunRow; readonly fate: RunFate }>, dry: boolean): Finding[] {
  const out: Finding[] = [];
  for (const { run: r, fate } of runs) {
    if (fate.kind !== 'lost') continue;
    const reason = fate.reused
      ? `PID ${r.pid} now belongs to another process: closed, never signalled`
      : r.pid === null
        ? `${fate.why}: closed`
        : `process ${r.pid} is gone: closed, PID file and ports released`;
    out.push({ kind: fate.reused ? 'pid_reused' : 'gone', pid: r.pid, run_id: r.id, name: r.name, reason, action: dry ? 'would_close' : 'closed' });
  }
  return out;
}

/** The runtime limit of a run: the lower of its own timeout and --timeout / reap.max_runtime; null for none. */
export function runLimit(run: RunRow, timeoutMs: number): number | null {
  return run.timeout_ms !== null && timeoutMs > 0 ? Math.min(run.timeout_ms, timeoutMs) : (run.timeout_ms ?? (timeoutMs || null));
}

/**
 * Rules 3-4: runs past their limit, and runs whose group used no CPU and wrote no log for the
 * idle window. Also the progress record to keep for each run looked at for a hang.
 */
export function planOverdue(live: readonly LiveRun[], limits: ReapLimits, now: number): { end: RunAction[]; progress: Array<{ runId: string; value: Progress }> } {
  const end: RunAction[] = [];
  const progress: Array<{ runId: string; value: Progress }> = [];
  for (const { run: r, progress: p } of live) {
    const age = now - r.started_at;
    const limit = runLimit(r, limits.timeoutMs);
    if (limit !== null && limit > 0 && age > limit) {
      end.push({ run: r, kind: 'timeout', reason: `running ${formatDuration(age)}, past its limit of ${formatDuration(limit)}`, timedOut: true });
      continue;
    }
    if (limits.idleMs <= 0 || !p) continue;
    const progressed = !p.prev || p.prev.ticks !== p.ticks || p.prev.log !== p.log;
    const since = progressed ? now : p.prev.since;
    progress.push({ runId: r.id, value: { ticks: p.ticks, log: p.log, since } });
    if (!progressed && now - since >= limits.idleMs) {
      end.push({ run: r, kind: 'hung', reason: `no CPU progress and no log output for ${formatDuration(now - since)} (--idle ${formatDuration(limits.idleMs)})`, timedOut: true });
    }
  }
  return { end, progress };
}

/** Agents (by pattern) whose process group is no live run's. */
export function unmanagedAgents(agentPids: Iterable<number>, procs: readonly ProcDetail[], live: readonly RunRow[]): number {
  const byPid = new Map(procs.map((p) => [p.pid, p]));
  const livePgids = new Set(live.map((r) => r.pgid));
  return [...agentPids].filter((pid) => !livePgids.has(byPid.get(pid)?.pgid ?? -1)).length;
}

/**
 * Rule 7: under heavy pressure (throttle level 3) end runs until the agents fit the level's
 * limit: highest priority number first, then the newest. Runs already being ended do not count.
 */
export function planShed(live: readonly RunRow[], ending: readonly RunAction[], p: Pressure): RunAction[] {
  if (p.level !== 3) return [];
  const out: RunAction[] = [];
  let count = live.length + p.unmanaged - ending.length;
  const order = live.filter((r) => !ending.some((x) => x.run.id === r.id)).sort((a, b) => b.priority - a.priority || b.started_at - a.started_at);
  for (const r of order) {
    if (count <= p.maxAgents) break;
    out.push({ run: r, kind: 'shed', reason: `throttle level 3 (heavy: ${p.reasons.join(', ')}) allows ${p.maxAgents} agents, ${count} running: priority ${r.priority} goes first`, timedOut: false });
    count--;
  }
  return out;
}

/** Rules 3, 4 and 7 together: the runs to end (ours only) and the progress records to keep. */
export function planRunEnds(live: readonly LiveRun[], limits: ReapLimits, now: number, pressure: Pressure | undefined): { end: RunAction[]; progress: Array<{ runId: string; value: Progress }> } {
  const overdue = planOverdue(live, limits, now);
  const shed = pressure
    ? planShed(
        live.map((l) => l.run),
        overdue.end,
        pressure,
      )
    : [];
  const ours = new Set(live.filter((l) => l.ours).map((l) => l.run.id));
  return { end: [...overdue.end, ...shed].filter((x) => ours.has(x.run.id)), progress: overdue.progress };
}

/** The findings of ending runs: `would_end` under --dry-run, else how each end went (undefined: it had no identity to signal). */
export function runFinding(x: RunAction, ended: Ended | undefined | 'dry'): Finding {
  const base = { kind: x.kind, pid: x.run.pid, run_id: x.run.id, name: x.run.name, reason: x.reason };
  if (ended === 'dry') return { ...base, action: 'would_end' };
  return { ...base, action: ended && ended.survivors.length === 0 ? 'ended' : 'failed', ...(ended ? { ended } : {}) };
}

/**
 * Rule 5, first cut (cheap, from the table alone): agents whose parent is PID 1, outside every
 * live run's group, not agentctl, ours. Only these have their session, environment and cgroup read.
 */
export function orphanCandidates(procs: readonly ProcDetail[], agentPids: ReadonlySet<number>, live: readonly RunRow[], mine: (p: ProcDetail) => boolean): ProcDetail[] {
  const pgids = new Set(live.map((r) => r.pgid));
  return procs.filter((p) => agentPids.has(p.pid) && p.ppid === 1 && !pgids.has(p.pgid) && programName(p.argv) !== 'agentctl' && mine(p));
}

/**
 * Rule 5: orphaned agents, the ones core/orphans.ts can show lost an agent's or orchestrator's
 * parent. `runsEnded` says, for the run ids the state knows, whether each has ended (missing: unknown).
 */
export function planOrphans(
  candidates: ReadonlyArray<{ readonly proc: ProcDetail; readonly facts: OrphanFacts }>,
  runsEnded: ReadonlyMap<string, boolean>,
  ownCgroup: string | undefined,
): ProcessAction[] {
  const runState = (id: string) => {
    const ended = runsEnded.get(id);
    return ended === undefined ? 'unknown' : ended ? 'ended' : 'live';
  };
  const out: ProcessAction[] = [];
  for (const { proc: p, facts } of candidates) {
    const verdict = orphanVerdict(facts, { runState, ownCgroup });
    if (verdict.orphan) out.push({ pid: p.pid, startTicks: p.startTicks, reason: `agent ${programName(p.argv)} (PID ${p.pid}) ${verdict.why}` });
  }
  return out;
}

/** The finding of ending an orphan: `would_end` under --dry-run, else how the end went. */
export function orphanFinding(x: ProcessAction, ended: Ended | 'dry'): Finding {
  const base = { kind: 'orphan' as const, pid: x.pid, run_id: null, name: null, reason: x.reason };
  return ended === 'dry' ? { ...base, action: 'would_end' } : { ...base, action: ended.survivors.length ? 'failed' : 'ended', ended };
}

/** Rule 6: zombies of ours. Only their parent can reap them, so the finding names the parent (`parentCmdlines`: raw /proc cmdline text by PID). */
export function planZombies(procs: readonly ProcDetail[], mine: (p: ProcDetail) => boolean, parentCmdlines: ReadonlyMap<number, string | undefined>): Finding[] {
  const byPid = new Map(procs.map((p) => [p.pid, p]));
  const out: Finding[] = [];
  for (const p of procs) {
    if (p.state !== 'Z' || !mine(p)) continue;
    const parentCmd = (parentCmdlines.get(p.ppid) ?? '').split('\0').join(' ').trim();
    const parent = redactText(parentCmd).slice(0, 80) || byPid.get(p.ppid)?.comm || 'unknown';
    out.push({ kind: 'zombie', pid: p.pid, run_id: null, name: null, reason: `zombie ${p.comm} (PID ${p.pid}); its parent PID ${p.ppid} (${parent}) has not waited for it`, action: 'reported' });
  }
  return out;
}

/** The events a real reap records: one per finding but the zombies (reported, not acted on). */
export function reapEvents(findings: readonly Finding[]): EventInput[] {
  return findings
    .filter((f) => !(f.action === 'reported' && f.kind === 'zombie'))
    .map((f) => ({
      command: 'reap',
      kind: `reap.${f.kind}`,
      subject: f.name ?? (f.pid !== null ? `pid ${f.pid}` : null) ?? undefined,
      reason: `${f.action}: ${f.reason}`,
      data: { run_id: f.run_id, pid: f.pid, ...(f.ended ? { graceful: f.ended.graceful, forced: f.ended.forced, swept: f.ended.swept } : {}) },
    }));
}

/** Progress records (keys as the kv table lists them under `progress:`) whose run is no longer live. */
export function staleProgressKeys(keys: readonly string[], liveIds: ReadonlySet<string>): string[] {
  return keys.filter((k) => !liveIds.has(k.slice(PROGRESS_PREFIX.length)));
}

/** The run a file in the runs folder belongs to (`ID.exit`, `ID.timeout`, `ID.child`, `ID.exit.tmp`; other names stand for themselves). */
export const runFileId = (file: string) => file.replace(/\.(exit|timeout|child|exit\.tmp)$/, '');

/**
 * Exit files a supervisor wrote after its run was already closed by someone else (reap or stop
 * record the end themselves): only files of runs the db says ended. `ended(id)`: undefined for
 * a run the db does not know.
 */
export function leftoverRunFiles(files: readonly string[], ended: ReadonlyMap<string, boolean>): string[] {
  return files.filter((f) => ended.get(runFileId(f)) === true);
}
