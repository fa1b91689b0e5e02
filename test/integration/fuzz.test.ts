/**
 * Argument fuzzing through the real binary: generated argv lists over every command (random
 * flags, values, unicode, empty strings, huge numbers). Never a stack trace, never an
 * undocumented exit code, always one JSON document under --json. Seeded: a failure names its
 * seed and argv, and reruns the same way.
 *
 * Size and seed (today's values are the defaults; CI runs them):
 *   AGENTCTL_FUZZ_CASES=1000      argv lists generated and run, 4 at a time
 *   AGENTCTL_FUZZ_SEED=20261122   the generator's seed
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { programSpec } from '../../src/cli/completion-spec.js';
import { cleanEnv, rng, runCli, sizeFromEnv } from '../helpers.js';

const SEED = sizeFromEnv('AGENTCTL_FUZZ_SEED', 20261122);
const CASES = sizeFromEnv('AGENTCTL_FUZZ_CASES', 1000);
const CONCURRENCY = 4;
const DOCUMENTED = new Set([0, 1, 2, 69, 75, 78]);

const VALUES = [
  '',
  '0',
  '-1',
  '3',
  '1.5',
  '99999999999999999999',
  'NaN',
  '1e309',
  '30s',
  '0ms',
  '5x',
  '366d',
  '1h30m',
  '512M',
  '2G',
  'lots',
  'ñame',
  '名前',
  '🔥',
  '../etc',
  'a/b',
  'a b',
  'x'.repeat(300),
  '--',
  '-',
  '--json',
  'bash',
  'ls',
  'reset',
  'retry',
  'create',
  'rm',
  '20000-20999',
  'true',
  '\u0007',
  'null',
  '{}',
];

/** Commands the fuzzer must not run for real on the host: only with --dry-run or inert scope. */
const GUARD: Record<string, string[]> = {
  'dedupe-workers': ['--dry-run', '--match', '^agentctl-fuzz-never-matches$'],
  reap: ['--dry-run'],
  stop: ['--dry-run'],
  'env-gc': ['--dry-run'],
};

function makeCase(r: () => number, spec: ReturnType<typeof programSpec>): string[] {
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(r() * xs.length)]!;
  // top, --watch and --follow run until interrupted by design, and --each reads stdin until it
  // ends (a file of lines, or `-`); everything else must finish on its own
  const cmd = r() < 0.05 ? { name: pick(VALUES), options: [], args: [], subcommands: [], description: '' } : pick(spec.subcommands.filter((c) => c.name !== 'top'));
  const argv: string[] = [cmd.name];
  const opts = [...cmd.options, ...spec.options].filter((o) => !['--state-dir', '--config', '--watch', '--follow', '--each'].includes(o.long));
  const n = Math.floor(r() * 5);
  for (let i = 0; i < n; i++) {
    const roll = r();
    if (roll < 0.6 && opts.length) {
      const o = pick(opts);
      argv.push(o.long);
      if (o.value === 'required' || (o.value === 'optional' && r() < 0.5)) argv.push(o.choices && r() < 0.5 ? pick(o.choices) : pick(VALUES));
    } else if (roll < 0.8) argv.push(pick(VALUES));
    else argv.push(`--${pick(['bogus', 'max', 'wait', 'json', 'name'])}${r() < 0.3 ? `=${pick(VALUES)}` : ''}`);
  }
  if (cmd.name === 'spawn') argv.push('--', pick(['true', 'sh', 'definitely-not-a-command-xyz']), ...(r() < 0.5 ? ['-c', 'exit 3'] : []));
  if (GUARD[cmd.name]) argv.push(...GUARD[cmd.name]!);
  if (r() < 0.5) argv.push('--json');
  return argv;
}

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('argument fuzzing', () => {
  it(`${CASES} generated argv lists (seed ${SEED}): documented exit codes, no stack traces, JSON under --json`, async () => {
    const spec = programSpec();
    const r = rng(SEED);
    const cases = Array.from({ length: CASES }, () => makeCase(r, spec));
    const failures: string[] = [];
    let next = 0;
    const worker = async () => {
      for (;;) {
        const i = next++;
        if (i >= cases.length) return;
        const dir = mkdtempSync(join(tmpdir(), 'agentctl-fuzz-'));
        dirs.push(dir);
        // a short-lived, throttle-free world per case; throttle-status --watch and --wait would block: bound them
        const argv = cases[i]!;
        const res = await runCli(['--state-dir', join(dir, 'state'), ...argv], {
          env: cleanEnv({ AGENTCTL_DISABLE_THROTTLE: '1', AGENTCTL_THROTTLE_CPU_WINDOW: '50ms' }),
          cwd: dir,
          timeoutMs: 20_000,
        });
        const where = `case ${i} (seed ${SEED}): agentctl ${JSON.stringify(argv)} -> exit ${res.code}`;
        if (res.code === null) failures.push(`${where}: killed by ${res.signal} (hung?)`);
        else if (!DOCUMENTED.has(res.code) && !(argv[0] === 'spawn')) failures.push(`${where}: undocumented exit code`);
        if (/\n\s+at .+:\d+:\d+\)?\n/.test(res.stderr) || /internal error/.test(res.stderr)) failures.push(`${where}: ${res.stderr.slice(0, 300)}`);
        const own = argv.indexOf('--') < 0 ? argv : argv.slice(0, argv.indexOf('--'));
        if (own.includes('--json') && !(argv[0] === 'throttle-status' && own.includes('--watch')) && !(argv[0] === 'completion' && res.code === 0)) {
          try {
            JSON.parse(res.stdout);
          } catch {
            failures.push(`${where}: --json printed ${JSON.stringify(res.stdout.slice(0, 200))}`);
          }
        }
        rmSync(dir, { recursive: true, force: true });
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    expect(failures.slice(0, 20)).toEqual([]);
  }, 600_000);
});
