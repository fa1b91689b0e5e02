/**
 * agentctl reap: find and end what should not be running. Designed for cron
 * (`*\/5 * * * * agentctl reap --quiet`): silent when there is nothing to do, one reaper at a
 * time (a second exits 0), every finding with its reason.
 */
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Ctx, Outcome, Ui } from '../core/ctx.js';
import { type Ended, endProcess, endRun, releaseLock, takeLock, userFilter } from '../core/control.js';
import { EXIT } from '../core/errors.js';
import { bootId, getIdentity, isSameProcess, readProcStat } from '../core/identity.js';
import { orphanVerdict } from '../core/orphans.js';
import { statOwn } from '../core/safefs.js';
import type { State } from '../core/state.js';
import { measure } from '../core/measure.js';
import { countAgents, listDetailed, type ProcDetail, programName, readProcFile } from '../core/proc.js';
import { reconcileAll, runFate } from '../core/runs/reconcile.js';
import { liveRuns, runAlive, type RunRow } from '../core/runs/registry.js';
import { logFile, runDir } from '../core/runs/files.js';
import { printable, redactText } from '../core/text.js';
import { formatDuration, parseDuration } from '../core/units.js';
import type { CommandDecl } from '../core/declaration.js';

export const declaration: CommandDecl = {
  name: 'reap',
  description: 'find and end what should not run: dead or reused registered runs, overdue and hung runs, orphans, zombies (reported)',
  options: [
    { flags: '--dry-run', help: 'report findings, change nothing' },
    { flags: '--timeout <duration>', help: "end runs older than this (each run's own --timeout always counts)", configKey: 'reap.max_runtime' },
    { flags: '--idle <duration>', help: 'end runs with no CPU progress and no log output for this long', configKey: 'reap.idle' },
    { flags: '--grace <duration>', help: 'TERM, then this long, then KILL', configKey: 'reap.grace' },
    { flags: '--orphans', help: 'also end agent processes whose parent died and that nothing registered' },
    { flags: '--shed', help: "at throttle level 3 (heavy), stop lowest-priority runs until the level's agent count is met" },
    { flags: '--all-users', help: "root only: also act on other users' processes" },
  ],
  examples: ['agentctl reap --dry-run', '*/5 * * * * agentctl reap --quiet --idle 5m', 'agentctl reap --orphans --json', 'agentctl reap --shed'],
};

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

interface Progress {
  ticks: number;
  log: number;
  since: number;
}

const LOCK = 'reap.lock';
const progressKey = (id: string) => `progress:${id}`;

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

export async function run(opts: Record<string, unknown>, _args: readonly string[], ctx: Ctx): Promise<Outcome<ReapResult>> {
  const dry = Boolean(opts.dryRun);
  const loaded = ctx.config();
  const cfg = loaded.config;
  const timeoutMs = opts.timeout !== undefined ? parseDuration(String(opts.timeout), '--timeout') : cfg.reap.maxRuntimeMs;
  const idleMs = opts.idle !== undefined ? parseDuration(String(opts.idle), '--idle') : cfg.reap.idleMs;
  const graceMs = opts.grace !== undefined ? parseDuration(String(opts.grace), '--grace') : cfg.reap.graceMs;
  const mine = userFilter(Boolean(opts.allUsers));
  const state = ctx.state();
  if (!dry) {
    const holder = takeLock(state, LOCK);
    if (holder) return { data: { dry_run: dry, skipped: `another reap (PID ${holder.pid}) is running`, findings: [] } };
  }
  try {
    const findings: Finding[] = [];
    const now = ctx.now();
    const before = state.guard(() => liveRuns(state));

    // 1-2: runs whose process is gone, or whose PID now names another process: close, never
    // signal. The same reading reconcile acts on, so --dry-run says what the real run does.
    for (const r of before) {
      const fate = runFate(state, r, { now, lookup: getIdentity });
      if (fate.kind !== 'lost') continue; // alive, exited (reconcile records how), or being recorded
      findings.push({
        kind: fate.reused ? 'pid_reused' : 'gone',
        pid: r.pid,
        run_id: r.id,
        name: r.name,
        reason: fate.reused ? `PID ${r.pid} now belongs to another process: closed, never signalled` : r.pid === null ? `${fate.why}: closed` : `process ${r.pid} is gone: closed, PID file and ports released`,
        action: dry ? 'would_close' : 'closed',
      });
    }
    if (!dry) reconcileAll(state, loaded, now, 'reap');
    const live = state.guard(() => liveRuns(state)).filter((r) => r.pid !== null && runAlive(r, getIdentity));
    // command lines only when something matches on them (orphans, shed); stat is enough otherwise
    const procs = listDetailed('/proc', { argv: Boolean(opts.orphans || opts.shed) });
    const byPid = new Map(procs.map((p) => [p.pid, p]));
    // agents by pattern, for --shed and --orphans: matched once, on the table read above
    let agents: Set<number> | undefined;
    const agentPids = () => (agents ??= new Set(countAgents(procs, cfg.agents).agentPids));

    // 3-4: overdue and hung runs
    const toEnd: Array<{ run: RunRow; kind: FindingKind; reason: string; timedOut: boolean }> = [];
    for (const r of live) {
      const age = now - r.started_at;
      const limit = r.timeout_ms !== null && timeoutMs > 0 ? Math.min(r.timeout_ms, timeoutMs) : (r.timeout_ms ?? (timeoutMs || null));
      if (limit !== null && limit > 0 && age > limit) {
        toEnd.push({ run: r, kind: 'timeout', reason: `running ${formatDuration(age)}, past its limit of ${formatDuration(limit)}`, timedOut: true });
        continue;
      }
      if (idleMs > 0) {
        const ticks = groupTicks(procs, r.pgid);
        const log = logSize(state, r);
        const prev = state.guard(() => state.getKv<Progress>(progressKey(r.id))?.value);
        const progressed = !prev || prev.ticks !== ticks || prev.log !== log;
        const since = progressed ? now : prev!.since;
        if (!dry) state.write(() => state.setKv(progressKey(r.id), { ticks, log, since }, now));
        if (!progressed && now - since >= idleMs) {
          toEnd.push({ run: r, kind: 'hung', reason: `no CPU progress and no log output for ${formatDuration(now - since)} (--idle ${formatDuration(idleMs)})`, timedOut: true });
        }
      }
    }

    // 7: shed load under heavy pressure, lowest priority (then newest) first
    if (opts.shed) {
      // the reading counts agents too: from the same process table, not a second walk of /proc
      const report = await measure({ now: ctx.now, sleep: ctx.sleep, env: ctx.env, sampler: ctx.sampler, listProcesses: async () => procs }, cfg, state, 'reap');
      if (report.throttle_level === 3) {
        const livePgids = new Set(live.map((r) => r.pgid));
        const unmanaged = [...agentPids()].filter((pid) => !livePgids.has(byPid.get(pid)?.pgid ?? -1)).length;
        // runs this call already ends for a timeout or a hang no longer count
        let count = live.length + unmanaged - toEnd.length;
        const target = report.throttle_params.max_agents;
        const order = [...live].filter((r) => !toEnd.some((x) => x.run.id === r.id)).sort((a, b) => b.priority - a.priority || b.started_at - a.started_at);
        for (const r of order) {
          if (count <= target) break;
          toEnd.push({ run: r, kind: 'shed', reason: `throttle level 3 (heavy: ${report.reasons.join(', ')}) allows ${target} agents, ${count} running: priority ${r.priority} goes first`, timedOut: false });
          count--;
        }
      }
    }

    for (const x of toEnd) {
      if (!mine({ pid: x.run.pid!, uid: byPid.get(x.run.pid!)?.uid })) continue;
      if (dry) {
        findings.push({ kind: x.kind, pid: x.run.pid, run_id: x.run.id, name: x.run.name, reason: x.reason, action: 'would_end' });
        continue;
      }
      const ended = await endRun(state, loaded, x.run, graceMs, { timedOut: x.timedOut, why: `reap: ${x.reason}`, command: 'reap' });
      findings.push({ kind: x.kind, pid: x.run.pid, run_id: x.run.id, name: x.run.name, reason: x.reason, action: ended && ended.survivors.length === 0 ? 'ended' : 'failed', ...(ended ? { ended } : {}) });
    }

    // 5: orphaned agents: ones that lost a parent we can show was an agent's or orchestrator's
    // (core/orphans.ts decides; a service or a daemon with PID 1 for a parent is left alone)
    if (opts.orphans) {
      const pgids = new Set(live.map((r) => r.pgid));
      const ended = state.db.prepare('SELECT ended_at FROM runs WHERE id = ?');
      const runState = (id: string) => {
        const row = state.guard(() => ended.get(id)) as { ended_at: number | null } | undefined;
        return row === undefined ? 'unknown' : row.ended_at === null ? 'live' : 'ended';
      };
      const ownCgroup = readProcFile(`/proc/${process.pid}/cgroup`);
      for (const p of procs) {
        if (!agentPids().has(p.pid) || p.ppid !== 1 || pgids.has(p.pgid) || programName(p.argv) === 'agentctl' || !mine(p)) continue;
        const verdict = orphanVerdict({ pid: p.pid, ppid: p.ppid, sid: readProcStat(p.pid)?.sid, runId: runIdOf(p.pid), cgroup: readProcFile(`/proc/${p.pid}/cgroup`) }, { runState, ownCgroup });
        if (!verdict.orphan) continue;
        const reason = `agent ${programName(p.argv)} (PID ${p.pid}) ${verdict.why}`;
        if (dry) {
          findings.push({ kind: 'orphan', pid: p.pid, run_id: null, name: null, reason, action: 'would_end' });
          continue;
        }
        const id = { pid: p.pid, startTime: String(p.startTicks), bootId: bootId() };
        if (!isSameProcess(id)) continue;
        const ended = await endProcess(id, graceMs);
        findings.push({ kind: 'orphan', pid: p.pid, run_id: null, name: null, reason, action: ended.survivors.length ? 'failed' : 'ended', ended });
      }
    }

    // 6: zombies: only their parent can reap them, so report the parent
    for (const p of procs) {
      if (p.state !== 'Z' || !mine(p)) continue;
      const parent = byPid.get(p.ppid);
      const parentCmd = (readProcFile(`/proc/${p.ppid}/cmdline`) ?? '').split('\0').join(' ').trim();
      findings.push({ kind: 'zombie', pid: p.pid, run_id: null, name: null, reason: `zombie ${p.comm} (PID ${p.pid}); its parent PID ${p.ppid} (${redactText(parentCmd).slice(0, 80) || parent?.comm || 'unknown'}) has not waited for it`, action: 'reported' });
    }

    if (!dry) {
      state.write(() => {
        for (const f of findings) {
          if (f.action === 'reported' && f.kind === 'zombie') continue;
          state.event({ command: 'reap', kind: `reap.${f.kind}`, subject: f.name ?? (f.pid !== null ? `pid ${f.pid}` : null) ?? undefined, reason: `${f.action}: ${f.reason}`, data: { run_id: f.run_id, pid: f.pid, ...(f.ended ? { graceful: f.ended.graceful, forced: f.ended.forced, swept: f.ended.swept } : {}) } });
        }
        // progress records and exit files of runs that have ended
        const liveIds = new Set(liveRuns(state).map((r) => r.id));
        for (const row of state.db.prepare("SELECT key FROM kv WHERE key LIKE 'progress:%'").all() as Array<{ key: string }>) {
          if (!liveIds.has(row.key.slice(9))) state.db.prepare('DELETE FROM kv WHERE key = ?').run(row.key);
        }
      });
      cleanExitFiles(ctx);
    }
    const failed = findings.some((f) => f.action === 'failed');
    return { data: { dry_run: dry, findings }, exitCode: failed ? EXIT.failed : EXIT.ok, ...(failed ? { message: 'some processes could not be ended; see the findings' } : {}) };
  } finally {
    if (!dry) releaseLock(state, LOCK);
  }
}

/**
 * Exit files a supervisor wrote after its run was already closed by someone else (reap or
 * stop record the end themselves). Only files of runs the db says ended are removed.
 */
function cleanExitFiles(ctx: Ctx): void {
  const state = ctx.state();
  const dir = runDir(state);
  let files: string[];
  try {
    files = readdirSync(dir);
  } catch {
    return; // no runs folder yet
  }
  const ended = state.db.prepare('SELECT ended_at FROM runs WHERE id = ?');
  for (const f of files) {
    const id = f.replace(/\.(exit|timeout|child|exit\.tmp)$/, '');
    const row = ended.get(id) as { ended_at: number | null } | undefined;
    if (row && row.ended_at !== null) rmSync(join(dir, f), { force: true });
  }
}

export function render(r: ReapResult, ui: Ui): string {
  if (r.skipped) return `reap: ${r.skipped}; nothing done`;
  return r.findings
    .map((f) => {
      const what = f.action === 'failed' ? ui.c.red('FAILED') : f.action.replace('_', ' ');
      const who = f.run_id ? `${printable(f.name ?? '')} (${f.run_id}, PID ${f.pid})` : `PID ${f.pid}`;
      const how = f.ended ? ` [${f.ended.graceful ? 'ended by TERM' : 'KILLed after the grace'}${f.ended.swept.length ? `, ${f.ended.swept.length} escaped swept` : ''}]` : '';
      return `${f.kind.padEnd(10)} ${what} ${who}: ${printable(f.reason)}${how}`;
    })
    .join('\n');
}
