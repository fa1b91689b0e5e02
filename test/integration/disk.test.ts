/**
 * A full disk and a read-only state folder: a clear error, never a stack trace, and nothing
 * half-written (the state file stays a consistent database). Needs root to mount a tiny tmpfs;
 * skipped where that is not possible.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { State } from '../../src/core/state.js';
import { cleanEnv, parseJson, runCli, tempDir } from '../helpers.js';

const t = tempDir();
const mnt = join(t.dir, 'small');
/** A 1 MiB tmpfs of our own, when we may mount one (root); the tests are skipped otherwise. */
function tryMount(): boolean {
  if (process.getuid?.() !== 0) return false;
  mkdirSync(mnt);
  return spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt]).status === 0;
}
const mounted = tryMount();

afterAll(() => {
  if (mounted) execFileSync('umount', [mnt]);
  try {
    rmdirSync(mnt);
  } catch {
    /* not made */
  }
  t.cleanup();
});

const env = () => cleanEnv({ AGENTCTL_DISABLE_THROTTLE: '1' });
const sd = () => join(mnt, 'state');

describe('disk full and read-only state', () => {
  it.runIf(mounted)('a full disk: a clear error, no stack trace, and the database stays consistent', async () => {
    // a working state first, then fill the file system to the last byte
    expect((await runCli(['--state-dir', sd(), 'env', 'create', 'before'], { env: env() })).code).toBe(0);
    spawnSync('dd', ['if=/dev/zero', `of=${join(mnt, 'filler')}`, 'bs=4k'], { stdio: 'ignore' });
    const results = [];
    try {
      for (let i = 0; i < 20; i++) results.push(await runCli(['--state-dir', sd(), 'env', 'create', `e${i}`, '--ports', '3', '--json'], { env: env() }));
    } finally {
      spawnSync('rm', ['-f', join(mnt, 'filler')]);
    }
    const failed = results.filter((r) => r.code !== 0);
    expect(failed.length).toBeGreaterThan(0);
    for (const r of failed) {
      expect(r.stderr).not.toMatch(/\n\s+at /);
      expect(r.stderr).not.toMatch(/internal error/);
      expect(parseJson<{ error: { reason: string } }>(r.stdout).error.reason).toMatch(/^state_(disk_full|io_error|unwritable|locked)$/);
      expect(r.stderr).toMatch(/state file .*state\.db: (disk full|disk I\/O error)/);
    }
    const s = State.open(sd());
    expect(s.quickCheck()).toEqual(['ok']);
    // every environment that exists has its ports: nothing half-created
    const envs = s.db.prepare('SELECT name FROM envs').all() as Array<{ name: string }>;
    for (const e of envs) expect((s.db.prepare("SELECT COUNT(*) AS n FROM port_leases WHERE owner_kind = 'env' AND owner = ?").get(e.name) as { n: number }).n).toBeGreaterThan(0);
    s.close();
  });

  it.runIf(mounted)('a read-only state folder: a clear error naming the file', async () => {
    await runCli(['--state-dir', sd(), 'ps'], { env: env() });
    execFileSync('mount', ['-o', 'remount,ro', mnt]);
    try {
      const r = await runCli(['--state-dir', sd(), 'env', 'create', 'ro'], { env: env() });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`state file ${sd()}/state\\.db`));
      expect(r.stderr).not.toMatch(/\n\s+at /);
    } finally {
      execFileSync('mount', ['-o', 'remount,rw', mnt]);
    }
    writeFileSync(join(mnt, 'ok'), 'writable again');
  });
});
