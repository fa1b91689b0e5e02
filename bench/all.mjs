#!/usr/bin/env node
// The benchmark report: installs the peers it needs when it can (GNU parallel for sem,
// hyperfine, pm2 in a scratch prefix), runs every bench script in turn, and prints one table:
// each figure, agentctl's median, the peer's median from the same run, the ratio, the goal.
// Writes bench/results/all.json. Not part of CI: `npm run bench`.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { printTable, root } from './lib.mjs';

/** @param {string} cmd */
const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;

function ensurePeers() {
  const apt = [];
  if (!has('sem')) apt.push('parallel');
  if (!has('hyperfine')) apt.push('hyperfine');
  if (apt.length) {
    if (process.getuid?.() === 0 && has('apt-get')) {
      console.error(`installing ${apt.join(', ')} with apt-get`);
      spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
      spawnSync('apt-get', ['install', '-y', '-qq', ...apt], { stdio: 'inherit' });
    } else console.error(`missing ${apt.join(', ')}: install them (apt-get install ${apt.join(' ')}) for the peer figures`);
  }
  if (!has('pm2') && !existsSync('/tmp/pm2peer/node_modules/.bin/pm2')) {
    console.error('installing pm2 into /tmp/pm2peer (not into the project)');
    spawnSync('npm', ['install', '--prefix', '/tmp/pm2peer', '--no-audit', '--no-fund', 'pm2'], { stdio: 'inherit' });
  }
}

const SCRIPTS = ['startup', 'spawn', 'makespan', 'each', 'env', 'scale', 'doctor', 'up', 'restart'];

/** @param {string} name */
function run(name) {
  console.error(`\n== bench/${name}.mjs`);
  const r = spawnSync(process.execPath, [join(root, 'bench', `${name}.mjs`)], { stdio: 'inherit', cwd: root });
  if (r.status !== 0) console.error(`bench/${name}.mjs exited ${r.status}`);
}

function rows() {
  const out = [];
  /** @type {(n: string) => any} the JSON a bench script wrote, or undefined */
  const read = (n) => {
    try {
      return JSON.parse(readFileSync(join(root, 'bench', 'results', `${n}.json`), 'utf8'));
    } catch {
      return undefined;
    }
  };
  const startup = read('startup');
  for (const r of startup?.rows ?? [])
    if (r.name !== 'node -e 0') out.push({ figure: r.name, agentctl: r.median_ms, peer: `node -e 0: ${startup.rows[0].median_ms}`, ratio: r.ratio, goal: r.goal, ok: r.ok });
  for (const r of read('spawn')?.rows ?? []) out.push({ figure: r.figure, agentctl: r.agentctl, peer: r.peer, ratio: r.ratio, goal: r.goal, ok: r.ok });
  for (const r of read('makespan')?.rows ?? []) out.push({ figure: r.figure, agentctl: r.agentctl, peer: r.peer, ratio: r.ratio, goal: r.goal, ok: r.ok });
  for (const r of read('each')?.rows ?? []) out.push({ figure: r.figure, agentctl: r.agentctl, peer: r.peer, ratio: r.ratio, goal: r.goal, ok: r.ok });
  for (const r of read('scale')?.rows ?? []) out.push({ figure: r.figure, agentctl: r['agentctl ms'], peer: `node -e 0: ${r['node -e 0 ms']}`, ratio: r.ratio, goal: r.goal, ok: r.ok });
  for (const r of read('doctor')?.rows ?? []) out.push({ figure: r.figure, agentctl: r.median_ms, peer: `node -e 0: ${r.baseline_ms}`, ratio: r.ratio, goal: r.goal, ok: r.ok });
  for (const r of read('up')?.rows ?? []) out.push({ figure: r.figure, agentctl: r.agentctl, peer: r.peer, ratio: r.ratio, goal: r.goal, ok: r.ok });
  for (const r of read('env')?.rows ?? []) out.push({ figure: r.figure, agentctl: r.value, peer: '', ratio: '', goal: '', ok: '' });
  const rs = read('restart');
  if (rs) {
    const mb = (/** @type {number} */ kb) => Math.round((kb / 1024) * 100) / 100;
    out.push({ figure: 'waiting --restart supervisor RSS MB (the shell)', agentctl: mb(rs.shell_rss_kb_max), peer: '', ratio: '', goal: '<= 2 MB', ok: rs.meets_goal ? 'yes' : 'NO' });
    out.push({ figure: 'the same with its sleep (RSS / PSS MB)', agentctl: `${mb(rs.group_rss_kb_max)} / ${mb(rs.group_pss_kb_max)}`, peer: '', ratio: '', goal: '', ok: '' });
  }
  return out;
}

if (!process.argv.includes('--table-only')) {
  ensurePeers();
  for (const s of SCRIPTS) run(s);
}
const table = rows();
console.log('');
printTable(table, ['figure', 'agentctl', 'peer', 'ratio', 'goal', 'ok']);
writeFileSync(join(root, 'bench', 'results', 'all.json'), `${JSON.stringify({ when: new Date().toISOString(), node: process.version, rows: table }, null, 2)}\n`);
