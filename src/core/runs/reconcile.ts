/**
 * Reconcile: close runs whose process is gone (reading the exit a detached supervisor left
 * behind), adopt a child whose spawner died after starting it, and never trust a PID whose
 * start time no longer matches. Call it inside a write transaction, or use reconcileAll.
 */
import type { LoadedConfig } from '../config/types.js';
import { type ProcessIdentity, readProcStat } from '../identity.js';
import { findByRunId } from '../kill.js';
import { listProcessesLinux, ownedByUs, readProcFile, supervisorRunId } from '../proc.js';
import { readOwn, statOwn } from '../safefs.js';
import { afterHealthyUptime, modeAt } from '../policy.js';
import type { State } from '../state.js';
import { decodeShellStatus, finishRun } from './end.js';
import { capLog, childFile, exitFile, logFile, timeoutMarker, writePidFile } from './files.js';
import { getHealth, setHealth } from './health.js';
import { abandonedRestarts } from './restarts.js';
import { notePeakRss, parseExitFile, readPeakRss } from './usage.js';
import { liveRuns, type RegistryDeps, registryFor, runAlive, type RunRow, STARTING_TIMEOUT_MS, supervisorAlive } from './registry.js';

export type RunFate =
  | { readonly kind: 'alive' }
  /** not ours to close yet: its supervisor or spawner is about to record it */
  | { readonly kind: 'wait'; readonly why: string }
  | { readonly kind: 'exited'; readonly rc: number; readonly cpuMs: number | null; readonly endedAt: number; readonly timedOut: boolean }
  /** its spawner died after starting it: take it into the registry */
  | { readonly kind: 'adopt'; readonly child: ProcessIdentity; readonly sup: ProcessIdentity | undefined }
  | { readonly kind: 'lost'; readonly why: string; readonly reused: boolean };

/** The exit status (and CPU time) a detached run's supervisor left, when it left one (a plain file of ours, never a link). */
function readExit(state: State, run: RunRow): { rc: number; cpuMs: number | null; endedAt: number } | undefined {
  if (run.mode !== 'detached') return undefined;
  const path = exitFile(state, run.id);
  const st = statOwn(path);
  if (!st) return undefined;
  const rec = parseExitFile(readOwn(path, 1024)?.toString('latin1') ?? '', run.sup_pid);
  return rec ? { ...rec, endedAt: Math.round(st.mtimeMs) } : undefined;
}

/** Does this live process carry the run's id in its environment (Linux; readable ones only)? */
function carriesRunId(pid: number, runId: string): boolean {
  return `\0${readProcFile(`/proc/${pid}/environ`) ?? ''}`.includes(`\0AGENTCTL_RUN_ID=${runId}\0`);
}

/**
 * The child of a run whose spawner died while starting it: the PID its supervisor wrote to
 * runs/<id>.child, or else a process found carrying the run id that leads its own group. It
 * counts only when its environment carries the run id; its supervisor only when the command
 * line says `agentctl-supervise -s <id>`. Either must be the invoking user's.
 */
function findChild(state: State, run: RunRow, lookup: RegistryDeps['lookup'], scan: boolean): { child: ProcessIdentity; sup: ProcessIdentity | undefined } | undefined {
  const named = Number.parseInt(readOwn(childFile(state, run.id), 32)?.toString('latin1').trim() ?? '', 10);
  const candidates = Number.isInteger(named) && named > 1 ? [named] : scan ? findByRunId(run.id) : [];
  for (const pid of candidates) {
    const st = readProcStat(pid);
    const child = lookup(pid);
    // another user can put our run id in an environment of theirs: only our own processes count
    if (!st || !child || st.pgid !== pid || !ownedByUs(pid) || !carriesRunId(pid, run.id)) continue;
    const supArgv = (readProcFile(`/proc/${st.ppid}/cmdline`) ?? '').replace(/\0$/, '').split('\0');
    const sup = supervisorRunId(supArgv) === run.id ? lookup(st.ppid) : undefined;
    return { child, sup };
  }
  return undefined;
}

/** A live supervisor of this user's whose command line names the run, or undefined. */
function supervisorOf(runId: string): number | undefined {
  return listProcessesLinux().find((p) => supervisorRunId(p.argv) === runId && ownedByUs(p.pid))?.pid;
}

/**
 * The one reading of a live run that reconcile acts on and `--dry-run`s report, so a dry run
 * says what the real command will do.
 */
export function runFate(state: State, run: RunRow, deps: Pick<RegistryDeps, 'now' | 'lookup'>): RunFate {
  const exit = readExit(state, run);
  if (exit) return { kind: 'exited', ...exit, timedOut: statOwn(timeoutMarker(state, run.id)) !== undefined };
  if (run.state === 'starting' && run.pid === null) {
    const young = deps.now - run.started_at <= STARTING_TIMEOUT_MS;
    const starter = supervisorAlive(run, deps.lookup);
    const found = findChild(state, run, deps.lookup, !(young && starter));
    if (found) return { kind: 'adopt', ...found };
    if (young && starter) return { kind: 'wait', why: 'starting' };
    // the spawner died between starting the supervisor and recording it (a forker's line is
    // read a few milliseconds after its fork): the supervisor is about to start the child
    if (young && run.mode === 'detached' && supervisorOf(run.id) !== undefined) return { kind: 'wait', why: 'starting (its supervisor runs)' };
    return { kind: 'lost', why: 'the spawner died before the process started', reused: false };
  }
  if (runAlive(run, deps.lookup)) return { kind: 'alive' };
  // The process is gone or its PID was reused. A detached supervisor still alive is about to
  // write the exit status: leave the run for the next reconcile. The same holds for a
  // foreground run: its agentctl is waiting on the child and records it.
  if (supervisorAlive(run, deps.lookup)) return { kind: 'wait', why: 'its supervisor is recording the exit' };
  // the supervisor may have written the exit and ended between the first look and now
  const late = readExit(state, run);
  if (late) return { kind: 'exited', ...late, timedOut: statOwn(timeoutMarker(state, run.id)) !== undefined };
  const nowId = run.pid !== null ? deps.lookup(run.pid) : undefined;
  const reused = nowId !== undefined && nowId.startTime !== run.start_time;
  return { kind: 'lost', why: reused ? `PID ${run.pid} now belongs to another process (never signalled)` : 'process and supervisor are gone', reused };
}

/** Take a run whose spawner died after starting it into the registry, as the spawner would have. */
function adopt(state: State, run: RunRow, child: ProcessIdentity, sup: ProcessIdentity | undefined, deps: RegistryDeps): void {
  state.db
    .prepare("UPDATE runs SET state = 'running', pid = ?, start_time = ?, boot_id = ?, pgid = ?, sup_pid = ?, sup_start_time = ?, log_path = ? WHERE id = ? AND ended_at IS NULL")
    .run(child.pid, child.startTime, child.bootId, child.pid, sup?.pid ?? null, sup?.startTime ?? null, run.mode === 'detached' ? logFile(state, run) : null, run.id);
  writePidFile(state, run, child);
  state.event(
    {
      command: deps.command,
      kind: 'run.adopted',
      subject: run.name,
      reason: `${run.id}: its spawner died after starting PID ${child.pid}; recorded from ${sup ? 'its supervisor' : 'the run id in its environment'}`,
      data: { run_id: run.id, pid: child.pid },
    },
    deps.now,
  );
}

/** Keep the largest peak RSS seen of a live run's process (one read of /proc/<pid>/status; written only when it grew). */
function notePeakOf(state: State, run: RunRow): void {
  const peak = run.pid !== null ? readPeakRss(run.pid) : null;
  if (peak !== null && peak > (run.peak_rss_bytes ?? -1)) notePeakRss(state, run.id, peak);
}

/**
 * Close every registered run whose process has ended or whose PID now names another process,
 * and adopt the children of spawners that died while starting them. Also forgives earlier
 * failures of runs that have stayed up long enough. Returns the runs it closed.
 */
export function reconcile(state: State, deps: RegistryDeps): Array<{ run: RunRow; why: string }> {
  const closed: Array<{ run: RunRow; why: string }> = [];
  for (const run of liveRuns(state)) {
    const fate = runFate(state, run, deps);
    switch (fate.kind) {
      case 'wait':
        break;
      case 'adopt':
        adopt(state, run, fate.child, fate.sup, deps);
        break;
      case 'exited': {
        const st = decodeShellStatus(fate.rc);
        const why = fate.timedOut ? 'ran past its timeout' : 'its supervisor recorded the exit';
        finishRun(state, run, { ...st, endedAt: fate.endedAt, timedOut: fate.timedOut, cpuMs: fate.cpuMs, why }, deps);
        closed.push({ run, why: 'exited' });
        break;
      }
      case 'lost':
        finishRun(state, run, { exitCode: null, signal: null, endedAt: deps.now, lost: true, why: fate.why }, deps);
        closed.push({ run, why: run.pid === null ? 'never started' : fate.reused ? 'pid reused' : 'gone' });
        break;
      case 'alive': {
        if (run.mode === 'detached' && deps.logMaxBytes) capLog(logFile(state, run), deps.logMaxBytes, 2 * deps.logMaxBytes);
        notePeakOf(state, run);
        const h = getHealth(state, run.name);
        const up = deps.now - run.started_at;
        const mode = modeAt(h, deps.now);
        if ((mode === 'half_open' && up >= deps.minUptimeMs) || (h.consecutiveFailures > 0 && mode === 'closed' && up >= deps.policy.resetAfterMs)) {
          setHealth(state, run.name, afterHealthyUptime(h), deps.now);
          state.event({ command: deps.command, kind: 'breaker.closed', subject: run.name, reason: `${run.id} has been up ${Math.round(up / 1000)}s: earlier failures forgiven` }, deps.now);
        }
        break;
      }
    }
  }
  abandonedRestarts(state, deps);
  return closed;
}

/** Record every run that ended since anyone last looked (one IMMEDIATE transaction). */
export function reconcileAll(state: State, config: LoadedConfig, now: number, command: string): Array<{ run: RunRow; why: string }> {
  return state.write(() => reconcile(state, registryFor(config, now, command)));
}
