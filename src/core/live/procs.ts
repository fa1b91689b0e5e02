/**
 * The live view's one walk of the process table per frame, and the pure arithmetic on it: a
 * run's process tree, what the tree used (CPU time and resident memory), and CPU % between two
 * readings. Linux only (/proc); elsewhere the walk is empty and the rows show `-`.
 */
import { procPids, readProcFile } from '../proc.js';

/** One process as the walk saw it: /proc/PID/stat and /proc/PID/cmdline. */
export interface LiveProc {
  readonly pid: number;
  readonly ppid: number;
  readonly state: string;
  /** start time in clock ticks since boot (/proc/PID/stat field 22), as the identity keeps it */
  readonly startTicks: string;
  /** utime + stime + cutime + cstime: its own CPU time and that of the children it waited for */
  readonly cpuTicks: number;
  /** resident set size in pages (field 24) */
  readonly rssPages: number;
  /** empty for zombies */
  readonly argv: readonly string[];
}

/** USER_HZ is 100 on every Linux agentctl supports (as ps.ts assumes). */
export const TICK_MS = 10;
export const PAGE_BYTES = 4096;

/** Parse /proc/PID/stat; the command name may hold spaces and parentheses, so fields count from the last ')'. */
export function parseStat(pid: number, text: string): Omit<LiveProc, 'argv'> | undefined {
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  // f[0] is field 3 (state): field N is f[N - 3]
  const f = text.slice(close + 2).split(' ');
  const num = (n: number) => Number(f[n - 3]);
  const cpu = num(14) + num(15) + num(16) + num(17);
  const startTicks = f[22 - 3];
  if (startTicks === undefined || !Number.isFinite(cpu)) return undefined;
  return { pid, ppid: num(4), state: f[0] ?? '?', startTicks, cpuTicks: cpu, rssPages: Number.isFinite(num(24)) ? num(24) : 0 };
}

/** Every process but kernel threads, with its command line (Linux; empty elsewhere). */
export function walkProcs(procRoot = '/proc'): LiveProc[] {
  const out: LiveProc[] = [];
  for (const name of procPids(procRoot)) {
    const pid = Number(name);
    const text = readProcFile(`${procRoot}/${name}/stat`);
    const st = text === undefined ? undefined : parseStat(pid, text);
    if (!st || st.ppid === 2 || pid === 2) continue; // gone meanwhile, or a kernel thread
    const raw = readProcFile(`${procRoot}/${name}/cmdline`) ?? '';
    const argv = raw === '' ? [] : (raw.endsWith('\0') ? raw.slice(0, -1) : raw).split('\0');
    out.push({ ...st, argv });
  }
  return out;
}

/** The process tree under `root` (itself included) in a walk: children by parent PID. */
export function treeOf(procs: readonly LiveProc[], root: number): LiveProc[] {
  const kids = new Map<number, LiveProc[]>();
  for (const p of procs) (kids.get(p.ppid) ?? kids.set(p.ppid, []).get(p.ppid)!).push(p);
  const self = procs.find((p) => p.pid === root);
  if (!self) return [];
  const out: LiveProc[] = [];
  const seen = new Set<number>();
  const stack = [self];
  while (stack.length) {
    const p = stack.pop()!;
    if (seen.has(p.pid)) continue; // a table read while it changed can hold a loop
    seen.add(p.pid);
    out.push(p);
    stack.push(...(kids.get(p.pid) ?? []));
  }
  return out;
}

/** What a tree used: CPU time in ticks (children it already waited for included), resident bytes, processes. */
export interface TreeUsage {
  readonly cpuTicks: number;
  readonly rssBytes: number;
  readonly processes: number;
}

export function treeUsage(tree: readonly LiveProc[]): TreeUsage {
  let cpuTicks = 0;
  let rss = 0;
  for (const p of tree) {
    cpuTicks += p.cpuTicks;
    rss += p.rssPages;
  }
  return { cpuTicks, rssBytes: rss * PAGE_BYTES, processes: tree.length };
}

/**
 * CPU % of one core (top's convention: two busy cores are 200%) between two readings of a
 * tree's CPU time, or null when there is no earlier reading, no time passed, or the total went
 * down (a process left the tree without its parent waiting for it: the difference means nothing).
 */
export function cpuPercent(prev: { cpuTicks: number; at: number } | undefined, now: { cpuTicks: number; at: number }): number | null {
  if (!prev) return null;
  const wallMs = now.at - prev.at;
  const usedMs = (now.cpuTicks - prev.cpuTicks) * TICK_MS;
  if (wallMs <= 0 || usedMs < 0) return null;
  return Math.round((usedMs / wallMs) * 1000) / 10;
}
