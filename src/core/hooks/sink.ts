/**
 * Where `[[hooks]]` meet the state: `State.onEvent` hands this each event after its write
 * commits; once the command's current work is done (the next turn of the event loop) the
 * events that match a hook are handed to one detached runner (fire.ts, loaded only then). No
 * I/O inside a transaction, nothing loaded and nothing spawned when no hook matches, and the
 * command never waits for a hook.
 */
import type { HookSpec } from '../config/types.js';
import type { EventRow } from '../state.js';
import { hookMatches, isHookKind } from './kinds.js';

/** One hook to fire for one event: indexes into the hooks and ids of the events. */
export interface Firing {
  readonly hook: number;
  readonly event: number;
}

/** The firings these events make, hook by hook in event order. */
export function firingsFor(hooks: readonly HookSpec[], events: ReadonlyArray<Pick<EventRow, 'id' | 'kind'>>): Firing[] {
  const out: Firing[] = [];
  for (const e of events) hooks.forEach((h, i) => hookMatches(h.on, e.kind) && out.push({ hook: i, event: e.id }));
  return out;
}

export interface SinkDeps {
  /** the effective hooks; may throw (a broken config fires nothing) */
  readonly hooks: () => readonly HookSpec[];
  readonly stateDir: () => string;
  readonly env: NodeJS.ProcessEnv;
}

/** The State.onEvent of a command: collects events, fires the matching hooks after the command's turn. */
export function hookSink(deps: SinkDeps): (e: EventRow) => void {
  let pending: EventRow[] = [];
  const flush = () => {
    const events = pending;
    pending = [];
    let hooks: readonly HookSpec[];
    try {
      hooks = deps.hooks();
    } catch {
      return; // the command reports a broken config itself when it needs it
    }
    if (hooks.length === 0) return;
    const firings = firingsFor(hooks, events);
    if (firings.length === 0) return;
    void import('./fire.js').then((m) => m.launchRunner(deps.stateDir(), hooks, firings, deps.env)).catch(() => undefined);
  };
  return (e) => {
    if (isHookKind(e.kind)) return;
    if (pending.push(e) === 1) setImmediate(flush);
  };
}
