#!/usr/bin/env node
// Port pool and environments: lease + release throughput (in process, one IMMEDIATE
// transaction each, as env create and spawn --port do), the same end to end through the CLI
// (env create --ports 1 + env rm), and env-gc over 1,000 expired environments holding
// 2 ports each. Usage: npm run bench:env   (or: node bench/env.mjs)
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { State } from '../dist/core/state.js';
import { leasePorts, releasePorts } from '../dist/core/ports/leases.js';
import { bin, median, printTable, root, round } from './lib.mjs';

const dir = mkdtempSync(join(tmpdir(), 'agentctl-bench-env-'));
const cfg = join(dir, 'agentctl.toml');
writeFileSync(cfg, '[ports]\nrange = "30000-39999"\n');
const env = { ...process.env, NO_COLOR: '1', AGENTCTL_DISABLE_THROTTLE: '1' };
/** @type {(stateDir: string, ...args: string[]) => { ms: number; stdout: string }} */
const cli = (stateDir, ...args) => {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [bin, '--state-dir', stateDir, '--config', cfg, ...args], { env, encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`agentctl ${args.join(' ')}: exit ${r.status}: ${r.stderr}`);
  return { ms, stdout: r.stdout };
};

try {
  const rows = [];
  // 1. in-process lease + release, each in its own IMMEDIATE transaction
  {
    const s = State.open(join(dir, 'lib'));
    const range = { from: 30000, to: 39999 };
    const n = 5000;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      /** @type {import('../src/core/ports/leases.js').LeaseOwner} */
      const owner = { kind: 'run', id: `b${i}` };
      s.write(() => leasePorts(s, range, 1, owner, new Set(), Date.now()));
      s.write(() => releasePorts(s, owner));
    }
    const secs = (performance.now() - t0) / 1000;
    rows.push({ figure: 'lease + release, in process (pairs/s)', value: round(n / secs, 0), detail: `${n} pairs in ${round(secs, 2)} s` });
    s.close();
  }
  // 2. end to end through the CLI
  {
    const sd = join(dir, 'cli');
    cli(sd, 'env', 'create', 'warm');
    const times = [];
    for (let i = 0; i < 20; i++) {
      const a = cli(sd, 'env', 'create', `e${i}`, '--ports', '1');
      const b = cli(sd, 'env', 'rm', `e${i}`);
      times.push(a.ms + b.ms);
    }
    const m = median(times);
    rows.push({ figure: 'env create --ports 1 + env rm, CLI (pairs/s)', value: round(1000 / m, 1), detail: `median ${round(m, 1)} ms per pair over 20` });
  }
  // 3. env-gc over 1,000 expired environments with 2 ports each
  {
    const sd = join(dir, 'gc');
    const s = State.open(sd);
    const now = Date.now();
    s.db.transaction(() => {
      const ins = s.db.prepare('INSERT INTO envs (name, created_at, expires_at) VALUES (?, ?, ?)');
      const lease = s.db.prepare("INSERT INTO port_leases (port, owner_kind, owner, leased_at) VALUES (?, 'env', ?, ?)");
      for (let i = 0; i < 1000; i++) {
        ins.run(`old-${i}`, now - 2 * 86_400_000, now - 86_400_000);
        lease.run(30000 + 2 * i, `old-${i}`, now);
        lease.run(30001 + 2 * i, `old-${i}`, now);
      }
    })();
    s.close();
    const r = cli(sd, 'env-gc', '--json');
    const doc = /** @type {{ actions: Array<{ action: string }> }} */ (JSON.parse(r.stdout));
    const removed = doc.actions.filter((a) => a.action === 'removed').length;
    rows.push({ figure: 'env-gc over 1,000 expired environments (ms)', value: round(r.ms, 0), detail: `${removed} removed, ${removed * 2} ports released` });
  }
  printTable(rows, ['figure', 'value', 'detail']);
  const out = join(root, 'bench', 'results', 'env.json');
  writeFileSync(out, `${JSON.stringify({ when: new Date().toISOString(), node: process.version, rows }, null, 2)}\n`);
  console.log(`\nwritten to ${out}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
