/**
 * Throttle levels: pure decision functions, no I/O.
 *
 * Level table (defaults, all configurable):
 *   0 normal  max agents 5, batch 100, delay    0 ms   memory < 70 % and CPU < 60 %
 *   1 light   max agents 3, batch  50, delay  500 ms   memory < 80 % and CPU < 75 %
 *   2 medium  max agents 2, batch  25, delay 1000 ms   memory < 90 % and CPU < 90 %
 *   3 heavy   max agents 1, batch  10, delay 2000 ms   otherwise
 *
 * Besides memory and CPU: memory PSI `full` >= 5 % calls for at least level 2, `some` >= 20 %
 * for at least 1; swap-in >= 100 pages/s for at least 2; load per core only when configured.
 */
import { round } from './units.js';

export type ThrottleLevel = 0 | 1 | 2 | 3;

export const LEVEL_NAMES = ['normal', 'light', 'medium', 'heavy'] as const;
export type LevelName = (typeof LEVEL_NAMES)[number];

/** What a level allows; the field names are those of the resource_metrics.json seed. */
export interface ThrottleParams {
  readonly level: ThrottleLevel;
  readonly name: LevelName;
  readonly max_agents: number;
  readonly batch_size: number;
  readonly delay_ms: number;
  readonly max_concurrent: number;
  readonly reasoning_effort: string;
}

/** Thresholds and per-level parameters, as configured under [throttle]. */
export interface ThrottleSettings {
  /** Memory used percent at which levels 1, 2 and 3 begin. @default [70, 80, 90] */
  readonly memoryPct: readonly [number, number, number];
  /** CPU used percent at which levels 1, 2 and 3 begin. @default [60, 75, 90] */
  readonly cpuPct: readonly [number, number, number];
  /** Per level 0..3. @default [5, 3, 2, 1] */
  readonly maxAgents: readonly number[];
  /** Per level 0..3. @default [100, 50, 25, 10] */
  readonly batchSize: readonly number[];
  /** Per level 0..3. @default [0, 500, 1000, 2000] */
  readonly delayMs: readonly number[];
  /** Per level 0..3. @default [3, 2, 1, 1] */
  readonly maxConcurrent: readonly number[];
  /** Per level 0..3. @default ["high", "high", "medium", "low"] */
  readonly reasoningEffort: readonly string[];
  /** How long pressure must stay below the current level before dropping one level. @default 30 s */
  readonly recoveryMs: number;
  /** Memory PSI `full avg10` percent at which the level is at least 2 (Linux 4.20+). @default 5 */
  readonly psiMemoryFullPct: number;
  /** Memory PSI `some avg10` percent at which the level is at least 1 (Linux 4.20+). @default 20 */
  readonly psiMemorySomePct: number;
  /** Pages swapped in per second at which the level is at least 2. @default 100 */
  readonly swapInRate: number;
  /** One-minute load per core at which the level is at least 1; 0 is off. @default 0 */
  readonly loadPerCore: number;
}

export const DEFAULT_THROTTLE: ThrottleSettings = {
  memoryPct: [70, 80, 90],
  cpuPct: [60, 75, 90],
  maxAgents: [5, 3, 2, 1],
  batchSize: [100, 50, 25, 10],
  delayMs: [0, 500, 1000, 2000],
  maxConcurrent: [3, 2, 1, 1],
  reasoningEffort: ['high', 'high', 'medium', 'low'],
  recoveryMs: 30_000,
  // Even a short full stall hurts: in 5 % of the last 10 s every task waited on memory at once.
  psiMemoryFullPct: 5,
  // Some tasks waiting on memory a fifth of the time: reclaim is working hard, not yet thrashing.
  psiMemorySomePct: 20,
  // 100 pages (400 KiB with 4 KiB pages) every second, sustained over the CPU window: processes
  // keep faulting back memory that was pushed out, i.e. the working set no longer fits. A
  // daemon waking after a night swapped out brings back a few MB once, far below this over 10 s.
  swapInRate: 100,
  // load counts tasks waiting on disk too, and agents that sleep on the network do not add to
  // it: a poor pressure signal by default, so informational unless configured
  loadPerCore: 0,
};

/**
 * A CPU reading over less than the judging window (throttle.cpu_window) counts only at or above
 * this (and the level-3 threshold), and then sets level 3. Such a window is at most a few hundred
 * ms and mostly filled by agentctl's own start-up and its neighbours' (one node start-up keeps a
 * core busy for ~100 ms): it can tell a saturated host, not a moderately busy one.
 */
export const SHORT_WINDOW_CPU_PCT = 95;

/** Which level a single reading of one resource calls for: the count of thresholds it reached. */
function levelFor(value: number, thresholds: readonly [number, number, number]): ThrottleLevel {
  let level = 0;
  for (const t of thresholds) if (value >= t) level++;
  return level as ThrottleLevel;
}

export interface RawLevel {
  readonly level: ThrottleLevel;
  /** Why: which readings set the level, e.g. "memory 82.1% >= 80%". Empty at level 0. */
  readonly reasons: readonly string[];
}

/** One moment's readings; undefined or null means unknown, and an unknown reading raises nothing. */
export interface Readings {
  readonly memoryUsedPct: number | undefined;
  readonly cpuUsedPct: number | undefined;
  /** CPU was measured over less than throttle.cpu_window: it counts only when the host is saturated. */
  readonly cpuShortWindow?: boolean;
  /** PSI `avg10` of /proc/pressure/memory; null where the kernel has no PSI. */
  readonly psiMemorySome?: number | null;
  readonly psiMemoryFull?: number | null;
  /** Pages swapped in per second; null when the kernel does not say. */
  readonly swapInPerS?: number | null;
  readonly loadPerCore?: number;
}

const known = (v: number | null | undefined): v is number => v !== undefined && v !== null && Number.isFinite(v);

/**
 * The level the current readings call for, before hysteresis. Memory and CPU call for the number
 * of their thresholds they reach; memory PSI, swap-in and (when configured) load per core each
 * call for at least a fixed level. The worst rule decides; every rule that calls for that level
 * is named. An unknown reading does not raise the level.
 */
export function rawLevel(reading: Readings, settings: Pick<ThrottleSettings, 'memoryPct' | 'cpuPct'> & Partial<ThrottleSettings> = DEFAULT_THROTTLE): RawLevel {
  const s = { ...DEFAULT_THROTTLE, ...settings };
  const rules: Array<{ level: number; reason: string }> = [];
  if (known(reading.memoryUsedPct)) {
    const l = levelFor(reading.memoryUsedPct, s.memoryPct);
    if (l > 0) rules.push({ level: l, reason: `memory ${round(reading.memoryUsedPct)}% >= ${s.memoryPct[l - 1]}%` });
  }
  if (known(reading.cpuUsedPct)) {
    if (!reading.cpuShortWindow) {
      const l = levelFor(reading.cpuUsedPct, s.cpuPct);
      if (l > 0) rules.push({ level: l, reason: `cpu ${round(reading.cpuUsedPct)}% >= ${s.cpuPct[l - 1]}%` });
    } else {
      const floor = Math.max(SHORT_WINDOW_CPU_PCT, s.cpuPct[2]);
      if (reading.cpuUsedPct >= floor) rules.push({ level: 3, reason: `cpu ${round(reading.cpuUsedPct)}% >= ${floor}% over a short window` });
    }
  }
  if (known(reading.psiMemoryFull) && reading.psiMemoryFull >= s.psiMemoryFullPct) {
    rules.push({ level: 2, reason: `memory pressure full ${round(reading.psiMemoryFull, 2)}% >= ${s.psiMemoryFullPct}%` });
  }
  if (known(reading.psiMemorySome) && reading.psiMemorySome >= s.psiMemorySomePct) {
    rules.push({ level: 1, reason: `memory pressure some ${round(reading.psiMemorySome, 2)}% >= ${s.psiMemorySomePct}%` });
  }
  if (known(reading.swapInPerS) && reading.swapInPerS >= s.swapInRate) {
    rules.push({ level: 2, reason: `swap-in ${round(reading.swapInPerS)} pages/s >= ${s.swapInRate} pages/s` });
  }
  if (s.loadPerCore > 0 && known(reading.loadPerCore) && reading.loadPerCore >= s.loadPerCore) {
    rules.push({ level: 1, reason: `load ${round(reading.loadPerCore, 2)} per core >= ${s.loadPerCore}` });
  }
  const level = Math.max(0, ...rules.map((r) => r.level)) as ThrottleLevel;
  return { level, reasons: level === 0 ? [] : rules.filter((r) => r.level === level).map((r) => r.reason) };
}

/** The hysteresis state kept between invocations (in the state db). */
export interface LevelState {
  /** The level last reported. */
  readonly level: ThrottleLevel;
  /** Since when (ms epoch) readings have stayed below `level`, or null if they have not. */
  readonly calmSince: number | null;
  /** When this state was last updated (ms epoch). */
  readonly updatedAt: number;
}

/**
 * A state older than this many recovery intervals says nothing about now: nobody was
 * watching, so we start again from the raw reading rather than hold an old heavy level.
 */
export const STALE_STATE_INTERVALS = 10;

/**
 * Apply hysteresis: pressure raises the level at once; recovery is gradual, one level down per
 * recovery interval during which readings stayed below the current level, never below the raw level.
 */
export function nextLevel(prev: LevelState | undefined, raw: ThrottleLevel, now: number, recoveryMs: number): LevelState {
  if (!prev || now - prev.updatedAt > recoveryMs * STALE_STATE_INTERVALS || now < prev.updatedAt || recoveryMs <= 0) {
    return { level: raw, calmSince: null, updatedAt: now };
  }
  if (raw >= prev.level) return { level: raw, calmSince: null, updatedAt: now };
  const calmSince = prev.calmSince ?? prev.updatedAt;
  const steps = Math.floor((now - calmSince) / recoveryMs);
  if (steps <= 0) return { level: prev.level, calmSince, updatedAt: now };
  const level = Math.max(raw, prev.level - steps) as ThrottleLevel;
  const nextCalm = level > raw ? calmSince + steps * recoveryMs : null;
  return { level, calmSince: nextCalm, updatedAt: now };
}

/** The parameters a level grants. */
export function paramsFor(level: ThrottleLevel, settings: ThrottleSettings = DEFAULT_THROTTLE): ThrottleParams {
  return {
    level,
    name: LEVEL_NAMES[level],
    max_agents: settings.maxAgents[level]!,
    batch_size: settings.batchSize[level]!,
    delay_ms: settings.delayMs[level]!,
    max_concurrent: settings.maxConcurrent[level]!,
    reasoning_effort: settings.reasoningEffort[level]!,
  };
}
