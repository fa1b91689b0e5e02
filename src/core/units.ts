import { UsageError } from './errors.js';

const DURATION_UNITS_MS: Record<string, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1024 ** 4,
};

/** Longest duration we accept: 365 days. Beyond it a typo is likelier than intent. */
export const MAX_DURATION_MS = 365 * 86_400_000;

/**
 * Longest duration that may feed a timer: 24 days. Node's setTimeout takes a signed 32-bit
 * count of milliseconds (2^31-1 ms, about 24.8 days) and fires after 1 ms when given more, so
 * `spawn --timeout 25d` would end its child at once. A flag that feeds a timer parses with
 * this bound; durations compared with timestamps (ages, TTLs, --since) keep MAX_DURATION_MS.
 */
export const MAX_TIMER_MS = 24 * 86_400_000;

const DURATION_RE = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;
const SIZE_RE = /^(\d+(?:\.\d+)?)([kmgt]?b?)$/i;

export const DURATION_HINT = 'a duration like 500ms, 30s, 5m, 2h or 1d';
export const SIZE_HINT = 'a size like 512M, 2G or 1048576';

/**
 * Parse a duration (`500ms 30s 5m 2h 1d`, also compound `1h30m`) into milliseconds.
 * Returns undefined when the text is not a duration; callers turn that into their own error.
 */
export function tryParseDuration(text: string): number | undefined {
  const ms = durationMs(text);
  return ms === undefined || ms > MAX_DURATION_MS ? undefined : ms;
}

/** The milliseconds `text` names, with no upper bound; undefined when it is not a duration. */
function durationMs(text: string): number | undefined {
  const s = text.trim();
  if (s === '') return undefined;
  if (s === '0') return 0;
  // compound durations: 1h30m, 2m30s
  const parts = s.match(/\d+(?:\.\d+)?(?:ms|s|m|h|d)/g);
  if (!parts || parts.join('') !== s) return undefined;
  let total = 0;
  for (const part of parts) {
    const m = DURATION_RE.exec(part);
    if (!m) return undefined;
    total += Number(m[1]) * DURATION_UNITS_MS[m[2] as string]!;
  }
  if (!Number.isFinite(total)) return undefined;
  return Math.round(total);
}

/**
 * Parse a duration given for `what` (a flag or key name), at most `maxMs` (MAX_TIMER_MS for
 * one that feeds a timer), or throw a UsageError naming the flag, the value and the range.
 */
export function parseDuration(text: string, what: string, maxMs: number = MAX_DURATION_MS): number {
  const ms = durationMs(text);
  if (ms === undefined) {
    throw new UsageError(`${what}: invalid duration ${JSON.stringify(text)}; expected ${DURATION_HINT} (at most ${formatDuration(maxMs)})`);
  }
  if (ms > maxMs) {
    const why = maxMs === MAX_TIMER_MS ? ': the longest a timer can wait' : '';
    throw new UsageError(`${what}: ${text.trim()} is out of range; expected a duration from 0 to ${formatDuration(maxMs)}${why}`);
  }
  return ms;
}

/** Parse a size (`512M`, `2G`, plain bytes) into bytes, or undefined. Units are binary (1K = 1024). */
export function tryParseSize(text: string): number | undefined {
  const m = SIZE_RE.exec(text.trim());
  if (!m) return undefined;
  const unit = SIZE_UNITS[(m[2] as string).toLowerCase()];
  if (unit === undefined) return undefined;
  const bytes = Math.round(Number(m[1]) * unit);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

export function parseSize(text: string, what: string): number {
  const bytes = tryParseSize(text);
  if (bytes === undefined) throw new UsageError(`${what}: invalid size ${JSON.stringify(text)}; expected ${SIZE_HINT}`);
  return bytes;
}

/** Parse a whole number within [min, max] given for `what`, or throw a UsageError naming it. */
export function parseIntInRange(text: string, what: string, min: number, max: number): number {
  const s = text.trim();
  if (!/^-?\d+$/.test(s)) {
    throw new UsageError(`${what}: invalid value ${JSON.stringify(text)}; expected a whole number from ${min} to ${max}`);
  }
  const n = Number(s);
  if (n < min || n > max) {
    throw new UsageError(`${what}: ${s} is out of range; expected a whole number from ${min} to ${max}`);
  }
  return n;
}

/** Render milliseconds compactly for people: 850ms, 12s, 5m, 2h 5m, 3d 4h. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  const sign = ms < 0 ? '-' : '';
  let v = Math.abs(ms);
  if (v < 1000) return `${sign}${Math.round(v)}ms`;
  v = Math.round(v / 1000);
  if (v < 60) return `${sign}${v}s`;
  const d = Math.floor(v / 86_400);
  const h = Math.floor((v % 86_400) / 3600);
  const m = Math.floor((v % 3600) / 60);
  const s = v % 60;
  if (d > 0) return `${sign}${d}d${h ? ` ${h}h` : ''}`;
  if (h > 0) return `${sign}${h}h${m ? ` ${m}m` : ''}`;
  return `${sign}${m}m${s ? ` ${s}s` : ''}`;
}

/** Round to `digits` decimals (1 by default): 62.345 -> 62.3. */
export function round(n: number, digits = 1): number {
  return Math.round(n * 10 ** digits) / 10 ** digits;
}

/** A percentage for people, one decimal: 62.3%. */
export function formatPct(n: number): string {
  return `${n.toFixed(1)}%`;
}

/** Render bytes for people with binary units: 163M, 23.1G. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'K', 'M', 'G', 'T'];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  const digits = v >= 100 || i === 0 ? 0 : 1;
  return `${v.toFixed(digits)}${units[i]}`;
}
