/**
 * The state database: one SQLite file per host, WAL mode, a busy timeout, numbered
 * migrations. Every command opens it, acts inside short transactions, and closes it.
 * Writes that decide something use BEGIN IMMEDIATE: a deferred transaction that upgrades
 * to a write fails at once with SQLITE_BUSY_SNAPSHOT instead of waiting its turn.
 */
import Database from 'better-sqlite3';
import { reusePrepared } from './prepared.js';
import { chmodSync, existsSync, lstatSync, readlinkSync, type Stats } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { EXIT, StateError } from './errors.js';
import { createPrivateFile, ensurePrivateDir, trustFix, untrusted } from './fsutil.js';
import { MIGRATIONS, SCHEMA_VERSION } from './schema.js';
import { dependencyFile } from './modules.js';

type Db = Database.Database;

/** How long a command waits for another's write lock before giving up. @default 5000 ms */
export const DEFAULT_BUSY_TIMEOUT_MS = 5_000;

/** Pruning runs at most this often; it is cheap, but not free on every call. */
export const PRUNE_EVERY_MS = 10 * 60_000;

let addonPath: string | null | undefined;
/**
 * The compiled addon's path. Passing it skips the `bindings` package's search through a dozen
 * candidate folders on every start; null falls back to that search (e.g. a debug build).
 */
export function nativeBinding(): string | null {
  if (addonPath !== undefined) return addonPath;
  try {
    const pkg = dependencyFile('better-sqlite3', 'package.json', 'better-sqlite3/package.json');
    const p = join(dirname(pkg), 'build', 'Release', 'better_sqlite3.node');
    addonPath = existsSync(p) ? p : null;
  } catch {
    addonPath = null;
  }
  return addonPath;
}

export interface StatePaths {
  readonly dir: string;
  readonly db: string;
  readonly pids: string;
  readonly logs: string;
  /** per-run files of detached runs */
  readonly runs: string;
}

/** --state-dir, else $AGENTCTL_STATE_DIR, else $XDG_STATE_HOME/agentctl, else ~/.local/state/agentctl. */
export function resolveStateDir(flag: string | undefined, env: NodeJS.ProcessEnv = process.env, home = homedir()): { dir: string; source: string } {
  if (flag) return { dir: flag, source: '--state-dir' };
  if (env.AGENTCTL_STATE_DIR) return { dir: env.AGENTCTL_STATE_DIR, source: 'AGENTCTL_STATE_DIR' };
  if (env.XDG_STATE_HOME) return { dir: join(env.XDG_STATE_HOME, 'agentctl'), source: 'XDG_STATE_HOME' };
  return { dir: join(home, '.local', 'state', 'agentctl'), source: 'default' };
}

export function statePaths(dir: string): StatePaths {
  return { dir, db: join(dir, 'state.db'), pids: join(dir, 'pids'), logs: join(dir, 'logs'), runs: join(dir, 'runs') };
}

/** lstat, or undefined when nothing has the name. */
function lstatOrNone(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Refuse a state folder or file someone else could have planted or could change: a symlink
 * (never followed: it could point at another user's files), or anything not owned by the
 * invoking user or root, or writable by group or others. One line with the path, owner, mode
 * and the fix, as ssh does for ~/.ssh. Nothing is created or changed.
 */
function checkStateTrust(path: string, st: Stats, kind: 'folder' | 'file'): void {
  const what = kind === 'folder' ? 'state folder' : 'state file';
  if (st.isSymbolicLink()) {
    let target = '?';
    try {
      target = readlinkSync(path);
    } catch {
      /* gone meanwhile */
    }
    const fix = kind === 'folder' ? `pass --state-dir with the real folder (${target})` : `remove the link (rm ${path})`;
    throw new StateError(`${what} ${path} is a symbolic link (to ${target}); agentctl never follows links in its state: ${fix}`, path, EXIT.failed, 'state_untrusted');
  }
  const u = untrusted(st);
  if (!u) return;
  const fix = trustFix(path, u, kind === 'folder' ? '700' : '600');
  throw new StateError(`${what} ${path} is ${u.what}: ${u.why}; fix: ${fix}, or pass --state-dir with a folder of your own`, path, EXIT.failed, 'state_untrusted');
}

/** An event: one decision or action, with its reason. */
export interface EventInput {
  readonly command: string;
  readonly kind: string;
  readonly subject?: string | undefined;
  readonly reason: string;
  readonly data?: Record<string, unknown> | undefined;
}

export interface EventRow {
  readonly id: number;
  readonly ts: number;
  readonly command: string;
  readonly kind: string;
  readonly subject: string | null;
  readonly reason: string;
  readonly data: Record<string, unknown> | null;
}

export interface PruneLimits {
  readonly eventsMaxAgeMs: number;
  readonly eventsMaxRows: number;
  readonly samplesMaxAgeMs: number;
  readonly samplesMaxRows: number;
}

/** Turn a SQLite or file-system failure into a message that names the file and what to do. */
export function stateError(err: unknown, file: string): StateError {
  if (err instanceof StateError) return err;
  const code = (err as { code?: string }).code ?? '';
  const msg = (err as Error).message ?? String(err);
  if (code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_CORRUPT')) {
    return new StateError(`state file ${file} is not a usable SQLite database (${msg}); move it aside (mv ${file} ${file}.bad) to start with fresh state`, file, EXIT.failed, 'state_corrupt');
  }
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return new StateError(`state file ${file} stayed locked by another process past the busy timeout; try again`, file, EXIT.tryLater, 'state_locked');
  }
  if (code.startsWith('SQLITE_IOERR')) {
    const dir = file.replace(/\/[^/]*$/, '');
    return new StateError(`state file ${file}: disk I/O error (${code}); is the disk full or failing? check free space in ${dir}`, file, EXIT.failed, 'state_io_error');
  }
  if (code === 'SQLITE_FULL' || code === 'ENOSPC') {
    return new StateError(`state file ${file}: disk full; free space in ${file.replace(/\/[^/]*$/, '')}`, file, EXIT.failed, 'state_disk_full');
  }
  if (code.startsWith('SQLITE_READONLY') || code.startsWith('SQLITE_CANTOPEN') || code === 'EACCES' || code === 'EROFS' || code === 'EPERM') {
    return new StateError(`state file ${file} cannot be opened for writing (${msg}); check the folder's permissions or pass --state-dir`, file, EXIT.failed, 'state_unwritable');
  }
  if (code === 'ENOENT' && /mkdir/.test(msg)) {
    return new StateError(`state folder for ${file} cannot be created (${msg}); pass --state-dir with a writable folder`, file, EXIT.failed, 'state_unwritable');
  }
  if (code === 'ENOTDIR' || code === 'EEXIST') {
    return new StateError(`state folder for ${file} is not a folder (${msg}); pass --state-dir`, file, EXIT.failed, 'state_unwritable');
  }
  return new StateError(`state file ${file}: ${msg}`, file);
}

/** An open state database. Methods map SQLite failures to StateError. */
export class State {
  readonly paths: StatePaths;
  readonly db: Db;

  private constructor(paths: StatePaths, db: Db) {
    this.paths = paths;
    this.db = db;
  }

  /** Open (creating if needed) the state in `dir`, migrate it, and return it. */
  static open(dir: string, opts: { busyTimeoutMs?: number } = {}): State {
    const paths = statePaths(dir);
    let db: Db | undefined;
    try {
      // Check what is there before creating anything, then again after: a folder created
      // meanwhile by someone else is caught the second time.
      const folder = () => {
        const st = lstatOrNone(dir);
        if (st && !st.isSymbolicLink() && !st.isDirectory()) {
          throw new StateError(`state folder ${dir} is not a folder; pass --state-dir with a folder path`, paths.db, EXIT.failed, 'state_unwritable');
        }
        if (st) checkStateTrust(dir, st, 'folder');
        return st;
      };
      if (!folder()) {
        ensurePrivateDir(dir);
        folder();
      }
      const dbStat = lstatOrNone(paths.db);
      if (dbStat?.isDirectory()) {
        throw new StateError(`state file ${paths.db} is a folder, not a database`, paths.db, EXIT.failed, 'state_corrupt');
      }
      // SQLite would create the file with the umask's mode; create it 0600 first (its -wal and
      // -shm files take the database file's mode)
      if (!dbStat) createPrivateFile(paths.db);
      for (const f of [paths.db, `${paths.db}-wal`, `${paths.db}-shm`]) {
        const st = lstatOrNone(f);
        if (!st) continue;
        checkStateTrust(f, st, 'file');
        // a file of ours that others can read (made by an older agentctl under umask 022) is
        // made private: command lines and environments are recorded in it
        if ((st.mode & 0o077) !== 0 && st.uid === process.geteuid?.()) chmodSync(f, 0o600);
      }
      for (const d of [paths.pids, paths.logs, paths.runs]) {
        const st = lstatOrNone(d);
        if (st) checkStateTrust(d, st, 'folder');
      }
      const binding = nativeBinding();
      db = new Database(paths.db, { timeout: opts.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS, ...(binding ? { nativeBinding: binding } : {}) });
      // a new file gives pages back as history is pruned: set before anything is written,
      // switching to WAL included, or it only takes effect after a VACUUM
      if ((db.prepare('SELECT COUNT(*) AS n FROM sqlite_master').get() as { n: number }).n === 0) db.pragma('auto_vacuum = INCREMENTAL');
      // journal_mode needs a lock only when it changes; once WAL, it stays WAL in the file.
      if ((db.pragma('journal_mode', { simple: true }) as string).toLowerCase() !== 'wal') db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.pragma('foreign_keys = ON');
      reusePrepared(db);
      const state = new State(paths, db);
      state.migrate();
      return state;
    } catch (err) {
      try {
        db?.close();
      } catch {
        /* closing a broken handle */
      }
      throw stateError(err, paths.db);
    }
  }

  private migrate(): void {
    const version = this.db.pragma('user_version', { simple: true }) as number;
    if (version === SCHEMA_VERSION) return;
    if (version > SCHEMA_VERSION) {
      throw new StateError(
        `state file ${this.paths.db} has schema version ${version}, newer than this agentctl knows (${SCHEMA_VERSION}); upgrade agentctl or use another --state-dir`,
        this.paths.db,
        EXIT.failed,
        'state_too_new',
      );
    }
    this.db
      .transaction(() => {
        // Re-read inside the write lock: a concurrent opener may have migrated meanwhile.
        const v = this.db.pragma('user_version', { simple: true }) as number;
        for (let i = v; i < SCHEMA_VERSION; i++) this.db.exec(MIGRATIONS[i]!);
        if (v < SCHEMA_VERSION) this.db.pragma(`user_version = ${SCHEMA_VERSION}`);
      })
      .immediate();
  }

  /** Work to do once the outermost write commits (see afterCommit). */
  private committed: Array<() => void> = [];

  /**
   * Run `fn` in a BEGIN IMMEDIATE transaction, mapping failures to StateError. Inside another
   * write it becomes a savepoint of that one.
   */
  write<T>(fn: () => T): T {
    const outermost = !this.db.inTransaction;
    let result: T;
    try {
      result = this.guard(() => this.db.transaction(fn).immediate());
    } catch (err) {
      if (outermost) this.committed = [];
      throw err;
    }
    if (outermost) {
      const todo = this.committed;
      this.committed = [];
      for (const f of todo) f();
    }
    return result;
  }

  /**
   * Call `f` once what the current write did is committed and others can see it (at once
   * outside a write); never when the outermost write rolls back. For hints to other processes
   * that something changed: a savepoint rolled back inside a write that commits still calls it.
   */
  afterCommit(f: () => void): void {
    if (this.db.inTransaction) this.committed.push(f);
    else f();
  }

  /** Run `fn`, mapping SQLite failures to StateError. */
  guard<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      if ((err as { code?: unknown }).code !== undefined || err instanceof StateError) throw stateError(err, this.paths.db);
      throw err;
    }
  }

  /**
   * Called with each event once the write that added it commits, never inside it (the face sets
   * it to fire `[[hooks]]`: core/hooks/). Unset, an event costs its INSERT alone.
   */
  onEvent: ((e: EventRow) => void) | undefined;

  /** Append an event (inside the caller's transaction if there is one). */
  event(e: EventInput, now = Date.now()): void {
    const added = this.guard(() =>
      this.db
        .prepare('INSERT INTO events (ts, command, kind, subject, reason, data) VALUES (?, ?, ?, ?, ?, ?)')
        .run(now, e.command, e.kind, e.subject ?? null, e.reason, e.data === undefined ? null : JSON.stringify(e.data)),
    );
    const sink = this.onEvent;
    if (sink) {
      const row: EventRow = { id: Number(added.lastInsertRowid), ts: now, command: e.command, kind: e.kind, subject: e.subject ?? null, reason: e.reason, data: e.data ?? null };
      this.afterCommit(() => sink(row));
    }
  }

  /** Events at or after `sinceMs`, oldest first, at most `limit` (the newest ones). */
  events(opts: { sinceMs?: number; limit?: number; kind?: string; command?: string } = {}): EventRow[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (opts.sinceMs !== undefined) {
      where.push('ts >= ?');
      args.push(opts.sinceMs);
    }
    if (opts.kind !== undefined) {
      where.push('kind = ?');
      args.push(opts.kind);
    }
    if (opts.command !== undefined) {
      where.push('command = ?');
      args.push(opts.command);
    }
    const sql = `SELECT id, ts, command, kind, subject, reason, data FROM events ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`;
    args.push(opts.limit ?? 1000);
    const rows = this.guard(() => this.db.prepare(sql).all(...args)) as Array<Omit<EventRow, 'data'> & { data: string | null }>;
    return rows.reverse().map((r) => ({ ...r, data: r.data === null ? null : (JSON.parse(r.data) as Record<string, unknown>) }));
  }

  getKv<T>(key: string): { value: T; updatedAt: number } | undefined {
    const row = this.guard(() => this.db.prepare('SELECT value, updated_at FROM kv WHERE key = ?').get(key)) as { value: string; updated_at: number } | undefined;
    if (!row) return undefined;
    try {
      return { value: JSON.parse(row.value) as T, updatedAt: row.updated_at };
    } catch {
      return undefined;
    }
  }

  setKv(key: string, value: unknown, now = Date.now()): void {
    this.guard(() =>
      this.db
        .prepare('INSERT INTO kv (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at')
        .run(key, JSON.stringify(value), now),
    );
  }

  /**
   * Prune history tables by age and row count, at most once per PRUNE_EVERY_MS (or always
   * with `force`). Returns how many rows went, or undefined when it was not yet time.
   */
  prune(limits: PruneLimits, now = Date.now(), force = false): { events: number; samples: number; sightings: number } | undefined {
    // most calls are not due: find that out without taking the write lock
    const seen = this.getKv<number>('prune.last_at');
    if (!force && seen && now - seen.value < PRUNE_EVERY_MS) return undefined;
    const result = this.write(() => {
      const last = this.getKv<number>('prune.last_at');
      if (!force && last && now - last.value < PRUNE_EVERY_MS) return undefined;
      const byAge = (table: string, maxAgeMs: number) => this.db.prepare(`DELETE FROM ${table} WHERE ts < ?`).run(now - maxAgeMs).changes;
      // ids grow with time, so "keep the newest N" is one range delete on the primary key
      const byCount = (table: string, maxRows: number) => this.db.prepare(`DELETE FROM ${table} WHERE id <= (SELECT MAX(id) FROM ${table}) - ?`).run(maxRows).changes;
      const events = byAge('events', limits.eventsMaxAgeMs) + byCount('events', limits.eventsMaxRows);
      const samples = byAge('samples', limits.samplesMaxAgeMs) + byCount('samples', limits.samplesMaxRows);
      // process sightings follow the samples limits, by when each was last seen
      const sightings =
        this.db.prepare('DELETE FROM sightings WHERE last_seen < ?').run(now - limits.samplesMaxAgeMs).changes +
        this.db.prepare('DELETE FROM sightings WHERE last_seen <= (SELECT last_seen FROM sightings ORDER BY last_seen DESC LIMIT 1 OFFSET ?)').run(limits.samplesMaxRows).changes;
      // ended runs follow the events limits (the newest events_max_rows kept); live runs are never
      // pruned, nor ended ones whose supervisor waits to restart them (their row is the restart)
      const ended = "ended_at IS NOT NULL AND restart_status IS NOT 'waiting'";
      this.db.prepare(`DELETE FROM runs WHERE ${ended} AND ended_at < ?`).run(now - limits.eventsMaxAgeMs);
      this.db.prepare(`DELETE FROM runs WHERE ${ended} AND started_at < (SELECT started_at FROM runs ORDER BY started_at DESC LIMIT 1 OFFSET ?)`).run(limits.eventsMaxRows - 1);
      this.setKv('prune.last_at', now, now);
      return { events, samples, sightings };
    });
    // hand freed pages back to the file system (files created with auto_vacuum=INCREMENTAL)
    if (result && result.events + result.samples + result.sightings > 0) this.guard(() => this.db.pragma('incremental_vacuum'));
    return result;
  }

  /** SQLite's quick_check: "ok" or the first problems it found. */
  quickCheck(): string[] {
    return this.guard(() => (this.db.pragma('quick_check') as Array<{ quick_check: string }>).map((r) => r.quick_check));
  }

  close(): void {
    try {
      this.db.close();
    } catch {
      /* already closed */
    }
  }
}
