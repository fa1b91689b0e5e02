/** The live view's interval, checked as throttle-status --watch checks its own. Loads nothing heavy. */
import { UsageError } from '../errors.js';
import { MAX_TIMER_MS, parseDuration } from '../units.js';

/** The shortest interval: a frame costs a walk of /proc and a few reads of the state. */
export const MIN_INTERVAL_MS = 100;

/** Parse the interval given for `what` (`--watch`, `interval`), or throw a UsageError naming it. */
export function parseInterval(text: string, what: string): number {
  const ms = parseDuration(text, what, MAX_TIMER_MS); // a timer paces the frames
  if (ms < MIN_INTERVAL_MS) throw new UsageError(`${what}: ${text} is too short; expected an interval of at least ${MIN_INTERVAL_MS}ms`);
  return ms;
}
