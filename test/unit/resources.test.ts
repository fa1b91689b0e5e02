import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { countCpusFromStat, cpuUsedPct, parseLoadavg, parseMeminfo, parsePressure, parseProcStatCpu, parseProcStatTicks, parseVmstatSwap, systemSampler } from '../../src/core/resources.js';

// Figures from the Feb 2026 incident host: 23.1 G total, 163 MB free-ish, 8 cores, load 8.13.
const MEMINFO = `MemTotal:       24222105 kB
MemFree:          166912 kB
MemAvailable:     611328 kB
Buffers:            1024 kB
Cached:           400000 kB
SwapTotal:       8388604 kB
SwapFree:        2097152 kB
`;

const STAT = `cpu  1000 20 300 5000 200 10 5 0 0 0
cpu0 500 10 150 2500 100 5 2 0 0 0
cpu1 500 10 150 2500 100 5 3 0 0 0
intr 12345
btime 1763700000
`;

describe('/proc parsers', () => {
  it('meminfo: used = total - available', () => {
    const m = parseMeminfo(MEMINFO)!;
    expect(m.totalBytes).toBe(24222105 * 1024);
    expect(m.availableBytes).toBe(611328 * 1024);
    expect(m.usedPct).toBeCloseTo(97.48, 1);
    expect(m.swapTotalBytes - m.swapFreeBytes).toBe((8388604 - 2097152) * 1024);
  });

  it('meminfo without MemAvailable (old kernels) estimates from free + buffers + cached', () => {
    const m = parseMeminfo(MEMINFO.replace(/^MemAvailable.*\n/m, ''))!;
    expect(m.availableBytes).toBe((166912 + 1024 + 400000) * 1024);
  });

  it('meminfo that is not meminfo', () => {
    expect(parseMeminfo('garbage')).toBeUndefined();
  });

  it('stat: aggregate counters, iowait counted as idle', () => {
    expect(parseProcStatCpu(STAT)).toEqual({ total: 1000 + 20 + 300 + 5000 + 200 + 10 + 5, idle: 5200 });
    expect(countCpusFromStat(STAT)).toBe(2);
    expect(parseProcStatCpu('intr 1\n')).toBeUndefined();
  });

  it('cpu percent between two readings', () => {
    expect(cpuUsedPct({ total: 1000, idle: 800 }, { total: 2000, idle: 1300 })).toBe(50);
    expect(cpuUsedPct({ total: 1000, idle: 800 }, { total: 1000, idle: 800 })).toBeUndefined();
    expect(cpuUsedPct({ total: 2000, idle: 800 }, { total: 1000, idle: 800 })).toBeUndefined();
  });

  it('cpu percent leaves the measuring process out of busy and total', () => {
    // 1000 ticks, 500 busy of which 200 ours: others kept 300 of the remaining 800 busy
    expect(cpuUsedPct({ total: 1000, idle: 800 }, { total: 2000, idle: 1300 }, 200)).toBe(37.5);
    // saturated: stays 100 whatever we used
    expect(cpuUsedPct({ total: 0, idle: 0 }, { total: 1000, idle: 0 }, 300)).toBe(100);
    // more than the busy time (clock-tick rounding) is capped at it
    expect(cpuUsedPct({ total: 0, idle: 0 }, { total: 1000, idle: 990 }, 30)).toBe(0);
    expect(cpuUsedPct({ total: 0, idle: 0 }, { total: 1000, idle: 900 }, -5)).toBe(10);
  });

  it('own CPU ticks from /proc/PID/stat, whatever the command name holds', () => {
    const line = '4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 37 5 0 0 20 0 1 0 12345 1000 100\n';
    expect(parseProcStatTicks(line)).toBe(42);
    expect(parseProcStatTicks('4242 (x) S 1 2')).toBeUndefined();
  });

  it.runIf(process.platform === 'linux')('the system sampler reads this process in /proc/stat units', () => {
    const own = systemSampler.ownCpu!()!;
    const fromProc = parseProcStatTicks(readFileSync(`/proc/${process.pid}/stat`, 'utf8'))!;
    expect(own.used).toBeGreaterThan(0);
    expect(Math.abs(own.used - fromProc)).toBeLessThanOrEqual(5);
    expect(Math.abs(own.startedAt - (Date.now() - process.uptime() * 1000))).toBeLessThan(1000);
  });

  it('loadavg and vmstat', () => {
    expect(parseLoadavg('8.13 7.77 8.60 12/1043 99999\n')).toEqual([8.13, 7.77, 8.6]);
    expect(parseVmstatSwap('pgpgin 1\npswpin 42\npswpout 7\n')).toEqual({ swapIn: 42, swapOut: 7 });
    expect(parseVmstatSwap('pgpgin 1\n')).toEqual({ swapIn: undefined, swapOut: undefined });
  });

  it('pressure files', () => {
    expect(parsePressure('some avg10=12.50 avg60=3.00 avg300=1.00 total=1\nfull avg10=4.25 avg60=0 avg300=0 total=0\n')).toEqual({ some: 12.5, full: 4.25 });
    expect(parsePressure('some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n')).toEqual({ some: 0, full: null });
  });
});
