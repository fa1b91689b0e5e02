/**
 * What a run used: CPU time of its tree and the peak resident memory of its main process, and
 * the facts the limit classes (`oom`, `cpu_limit`) are decided on. Readings come from /proc
 * (Linux); elsewhere they are unknown (null), never guessed.
 *
 * - CPU time: the children's user + system time (cutime + cstime) of whoever reaped the run:
 *   a detached run's supervisor reads its own /proc/<pid>/stat after `wait` and leaves it in
 *   the exit file; a foreground agentctl compares its own before the start and after the exit.
 *   It covers the main process and every descendant that was waited for (by it or by those it
 *   waited for); a descendant still running or orphaned to init is not in it.
 * - Peak RSS: the kernel's high-water mark (VmHWM) of the main process, read while it lives
 *   (by every reconcile, and every second by a waiting foreground agentctl) and kept as the
 *   largest seen. It is sampled: what the process reached after the last reading is missed, a
 *   run that ended before any reading has none, and descendants are not counted.
 */
import { parseProcStat, type ProcessIdentity, readProcStat } from '../identity.js';
import type { ExitFacts } from '../policy.js';
import { readProcFile } from '../proc.js';
import { readOwn, statOwn } from '../safefs.js';
import type { State } from '../state.js';
import { logFile } from './files.js';
import type { RunRow } from './registry.js';

/** USER_HZ: 100 on every Linux agentctl supports. */
export const TICK_MS = 10;

/** What a detached run's supervisor left in runs/<id>.exit. */
export interface ExitRecord {
  /** the shell's `$?` of `wait`: the exit code, or 128 + the signal number */
  readonly rc: number;
  /** the child tree's CPU time; null when the file has no usable reading (an older supervisor) */
  readonly cpuMs: number | null;
}

/**
 * Parse an exit file: line 1 the status (0..255), line 2, when present, the supervisor's
 * /proc/<pid>/stat after it reaped the child (its cutime + cstime is the child tree's CPU).
 * Files of one line (supervisors before usage was recorded) still read. Anything unexpected:
 * a status that is not a number of 1 to 3 digits up to 255 makes the whole file unknown
 * (undefined: the run waits for its supervisor, or is lost); a second line that does not
 * parse, or names another process than `supPid`, makes only the CPU time unknown.
 */
export function parseExitFile(text: string, supPid: number | null): ExitRecord | undefined {
  const [first, second] = text.split('\n');
  const status = (first ?? '').trim();
  if (!/^[0-9]{1,3}$/.test(status) || Number(status) > 255) return undefined;
  const st = second ? parseProcStat(second) : undefined;
  const ok = st !== undefined && (supPid === null || st.pid === supPid) && Number.isSafeInteger(st.childCpuTicks) && st.childCpuTicks >= 0;
  return { rc: Number(status), cpuMs: ok ? st.childCpuTicks * TICK_MS : null };
}

/** VmHWM (the peak resident set) from the text of /proc/<pid>/status, in bytes. */
export function parseVmHwm(status: string): number | null {
  const m = /^VmHWM:\s*(\d{1,15}) kB$/m.exec(status);
  return m ? Number(m[1]) * 1024 : null;
}

/** VmRSS (the resident set now) from the text of /proc/<pid>/status, in bytes. */
export function parseVmRss(status: string): number | null {
  const m = /^VmRSS:\s*(\d{1,15}) kB$/m.exec(status);
  return m ? Number(m[1]) * 1024 : null;
}

/** A live process's peak resident set so far; null when it cannot be read. */
export function readPeakRss(pid: number): number | null {
  return readMemory(pid).peakRssBytes;
}

/**
 * A live process's resident set now and its peak so far, from one read of /proc/<pid>/status:
 * the kernel computes both from the same count there, so the peak is never below the RSS. Two
 * reads (statm, then status, or the other way round) can disagree by the pages it touched or
 * freed in between, and the kernel's per-CPU RSS counts make even an idle process's readings
 * differ by a few pages.
 */
export function readMemory(pid: number): { rssBytes: number | null; peakRssBytes: number | null } {
  const text = readProcFile(`/proc/${pid}/status`);
  return text === undefined ? { rssBytes: null, peakRssBytes: null } : { rssBytes: parseVmRss(text), peakRssBytes: parseVmHwm(text) };
}

/**
 * Keep `peak` as a run's peak RSS when it is larger than what its row holds (call inside a
 * write): the row only ever grows, so it keeps the largest reading anyone has shown.
 */
export function notePeakRss(state: State, runId: string, peak: number | null): void {
  if (peak !== null) state.db.prepare('UPDATE runs SET peak_rss_bytes = ? WHERE id = ? AND ended_at IS NULL AND (peak_rss_bytes IS NULL OR peak_rss_bytes < ?)').run(peak, runId, peak);
}

/** This process's children's CPU time so far (ticks), for a foreground run's before and after. */
export function ownChildTicks(): number | null {
  const st = readProcStat(process.pid);
  return st && Number.isSafeInteger(st.childCpuTicks) ? st.childCpuTicks : null;
}

/** The limits a run was started with, from its row; a row that does not parse has none. */
export function runLimits(run: Pick<RunRow, 'limits'>): { memoryLimited: boolean; cpuLimitSec: number | null } {
  let l: unknown;
  try {
    l = run.limits ? JSON.parse(run.limits) : undefined;
  } catch {
    l = undefined;
  }
  const o = typeof l === 'object' && l !== null ? (l as Record<string, unknown>) : {};
  const cpu = o.cpuTimeSec;
  return { memoryLimited: typeof o.memoryMax === 'number' && o.memoryMax > 0, cpuLimitSec: typeof cpu === 'number' && cpu > 0 ? cpu : null };
}

/** What programs print when an allocation fails: Python, C's strerror(ENOMEM), C++, V8 and Node, Rust, bison/gcc. */
export const OOM_MESSAGE = /MemoryError|Cannot allocate memory|std::bad_alloc|Fatal process OOM|out of memory|memory allocation of \d+ bytes failed|memory exhausted/i;

/** How much of a log's end is searched for OOM_MESSAGE. */
const OOM_TAIL_BYTES = 4096;

/**
 * Does a detached run's log end saying an allocation failed? The worker writes its log, so
 * this is its own word: it decides only between `oom` and the class it would otherwise get,
 * and only for a run started under --memory-max that exited non-zero.
 */
export function logSaysOom(state: State, run: RunRow): boolean {
  if (run.mode !== 'detached') return false;
  const tail = (path: string, bytes: number) => {
    const st = statOwn(path);
    return st ? (readOwn(path, bytes, Math.max(0, st.size - bytes))?.toString('latin1') ?? '') : '';
  };
  const path = logFile(state, run);
  const last = tail(path, OOM_TAIL_BYTES);
  // the supervisor caps the log once more at the end: its last words may be in .prev now
  const before = last.length < OOM_TAIL_BYTES ? tail(`${path}.prev`, OOM_TAIL_BYTES - last.length) : '';
  return OOM_MESSAGE.test(before + last);
}

/**
 * The facts about limits classifyExit needs for a run that ended with `f`; its log is read only
 * when that can change the answer (under --memory-max, a non-zero exit).
 */
export function limitFacts(
  state: State,
  run: RunRow,
  f: { exitCode: number | null; cpuMs?: number | null | undefined; stoppedByUs?: boolean | undefined; timedOut?: boolean | undefined },
): Pick<ExitFacts, 'memoryLimited' | 'cpuLimitSec' | 'cpuMs' | 'oomMessage'> {
  const { memoryLimited, cpuLimitSec } = runLimits(run);
  const ask = memoryLimited && !f.stoppedByUs && !f.timedOut && f.exitCode !== null && f.exitCode !== 0;
  return { memoryLimited, cpuLimitSec, cpuMs: f.cpuMs ?? null, oomMessage: ask && logSaysOom(state, run) };
}

/**
 * What a live process has used so far, read just before agentctl ends it: its own CPU time and
 * that of the children it waited for, and its peak RSS. Nothing when the PID names another process.
 */
export function lastUsage(id: ProcessIdentity): { cpuMs?: number; peakRssBytes?: number } {
  const st = readProcStat(id.pid);
  if (!st || st.startTicks !== id.startTime) return {};
  const ticks = st.cpuTicks + st.childCpuTicks;
  const peak = readPeakRss(id.pid);
  return { ...(Number.isSafeInteger(ticks) ? { cpuMs: ticks * TICK_MS } : {}), ...(peak !== null ? { peakRssBytes: peak } : {}) };
}
