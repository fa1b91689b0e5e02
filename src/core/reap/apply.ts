/**
 * reap's I/O shell: gather the facts (run rows and fates, the process table, progress records,
 * the throttle reading), ask core/reap/plan.ts what to do, do it, record it. One reaper at a
 * time (a second returns `skipped`). Shared by `agentctl reap` and `doctor --fix-processes`.
 * Every signal goes through endRun / endTree, which check the identity right before it.
 */
import { readdirSync } from 'node:fs';
import { removeFile } from '../fsutil.js';
import { join } from 'node:path';
import type { LoadedConfig } from '../config/types.js';
import { endTree } from '../kill.js';
import { releaseLock, takeLock } from '../lock.js';
import { endRun } from '../runs/end.js';
import { userFilter } from '../users.js';
import type { Ctx } from '../ctx.js';
import { bootId, getIdentity, isSameProcess, readProcStat } from '../identity.js';
import { measure } from '../measure.js';
import { countAgents, listDetailed, type ProcDetail, readProcFile } from '../proc.js';
import { logFile, runDir } from '../runs/files.js';
import { reconcileAll, runFate } from '../runs/reconcile.js';
import { liveRuns, runAlive, type RunRow } from '../runs/registry.js';
import { statOwn } from '../safefs.js';
import type { State } from '../state.js';
import {
  type Finding,
  leftoverRunFiles,
  type LiveRun,
  orphanCandidates,
  orphanFinding,
  planLost,
  planOrphans,
  planRunEnds,
  planZombies,
  type Pressure,
  type Progress,
  progressKey,
  reapEvents,
  type ReapResult,
  runFileId,
  runFinding,
  staleProgressKeys,
  unmanagedAgents,
} from './plan.js';

/** What to reap and how; each limit left out comes from the config (`reap.*`). */
export interface ReapOptions {
  /** say what would be done, do nothing (no lock, no records). @default false */
  readonly dryRun?: boolean | undefined;
  readonly timeoutMs?: number | undefined;
  readonly idleMs?: number | undefined;
  readonly graceMs?: number | undefined;
  /** which processes are ours to end. @default our own user's (userFilter(false)) */
  readonly mine?: ((p: Pick<ProcDetail, 'uid' | 'pid'>) => boolean) | undefined;
  /** end orphaned agents too. @default false */
  readonly orphans?: boolean | undefined;
  /** under heavy pressure, end the lowest-priority runs. @default false */
  readonly shed?: boolean | undefined;
}

const LOCK = 'reap.lock';

/** CPU ticks of a run's whole process group. */
function groupTicks(procs: readonly ProcDetail[], pgid: number | null): number {
  return pgid === null ? 0 : procs.filter((p) => p.pgid === pgid).reduce((n, p) => n + p.cpuTicks, 0);
}

/** A detached run's log size, from the path its name and id give (never a stored path). */
function logSize(state: State, r: RunRow): number {
  return r.mode === 'detached' ? (statOwn(logFile(state, r))?.size ?? 0) : 0;
}

/** AGENTCTL_RUN_ID from a process's environment, when readable and present. */
function runIdOf(pid: number): string | undefined {
  const m = /(?:^|\0)AGENTCTL_RUN_ID=(r[0-9a-z]{6,20})(?:\0|$)/.exec(readProcFile(`/proc/${pid}/environ`) ?? '');
  return m?.[1];
}

/** Find, end and record what should not be running. */
export async function reap(ctx: Ctx, o: ReapOptions = {}): Promise<ReapResult> {
  const dry = Boolean(o.dryRun);
  const loaded = ctx.config();
  const cfg = loaded.config;
  const limits = { timeoutMs: o.timeoutMs ?? cfg.reap.maxRuntimeMs, idleMs: o.idleMs ?? cfg.reap.idleMs };
  const graceMs = o.graceMs ?? cfg.reap.graceMs;
  const mine = o.mine ?? userFilter(false);
  const state = ctx.state();
  if (!dry) {
    const holder = takeLock(state, LOCK);
    if (holder) return { dry_run: dry, skipped: `another reap (PID ${holder.pid}) is running`, findings: [] };
  }
  try {
    const now = ctx.now();
    // 1-2: the same reading reconcile acts on, so --dry-run says what the real run does
    const before = state.guard(() => liveRuns(state));
    const findings = planLost(
      before.map((run) => ({ run, fate: runFate(state, run, { now, lookup: getIdentity }) })),
      dry,
    );
    if (!dry) reconcileAll(state, loaded, now, 'reap');
    const live = state.guard(() => liveRuns(state)).filter((r) => r.pid !== null && runAlive(r, getIdentity));
    // command lines only when something matches on them (orphans, shed); stat is enough otherwise
    const procs = listDetailed('/proc', { argv: Boolean(o.orphans || o.shed) });
    // agents by pattern, for --shed and --orphans: matched once, on the table read above
    let agents: Set<number> | undefined;
    const agentPids = () => (agents ??= new Set(countAgents(procs, cfg.agents).agentPids));

    // 3, 4, 7: overdue, hung and (under heavy pressure) shed runs
    const byPid = new Map(procs.map((p) => [p.pid, p]));
    const facts: LiveRun[] = live.map((run) => ({ run, ours: mine({ pid: run.pid!, uid: byPid.get(run.pid!)?.uid }), progress: limits.idleMs > 0 ? progressOf(state, procs, run) : undefined }));
    const pressure = o.shed ? await readPressure(ctx, loaded, state, procs, live, agentPids()) : undefined;
    const plan = planRunEnds(facts, limits, now, pressure);
    if (!dry && plan.progress.length) state.write(() => plan.progress.forEach((p) => state.setKv(progressKey(p.runId), p.value, now)));
    for (const x of plan.end) findings.push(runFinding(x, dry ? 'dry' : await endRun(state, loaded, x.run, graceMs, { timedOut: x.timedOut, why: `reap: ${x.reason}`, command: 'reap' })));

    // 5: orphaned agents (core/orphans.ts decides; a service or a daemon is left alone)
    if (o.orphans) findings.push(...(await endOrphans(state, procs, agentPids(), live, mine, graceMs, dry)));
    // 6: zombies: only their parent can reap them, so report the parent
    const zombies = procs.filter((p) => p.state === 'Z' && mine(p));
    findings.push(...planZombies(procs, mine, new Map(zombies.map((p) => [p.ppid, readProcFile(`/proc/${p.ppid}/cmdline`)]))));

    if (!dry) record(state, findings);
    return { dry_run: dry, findings };
  } finally {
    if (!dry) releaseLock(state, LOCK);
  }
}

/** A run's progress now, and the record of the last look. */
function progressOf(state: State, procs: readonly ProcDetail[], run: RunRow): LiveRun['progress'] {
  const prev = state.guard(() => state.getKv<Progress>(progressKey(run.id))?.value);
  return { ticks: groupTicks(procs, run.pgid), log: logSize(state, run), prev };
}

/** The throttle reading, agents counted from the same process table (not a second walk of /proc). */
async function readPressure(ctx: Ctx, loaded: LoadedConfig, state: State, procs: ProcDetail[], live: readonly RunRow[], agentPids: ReadonlySet<number>): Promise<Pressure> {
  const report = await measure({ now: ctx.now, sleep: ctx.sleep, env: ctx.env, sampler: ctx.sampler, listProcesses: async () => procs }, loaded.config, state, 'reap');
  return { level: report.throttle_level, maxAgents: report.throttle_params.max_agents, reasons: report.reasons, unmanaged: unmanagedAgents(agentPids, procs, live) };
}

/** Whether each of these runs has ended, for the ids the db knows (an unknown id is left out). */
function runsEnded(state: State, ids: readonly string[]): Map<string, boolean> {
  const endedAt = state.db.prepare('SELECT ended_at FROM runs WHERE id = ?');
  const out = new Map<string, boolean>();
  for (const id of ids) {
    const row = state.guard(() => endedAt.get(id)) as { ended_at: number | null } | undefined;
    if (row) out.set(id, row.ended_at !== null);
  }
  return out;
}

/** Rule 5: read what orphanVerdict needs for the candidates only, then end the orphans whose identity still holds. */
async function endOrphans(
  state: State,
  procs: readonly ProcDetail[],
  agentPids: ReadonlySet<number>,
  live: readonly RunRow[],
  mine: (p: ProcDetail) => boolean,
  graceMs: number,
  dry: boolean,
): Promise<Finding[]> {
  const candidates = orphanCandidates(procs, agentPids, live, mine).map((p) => ({
    proc: p,
    facts: { pid: p.pid, ppid: p.ppid, sid: readProcStat(p.pid)?.sid, runId: runIdOf(p.pid), cgroup: readProcFile(`/proc/${p.pid}/cgroup`) },
  }));
  const ended = runsEnded(
    state,
    candidates.flatMap((c) => (c.facts.runId !== undefined ? [c.facts.runId] : [])),
  );
  const out: Finding[] = [];
  for (const x of planOrphans(candidates, ended, readProcFile(`/proc/${process.pid}/cgroup`))) {
    if (dry) {
      out.push(orphanFinding(x, 'dry'));
      continue;
    }
    const id = { pid: x.pid, startTime: String(x.startTicks), bootId: bootId() };
    if (!isSameProcess(id)) continue; // gone, or the PID was reused since the table was read
    out.push(orphanFinding(x, await endTree(id, { graceMs })));
  }
  return out;
}

/** The events of a real reap; progress records and exit files of runs that have ended go. */
function record(state: State, findings: readonly Finding[]): void {
  state.write(() => {
    for (const e of reapEvents(findings)) state.event(e);
    const liveIds = new Set(liveRuns(state).map((r) => r.id));
    const keys = (state.db.prepare("SELECT key FROM kv WHERE key LIKE 'progress:%'").all() as Array<{ key: string }>).map((r) => r.key);
    for (const key of staleProgressKeys(keys, liveIds)) state.db.prepare('DELETE FROM kv WHERE key = ?').run(key);
  });
  const dir = runDir(state);
  let files: string[];
  try {
    files = readdirSync(dir);
  } catch {
    return; // no runs folder yet
  }
  for (const f of leftoverRunFiles(files, runsEnded(state, files.map(runFileId)))) removeFile(join(dir, f));
}
