/**
 * Throttle levels: pure decision functions, no I/O.
 *
 * Level table (defaults, all configurable):
 *   0 normal  max agents 5, batch 100, delay    0 ms   memory < 70 % and CPU < 60 %
 *   1 light   max agents 3, batch  50, delay  500 ms   memory < 80 % and CPU < 75 %
 *   2 medium  max agents 2, batch  25, delay 1000 ms   memory < 90 % and CPU < 90 %
 *   3 heavy   max agents 1, batch  10, delay 2000 ms   otherwise
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
};

/** Which level a single reading of one resource calls for: the count of thresholds it reached. */
function levelFor(value: number, thresholds: readonly [number, number, number]): ThrottleLevel {
  let level = 0;
  for (const t of thresholds) if (value >= t) level++;
  return level as ThrottleLevel;
}

export interface RawLevel {
  readonly level: ThrottleLevel;
  /** Why: which resource set the level, e.g. "memory 82.1% >= 80%". Empty at level 0. */
  readonly reasons: readonly string[];
}

/**
 * The level the current readings call for, before hysteresis. A level holds while memory is
 * below its memory threshold and CPU below its CPU threshold, so the worse resource decides.
 * An unknown reading (undefined) does not raise the level.
 */
export function rawLevel(
  reading: { readonly memoryUsedPct: number | undefined; readonly cpuUsedPct: number | undefined },
  settings: Pick<ThrottleSettings, 'memoryPct' | 'cpuPct'> = DEFAULT_THROTTLE,
): RawLevel {
  const mem = reading.memoryUsedPct === undefined ? 0 : levelFor(reading.memoryUsedPct, settings.memoryPct);
  const cpu = reading.cpuUsedPct === undefined ? 0 : levelFor(reading.cpuUsedPct, settings.cpuPct);
  const level = Math.max(mem, cpu) as ThrottleLevel;
  const reasons: string[] = [];
  if (mem > 0 && mem === level) {
    reasons.push(`memory ${round(reading.memoryUsedPct!)}% >= ${settings.memoryPct[mem - 1]}%`);
  }
  if (cpu > 0 && cpu === level) {
    reasons.push(`cpu ${round(reading.cpuUsedPct!)}% >= ${settings.cpuPct[cpu - 1]}%`);
  }
  return { level, reasons };
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
