import { describe, expect, it } from 'vitest';
import { DEFAULT_THROTTLE, LEVEL_NAMES, type LevelState, nextLevel, paramsFor, rawLevel, type Readings, SHORT_WINDOW_CPU_PCT, STALE_STATE_INTERVALS } from '../../src/core/throttle.js';

const lvl = (memoryUsedPct: number | undefined, cpuUsedPct: number | undefined) => rawLevel({ memoryUsedPct, cpuUsedPct }).level;

describe('rawLevel: the level table at and around every threshold', () => {
  it.each([
    // memory alone (CPU idle)
    [0, 0, 0],
    [69.9, 0, 0],
    [70, 0, 1],
    [79.99, 0, 1],
    [80, 0, 2],
    [89.9, 0, 2],
    [90, 0, 3],
    [100, 0, 3],
    // CPU alone (memory low)
    [10, 59.9, 0],
    [10, 60, 1],
    [10, 74.9, 1],
    [10, 75, 2],
    [10, 89.9, 2],
    [10, 90, 3],
    // the worse resource decides
    [75, 80, 2],
    [85, 50, 2],
    [91, 10, 3],
    [69, 59, 0],
  ])('memory %d%% cpu %d%% -> level %d', (mem, cpu, want) => {
    expect(lvl(mem, cpu)).toBe(want);
  });

  it('does not raise the level for an unknown reading', () => {
    expect(lvl(undefined, undefined)).toBe(0);
    expect(lvl(undefined, 95)).toBe(3);
  });

  it('names the resource and threshold that set the level', () => {
    expect(rawLevel({ memoryUsedPct: 82.14, cpuUsedPct: 10 }).reasons).toEqual(['memory 82.1% >= 80%']);
    expect(rawLevel({ memoryUsedPct: 95, cpuUsedPct: 95 }).reasons).toEqual(['memory 95% >= 90%', 'cpu 95% >= 90%']);
    expect(rawLevel({ memoryUsedPct: 10, cpuUsedPct: 10 }).reasons).toEqual([]);
  });

  it('uses configured thresholds', () => {
    const s = { memoryPct: [10, 20, 30] as const, cpuPct: [97, 98, 99] as const };
    expect(rawLevel({ memoryUsedPct: 15, cpuUsedPct: 0 }, s).level).toBe(1);
    expect(rawLevel({ memoryUsedPct: 5, cpuUsedPct: 97.5 }, s).level).toBe(1);
    expect(rawLevel({ memoryUsedPct: 35, cpuUsedPct: 0 }, s).level).toBe(3);
  });
});

describe('rawLevel: CPU over a short window counts only when the host is saturated', () => {
  const short = (cpuUsedPct: number, cpuPct: readonly [number, number, number] = DEFAULT_THROTTLE.cpuPct) =>
    rawLevel({ memoryUsedPct: 10, cpuUsedPct, cpuShortWindow: true }, { memoryPct: DEFAULT_THROTTLE.memoryPct, cpuPct });

  it('ignores a moderately busy short reading that a full window would count', () => {
    // the readings a spawn loop of agentctl start-ups produced on an idle 2-core host: 62-71 %, even 89 %
    for (const pct of [62, 71, 75, 89.9, 94.9]) {
      expect(short(pct).level, `${pct}%`).toBe(0);
      expect(rawLevel({ memoryUsedPct: 10, cpuUsedPct: pct }).level, `${pct}% over the full window`).toBeGreaterThan(0);
    }
  });

  it(`counts a saturated host (>= ${SHORT_WINDOW_CPU_PCT}%) at once, as level 3`, () => {
    expect(short(SHORT_WINDOW_CPU_PCT)).toEqual({ level: 3, reasons: [`cpu ${SHORT_WINDOW_CPU_PCT}% >= ${SHORT_WINDOW_CPU_PCT}% over a short window`] });
    expect(short(100).level).toBe(3);
  });

  it('never counts below the configured level-3 threshold', () => {
    expect(short(98, [97, 98, 99]).level).toBe(0);
    expect(short(99, [97, 98, 99])).toEqual({ level: 3, reasons: ['cpu 99% >= 99% over a short window'] });
    // low thresholds do not lower the saturation floor
    expect(short(80, [10, 20, 30]).level).toBe(0);
  });

  it('leaves memory to raise the level at once', () => {
    expect(rawLevel({ memoryUsedPct: 91, cpuUsedPct: 70, cpuShortWindow: true }).level).toBe(3);
  });
});

describe('rawLevel: memory PSI, swap-in and load per core', () => {
  const idle: Readings = { memoryUsedPct: 10, cpuUsedPct: 5 };
  const at = (r: Partial<Readings>, s: Partial<typeof DEFAULT_THROTTLE> = {}) => rawLevel({ ...idle, ...r }, { ...DEFAULT_THROTTLE, ...s });

  it.each([
    // [what, reading, level, reason]
    ['PSI full below', { psiMemoryFull: 4.99 }, 0, undefined],
    ['PSI full at', { psiMemoryFull: 5 }, 2, 'memory pressure full 5% >= 5%'],
    ['PSI full above', { psiMemoryFull: 37.25 }, 2, 'memory pressure full 37.25% >= 5%'],
    ['PSI some below', { psiMemorySome: 19.99 }, 0, undefined],
    ['PSI some at', { psiMemorySome: 20 }, 1, 'memory pressure some 20% >= 20%'],
    ['PSI some above', { psiMemorySome: 64.1 }, 1, 'memory pressure some 64.1% >= 20%'],
    ['swap-in below', { swapInPerS: 99.9 }, 0, undefined],
    ['swap-in at', { swapInPerS: 100 }, 2, 'swap-in 100 pages/s >= 100 pages/s'],
    ['swap-in above', { swapInPerS: 2500 }, 2, 'swap-in 2500 pages/s >= 100 pages/s'],
  ] as const)('%s', (_what, r, level, reason) => {
    const got = at(r);
    expect(got.level).toBe(level);
    expect(got.reasons).toEqual(reason === undefined ? [] : [reason]);
  });

  it('ignores PSI and swap the kernel does not report', () => {
    expect(at({ psiMemoryFull: null, psiMemorySome: null, swapInPerS: null }).level).toBe(0);
    expect(at({ psiMemoryFull: undefined, psiMemorySome: undefined, swapInPerS: undefined }).level).toBe(0);
  });

  it('load per core is off by default, and raises to 1 when configured', () => {
    expect(at({ loadPerCore: 50 }).level).toBe(0);
    expect(at({ loadPerCore: 1.49 }, { loadPerCore: 1.5 }).level).toBe(0);
    expect(at({ loadPerCore: 1.5 }, { loadPerCore: 1.5 })).toEqual({ level: 1, reasons: ['load 1.5 per core >= 1.5'] });
    expect(at({ loadPerCore: 4.123 }, { loadPerCore: 1.5 }).reasons).toEqual(['load 4.12 per core >= 1.5']);
  });

  it('uses configured thresholds; 0 is always reached', () => {
    expect(at({ psiMemorySome: 0 }, { psiMemorySomePct: 0 })).toEqual({ level: 1, reasons: ['memory pressure some 0% >= 0%'] });
    expect(at({ psiMemoryFull: 3 }, { psiMemoryFullPct: 2.5 }).level).toBe(2);
    expect(at({ swapInPerS: 30 }, { swapInRate: 20 }).level).toBe(2);
    expect(at({ swapInPerS: 30 }, { swapInRate: 500 }).level).toBe(0);
  });

  it('each rule raises to at least its level, never lowers, and every rule calling for the level is named', () => {
    // CPU says 3; PSI full says 2: 3 wins, CPU named
    expect(at({ cpuUsedPct: 95, psiMemoryFull: 50 }).reasons).toEqual(['cpu 95% >= 90%']);
    // memory says 1 (70 %), PSI full and swap say 2: both named
    expect(at({ memoryUsedPct: 72, psiMemoryFull: 6, swapInPerS: 400, psiMemorySome: 30 })).toEqual({
      level: 2,
      reasons: ['memory pressure full 6% >= 5%', 'swap-in 400 pages/s >= 100 pages/s'],
    });
    // PSI some and CPU both say 1
    expect(at({ cpuUsedPct: 61, psiMemorySome: 21 }).reasons).toEqual(['cpu 61% >= 60%', 'memory pressure some 21% >= 20%']);
  });
});

describe('paramsFor: the seed table', () => {
  it('matches the design table and the seed field names', () => {
    expect(paramsFor(2)).toEqual({ level: 2, name: 'medium', max_agents: 2, batch_size: 25, delay_ms: 1000, max_concurrent: 1, reasoning_effort: 'medium' });
    expect([0, 1, 2, 3].map((l) => paramsFor(l as 0).max_agents)).toEqual([5, 3, 2, 1]);
    expect([0, 1, 2, 3].map((l) => paramsFor(l as 0).batch_size)).toEqual([100, 50, 25, 10]);
    expect([0, 1, 2, 3].map((l) => paramsFor(l as 0).delay_ms)).toEqual([0, 500, 1000, 2000]);
    expect([0, 1, 2, 3].map((l) => paramsFor(l as 0).name)).toEqual([...LEVEL_NAMES]);
  });
});

describe('nextLevel: hysteresis', () => {
  const R = DEFAULT_THROTTLE.recoveryMs; // 30 s
  const at = (level: 0 | 1 | 2 | 3, updatedAt: number, calmSince: number | null = null): LevelState => ({ level, updatedAt, calmSince });

  it('starts from the raw level', () => {
    expect(nextLevel(undefined, 2, 1000, R)).toEqual({ level: 2, calmSince: null, updatedAt: 1000 });
  });

  it('rises at once', () => {
    expect(nextLevel(at(0, 0), 3, 1000, R).level).toBe(3);
    expect(nextLevel(at(1, 0, 500), 2, 1000, R)).toEqual({ level: 2, calmSince: null, updatedAt: 1000 });
  });

  it('holds the level until a whole recovery interval of calm has passed', () => {
    const s1 = nextLevel(at(3, 0), 0, 1_000, R);
    expect(s1.level).toBe(3);
    expect(s1.calmSince).toBe(0);
    const s2 = nextLevel(s1, 0, R - 1, R);
    expect(s2.level).toBe(3);
    const s3 = nextLevel(s2, 0, R, R);
    expect(s3.level).toBe(2);
  });

  it('drops one level per interval, never below the raw level', () => {
    let s = at(3, 0);
    const seen: number[] = [];
    for (let t = 5_000; t <= 5 * R; t += 5_000) {
      s = nextLevel(s, 1, t, R);
      seen.push(s.level);
    }
    expect(seen[0]).toBe(3);
    expect(Math.min(...seen)).toBe(1);
    // exactly one step per 30 s: level 2 from 30 s, level 1 from 60 s
    expect(seen.indexOf(2)).toBe(R / 5_000 - 1);
    expect(seen.indexOf(1)).toBe((2 * R) / 5_000 - 1);
  });

  it('restarts the calm clock when pressure returns to the current level', () => {
    let s = nextLevel(at(2, 0), 0, R - 1_000, R); // calm for 29 s
    s = nextLevel(s, 2, R - 500, R); // pressure back
    expect(s.calmSince).toBeNull();
    s = nextLevel(s, 0, R + 1_000, R); // calm again, only 1.5 s
    expect(s.level).toBe(2);
  });

  it('takes several steps when readings were sparse but calm throughout', () => {
    const s1 = nextLevel(at(3, 0), 0, 1_000, R); // calm since 0
    const s2 = nextLevel(s1, 0, 2 * R + 1_000, R); // checked again within the staleness window
    expect(s2.level).toBe(1);
    expect(s2.calmSince).toBe(2 * R);
  });

  it('forgets a state nobody refreshed for a long time', () => {
    const s = nextLevel(at(3, 0), 0, R * STALE_STATE_INTERVALS + 1, R);
    expect(s.level).toBe(0);
  });

  it('ignores a state from the future (clock stepped back)', () => {
    expect(nextLevel(at(3, 10_000), 1, 5_000, R).level).toBe(1);
  });

  it('with recovery 0 follows the raw level', () => {
    expect(nextLevel(at(3, 0), 0, 1, 0).level).toBe(0);
  });
});
