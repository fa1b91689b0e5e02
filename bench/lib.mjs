// Shared helpers for bench scripts: where things are, --runs, interleaved runs, medians, one table.
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project root and the agentctl binary every bench runs. */
export const root = fileURLToPath(new URL('..', import.meta.url));
export const bin = join(root, 'bin', 'agentctl');

/**
 * `--runs N` from the command line, or `fallback`.
 * @param {number} fallback
 */
export function runsFromArgv(fallback) {
  const i = process.argv.indexOf('--runs');
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}

/**
 * @typedef {import('node:child_process').SpawnSyncOptions & { allowFail?: boolean }} TimeOpts
 * @typedef {{ name: string; cmd: string; args: string[]; opts?: TimeOpts }} Case
 */

/**
 * Time one command run (ms, wall clock), failing loudly when it fails.
 * @param {string} cmd
 * @param {readonly string[]} args
 * @param {TimeOpts} [opts]
 */
export function timeOnce(cmd, args, opts = {}) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], ...opts });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0 && !opts.allowFail) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return ms;
}

/** @param {readonly number[]} xs a non-empty list */
export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  const mid = /** @type {number} */ (s[m]);
  const below = /** @type {number} */ (s[m - 1]);
  return s.length % 2 ? mid : (below + mid) / 2;
};

/**
 * Run each case `runs` times, interleaved (a b c a b c ...) so drift in machine load hits
 * every case alike; returns the median per case.
 */
/**
 * @param {readonly Case[]} cases
 * @param {number} runs
 */
export function interleaved(cases, runs, warmup = 3) {
  for (let i = 0; i < warmup; i++) for (const c of cases) timeOnce(c.cmd, c.args, c.opts);
  const times = cases.map(() => /** @type {number[]} */ ([]));
  for (let i = 0; i < runs; i++) cases.forEach((c, j) => /** @type {number[]} */ (times[j]).push(timeOnce(c.cmd, c.args, c.opts)));
  return cases.map((c, j) => ({ name: c.name, median_ms: round(median(/** @type {number[]} */ (times[j]))), min_ms: round(Math.min(.../** @type {number[]} */ (times[j]))), runs }));
}

/** @param {number} n */
export const round = (n, d = 1) => Math.round(n * 10 ** d) / 10 ** d;

/**
 * @param {ReadonlyArray<Record<string, unknown>>} rows
 * @param {readonly string[]} cols
 */
export function printTable(rows, cols) {
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c] ?? '').length)));
  const line = (/** @type {readonly unknown[]} */ vals) => vals.map((v, i) => String(v ?? '').padEnd(/** @type {number} */ (widths[i]))).join('  ');
  console.log(line(cols));
  console.log(line(widths.map((w) => '-'.repeat(w))));
  for (const r of rows) console.log(line(cols.map((c) => r[c])));
}

/**
 * @typedef {{ name: string; bin: string; state: string }} Build
 */

/**
 * The builds named on the command line as NAME=CHECKOUT (each checkout built; the first is the
 * baseline), each with its agentctl and a fresh state folder; exits 2 with `usage` when none.
 * @param {string} usage
 * @param {string} prefix of the state folders' names
 * @returns {[Build, ...Build[]]} never empty, so `builds[0]` is the baseline
 */
export function buildsFromArgv(usage, prefix) {
  const builds = process.argv
    .slice(2)
    .filter((a, i, all) => a.includes('=') && all[i - 1] !== '--runs' && all[i - 1] !== '--cases')
    .map((a) => {
      const [name, dir] = [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)];
      return { name, bin: join(resolve(dir), 'bin', 'agentctl'), state: mkdtempSync(join(tmpdir(), `${prefix}-${name}-`)) };
    });
  if (builds.length === 0) {
    console.error(usage);
    process.exit(2);
  }
  return /** @type {[Build, ...Build[]]} */ (builds);
}
