import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, existsSync, mkdirSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StateError } from '../../src/core/errors.js';
import Database from 'better-sqlite3';
import { MIGRATIONS, SCHEMA_VERSION } from '../../src/core/schema.js';
import { resolveStateDir, State } from '../../src/core/state.js';
import { ROOT, tempDir, thrown } from '../helpers.js';

let t: ReturnType<typeof tempDir>;
beforeEach(() => (t = tempDir()));
afterEach(() => t.cleanup());

const limits = { eventsMaxAgeMs: 86_400_000, eventsMaxRows: 1000, samplesMaxAgeMs: 3_600_000, samplesMaxRows: 100 };

const stateErr = (fn: () => unknown): StateError => thrown(StateError, fn);

describe('state db', () => {
  it('creates a private folder, WAL mode and the current schema', () => {
    const dir = join(t.dir, 'a', 'state');
    const s = State.open(dir);
    try {
      expect(statSync(dir).mode & 0o777).toBe(0o700);
      expect(s.db.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(s.db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
      expect(s.quickCheck()).toEqual(['ok']);
    } finally {
      s.close();
    }
    // reopening is a no-op
    const again = State.open(dir);
    expect(again.db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    again.close();
  });

  it('records and filters events', () => {
    const s = State.open(t.dir);
    s.event({ command: 'throttle-status', kind: 'throttle.level', subject: 'level 2', reason: 'memory 82% >= 80%', data: { to: 2 } }, 1000);
    s.event({ command: 'spawn', kind: 'spawn.refused', reason: 'no slot' }, 2000);
    s.event({ command: 'spawn', kind: 'spawn.refused', reason: 'cooldown' }, 3000);
    expect(s.events().map((e) => e.reason)).toEqual(['memory 82% >= 80%', 'no slot', 'cooldown']);
    expect(s.events({ sinceMs: 2000 }).length).toBe(2);
    expect(s.events({ kind: 'throttle.level' })[0]!.data).toEqual({ to: 2 });
    expect(s.events({ command: 'spawn', limit: 1 }).map((e) => e.reason)).toEqual(['cooldown']);
    s.close();
  });

  it('prunes history by age and by count, at most once per interval', () => {
    const s = State.open(t.dir);
    const now = 100 * 86_400_000;
    const insert = s.db.prepare("INSERT INTO events (ts, command, kind, reason) VALUES (?, 'x', 'k', 'r')");
    s.db.transaction(() => {
      for (let i = 0; i < 10; i++) insert.run(now - 2 * 86_400_000); // too old
      for (let i = 0; i < 1500; i++) insert.run(now - 1000); // over the row limit by 500
    })();
    const r = s.prune(limits, now)!;
    expect(r.events).toBe(510);
    expect((s.db.prepare('SELECT COUNT(*) n FROM events').get() as { n: number }).n).toBe(1000);
    insert.run(now);
    expect(s.prune(limits, now + 1000)).toBeUndefined(); // not yet time
    expect(s.prune(limits, now + 1000, true)!.events).toBe(1);
    s.close();
  });

  it('a file that is not a database: clear error naming the file', () => {
    writeFileSync(join(t.dir, 'state.db'), 'this is not sqlite, just text that happens to be long enough '.repeat(100));
    const e = stateErr(() => State.open(t.dir));
    expect(e.message).toContain(join(t.dir, 'state.db'));
    expect(e.message).toMatch(/not a usable SQLite database/);
    expect(e.exitCode).toBe(1);
  });

  it('a state path that is a file, not a folder', () => {
    const file = join(t.dir, 'f');
    writeFileSync(file, 'x');
    expect(stateErr(() => State.open(file)).message).toMatch(/is not a folder/);
  });

  it('a version 6 state gains the usage columns, its runs kept with usage unknown', () => {
    mkdirSync(t.dir, { recursive: true, mode: 0o700 });
    const db = new Database(join(t.dir, 'state.db'));
    db.pragma('journal_mode = WAL');
    for (const m of MIGRATIONS.slice(0, 6)) db.exec(m);
    db.pragma('user_version = 6');
    db.prepare(
      "INSERT INTO runs (id, name, grp, priority, mode, state, command, cwd, started_at, ended_at, failure) VALUES ('r000001', 'w', 'default', 3, 'detached', 'failed', '[]', '/', 1, 2, 'crash')",
    ).run();
    db.close();
    const s = State.open(t.dir);
    try {
      expect(s.db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
      expect(s.db.prepare('SELECT id, failure, cpu_ms, peak_rss_bytes FROM runs').all()).toEqual([{ id: 'r000001', failure: 'crash', cpu_ms: null, peak_rss_bytes: null }]);
    } finally {
      s.close();
    }
  });

  it('a schema newer than this build', () => {
    const s = State.open(t.dir);
    s.db.pragma(`user_version = ${SCHEMA_VERSION + 5}`);
    s.close();
    expect(stateErr(() => State.open(t.dir)).message).toMatch(/newer than this agentctl knows/);
  });

  it('a lock held past the busy timeout: exit 75 naming the file', async () => {
    State.open(t.dir).close();
    // another process holds the write lock for 2 s
    const holder = spawn(
      process.execPath,
      [
        '-e',
        `const D = require('better-sqlite3'); const db = new D(process.argv[1]); db.exec('BEGIN IMMEDIATE'); console.log('locked'); setTimeout(() => { db.exec('COMMIT'); process.exit(0); }, 2000);`,
        join(t.dir, 'state.db'),
      ],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      await once(holder.stdout!, 'data');
      const s = State.open(t.dir, { busyTimeoutMs: 200 });
      const e = stateErr(() => s.write(() => s.event({ command: 'x', kind: 'k', reason: 'r' })));
      expect(e.exitCode).toBe(75);
      expect(e.message).toMatch(/locked by another process/);
      s.close();
    } finally {
      if (holder.exitCode === null) {
        const exited = once(holder, 'exit');
        holder.kill('SIGKILL');
        await exited;
      }
    }
  });
});

describe('trust: state belongs to the invoking user or root and only its owner can write it', () => {
  const untrusted = (dir: string) => {
    const e = stateErr(() => State.open(dir));
    expect(e.reason).toBe('state_untrusted');
    expect(e.exitCode).toBe(1);
    expect(e.message).not.toContain('\n');
    return e;
  };

  it('a fresh state is created private: folder 0700, state.db and its -wal and -shm 0600', () => {
    const dir = join(t.dir, 'fresh');
    const s = State.open(dir);
    try {
      s.event({ command: 't', kind: 'k', reason: 'r' }); // WAL files exist while it is open
      expect(statSync(dir).mode & 0o7777).toBe(0o700);
      for (const f of ['state.db', 'state.db-wal', 'state.db-shm']) expect(statSync(join(dir, f)).mode & 0o7777, f).toBe(0o600);
    } finally {
      s.close();
    }
  });

  it('a state.db of ours that others can read (an older agentctl under umask 022) is made 0600', () => {
    State.open(t.dir).close();
    chmodSync(join(t.dir, 'state.db'), 0o644);
    State.open(t.dir).close();
    expect(statSync(join(t.dir, 'state.db')).mode & 0o7777).toBe(0o600);
  });

  it('a group-writable folder (0775) is refused with its path, owner, mode and the fix; nothing is written', () => {
    const dir = join(t.dir, 'shared');
    mkdirSync(dir);
    chmodSync(dir, 0o775);
    const e = untrusted(dir);
    expect(e.message).toContain(`state folder ${dir} is owned by `);
    expect(e.message).toContain(`(uid ${process.geteuid!()}), mode 0775`);
    expect(e.message).toContain(`writable by group or others; fix: chmod 700 ${dir}`);
    expect(e.file).toBe(dir);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('a state dir that is a symbolic link is refused, not followed', () => {
    const real = join(t.dir, 'real');
    mkdirSync(real, { mode: 0o700 });
    const link = join(t.dir, 'link');
    symlinkSync(real, link);
    expect(untrusted(link).message).toBe(`state folder ${link} is a symbolic link (to ${real}); agentctl never follows links in its state: pass --state-dir with the real folder (${real})`);
    expect(readdirSync(real)).toEqual([]);
    // a dangling link is not created through either
    const dangling = join(t.dir, 'dangling');
    symlinkSync(join(t.dir, 'nowhere'), dangling);
    untrusted(dangling);
    expect(existsSync(join(t.dir, 'nowhere'))).toBe(false);
  });

  it('state.db, its -wal, and the pids, logs and runs folders are checked too', () => {
    State.open(t.dir).close();
    const db = join(t.dir, 'state.db');
    chmodSync(db, 0o666);
    expect(untrusted(t.dir).message).toContain(`state file ${db} is owned by `);
    expect(untrusted(t.dir).message).toContain(`mode 0666: writable by group or others; fix: chmod 600 ${db}`);
    chmodSync(db, 0o600);
    writeFileSync(`${db}-wal`, '', { mode: 0o620 });
    chmodSync(`${db}-wal`, 0o620);
    expect(untrusted(t.dir).file).toBe(`${db}-wal`);
    chmodSync(`${db}-wal`, 0o600);
    for (const sub of ['pids', 'logs', 'runs']) {
      mkdirSync(join(t.dir, sub), { mode: 0o700 });
      chmodSync(join(t.dir, sub), 0o777);
      expect(untrusted(t.dir).file).toBe(join(t.dir, sub));
      chmodSync(join(t.dir, sub), 0o700);
    }
    symlinkSync('/tmp', join(t.dir, 'logs2'));
    State.open(t.dir).close(); // everything private again: accepted
  });

  it('a state.db that is a symbolic link is refused', () => {
    const elsewhere = join(t.dir, 'elsewhere.db');
    writeFileSync(elsewhere, '', { mode: 0o600 });
    symlinkSync(elsewhere, join(t.dir, 'state.db'));
    expect(untrusted(t.dir).message).toMatch(/state file .*state\.db is a symbolic link .*remove the link/);
  });
});

describe('state dir resolution', () => {
  it('flag > AGENTCTL_STATE_DIR > XDG_STATE_HOME > ~/.local/state', () => {
    expect(resolveStateDir('/a', { AGENTCTL_STATE_DIR: '/b', XDG_STATE_HOME: '/c' }, '/h')).toEqual({ dir: '/a', source: '--state-dir' });
    expect(resolveStateDir(undefined, { AGENTCTL_STATE_DIR: '/b', XDG_STATE_HOME: '/c' }, '/h')).toEqual({ dir: '/b', source: 'AGENTCTL_STATE_DIR' });
    expect(resolveStateDir(undefined, { XDG_STATE_HOME: '/c' }, '/h')).toEqual({ dir: '/c/agentctl', source: 'XDG_STATE_HOME' });
    expect(resolveStateDir(undefined, {}, '/h')).toEqual({ dir: '/h/.local/state/agentctl', source: 'default' });
  });
});
