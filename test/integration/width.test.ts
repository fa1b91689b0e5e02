/**
 * Views fit the terminal (the issue "The operator's day", item 5): piped, where the width is
 * unknown, every line of doctor, ps, stats, breaker, events, config and throttle-status is at
 * most 80 columns on a state full of long names and reasons; --wide prints them whole;
 * --json is untouched; under a real pseudo-terminal the terminal's own width is kept.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { stripAnsi, visibleWidth } from '../../src/cli/output.js';
import { State } from '../../src/core/state.js';
import { BIN, cleanEnv, parseJson, ROOT, runCli, useTempState } from '../helpers.js';

const t = useTempState();
const procs = t.procs;

const env = () => cleanEnv({ AGENTCTL_DISABLE_THROTTLE: '1', AGENTCTL_SPAWN_COUNT_UNMANAGED: '0' });
const cli = (args: string[]) => runCli(['--state-dir', t.sd, ...args], { env: env(), cwd: t.dir });

/** a name as long as names go (64 characters) */
const LONG_NAME = `worker-${'x'.repeat(50)}-0000001`;
const LONG_REASON = 'the assigner exited at once three times in a row because its configuration file /srv/fleet/workers/assigner/config/production.toml names a queue that does not exist';

const longest = (text: string) => Math.max(0, ...stripAnsi(text).split(/\r?\n/).map(visibleWidth));

/** A state with long names, commands and reasons, made by the real commands where they can. */
async function seed(): Promise<void> {
  // a name that fails at once: a startup error, its backoff in breaker, stats
  await cli(['spawn', '--name', LONG_NAME, '--', 'sh', '-c', 'exit 3', 'x', '--with-a-rather-long-argument', '/srv/fleet/workers/assigner/config/production.toml']);
  // a live run with a long command line for ps
  const live = await cli([
    'spawn',
    '--json',
    '-d',
    '--name',
    `${LONG_NAME.slice(0, 60)}-run`,
    '--',
    'sh',
    '-c',
    'sleep 30',
    'x',
    '/srv/fleet/workers/assigner/config/production.toml',
    '--and-one-more-long-argument',
  ]);
  expect(live.code).toBe(0);
  procs.adopt(parseJson<{ pid: number }>(live.stdout).pid);
  // an event with a long reason, as a command would record it
  const s = State.open(t.sd);
  try {
    s.write(() => s.event({ command: 'spawn', kind: 'breaker.open', subject: LONG_NAME, reason: LONG_REASON }));
  } finally {
    s.close();
  }
}

const VIEWS = [['doctor'], ['ps'], ['stats'], ['breaker'], ['events'], ['config'], ['throttle-status']];

describe('views fit the width', () => {
  it('piped (width unknown: 80) every line of every view is at most 80 columns; --wide prints the long reason whole; --json is untouched', async () => {
    await seed();
    expect((await cli(['--wide', 'ps'])).stdout).toContain('sleep 30'); // the seed is there, whole
    for (const args of VIEWS) {
      const r = await cli(args);
      expect(r.stdout, args.join(' ')).not.toBe('');
      expect(longest(r.stdout), `${args.join(' ')}:\n${r.stdout}`).toBeLessThanOrEqual(80);
    }
    const events = await cli(['events']);
    expect(events.stdout).not.toContain(LONG_REASON); // wrapped
    expect(events.stdout.replace(/[\s│]+/g, '')).toContain(LONG_REASON.replace(/\s+/g, ''));
    const wide = await cli(['--wide', 'events']);
    expect(wide.stdout).toContain(LONG_REASON);
    expect(wide.stdout).toContain(LONG_NAME);
    expect(longest(wide.stdout)).toBeGreaterThan(80);
    // --json: one document, the same with --wide, the reason whole
    const json = await cli(['events', '--json']);
    expect((await cli(['events', '--json', '--wide'])).stdout).toBe(json.stdout);
    expect(json.stdout.split('\n').filter(Boolean)).toHaveLength(1);
    expect(parseJson<{ events: Array<{ reason: string }> }>(json.stdout).events.map((e) => e.reason)).toContain(LONG_REASON);
    await cli(['stop', '--all']);
  });

  it('doctor names each check by the id --check takes', async () => {
    const r = await cli(['doctor']);
    expect(r.stdout).toMatch(/│ . │ host\.load +│/);
    expect(r.stdout).toMatch(/│ . │ state\.integrity +│/);
  });

  // util-linux script(1) gives the command a real terminal; a host without it skips this one
  const hasScript = spawnSync('script', ['--version'], { encoding: 'utf8' }).status === 0;
  it.skipIf(!hasScript)('under a real pseudo-terminal of 60 columns, doctor fits 60', () => {
    const cmd = `stty cols 60; '${process.execPath}' '${BIN}' --state-dir '${t.sd}' doctor`;
    const r = spawnSync('script', ['-qc', cmd, '/dev/null'], { cwd: ROOT, env: env(), encoding: 'utf8', timeout: 60_000 });
    expect(r.error).toBeUndefined();
    expect(stripAnsi(r.stdout)).toMatch(/health score/);
    expect(stripAnsi(r.stdout)).toMatch(/host\.load/);
    expect(longest(r.stdout), r.stdout).toBeLessThanOrEqual(60);
    expect(longest(r.stdout)).toBeGreaterThan(40); // the terminal's width, not a fallback
  });
});
