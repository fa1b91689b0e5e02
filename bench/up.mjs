#!/usr/bin/env node
// agentctl up against its bars (issue 14, item 5), in one run, interleaved:
//   1. `up` with 20 [[agents]] entries all running vs `node -e 0`. Goal: <= 2x.
//   2. `up` with the same 20 to start vs `pm2 start ecosystem.config.js` of the same 20 apps,
//      pm2's daemon warm (started by `pm2 ping` before the first round). Goal: <= 0.5x.
// Between rounds of 2 the runs are ended untimed (`agentctl stop --all`, `pm2 delete all`).
// Throttling is off (AGENTCTL_DISABLE_THROTTLE=1): at level 0 the default cap is 5 agents.
// pm2 is looked up on PATH, then in /tmp/pm2peer (npm install --prefix /tmp/pm2peer pm2);
// without it row 2 has no peer. Usage: node bench/up.mjs [--runs N]. Writes bench/results/up.json.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bin, interleaved, median, printTable, root, round, runsFromArgv, timeOnce } from './lib.mjs';

const N = 20;
const runs = runsFromArgv(15);
const startRounds = Math.max(3, Math.round(runs / 3));
const dir = mkdtempSync(join(tmpdir(), 'agentctl-bench-up-'));
const env = { ...process.env, AGENTCTL_STATE_DIR: join(dir, 'state'), AGENTCTL_DISABLE_THROTTLE: '1' };
const names = Array.from({ length: N }, (_, i) => `s${i + 1}`);
writeFileSync(join(dir, 'agentctl.toml'), names.map((n) => `[[agents]]\nname = "${n}"\ncommand = ["sleep", "600"]\n`).join('\n'));
writeFileSync(
  join(dir, 'ecosystem.config.js'),
  `module.exports = { apps: ${JSON.stringify(names.map((n) => ({ name: n, script: 'sleep', args: '600', interpreter: 'none', autorestart: false })))} };\n`,
);

/** @param {string} cmd */
const which = (cmd) => {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
};
const pm2 = which('pm2') ?? (existsSync('/tmp/pm2peer/node_modules/.bin/pm2') ? '/tmp/pm2peer/node_modules/.bin/pm2' : undefined);
const pm2Env = { ...process.env, PM2_HOME: join(dir, 'pm2') };
const agentctl = (/** @type {string[]} */ ...args) => spawnSync(process.execPath, [bin, ...args], { cwd: dir, env, stdio: 'ignore' });

const rows = [];
try {
  // 1. all running
  agentctl('up');
  const [node, up] = interleaved(
    [
      { name: 'node -e 0', cmd: process.execPath, args: ['-e', '0'] },
      { name: 'up (20 running)', cmd: process.execPath, args: [bin, '--quiet', 'up'], opts: { cwd: dir, env } },
    ],
    runs,
  );
  const r1 = round(/** @type {any} */ (up).median_ms / /** @type {any} */ (node).median_ms, 2);
  rows.push({ figure: `up, ${N} entries all running`, agentctl: up?.median_ms, peer: `node -e 0: ${node?.median_ms}`, ratio: r1, goal: '<= 2', ok: r1 <= 2 });

  // 2. twenty to start
  if (pm2) spawnSync(pm2, ['ping'], { env: pm2Env, cwd: dir, stdio: 'ignore', timeout: 60_000 });
  const ours = [];
  const theirs = [];
  for (let i = 0; i < startRounds; i++) {
    agentctl('stop', '--all', '--grace', '0s');
    ours.push(timeOnce(process.execPath, [bin, '--quiet', 'up'], { cwd: dir, env }));
    if (pm2) {
      spawnSync(pm2, ['delete', 'all'], { env: pm2Env, cwd: dir, stdio: 'ignore', timeout: 30_000 });
      theirs.push(timeOnce(pm2, ['start', 'ecosystem.config.js'], { cwd: dir, env: pm2Env, stdio: 'ignore' }));
    }
  }
  const a = round(median(ours));
  const p = theirs.length ? round(median(theirs)) : undefined;
  const r2 = p !== undefined ? round(a / p, 2) : '';
  rows.push({
    figure: `up, ${N} entries to start`,
    agentctl: a,
    peer: p !== undefined ? `pm2 start: ${p}` : 'pm2 not found',
    ratio: r2,
    goal: '<= 0.5',
    ok: p !== undefined ? /** @type {number} */ (r2) <= 0.5 : '',
  });
} finally {
  agentctl('stop', '--all', '--grace', '2s');
  if (pm2) {
    spawnSync(pm2, ['delete', 'all'], { env: pm2Env, cwd: dir, stdio: 'ignore', timeout: 30_000 });
    spawnSync(pm2, ['kill'], { env: pm2Env, cwd: dir, stdio: 'ignore', timeout: 30_000 });
  }
  rmSync(dir, { recursive: true, force: true });
}
printTable(rows, ['figure', 'agentctl', 'peer', 'ratio', 'goal', 'ok']);
mkdirSync(join(root, 'bench', 'results'), { recursive: true });
writeFileSync(join(root, 'bench', 'results', 'up.json'), `${JSON.stringify({ when: new Date().toISOString(), node: process.version, runs, start_rounds: startRounds, rows }, null, 2)}\n`);
