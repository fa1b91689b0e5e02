/**
 * Flag edges, with the real binary: durations longer than a timer can wait, empty paths, and a
 * single-value flag given twice. Each is bad input (exit 2) that starts and writes nothing.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cleanEnv, runCli, tempDir } from '../helpers.js';

let t: ReturnType<typeof tempDir>;
let sd: string;
beforeEach(() => {
  t = tempDir();
  sd = join(t.dir, 'state');
});
afterEach(() => t.cleanup());

const cli = (args: string[]) => runCli(args, { env: cleanEnv({ AGENTCTL_DISABLE_THROTTLE: '1', AGENTCTL_SPAWN_COUNT_UNMANAGED: '0', HOME: join(t.dir, 'home') }), cwd: t.dir, timeoutMs: 20_000 });

/** exit 2 with exactly this one line on stderr, and no state written */
async function badInput(args: string[], line: string): Promise<void> {
  const r = await cli(args);
  expect(r.stderr).toBe(`agentctl: ${line}\n`);
  expect(r.code).toBe(2);
  expect(r.stdout).toBe('');
  expect(existsSync(sd)).toBe(false);
}

describe('durations a timer cannot wait', () => {
  it('spawn --timeout 25d exits 2 and starts nothing; 24d is accepted', async () => {
    const marker = join(t.dir, 'ran');
    await badInput(
      ['spawn', '--state-dir', sd, '--timeout', '25d', '--', 'sh', '-c', `touch ${marker}`],
      '--timeout: 25d is out of range; expected a duration from 0 to 24d: the longest a timer can wait',
    );
    expect(existsSync(marker)).toBe(false);
    // the bound is the timer's, not a refusal of long runs: 24d runs, and is not ended early
    const ok = await cli(['spawn', '--state-dir', sd, '--timeout', '24d', '--', 'sh', '-c', `sleep 0.3; touch ${marker}`]);
    expect(ok.stderr).not.toMatch(/timed out|ended/);
    expect(ok.code).toBe(0);
    expect(existsSync(marker)).toBe(true);
  });

  it('throttle-status --watch 30d exits 2 at once', async () => {
    await badInput(['throttle-status', '--state-dir', sd, '--watch', '30d'], '--watch: 30d is out of range; expected a duration from 0 to 24d: the longest a timer can wait');
  });

  it('--json gives the refusal as one JSON document', async () => {
    const r = await cli(['--json', 'spawn', '--state-dir', sd, '--timeout', '1h30m', '--timeout', '30d', '--', 'true']);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout)).toEqual({ error: { code: 2, reason: 'usage', message: expect.stringContaining('--timeout: given twice') } });
  });
});

describe('empty paths', () => {
  it("--state-dir '' and --config '' are bad input, in either spelling", async () => {
    await badInput(['ps', '--state-dir', ''], '--state-dir: empty path; expected a folder, e.g. --state-dir ~/.local/state/agentctl');
    await badInput(['--state-dir=', 'ps'], '--state-dir: empty path; expected a folder, e.g. --state-dir ~/.local/state/agentctl');
    await badInput(['config', '--state-dir', sd, '--config', ''], '--config: empty path; expected a config file, e.g. --config ./agentctl.toml');
    await badInput(['--config=', 'config'], '--config: empty path; expected a config file, e.g. --config ./agentctl.toml');
  });
});

describe('a single-value flag given twice', () => {
  it('is exit 2 naming the flag and both values, before or after the command name, with or without =', async () => {
    const marker = join(t.dir, 'ran');
    const spawnTwice = (...flags: string[]) => ['spawn', ...flags, '--', 'sh', '-c', `touch ${marker}`];
    await badInput(spawnTwice('--state-dir', sd, '--max', '3', '--max', '4'), '--max: given twice ("3", then "4"); give it once (see agentctl --help)');
    await badInput(spawnTwice('--state-dir', sd, '--max=3', '--max', '4'), '--max: given twice ("3", then "4"); give it once (see agentctl --help)');
    await badInput(
      ['--state-dir', sd, ...spawnTwice('--state-dir', join(t.dir, 'other'))],
      `--state-dir: given twice (${JSON.stringify(sd)}, then ${JSON.stringify(join(t.dir, 'other'))}); give it once (see agentctl --help)`,
    );
    await badInput(['throttle-status', '--state-dir', sd, '--watch', '--watch'], '--watch: given twice; give it once (see agentctl --help)');
    expect(existsSync(marker)).toBe(false);
  });

  it('flags after -- belong to the child; repeatable flags and on/off flags may repeat', async () => {
    const r = await cli(['spawn', '--state-dir', sd, '--name', 'echoer', '--', 'echo', '--name', 'a', '--name', 'b']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('--name a --name b\n');
    // --requires <names...> repeats: both names are required (neither runs: exit 69, not 2)
    const req = await cli(['spawn', '--state-dir', sd, '--requires', 'dep-a', '--requires', 'dep-b', '--name', 'needy', '--', 'true']);
    expect(req.stderr).toContain('needy requires dep-a (not running), dep-b (not running)');
    expect(req.code).toBe(69);
    // --check <ids...> repeats
    const doc = await cli(['--json', '--json', 'doctor', '--state-dir', sd, '--check', 'host.memory', '--check', 'state.integrity']);
    expect((JSON.parse(doc.stdout) as { checks: Array<{ id: string }> }).checks.map((c) => c.id).sort()).toEqual(['host.memory', 'state.integrity']);
  });
});
