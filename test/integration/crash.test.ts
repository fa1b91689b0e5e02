/**
 * kill -9 at random points inside spawn, env create, reap and env-gc (seeded, reproducible):
 * after the next command the state is consistent — no slot or port held by a dead owner, no
 * PID file without a live identity, quick_check ok. A run whose process or supervisor was
 * alive just before that command is not a dead owner if its process ends meanwhile: its
 * `sleep` simply finished, and its supervisor records that for the command after.
 *
 * Size and seed (today's values are the defaults; CI runs them):
 *   AGENTCTL_CRASH_INJECTIONS=200   commands killed, each followed by a check of the state
 *   AGENTCTL_CRASH_SEED=7           the seed that picks commands and kill times
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { getIdentity, sameIdentity } from '../../src/core/identity.js';
import { State } from '../../src/core/state.js';
import { BIN, cleanEnv, rng, runCli, sizeFromEnv, tempDir } from '../helpers.js';

const SEED = sizeFromEnv('AGENTCTL_CRASH_SEED', 7);
const INJECTIONS = sizeFromEnv('AGENTCTL_CRASH_INJECTIONS', 200);

const t = tempDir();
const sd = join(t.dir, 'state');
const cfg = join(t.dir, 'agentctl.toml');
writeFileSync(cfg, '[ports]\nrange = "25000-25199"\n[spawn]\nbackoff_startup = "0s"\nbackoff_failure = "0s"\nbreaker_failures = 1000\nmax_restarts_per_hour = 100000\n');
const env = cleanEnv({ AGENTCTL_DISABLE_THROTTLE: '1', AGENTCTL_SPAWN_COUNT_UNMANAGED: '0' });
const base = ['--state-dir', sd, '--config', cfg];

afterAll(() => {
  // end every run any injection managed to start, by its process group
  const s = State.open(sd);
  const rows = s.db.prepare('SELECT pid, start_time, boot_id FROM runs WHERE pid IS NOT NULL').all() as Array<{ pid: number; start_time: string; boot_id: string }>;
  s.close();
  for (const r of rows) {
    const now = getIdentity(r.pid);
    if (now && sameIdentity(now, { pid: r.pid, startTime: r.start_time, bootId: r.boot_id })) {
      try {
        process.kill(-r.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
  t.cleanup();
});

/** Run agentctl and SIGKILL it (by PID) after `delayMs`, if it is still running. */
async function killDuring(args: string[], delayMs: number): Promise<void> {
  const child = spawn(process.execPath, [BIN, ...base, ...args], { env, cwd: t.dir, stdio: 'ignore' });
  const exited = once(child, 'exit');
  const timer = setTimeout(() => child.kill('SIGKILL'), delayMs);
  await exited;
  clearTimeout(timer);
}

type OpenRun = { id: string; name: string; state: string; pid: number | null; start_time: string | null; boot_id: string | null; sup_pid: number | null; sup_start_time: string | null };
const openRuns = (s: State) => s.db.prepare('SELECT id, name, state, pid, start_time, boot_id, sup_pid, sup_start_time FROM runs WHERE ended_at IS NULL').all() as OpenRun[];
const processAlive = (r: OpenRun) => {
  const now = r.pid !== null ? getIdentity(r.pid) : undefined;
  return r.pid !== null && now !== undefined && r.start_time === now.startTime && r.boot_id === now.bootId;
};
const supervisorAlive = (r: OpenRun) => r.sup_pid !== null && getIdentity(r.sup_pid)?.startTime === r.sup_start_time;

/**
 * Open runs whose process or supervisor is alive right now, taken just before the next
 * command. Such a run's process may end while that command runs or after it: that is an
 * ordinary exit the following command records (its supervisor, or its foreground agentctl,
 * is recording it), not a slot left to a dead owner.
 */
function ownedRuns(): Set<string> {
  const s = State.open(sd);
  try {
    return new Set(
      openRuns(s)
        .filter((r) => processAlive(r) || supervisorAlive(r))
        .map((r) => r.id),
    );
  } finally {
    s.close();
  }
}

function consistent(where: string, owned: Set<string>): string[] {
  const problems: string[] = [];
  const s = State.open(sd);
  try {
    const qc = s.quickCheck();
    if (qc.join() !== 'ok') problems.push(`${where}: quick_check ${qc.join('; ')}`);
    const live = openRuns(s);
    for (const r of live) {
      if (!processAlive(r) && !owned.has(r.id)) problems.push(`${where}: run ${r.id} (${r.name}, ${r.state}) holds a slot without a live process`);
    }
    const liveIds = new Set(live.map((r) => r.id));
    const envs = new Set((s.db.prepare('SELECT name FROM envs').all() as Array<{ name: string }>).map((e) => e.name));
    for (const l of s.db.prepare('SELECT port, owner_kind, owner FROM port_leases').all() as Array<{ port: number; owner_kind: string; owner: string }>) {
      if (l.owner_kind === 'run' && !liveIds.has(l.owner)) problems.push(`${where}: port ${l.port} held by ended run ${l.owner}`);
      if (l.owner_kind === 'env' && !envs.has(l.owner)) problems.push(`${where}: port ${l.port} held by missing env ${l.owner}`);
    }
    let pidFiles: string[] = [];
    try {
      pidFiles = readdirSync(join(sd, 'pids')).filter((f) => f.endsWith('.pid'));
    } catch {
      /* none yet */
    }
    for (const f of pidFiles) {
      const meta = JSON.parse(readFileSync(join(sd, 'pids', f), 'utf8').split('\n')[1] ?? '{}') as { run_id: string; pid: number; start_time: string; boot_id: string };
      const now = getIdentity(meta.pid);
      if ((!now || !sameIdentity(now, { pid: meta.pid, startTime: meta.start_time, bootId: meta.boot_id })) && !(liveIds.has(meta.run_id) && owned.has(meta.run_id))) {
        problems.push(`${where}: PID file ${f} names no live process`);
      }
    }
  } finally {
    s.close();
  }
  return problems;
}

describe('kill -9 inside commands', () => {
  it(`${INJECTIONS} injections (seed ${SEED}) leave the state consistent after the next command`, async () => {
    const r = rng(SEED);
    const problems: string[] = [];
    for (let i = 0; i < INJECTIONS; i++) {
      const kind = ['spawn', 'env', 'reap', 'env-gc'][Math.floor(r() * 4)]!;
      const delay = Math.floor(r() * 150);
      const args =
        kind === 'spawn'
          ? ['spawn', '-d', '--name', `w${i}`, '--port', '1', '--', 'sleep', String(1 + Math.floor(r() * 3))]
          : kind === 'env'
            ? ['env', 'create', `e${i}`, '--ports', '2', '--ttl', r() < 0.5 ? '1s' : '10m']
            : kind === 'reap'
              ? ['reap', '--timeout', '2s', '--grace', '200ms']
              : ['env-gc'];
      await killDuring(args, delay);
      // the next command: ps reconciles runs; env-gc now and then collects expired envs
      const owned = ownedRuns();
      await runCli([...base, 'ps'], { env, cwd: t.dir });
      problems.push(...consistent(`injection ${i} (${kind} killed after ${delay} ms, seed ${SEED})`, owned));
      if (problems.length) break;
      if (i % 25 === 24) await runCli([...base, 'reap', '--timeout', '1s', '--grace', '100ms'], { env, cwd: t.dir });
    }
    expect(problems).toEqual([]);
  }, 600_000);
});
