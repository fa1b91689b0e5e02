/**
 * Resource readings: memory, CPU counters, load, swap activity, PSI. Linux reads /proc;
 * other platforms use systeminformation (loaded only there). Parsing is pure and tested
 * with fixture text; the readers are thin.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { importEsm } from './esm.js';

/** Cumulative CPU counters (jiffies on Linux); CPU use needs two of them. */
export interface CpuCounters {
  readonly total: number;
  readonly idle: number;
}

export interface MemoryReading {
  readonly totalBytes: number;
  readonly availableBytes: number;
  readonly usedPct: number;
  readonly swapTotalBytes: number;
  readonly swapFreeBytes: number;
}

/** Pressure stall information, percentages averaged over 10 s (Linux 4.20+). */
export interface PsiReading {
  readonly cpu_some_avg10: number | null;
  readonly memory_some_avg10: number | null;
  readonly memory_full_avg10: number | null;
  readonly io_some_avg10: number | null;
  readonly io_full_avg10: number | null;
}

/** One instant's readings; CPU and swap rates need a second instant to compare with. */
export interface Snapshot {
  readonly ts: number;
  readonly cpu: CpuCounters;
  readonly cpus: number;
  readonly memory: MemoryReading;
  readonly load: readonly [number, number, number];
  /** pages swapped in / out since boot, when known */
  readonly swapIn: number | undefined;
  readonly swapOut: number | undefined;
  readonly psi: PsiReading | null;
}

/** Parse the aggregate `cpu` line of /proc/stat. iowait counts as idle: the CPU could run work. */
export function parseProcStatCpu(text: string): CpuCounters | undefined {
  const line = text.split('\n', 1)[0] ?? '';
  if (!line.startsWith('cpu ')) return undefined;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal guest guest_nice; guest is already in user
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = v;
  return { total: user + nice + system + idle + iowait + irq + softirq + steal, idle: idle + iowait };
}

export function countCpusFromStat(text: string): number {
  const n = (text.match(/^cpu\d+ /gm) ?? []).length;
  return n > 0 ? n : os.availableParallelism();
}

export function parseMeminfo(text: string): MemoryReading | undefined {
  const kb = (key: string) => {
    const m = new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(text);
    return m ? Number(m[1]) * 1024 : undefined;
  };
  const total = kb('MemTotal');
  if (!total) return undefined;
  // MemAvailable exists since Linux 3.14; before it, free + buffers + cached is the usual estimate
  const available = kb('MemAvailable') ?? (kb('MemFree') ?? 0) + (kb('Buffers') ?? 0) + (kb('Cached') ?? 0);
  return {
    totalBytes: total,
    availableBytes: available,
    usedPct: ((total - available) / total) * 100,
    swapTotalBytes: kb('SwapTotal') ?? 0,
    swapFreeBytes: kb('SwapFree') ?? 0,
  };
}

export function parseLoadavg(text: string): [number, number, number] {
  const [a = 0, b = 0, c = 0] = text.trim().split(/\s+/).slice(0, 3).map(Number);
  return [a, b, c];
}

export function parseVmstatSwap(text: string): { swapIn: number | undefined; swapOut: number | undefined } {
  const get = (k: string) => {
    const m = new RegExp(`^${k} (\\d+)`, 'm').exec(text);
    return m ? Number(m[1]) : undefined;
  };
  return { swapIn: get('pswpin'), swapOut: get('pswpout') };
}

/** Parse one /proc/pressure/* file: `some avg10=1.23 ...` and `full avg10=...`. */
export function parsePressure(text: string): { some: number | null; full: number | null } {
  const get = (kind: string) => {
    const m = new RegExp(`^${kind} avg10=([\\d.]+)`, 'm').exec(text);
    return m ? Number(m[1]) : null;
  };
  return { some: get('some'), full: get('full') };
}

/**
 * CPU used percent between two counter readings, or undefined when no time passed. `own` is CPU
 * time the measuring process itself used in between (same unit): it is taken out of both the
 * busy and the total time, so the result is how busy the host was with everything else. (Taking
 * it out of busy alone would read a saturated host as less busy: our time displaced others'.)
 */
export function cpuUsedPct(prev: CpuCounters, cur: CpuCounters, own = 0): number | undefined {
  const total = cur.total - prev.total;
  const idle = cur.idle - prev.idle;
  if (total <= 0 || idle < 0) return undefined;
  const busy = total - idle;
  const mine = Math.min(Math.max(0, own), busy);
  if (total - mine <= 0) return undefined;
  return Math.min(100, Math.max(0, ((busy - mine) / (total - mine)) * 100));
}

/**
 * CPU time (utime + stime, in clock ticks: the unit of /proc/stat) from a /proc/PID/stat line.
 * The command name in parentheses may hold spaces and parentheses: count fields after the last ')'.
 */
export function parseProcStatTicks(text: string): number | undefined {
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); utime and stime are fields 14 and 15
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  return Number.isFinite(utime) && Number.isFinite(stime) && rest.length > 12 ? utime + stime : undefined;
}

/** When this process started, ms epoch. */
const processStartedAt = () => Date.now() - process.uptime() * 1000;

const readText = (path: string): string | undefined => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
};

function readPsiLinux(): PsiReading | null {
  const cpu = readText('/proc/pressure/cpu');
  const mem = readText('/proc/pressure/memory');
  const io = readText('/proc/pressure/io');
  if (cpu === undefined && mem === undefined && io === undefined) return null;
  const c = cpu === undefined ? { some: null, full: null } : parsePressure(cpu);
  const m = mem === undefined ? { some: null, full: null } : parsePressure(mem);
  const i = io === undefined ? { some: null, full: null } : parsePressure(io);
  return {
    cpu_some_avg10: c.some,
    memory_some_avg10: m.some,
    memory_full_avg10: m.full,
    io_some_avg10: i.some,
    io_full_avg10: i.full,
  };
}

/** Only the counters that need a second reading: cheap enough to take twice. */
export function readCountersLinux(): { cpu: CpuCounters; swapIn: number | undefined; swapOut: number | undefined } {
  const stat = readFileSync('/proc/stat', 'utf8');
  const cpu = parseProcStatCpu(stat);
  if (!cpu) throw new Error('/proc/stat has no aggregate cpu line');
  const vm = readText('/proc/vmstat');
  return { cpu, ...(vm ? parseVmstatSwap(vm) : { swapIn: undefined, swapOut: undefined }) };
}

export function snapshotLinux(now = Date.now()): Snapshot {
  const stat = readFileSync('/proc/stat', 'utf8');
  const cpu = parseProcStatCpu(stat);
  const memory = parseMeminfo(readFileSync('/proc/meminfo', 'utf8'));
  if (!cpu || !memory) throw new Error('cannot parse /proc/stat or /proc/meminfo');
  const vm = readText('/proc/vmstat');
  const swap = vm ? parseVmstatSwap(vm) : { swapIn: undefined, swapOut: undefined };
  const loadText = readText('/proc/loadavg');
  return {
    ts: now,
    cpu,
    cpus: countCpusFromStat(stat),
    memory,
    load: loadText ? parseLoadavg(loadText) : (os.loadavg() as [number, number, number]),
    swapIn: swap.swapIn,
    swapOut: swap.swapOut,
    psi: readPsiLinux(),
  };
}

/** CPU counters from os.cpus(), in milliseconds; used where /proc is absent. */
export function countersFromOs(): CpuCounters {
  let total = 0;
  let idle = 0;
  for (const c of os.cpus()) {
    total += c.times.user + c.times.nice + c.times.sys + c.times.idle + c.times.irq;
    idle += c.times.idle;
  }
  return { total, idle };
}

export async function snapshotOther(now = Date.now()): Promise<Snapshot> {
  const si = await importEsm<typeof import('systeminformation')>('systeminformation');
  const mem = await si.mem();
  const total = mem.total;
  const available = mem.available;
  return {
    ts: now,
    cpu: countersFromOs(),
    cpus: os.availableParallelism(),
    memory: {
      totalBytes: total,
      availableBytes: available,
      usedPct: total > 0 ? ((total - available) / total) * 100 : 0,
      swapTotalBytes: mem.swaptotal,
      swapFreeBytes: mem.swapfree,
    },
    load: os.loadavg() as [number, number, number],
    swapIn: undefined,
    swapOut: undefined,
    psi: null,
  };
}

/** This process's own CPU time, in the unit of CpuCounters, and when it started (ms epoch). */
export interface OwnCpu {
  readonly used: number;
  readonly startedAt: number;
}

/** A platform's resource readers, behind one small interface so logic can be tested with fakes. */
export interface Sampler {
  snapshot(now: number): Promise<Snapshot>;
  counters(): { cpu: CpuCounters; swapIn: number | undefined; swapOut: number | undefined };
  /** The measuring process's own CPU use, so a reading can leave it out; undefined when unknown. */
  ownCpu?(): OwnCpu | undefined;
}

function ownCpuLinux(): OwnCpu | undefined {
  const text = readText('/proc/self/stat');
  const used = text === undefined ? undefined : parseProcStatTicks(text);
  return used === undefined ? undefined : { used, startedAt: processStartedAt() };
}

/** os.cpus() counts milliseconds; process.cpuUsage() microseconds. */
function ownCpuOther(): OwnCpu {
  const u = process.cpuUsage();
  return { used: (u.user + u.system) / 1000, startedAt: processStartedAt() };
}

export const systemSampler: Sampler =
  process.platform === 'linux'
    ? { snapshot: async (now) => snapshotLinux(now), counters: readCountersLinux, ownCpu: ownCpuLinux }
    : { snapshot: snapshotOther, counters: () => ({ cpu: countersFromOs(), swapIn: undefined, swapOut: undefined }), ownCpu: ownCpuOther };
