/** `--since` for the commands that read history (events, stats): one parser, one message. */
import { UsageError } from './errors.js';
import { DURATION_HINT, tryParseDuration } from './units.js';

/** --since: a duration back from now, or an ISO date/time. */
export function parseSince(text: string, now: number): number {
  const ms = tryParseDuration(text);
  if (ms !== undefined) return now - ms;
  if (/^\d{4}-\d{2}-\d{2}/.test(text)) {
    const t = Date.parse(text);
    if (Number.isFinite(t)) return t;
  }
  throw new UsageError(`--since: invalid value ${JSON.stringify(text)}; expected ${DURATION_HINT}, or an ISO time like 2026-11-22T05:00:00Z`);
}
