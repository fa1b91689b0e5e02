/**
 * The event kinds agentctl writes (docs/events.md lists the same; a unit test checks both
 * against the source), and which kinds a `[[hooks]]` entry's `on` picks. Loaded with the
 * config: no I/O, nothing else imported.
 */

/** Every kind an event can have, `area.what`. */
export const EVENT_KINDS = [
  'throttle.level',
  'throttle.refused',
  'throttle.wait_done',
  'throttle.wait_timeout',
  'spawn.admitted',
  'spawn.trial',
  'spawn.refused',
  'spawn.queued',
  'spawn.wait_timeout',
  'fleet.unreachable',
  'run.exited',
  'run.failed',
  'run.lost',
  'run.stopped',
  'run.timeout',
  'run.adopted',
  'breaker.open',
  'breaker.closed',
  'breaker.reset',
  'dlq.add',
  'dlq.retry',
  'restart.waiting',
  'restart.gave_up',
  'restart.ended',
  'env.created',
  'env.removed',
  'env.gc_refused',
  'reap.gone',
  'reap.pid_reused',
  'reap.timeout',
  'reap.hung',
  'reap.shed',
  'reap.orphan',
  'stop.done',
  'dedupe.ended',
  'doctor.run',
  'doctor.fail',
  'doctor.recovered',
  'doctor.fix',
  'up.done',
  'down.done',
  'hook.failed',
  'hook.dropped',
] as const;

/** Kinds no hook fires for: a hook's own failure firing hooks could loop. */
export const isHookKind = (kind: string): boolean => kind.startsWith('hook.');

/**
 * What is wrong with one `on` entry, or undefined: an exact known kind, `area.*` for a known
 * area, or `*` for every kind. `hook.*` kinds never fire hooks, so naming them is an error.
 */
export function onProblem(on: string): string | undefined {
  if (isHookKind(on)) return `${on}: hook events never fire hooks (a failing hook would fire itself)`;
  if (on === '*') return undefined;
  if (on.endsWith('.*')) {
    const area = on.slice(0, -1);
    return EVENT_KINDS.some((k) => k.startsWith(area)) ? undefined : `${JSON.stringify(on)} names no area; accepted areas: ${areas().join(', ')}`;
  }
  return (EVENT_KINDS as readonly string[]).includes(on) ? undefined : `${JSON.stringify(on)} is not an event kind; accepted: ${EVENT_KINDS.filter((k) => !isHookKind(k)).join(', ')}, AREA.* or *`;
}

const areas = (): string[] => [...new Set(EVENT_KINDS.filter((k) => !isHookKind(k)).map((k) => `${k.split('.')[0]!}.*`))];

/** Does a hook listening for `on` fire for an event of `kind`? Never for `hook.*`. */
export function hookMatches(on: readonly string[], kind: string): boolean {
  if (isHookKind(kind)) return false;
  return on.some((o) => o === '*' || o === kind || (o.endsWith('.*') && kind.startsWith(o.slice(0, -1))));
}

/**
 * One hook to fire for one event: an index into the hooks, and the event's id, kind and time
 * (the runner reads the event back by id and sends it only when kind and time still match: an
 * id a rolled-back write used can be used again by another event).
 */
export interface Firing {
  readonly hook: number;
  readonly event: number;
  readonly kind: string;
  readonly ts: number;
}

/** The variable a hook's command gets: set, agentctl fires no hooks. */
export const HOOK_MARK_VAR = 'AGENTCTL_HOOK_NAME';
