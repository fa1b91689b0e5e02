/**
 * Reading the audit log back: filters, the redaction of what older builds stored unredacted,
 * and `events --follow`, which prints new events as commands commit them. A follower sleeps
 * on a watch of the state folder (every commit writes the database's WAL there) with a poll
 * of FOLLOW_POLL_MS as the floor, so it costs nothing while nothing happens.
 */
import { type FSWatcher, watch } from 'node:fs';
import type { EventRow, State } from './state.js';
import { redactArgv, redactText } from './text.js';

/** The longest a follower sleeps without a look, for file systems where watching fails. */
export const FOLLOW_POLL_MS = 1000;

export interface EventFilter {
  readonly kind?: string | undefined;
  readonly command?: string | undefined;
}

/** Strings inside an event's data, redacted like its reason: rows written before redaction may hold secrets. */
export function redactData(v: unknown): unknown {
  if (typeof v === 'string') return redactText(v);
  // a list of strings may be a command line: a secret flag's value is the next word
  if (Array.isArray(v)) return v.every((x) => typeof x === 'string') ? redactArgv(v) : v.map(redactData);
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, redactData(x)]));
  return v;
}

/** An event as it is shown: reason and data redacted. */
export function shownEvent(e: EventRow): EventRow {
  return { ...e, reason: redactText(e.reason), data: e.data === null ? null : (redactData(e.data) as Record<string, unknown>) };
}

/** The events after `afterId` and up to `upTo` that pass the filter, oldest first, at most `limit`. */
export function eventsAfter(state: State, afterId: number, upTo: number, filter: EventFilter, limit = 1000): EventRow[] {
  const where = ['id > ?', 'id <= ?'];
  const args: unknown[] = [afterId, upTo];
  if (filter.kind !== undefined) {
    where.push('kind = ?');
    args.push(filter.kind);
  }
  if (filter.command !== undefined) {
    where.push('command = ?');
    args.push(filter.command);
  }
  const sql = `SELECT id, ts, command, kind, subject, reason, data FROM events WHERE ${where.join(' AND ')} ORDER BY id LIMIT ?`;
  const rows = state.guard(() => state.db.prepare(sql).all(...args, limit)) as Array<Omit<EventRow, 'data'> & { data: string | null }>;
  return rows.map((r) => ({ ...r, data: r.data === null ? null : (JSON.parse(r.data) as Record<string, unknown>) }));
}

/** The newest event id, or 0: where a follower that prints nothing old starts. */
export function lastEventId(state: State): number {
  return (state.guard(() => state.db.prepare('SELECT MAX(id) AS id FROM events').get()) as { id: number | null }).id ?? 0;
}

/**
 * Call `out` with each event after `afterId` that passes the filter, in order, as they are
 * committed, until a SIGINT or SIGTERM; returns which.
 */
export async function followEvents(state: State, afterId: number, filter: EventFilter, out: (e: EventRow) => void, opts: { pollMs?: number } = {}): Promise<'SIGINT' | 'SIGTERM'> {
  let wake: (() => void) | undefined;
  let signal: 'SIGINT' | 'SIGTERM' | undefined;
  const onInt = () => {
    signal = 'SIGINT';
    wake?.();
  };
  const onTerm = () => {
    signal = 'SIGTERM';
    wake?.();
  };
  process.once('SIGINT', onInt);
  process.once('SIGTERM', onTerm);
  let watcher: FSWatcher | undefined;
  try {
    // not persistent: the poll timer keeps the process alive, the watch never does
    watcher = watch(state.paths.dir, { persistent: false }, () => wake?.());
    watcher.on('error', () => watcher?.close());
  } catch {
    watcher = undefined; // plain polling
  }
  let last = afterId;
  try {
    while (!signal) {
      // ids are handed out under the write lock, so every event up to the newest id seen is
      // committed: the filter's misses are skipped for good, not scanned again at every wake
      const upTo = lastEventId(state);
      for (;;) {
        const batch = eventsAfter(state, last, upTo, filter);
        for (const e of batch) out(e);
        if (batch.length < 1000) break;
        last = batch[batch.length - 1]!.id;
      }
      last = Math.max(last, upTo);
      if (signal) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, opts.pollMs ?? FOLLOW_POLL_MS);
        function done() {
          clearTimeout(timer);
          wake = undefined;
          resolve();
        }
        wake = done;
      });
    }
  } finally {
    watcher?.close();
    process.removeListener('SIGINT', onInt);
    process.removeListener('SIGTERM', onTerm);
  }
  return signal;
}
