#!/usr/bin/env node
// restart: the memory a waiting `spawn -d --restart` supervisor costs (issue 14, goal: the
// waiting supervisor <= 2 MB RSS). N detached runs of `sh -c 'exit 1'` under
// `--restart on-failure` with a 60 s backoff: once each has ended and its supervisor waits,
// read VmRSS and PSS of the supervisor alone and of its whole group (the shell supervisor
// sleeps in a `sleep` of its group; the compiled one in itself); no node process may be left in
// the group while it waits.
//
// Usage:  node bench/restart.mjs [--runs 5]     (build first if dist/ is stale: npm run build)
//         AGENTCTL_SUPERVISOR=sh node bench/restart.mjs    the shell supervisor's figures
// Prints one table and writes bench/results/restart.json. Runs in a temp state dir, removed at
// the end; every process started is ended by its PID after checking its start time (the
// supervisors' groups through `agentctl stop --all`, then anything left one by one).
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { bin, printTable, root, round, runsFromArgv } from './lib.mjs';

const N = runsFromArgv(5);
const dir = mkdtempSync(join(tmpdir(), 'agentctl-bench-restart-'));
const sd = join(dir, 'state');
const cfg = join(dir, 'agentctl.toml');
writeFileSync(cfg, '[spawn]\nmin_uptime = "0s"\nbackoff_failure = "60s"\nbackoff_startup = "60s"\nbreaker_failures = 100\n[throttle]\nmax_agents = [100, 100, 100, 100]\n');
const env = { ...process.env, AGENTCTL_CONFIG: cfg, AGENTCTL_AGENTS_PATTERNS: `^${dir}/none ` };
const cli = (/** @type {string[]} */ args) => spawnSync(process.execPath, [bin, '--state-dir', sd, ...args], { env, cwd: dir, encoding: 'utf8' });

/** @param {number} pid */
const stat = (pid) => {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { pgid: Number(f[2]), start: f[19], state: f[0] };
  } catch {
    return undefined;
  }
};
/**
 * @param {number} pid
 * @param {RegExp} re
 * @param {string} file
 */
const kb = (pid, re, file) => Number(re.exec(readFileSync(`/proc/${pid}/${file}`, 'utf8'))?.[1] ?? NaN);
const rssKb = (/** @type {number} */ pid) => kb(pid, /VmRSS:\s+(\d+)/, 'status');
const pssKb = (/** @type {number} */ pid) => kb(pid, /^Pss:\s+(\d+)/m, 'smaps_rollup');
const comm = (/** @type {number} */ pid) => readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
/** @param {number} pgid */
const group = (pgid) =>
  readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d) && stat(Number(d))?.pgid === pgid)
    .map(Number);

const rows = () => {
  const db = new Database(join(sd, 'state.db'), { readonly: true });
  try {
    return /** @type {Array<{ id: string; sup_pid: number; restart_status: string | null }>} */ (db.prepare('SELECT id, sup_pid, restart_status FROM runs').all());
  } finally {
    db.close();
  }
};

/** @type {Array<{ pid: number; start: string | undefined }>} */
const started = [];
try {
  for (let i = 0; i < N; i++) {
    const r = cli(['spawn', '-d', '--json', '--name', `w${i}`, '--restart', 'on-failure', '--', 'sh', '-c', 'exit 1']);
    if (r.status !== 0) throw new Error(`spawn failed: ${r.stderr}`);
  }
  for (const r of rows()) started.push({ pid: r.sup_pid, start: stat(r.sup_pid)?.start });
  const until = Date.now() + 30_000;
  // waiting: the row says so and the group holds no node process (the ask has ended)
  const settled = () => rows().every((r) => r.restart_status === 'waiting' && group(r.sup_pid).every((p) => comm(p) !== 'node'));
  while (!settled()) {
    if (Date.now() > until) throw new Error('the supervisors did not settle into waiting within 30 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  const sups = rows().map((r) => {
    const members = group(r.sup_pid);
    for (const p of members) started.push({ pid: p, start: stat(p)?.start });
    return {
      run: r.id,
      supervisor: r.sup_pid,
      sup_rss_kb: rssKb(r.sup_pid),
      sup_pss_kb: pssKb(r.sup_pid),
      group: members.map((p) => comm(p)).join('+'),
      group_rss_kb: members.reduce((a, p) => a + rssKb(p), 0),
      group_pss_kb: members.reduce((a, p) => a + pssKb(p), 0),
    };
  });
  const max = (/** @type {keyof (typeof sups)[number]} */ k) => Math.max(...sups.map((s) => Number(s[k])));
  const result = {
    runs: N,
    supervisor: sups[0] ? comm(sups[0].supervisor) : '',
    goal_rss_kb: 2048,
    sup_rss_kb_max: max('sup_rss_kb'),
    sup_pss_kb_max: max('sup_pss_kb'),
    group_rss_kb_max: max('group_rss_kb'),
    group_pss_kb_max: max('group_pss_kb'),
    meets_goal: max('sup_rss_kb') <= 2048,
    supervisors: sups,
  };
  printTable(
    sups.map((s) => ({ ...s, sup_mb: round(s.sup_rss_kb / 1024, 2), group_mb: round(s.group_rss_kb / 1024, 2) })),
    ['run', 'group', 'sup_rss_kb', 'sup_pss_kb', 'group_rss_kb', 'group_pss_kb', 'sup_mb', 'group_mb'],
  );
  console.log(
    `waiting supervisor (${result.supervisor}): ${round(result.sup_rss_kb_max / 1024, 2)} MB RSS (${round(result.sup_pss_kb_max / 1024, 2)} MB PSS), its whole group ${round(result.group_rss_kb_max / 1024, 2)} MB RSS (${round(result.group_pss_kb_max / 1024, 2)} MB PSS); goal <= 2 MB: ${result.meets_goal ? 'met' : 'NOT met'}`,
  );
  mkdirSync(join(root, 'bench', 'results'), { recursive: true });
  writeFileSync(join(root, 'bench', 'results', 'restart.json'), `${JSON.stringify(result, null, 2)}\n`);
} finally {
  cli(['stop', '--all', '--grace', '1s']);
  for (const p of started) {
    if (p.start === undefined || stat(p.pid)?.start !== p.start) continue;
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  rmSync(dir, { recursive: true, force: true });
}
