import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StateError } from '../../src/core/errors.js';
import { resolveStateDir, SCHEMA_VERSION, State } from '../../src/core/state.js';
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

  it('concurrent openers migrate once and all succeed', async () => {
    const dir = join(t.dir, 'race');
    mkdirSync(dir);
    // run 6 processes that open the same fresh state at once through the built library
    const children = Array.from({ length: 6 }, () =>
      spawn(process.execPath, ['--input-type=module', '-e', `import { State } from '${join(ROOT, 'dist/core/state.js')}'; const s = State.open(process.argv[1]); s.event({command:'t',kind:'k',reason:'r'}); s.close();`, dir], {
        stdio: ['ignore', 'ignore', 'pipe'],
      }),
    );
    const results = await Promise.all(children.map(async (c) => {
      let err = '';
      c.stderr!.on('data', (d) => (err += d));
      const [code] = await once(c, 'exit');
      return { code, err };
    }));
    expect(results).toEqual(results.map(() => ({ code: 0, err: '' })));
    const s = State.open(dir);
    expect(s.events().length).toBe(6);
    s.close();
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
