/**
 * A lock in the state db, keyed on the holder's process identity: one reaper, one env-gc at a
 * time. A dead holder's lock is taken over; only the holder releases it.
 */
import { isSameProcess, type ProcessIdentity, selfIdentity } from './identity.js';
import type { State } from './state.js';

/** A lock in the state db keyed on the holder's identity; a dead holder's lock is taken over. */
export function takeLock(state: State, key: string): ProcessIdentity | undefined {
  const self = selfIdentity();
  return state.write(() => {
    const cur = state.getKv<ProcessIdentity>(key)?.value;
    if (cur && isSameProcess(cur)) return cur;
    if (self) state.setKv(key, self);
    return undefined;
  });
}

export function releaseLock(state: State, key: string): void {
  state.write(() => {
    const cur = state.getKv<ProcessIdentity>(key)?.value;
    if (cur && cur.pid === process.pid) state.db.prepare('DELETE FROM kv WHERE key = ?').run(key);
  });
}
