/** Prepared statements reused per connection of the state database (state.ts). */
import type Database from 'better-sqlite3';

type Db = Database.Database;

/** Statements kept per connection; a command that builds more distinct SQL than this starts over. */
const PREPARED_MAX = 256;

/**
 * Make `db.prepare` hand back the statement it compiled before for the same SQL: better-sqlite3
 * compiles on every call (50-100 µs), and a command asks for the same few dozen again and
 * again (each admission attempt of a --wait, each instance `up` starts). A statement is run to
 * its end by every caller (.get, .all, .run: nothing here iterates), so sharing one is safe;
 * its modes (pluck, raw, expand) would be shared too, so callers use none.
 */
export function reusePrepared(db: Db): void {
  const compile = db.prepare.bind(db);
  const kept = new Map<string, ReturnType<Db['prepare']>>();
  db.prepare = ((sql: string) => {
    let stmt = kept.get(sql);
    if (!stmt) {
      if (kept.size >= PREPARED_MAX) kept.clear();
      stmt = compile(sql);
      kept.set(sql, stmt);
    }
    return stmt;
  }) as Db['prepare'];
}
