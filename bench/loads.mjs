#!/usr/bin/env node
// What one lazily loaded module costs the first time it loads, measured inside fresh Node
// processes (wall and CPU time around the load alone), so the number is free of process
// start-up and of most of the noise a shared host adds to whole runs. These are the costs a
// run that does not need the module is spared; bench/variants.mjs measures whole runs.
// docs/architecture.md ("Start-up") records the numbers and the decisions made from them.
// Each case runs from a file: `node -e` loads node:crypto and others before any code runs.
// Usage: node bench/loads.mjs [--runs 40]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { median, printTable, root, round, runsFromArgv } from './lib.mjs';

const runs = runsFromArgv(40);
// a config's display entries as loadConfig hashes them: about 3 KB of JSON
const sample = JSON.stringify(Array.from({ length: 70 }, (_, i) => [`section.key_${i}`, `value ${i} ${'x'.repeat(20)}`]));
// the built function itself (dist/, so run npm run build first), its source handed to each fresh process
const fnv = (await import(pathToFileURL(join(root, 'dist', 'core', 'config', 'load.js')).href)).fnv1a64.toString();
const cases = [
  { name: 'fnv1a64 of the config (the hand-made hash)', code: `${fnv}\nMEASURE(() => fnv1a64(S))` },
  { name: "require('node:crypto') + sha256 of the config", code: "MEASURE(() => require('node:crypto').createHash('sha256').update(S).digest('hex').slice(0, 16))" },
  { name: "require('smol-toml')", code: "MEASURE(() => req('smol-toml'))" },
  { name: "require('cli-table3')", code: "MEASURE(() => req('cli-table3'))" },
  { name: "require('node:child_process')", code: "MEASURE(() => require('node:child_process'))" },
  { name: "import('chalk') (ES module loader)", code: "MEASURE(() => import(req.resolve('chalk')))" },
  { name: "require('systeminformation')", code: "MEASURE(() => req('systeminformation'))" },
  { name: "import('ps-list') (ES module loader)", code: "MEASURE(() => import(req.resolve('ps-list')))" },
];
const prelude = `
const req = require('node:module').createRequire(${JSON.stringify(join(root, 'package.json'))});
const S = ${JSON.stringify(sample)};
async function MEASURE(fn) {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await fn();
  const wall = Number(process.hrtime.bigint() - t0) / 1e6;
  const c = process.cpuUsage(c0);
  process.stdout.write(JSON.stringify({ wall, cpu: (c.user + c.system) / 1000 }));
}
`;

const dir = mkdtempSync(join(tmpdir(), 'agentctl-loads-'));
const files = cases.map((c, j) => {
  const f = join(dir, `case${j}.cjs`);
  writeFileSync(f, `${prelude}\n${c.code}\n`);
  return f;
});
/** @typedef {{ wall: number[]; cpu: number[] }} Times */
const times = cases.map(() => /** @type {Times} */ ({ wall: [], cpu: [] }));
for (let i = 0; i < runs + 2; i++) {
  cases.forEach((c, j) => {
    const r = spawnSync(process.execPath, [/** @type {string} */ (files[j])], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${c.name}: ${r.stderr}`);
    if (i < 2) return; // warm-up
    const { wall, cpu } = JSON.parse(r.stdout);
    /** @type {Times} */ (times[j]).wall.push(wall);
    /** @type {Times} */ (times[j]).cpu.push(cpu);
  });
}
rmSync(dir, { recursive: true, force: true });
printTable(
  cases.map((c, j) => ({ load: c.name, wall_ms: round(median(/** @type {Times} */ (times[j]).wall), 2), cpu_ms: round(median(/** @type {Times} */ (times[j]).cpu), 2) })),
  ['load', 'wall_ms', 'cpu_ms'],
);
console.log(`\nmedians of ${runs} fresh processes each, interleaved; node ${process.version}`);
