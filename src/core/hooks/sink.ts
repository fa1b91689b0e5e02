/**
 * Where `[[hooks]]` meet the state: `State.onEvent` hands this each event after its write
 * commits; once the command's current work is done (the next turn of the event loop) the
 * events that match a hook are handed to one detached runner (fire.ts, loaded only then). No
 * I/O inside a transaction, nothing loaded and nothing spawned when no hook matches, and the
 * command never waits for a hook.
 *
 * A long-running command (`spawn --each`, `wait`, `logs -f`) writes events on many turns: after
 * its first runner it starts at most one a second, each with every firing since the last, and
 * after MAX_FIRINGS firings in all it fires nothing more (the runner of the batch that crossed
 * the cap records one `hook.dropped`). A command run by a hook (AGENTCTL_HOOK_NAME is in its
 * environment) fires no hooks at all: a hook on `*` that runs agentctl would fire itself again.
 */
import type { HookSpec } from '../config/types.js';
import type { EventRow } from '../state.js';
import { type Firing, HOOK_MARK_VAR, hookMatches, isHookKind } from '../event-kinds.js';

export type { Firing } from '../event-kinds.js';

/** Firings one command hands on in all; past it the rest are dropped (recorded once). */
export const MAX_FIRINGS = 1000;
/** After a command's first runner, at most one more per this long. */
export const LAUNCH_EVERY_MS = 1_000;

/** The firings these events make, hook by hook in event order. */
export function firingsFor(hooks: readonly HookSpec[], events: ReadonlyArray<Pick<EventRow, 'id' | 'kind' | 'ts'>>): Firing[] {
  const out: Firing[] = [];
  for (const e of events) hooks.forEach((h, i) => hookMatches(h.on, e.kind) && out.push({ hook: i, event: e.id, kind: e.kind, ts: e.ts }));
  return out;
}

export interface SinkDeps {
  /** the effective hooks; may throw (a broken config fires nothing) */
  readonly hooks: () => readonly HookSpec[];
  readonly stateDir: () => string;
  readonly env: NodeJS.ProcessEnv;
  /** starts the runner: the face passes fire.ts's launchRunner, loaded only when a hook fires */
  readonly launch: (stateDir: string, hooks: readonly HookSpec[], firings: readonly Firing[], dropped: number) => void;
  readonly now?: () => number;
}

/**
 * The State.onEvent of a command: collects events and fires the matching hooks, the first
 * batch on the next turn, later ones at most once per LAUNCH_EVERY_MS (a timer that keeps the
 * process up until it has run, so the last events are not lost), MAX_FIRINGS in all.
 * Undefined when the command was started by a hook: then it fires none.
 */
export function hookSink(deps: SinkDeps): ((e: EventRow) => void) | undefined {
  if (deps.env[HOOK_MARK_VAR] !== undefined) return undefined;
  const now = deps.now ?? Date.now;
  const launch = deps.launch;
  let pending: EventRow[] = [];
  let lastLaunch: number | undefined;
  let sent = 0;
  let dropping = false; // past MAX_FIRINGS, and the runner told to record it
  const flush = () => {
    const events = pending;
    pending = [];
    if (dropping) return;
    let hooks: readonly HookSpec[];
    try {
      hooks = deps.hooks();
    } catch {
      return; // the command reports a broken config itself when it needs it
    }
    if (hooks.length === 0) return;
    const firings = firingsFor(hooks, events);
    if (firings.length === 0) return;
    const kept = firings.slice(0, MAX_FIRINGS - sent);
    const dropped = firings.length - kept.length;
    sent += kept.length;
    dropping = dropped > 0;
    lastLaunch = now();
    launch(deps.stateDir(), hooks, kept, dropped);
  };
  return (e) => {
    if (isHookKind(e.kind) || dropping) return;
    if (pending.push(e) > 1) return; // a flush is already due
    const wait = lastLaunch === undefined ? 0 : lastLaunch + LAUNCH_EVERY_MS - now();
    if (wait <= 0) setImmediate(flush);
    else setTimeout(flush, wait);
  };
}
