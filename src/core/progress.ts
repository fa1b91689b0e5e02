/**
 * The words of the status lines core's waits report through `Ctx.progress()` (core/ctx.ts
 * `Progress`): pure, so each reads the same in a test as on a terminal. The face draws them
 * (src/cli/progress.ts); nothing here knows whether anyone sees them.
 */
import { formatDuration } from './units.js';

/** 1st, 2nd, 3rd, 4th, 11th, 12th, 13th, 21st, 101st, 111th. */
export function ordinal(n: number): string {
  const tens = n % 100;
  const suffix = tens >= 11 && tens <= 13 ? 'th' : (['th', 'st', 'nd', 'rd'][n % 10] ?? 'th');
  return `${n}${suffix}`;
}

/** How long a wait has lasted, in whole seconds as a clock shows them: 0s, 12s, 1m 5s, 2h 3m. */
export function formatElapsed(ms: number): string {
  return formatDuration(Math.max(0, Math.floor(ms / 1000)) * 1000).replace(/^0ms$/, '0s');
}

/** The default tail of a status line: `, 12s`. */
export const elapsedTail = (ms: number): string => `, ${formatElapsed(ms)}`;

/** The tail of a wait that began `before` ms before its line was made: `, 12s` counted from its start. */
export const elapsedSince =
  (before: number) =>
  (ms: number): string =>
    elapsedTail(ms + before);

/** A list of names for a status line: at most `max`, then `…`. */
function names(list: readonly string[], max = 5): string {
  return list.length > max ? `${list.slice(0, max).join(', ')}, …` : list.join(', ');
}

/** What holds a waiting spawn, for `spawn --wait`'s status line (`ahead`: waiters before it in the queue of the cap that holds it). */
/** What spawnWaitText needs of a refusal (core/spawn/admission.ts `Refusal`), so this module stays below spawn. */
export interface WaitingOn {
  readonly reason: string;
  readonly message: string;
  readonly retryAt?: number | undefined;
  readonly slot?: { readonly used: number; readonly limit: number; readonly kind: string } | undefined;
}

export function spawnWaitText(req: { name: string; group: string }, d: WaitingOn, ahead: number, now: number): string {
  const place = `${ordinal(ahead + 1)} in queue`;
  const retry = d.retryAt !== undefined && d.retryAt > now ? `, retry in ${formatElapsed(d.retryAt - now + 999)}` : '';
  if (d.reason === 'no_slot' && d.slot) {
    const { used, limit } = d.slot;
    return d.slot.kind === 'group'
      ? `waiting for a slot in group ${req.group}: ${place}, ${used} of ${limit} running`
      : `waiting for an agent slot on the host: ${place}, ${used} of ${limit} agents (throttle level cap)`;
  }
  switch (d.reason) {
    case 'backoff':
      return `waiting for ${req.name}'s backoff after a failure${retry}`;
    case 'cooldown':
      return `waiting for ${req.name}'s cooldown${retry}`;
    case 'rate_limit':
      return `waiting for the host's spawn rate limit${retry}`;
    case 'no_ports':
      return `waiting for free ports: ${place}`;
    default:
      return `waiting (${d.reason}): ${d.message}`;
  }
}

/** `stop --grace`'s line: who is still being stopped. */
export function stopText(left: ReadonlyArray<{ name: string; pid: number | null }>): string {
  const who = (r: { name: string; pid: number | null }) => (r.pid !== null ? `${r.name} (pid ${r.pid})` : r.name);
  return left.length === 1 ? `stopping ${who(left[0]!)}` : `stopping ${left.length} runs: ${names(left.map(who), 3)}`;
}

/** `stop --grace`'s tail: how much of the grace has passed, then that it is over. */
export function graceTail(graceMs: number): (elapsedMs: number) => string {
  return (ms) => (ms < graceMs ? `: ${formatElapsed(ms)} of ${formatDuration(graceMs)} grace` : `: grace of ${formatDuration(graceMs)} over, killing (${formatElapsed(ms)})`);
}

/** `wait`'s line: the runs it still waits for (with --any, the first of them to end). */
export function waitText(pending: readonly string[], any: boolean): string {
  if (pending.length === 1) return `waiting for ${pending[0]!}`;
  return `waiting for ${any ? 'the first of ' : ''}${pending.length} runs: ${names(pending)}`;
}

/** `throttle-status --wait-level`'s line: the level now against the one wanted, and why. */
export function levelWaitText(r: { throttle_level: number; throttle_params: { name: string }; reasons: readonly string[] }, wanted: number): string {
  const why = r.reasons.length ? `: ${r.reasons.join('; ')}` : '';
  return `waiting for throttle level ${wanted} or below: level ${r.throttle_level} ${r.throttle_params.name}${why}`;
}

/** A timeout's tail: `, 12s of 60s`; `before`: how long the wait had lasted when its line was made. */
export function timeoutTail(timeoutMs: number, before = 0): (elapsedMs: number) => string {
  return (ms) => `, ${formatElapsed(ms + before)} of ${formatDuration(timeoutMs)}`;
}

/** env-gc's line: how far through the environments it is. */
export function envGcText(checked: number, total: number, dryRun: boolean): string {
  return `${dryRun ? 'checking' : 'removing'} environments: ${checked} of ${total}`;
}
