#!/usr/bin/env node
// doctor --json over a state db with 1,000,000 event rows and 10,000 runs (DESIGN goal:
// <= 500 ms), the file size before and after pruning, against node -e 0 in the same run.
// Usage: npm run bench:doctor   (or: node bench/doctor.mjs [--runs 10])
import { spawnSync } from 'node:child_process';
import { statSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { State } from '../dist/core/state.js';
import { bin, interleaved, printTable, root, round, runsFromArgv } from './lib.mjs';

const RUNS = runsFromArgv(10);
const dir = mkdtempSync(join(tmpdir(), 'agentctl-bench-doctor-'));
const sd = join(dir, 'state');
const env = { ...process.env, NO_COLOR: '1', AGENTCTL_DISABLE_THROTTLE: '1' };

try {
  const s = State.open(sd);
  const now = Date.now();
  const t0 = performance.now();
  s.db.transaction(() => {
    const ev = s.db.prepare("INSERT INTO events (ts, command, kind, subject, reason, data) VALUES (?, 'spawn', ?, ?, ?, NULL)");
    for (let i = 0; i < 1_000_000; i++) ev.run(now - (1_000_000 - i) * 2000, i % 3 ? 'spawn.admitted' : 'run.exited', `worker-${i % 50}`, `r${i} admitted in group default: slot 1 of 3`);
    const run = s.db.prepare(
      "INSERT INTO runs (id, name, grp, priority, mode, state, command, cwd, started_at, ended_at, exit_code, failure) VALUES (?, ?, 'default', 3, 'detached', ?, '[\"python3\",\"worker.py\"]', '/srv', ?, ?, ?, ?)",
    );
    for (let i = 0; i < 10_000; i++) {
      const failed = i % 7 === 0;
      const start = now - (10_000 - i) * 8000;
      run.run(`rbench${String(i).padStart(6, '0')}`, `worker-${i % 50}`, failed ? 'failed' : 'exited', start, start + 5000, failed ? 1 : 0, failed ? 'crash' : null);
    }
  })();
  s.close();
  const fill = performance.now() - t0;
  const sizeBefore = statSync(join(sd, 'state.db')).size;
  // keep all 1,000,000 events while measuring: the default limits would prune them on the first run
  const keepAll = join(dir, 'keep-all.toml');
  writeFileSync(keepAll, '[state]\nevents_max_rows = 10000000\nevents_max_age = "365d"\n');
  const cases = [
    { name: 'node -e 0', cmd: process.execPath, args: ['-e', '0'], opts: { env } },
    { name: 'agentctl doctor --json (1M events, 10k runs)', cmd: process.execPath, args: [bin, '--state-dir', sd, '--config', keepAll, 'doctor', '--json'], opts: { env, allowFail: true } },
  ];
  const res = interleaved(cases, RUNS, 2);
  // then one run with the default limits: it prunes to state.events_max_rows and gives pages back
  // (pruning runs at most every 10 minutes; forget that the measured runs already looked)
  const s2 = State.open(sd);
  s2.db.prepare("DELETE FROM kv WHERE key = 'prune.last_at'").run();
  s2.close();
  const t1 = performance.now();
  const pr = spawnSync(process.execPath, [bin, '--state-dir', sd, 'doctor', '--json'], { env, encoding: 'utf8' });
  const pruneMs = performance.now() - t1;
  void pr;
  const sizeAfter = statSync(join(sd, 'state.db')).size;
  const [node, doctor] = /** @type {[typeof res[0] & {}, typeof res[0] & {}]} */ (res);
  const rows = [
    {
      figure: doctor.name,
      median_ms: doctor.median_ms,
      baseline_ms: node.median_ms,
      ratio: round(doctor.median_ms / node.median_ms, 2),
      goal: '<= 500 ms',
      ok: doctor.median_ms <= 500 ? 'yes' : 'NO',
    },
  ];
  printTable(rows, ['figure', 'median_ms', 'baseline_ms', 'ratio', 'goal', 'ok']);
  console.log(
    `\nstate.db: ${round(sizeBefore / 1048576, 1)} MiB with 1,000,000 events (filled in ${round(fill / 1000, 1)} s); ${round(sizeAfter / 1048576, 1)} MiB after one doctor run with the default limits pruned it to 200,000 events (that run took ${round(pruneMs, 0)} ms)`,
  );
  const out = join(root, 'bench', 'results', 'doctor.json');
  writeFileSync(
    out,
    `${JSON.stringify({ when: new Date().toISOString(), node: process.version, runs: RUNS, rows, state_db_bytes_before: sizeBefore, state_db_bytes_after_prune: sizeAfter, prune_run_ms: round(pruneMs, 0) }, null, 2)}\n`,
  );
  console.log(`written to ${out}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
