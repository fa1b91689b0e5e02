#!/usr/bin/env node
// fleet: what a fleet-wide cap (issue #15) costs a spawn. Median wall time of
// `agentctl spawn -d --group claude -- sleep 30` with `claude` capped fleet-wide on a local
// PostgreSQL (a throwaway cluster) against the same spawn with no [fleet] at all, interleaved
// in one run. Two ways to reach it: its unix socket (trust, as a local database is usually
// reached) and TCP on 127.0.0.1 with a password (SCRAM-SHA-256: PBKDF2 and WebCrypto in the
// client). Goal: fleet <= 1.3x local.
//
// Usage:  node bench/fleet.mjs [--runs 20]   (build first: npm run build; needs Debian's
//         postgresql package: scripts/ci-deps.sh). Under root the cluster runs as `postgres`.
// Prints one table and writes bench/results/fleet.json. The cluster, the state dirs and every
// run are removed or ended at the end (runs by `agentctl stop`, the cluster by pg_ctl).
import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { bin, median, printTable, root, round, runsFromArgv } from './lib.mjs';

const RUNS = runsFromArgv(20);
const WARMUP = 3;
const PASSWORD = 'bench-password';

const pgBin = (() => {
  const base = '/usr/lib/postgresql';
  const v = existsSync(base) ? readdirSync(base).sort((a, b) => Number(b) - Number(a))[0] : undefined;
  if (!v) throw new Error('PostgreSQL is not installed: run scripts/ci-deps.sh');
  return join(base, v, 'bin');
})();

const work = mkdtempSync(join(tmpdir(), 'agentctl-bench-fleet-'));
const isRoot = process.getuid?.() === 0;
/** @param {string} name @param {string[]} args */
const tool = (name, args) => {
  const argv = isRoot ? ['runuser', '-u', 'postgres', '--', join(pgBin, name), ...args] : [join(pgBin, name), ...args];
  const r = spawnSync(/** @type {string} */ (argv[0]), argv.slice(1), { cwd: work, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${name} failed: ${r.stderr}`);
};

const port = await new Promise((resolve) => {
  const s = createServer().listen(0, '127.0.0.1', () => {
    const p = /** @type {import('node:net').AddressInfo} */ (s.address()).port;
    s.close(() => resolve(p));
  });
});

const data = join(work, 'data');
const env = { ...process.env, AGENTCTL_DISABLE_THROTTLE: '1', AGENTCTL_SPAWN_COUNT_UNMANAGED: 'false' };
/** @typedef {'local' | 'socket' | 'tcp'} Case */
/** @type {Case[]} */
const CASES = ['local', 'socket', 'tcp'];
/** @type {Record<Case, string>} */
const states = { local: join(work, 'local'), socket: join(work, 'socket'), tcp: join(work, 'tcp') };
/** @type {Record<Case, string>} */
const configs = { local: join(work, 'local.toml'), socket: join(work, 'socket.toml'), tcp: join(work, 'tcp.toml') };
/** @param {Case} which @param {string[]} args */
const cli = (which, args) => spawnSync(process.execPath, [bin, '--config', configs[which], '--state-dir', states[which], ...args], { env, encoding: 'utf8' });

try {
  writeFileSync(join(work, 'pw'), `${PASSWORD}\n`);
  if (isRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString());
    chownSync(work, uid, gid);
    chownSync(join(work, 'pw'), uid, gid);
  }
  tool('initdb', ['-D', data, '-U', 'bench', `--pwfile=${join(work, 'pw')}`, '--auth-local=trust', '--auth-host=scram-sha-256', '--no-sync']);
  tool('pg_ctl', ['start', '-w', '-D', data, '-l', join(work, 'log'), '-o', `-c listen_addresses=127.0.0.1 -p ${port} -k ${work}`]);
  writeFileSync(configs.local, '[spawn]\ncooldown = "0s"\n');
  /** @param {string} url */
  const fleet = (url) => `[fleet]\nurl = "${url}"\nhost_id = "bench"\n\n[fleet.caps]\nclaude = 100000\n`;
  writeFileSync(configs.tcp, fleet(`postgres://bench:${PASSWORD}@127.0.0.1:${port}/postgres`));
  writeFileSync(configs.socket, fleet(`postgres://bench@localhost:${port}/postgres?host=${encodeURIComponent(work)}`));
  const init = cli('tcp', ['fleet', 'init']);
  if (init.status !== 0) throw new Error(`fleet init: ${init.stderr}`);

  /** @type {Record<Case, number[]>} */
  const times = { local: [], socket: [], tcp: [] };
  let n = 0;
  /** @param {Case} which */
  const once = (which) => {
    const name = `${which}-${n++}`;
    const t0 = process.hrtime.bigint();
    const r = cli(which, ['spawn', '-d', '--group', 'claude', '--name', name, '--', 'sleep', '30']);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (r.status !== 0) throw new Error(`spawn (${which}) exited ${r.status}: ${r.stderr}`);
    return ms;
  };
  for (let i = 0; i < WARMUP; i++) for (const w of CASES) once(w);
  for (let i = 0; i < RUNS; i++) {
    // rotate which goes first, so drift in the host's load hits every case alike
    for (let j = 0; j < CASES.length; j++) {
      const w = /** @type {Case} */ (CASES[(i + j) % CASES.length]);
      times[w].push(once(w));
    }
  }
  const local = median(times.local);
  const label = { local: 'spawn -d, no [fleet]', socket: 'spawn -d, fleet cap, unix socket', tcp: 'spawn -d, fleet cap, TCP + SCRAM' };
  const rows = CASES.map((c) => ({
    case: label[c],
    median_ms: round(median(times[c])),
    min_ms: round(Math.min(...times[c])),
    ...(c === 'local' ? {} : { ratio: round(median(times[c]) / local, 2) }),
  }));
  printTable(rows, ['case', 'median_ms', 'min_ms', 'ratio']);
  const result = { runs: RUNS, load: loadavg().map((l) => round(l, 2)), goal: 'fleet <= 1.3x local', rows };
  writeFileSync(join(root, 'bench', 'results', 'fleet.json'), `${JSON.stringify(result, null, 2)}\n`);
  console.log(`load ${result.load.join(' ')}; goal: fleet <= 1.3x local`);
} finally {
  for (const w of CASES) if (existsSync(states[w])) cli(w, ['stop', '--all', '--grace', '1s']);
  if (existsSync(join(data, 'postmaster.pid'))) tool('pg_ctl', ['stop', '-m', 'immediate', '-D', data]);
  rmSync(work, { recursive: true, force: true });
}
