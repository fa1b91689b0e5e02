/**
 * Process identity: (pid, start time, boot id). A PID alone names a process only until it
 * exits; the kernel then reuses the number. Everything agentctl stores about a process keeps
 * all three, and every signal is preceded by `isSameProcess`.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface ProcessIdentity {
  readonly pid: number;
  /** Linux: start time in clock ticks since boot (/proc/PID/stat field 22); macOS: epoch seconds from ps lstart. */
  readonly startTime: string;
  /** Linux: /proc/sys/kernel/random/boot_id; macOS: kern.boottime seconds. */
  readonly bootId: string;
}

/** Fields of /proc/PID/stat that agentctl uses. */
export interface ProcStat {
  readonly pid: number;
  readonly comm: string;
  readonly state: string;
  readonly ppid: number;
  readonly pgid: number;
  readonly sid: number;
  /** user + system CPU time in clock ticks */
  readonly cpuTicks: number;
  /** user + system CPU time of the children it waited for (cutime + cstime), in clock ticks */
  readonly childCpuTicks: number;
  readonly startTicks: string;
}

let cachedBootId: string | undefined;

/** This boot's id; constant until the host reboots. */
export function bootId(): string {
  if (cachedBootId !== undefined) return cachedBootId;
  if (process.platform === 'linux') {
    try {
      cachedBootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
      return cachedBootId;
    } catch {
      // fall through to the btime from /proc/stat
    }
    try {
      const m = /^btime (\d+)/m.exec(readFileSync('/proc/stat', 'utf8'));
      cachedBootId = m ? `btime:${m[1]}` : 'unknown';
    } catch {
      cachedBootId = 'unknown';
    }
    return cachedBootId;
  }
  if (process.platform === 'darwin') {
    try {
      const out = execFileSync('sysctl', ['-n', 'kern.boottime'], { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } });
      const m = /sec = (\d+)/.exec(out);
      cachedBootId = m ? `boottime:${m[1]}` : 'unknown';
    } catch {
      cachedBootId = 'unknown';
    }
    return cachedBootId;
  }
  cachedBootId = 'unknown';
  return cachedBootId;
}

/**
 * Parse /proc/PID/stat. The command name (field 2) may hold spaces and parentheses, so fields
 * are counted from the last ')'.
 */
export function parseProcStat(text: string): ProcStat | undefined {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return undefined;
  const pid = Number(text.slice(0, open).trim());
  const rest = text
    .slice(close + 2)
    .trim()
    .split(/\s+/);
  // rest[0] is field 3 (state); field N is rest[N - 3]
  const f = (n: number) => rest[n - 3];
  const startTicks = f(22);
  if (!Number.isInteger(pid) || startTicks === undefined) return undefined;
  return {
    pid,
    comm: text.slice(open + 1, close),
    state: f(3) ?? '?',
    ppid: Number(f(4)),
    pgid: Number(f(5)),
    sid: Number(f(6)),
    cpuTicks: Number(f(14)) + Number(f(15)),
    childCpuTicks: Number(f(16)) + Number(f(17)),
    startTicks,
  };
}

/** Read /proc/PID/stat, or undefined when the process is gone (or not Linux). */
export function readProcStat(pid: number): ProcStat | undefined {
  try {
    return parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

function darwinStartTime(pid: number): string | undefined {
  try {
    const out = execFileSync('ps', ['-o', 'lstart=', '-p', String(pid)], {
      encoding: 'utf8',
      env: { ...process.env, LC_ALL: 'C' },
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
    if (!out) return undefined;
    const t = Date.parse(out);
    return Number.isFinite(t) ? String(Math.round(t / 1000)) : out;
  } catch {
    return undefined;
  }
}

/**
 * The identity of a running process, or undefined when there is none. A zombie counts as
 * gone: it keeps its PID and start time until its parent waits for it, but nothing runs
 * there any more (and on hosts whose init never reaps, it stays that way).
 */
export function getIdentity(pid: number): ProcessIdentity | undefined {
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  let startTime: string | undefined;
  if (process.platform === 'linux') {
    const st = readProcStat(pid);
    startTime = st && st.state !== 'Z' && st.state !== 'X' ? st.startTicks : undefined;
  }
  if (process.platform === 'darwin') startTime = darwinStartTime(pid);
  if (startTime === undefined) return undefined;
  return { pid, startTime, bootId: bootId() };
}

/** Do two identities name the same process? Only when pid, start time and boot all agree. */
export function sameIdentity(a: ProcessIdentity, b: ProcessIdentity): boolean {
  return a.pid === b.pid && a.startTime === b.startTime && a.bootId === b.bootId;
}

let self: ProcessIdentity | undefined | null = null;
/** This process's own identity, read once. */
export const selfIdentity = (): ProcessIdentity | undefined => (self === null ? (self = getIdentity(process.pid)) : self);

/**
 * Is the process that `id` names still running, as the very same process? False when it has
 * exited, when its PID now belongs to another process, or after a reboot.
 */
export function isSameProcess(id: ProcessIdentity, lookup: (pid: number) => ProcessIdentity | undefined = getIdentity): boolean {
  const now = lookup(id.pid);
  return now !== undefined && sameIdentity(id, now);
}
