import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { COMPLETION_FILES, SHELLS } from '../../src/cli/completion.js';
import { cleanEnv, parseJson, ROOT, runCli, tempDir } from '../helpers.js';

let t: ReturnType<typeof tempDir>;
let sd: string[];
beforeEach(() => {
  t = tempDir();
  sd = ['--state-dir', join(t.dir, 'state')];
});
afterEach(() => t.cleanup());

const noStack = (s: string) => expect(s).not.toMatch(/\n\s+at .+:\d+:\d+/);

describe('global flags', () => {
  it('are accepted before or after the command name', async () => {
    const a = await runCli(['--json', ...sd, 'config']);
    const b = await runCli(['config', '--json', ...sd]);
    expect(a.code).toBe(0);
    expect(parseJson(a.stdout)).toEqual(parseJson(b.stdout));
  });

  it('--version prints the package version', async () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect((await runCli(['--version'])).stdout).toBe(`${pkg.version}\n`);
  });

  it('--help lists commands and examples', async () => {
    const r = await runCli(['throttle-status', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Examples:\n\s+\$ agentctl throttle-status/);
  });
});

describe('bad input: one line, exit 2, JSON under --json', () => {
  it.each([
    [['throttle-status', '--max-level', '7'], /^agentctl: --max-level: 7 is out of range; expected a whole number from 0 to 3\n$/],
    [['throttle-status', '--max-level', 'high'], /^agentctl: --max-level: invalid value "high"; expected a whole number from 0 to 3\n$/],
    [['throttle-status', '--wait-level', '1', '--timeout', '5x'], /^agentctl: --timeout: invalid duration "5x"; expected a duration like 500ms, 30s, 5m, 2h or 1d \(at most 365d\)\n$/],
    [['throttle-status', '--watch', 'often'], /^agentctl: --watch: invalid duration "often"/],
    [['throttle-status', '--watch', '--max-level', '1'], /^agentctl: --watch: cannot be combined/],
    [['throttle-status', '--bogus'], /^agentctl: unknown option '--bogus' \(see agentctl --help\)\n$/],
    [['events', '--since', 'yesterday'], /^agentctl: --since: invalid value "yesterday"/],
    [['events', '--limit', '0'], /^agentctl: --limit: 0 is out of range/],
    [['completion', 'tcsh'], /^agentctl: command-argument value 'tcsh' is invalid for argument 'shell'\. Allowed choices are bash, zsh, fish\./],
    [['frobnicate'], /^agentctl: unknown command 'frobnicate'/],
    [[], /agentctl: no command given/],
  ])('%j', async (args, msg) => {
    const r = await runCli([...args, ...(args.length ? sd : [])]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(msg);
    noStack(r.stderr);
    const j = await runCli([...args, ...(args.length ? sd : []), '--json']);
    expect(j.code).toBe(2);
    const doc = parseJson<{ error: { code: number; reason: string; message: string } }>(j.stdout);
    expect(doc.error.code).toBe(2);
    expect(doc.error.reason).toBe('usage');
  });
});

describe('broken config: exit 78 naming file and line', () => {
  it('in ./agentctl.toml', async () => {
    writeFileSync(join(t.dir, 'agentctl.toml'), '[throttle]\nmemory_pct = [70, 80, 90]\nmax_concurrent_workers = 1\n');
    const r = await runCli(['throttle-status', ...sd], { cwd: t.dir });
    expect(r.code).toBe(78);
    expect(r.stderr).toBe(
      `agentctl: config file ${join(t.dir, 'agentctl.toml')} line 3: throttle.max_concurrent_workers: unknown key; accepted in [throttle]: memory_pct, cpu_pct, max_agents, batch_size, delay_ms, max_concurrent, reasoning_effort, recovery_interval, sample_max_age, cpu_window, psi_memory_full, psi_memory_some, swap_in_rate, load_per_core\n`,
    );
    const j = await runCli(['config', '--json', ...sd], { cwd: t.dir });
    expect(j.code).toBe(78);
    expect(parseJson<{ error: { code: number; reason: string; details: { line: number } } }>(j.stdout).error).toMatchObject({ code: 78, reason: 'config_invalid', details: { line: 3 } });
  });

  it('invalid TOML', async () => {
    writeFileSync(join(t.dir, 'agentctl.toml'), '[throttle\n');
    const r = await runCli(['config', ...sd], { cwd: t.dir });
    expect(r.code).toBe(78);
    expect(r.stderr).toMatch(/^agentctl: config file .*agentctl\.toml line 1: invalid TOML/);
    noStack(r.stderr);
  });

  it('a bad AGENTCTL_* variable', async () => {
    const r = await runCli(['config', ...sd], { env: cleanEnv({ AGENTCTL_THROTTLE_CPU_PCT: 'lots' }) });
    expect(r.code).toBe(78);
    expect(r.stderr).toMatch(/^agentctl: environment variable AGENTCTL_THROTTLE_CPU_PCT: /);
  });
});

describe('unusable state: clear message naming the file, never a stack trace', () => {
  it('a state file that is not a database', async () => {
    const dir = join(t.dir, 'state');
    await runCli(['config', ...sd]); // creates nothing, config needs no state
    execFileSync('mkdir', ['-p', dir]);
    writeFileSync(join(dir, 'state.db'), 'garbage '.repeat(1000));
    const r = await runCli(['throttle-status', ...sd]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^agentctl: state file ${join(dir, 'state.db')} is not a usable SQLite database .*move it aside`));
    noStack(r.stderr);
    const j = await runCli(['throttle-status', '--json', ...sd]);
    expect(parseJson<{ error: { reason: string } }>(j.stdout).error.reason).toBe('state_corrupt');
  });
});

describe('state folders that cannot be used', () => {
  it.each([
    ['/proc/agentctl-test-state', /state folder for \/proc\/agentctl-test-state\/state\.db cannot be created .*pass --state-dir/],
    ['/dev/null/state', /state folder for \/dev\/null\/state\/state\.db is not a folder/],
  ])('%s: one clear line, exit 1, no hang', async (dir, msg) => {
    const r = await runCli(['throttle-status', '--state-dir', dir], { timeoutMs: 15_000 });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(msg);
    noStack(r.stderr);
  });

  it('a file where the state folder should be', async () => {
    const f = join(t.dir, 'file');
    writeFileSync(f, 'x');
    const r = await runCli(['ps', '--json', '--state-dir', f]);
    expect(r.code).toBe(1);
    expect(parseJson<{ error: { reason: string } }>(r.stdout).error.reason).toBe('state_unwritable');
  });
});

describe('piped output has no escape codes; --color forces them', () => {
  it.each([['throttle-status'], ['config'], ['events'], ['--help']])('%s', async (cmd) => {
    await runCli(['throttle-status', ...sd]); // so events has rows
    const plain = await runCli([cmd, ...sd], { env: cleanEnv({ TERM: 'xterm-256color' }) });
    expect(plain.code).toBe(0);
    expect(plain.stdout).not.toMatch(/\u001b/);
    expect(plain.stdout.length).toBeGreaterThan(20);
  });

  it('--color paints even when piped, NO_COLOR does not', async () => {
    expect((await runCli(['throttle-status', '--color', ...sd])).stdout).toMatch(/\u001b\[/);
    expect((await runCli(['throttle-status', ...sd], { env: cleanEnv({ NO_COLOR: '1', FORCE_COLOR: '1' }) })).stdout).not.toMatch(/\u001b/);
  });
});

describe('config', () => {
  it('shows every effective value with its source', async () => {
    writeFileSync(join(t.dir, 'agentctl.toml'), '[spawn]\ncooldown = "30s"\n');
    const r = await runCli(['config', '--json', ...sd], { cwd: t.dir, env: cleanEnv({ AGENTCTL_THROTTLE_CPU_PCT: '50,70,85' }) });
    expect(r.code).toBe(0);
    const j = parseJson<{ values: Record<string, Record<string, unknown>>; entries: Array<{ key: string; source: { kind: string; detail: string } }>; files: string[] }>(r.stdout);
    expect(j.values.spawn!.cooldown).toBe('30s');
    expect(j.values.throttle!.cpu_pct).toEqual([50, 70, 85]);
    const src = (k: string) => j.entries.find((e) => e.key === k)!.source;
    expect(src('spawn.cooldown')).toEqual({ kind: 'project', detail: join(t.dir, 'agentctl.toml') });
    expect(src('throttle.cpu_pct')).toEqual({ kind: 'env', detail: 'AGENTCTL_THROTTLE_CPU_PCT' });
    expect(src('throttle.memory_pct').kind).toBe('default');
    expect(j.files).toEqual([join(t.dir, 'agentctl.toml')]);
  });
});

describe('events', () => {
  it('lists decisions with reasons, filtered by --since and --kind', async () => {
    await runCli(['throttle-status', ...sd]);
    const r = await runCli(['events', '--json', '--since', '1h', ...sd]);
    const j = parseJson<{ count: number; events: Array<{ kind: string; reason: string; time: string }> }>(r.stdout);
    expect(j.count).toBeGreaterThanOrEqual(1);
    expect(j.events[0]!.kind).toBe('throttle.level');
    expect(j.events[0]!.reason).toMatch(/^first reading: level \d/);
    const none = parseJson<{ count: number }>((await runCli(['events', '--json', '--kind', 'nope', ...sd])).stdout);
    expect(none.count).toBe(0);
    const future = parseJson<{ count: number }>((await runCli(['events', '--json', '--since', '2099-01-01T00:00:00Z', ...sd])).stdout);
    expect(future.count).toBe(0);
  });
});

describe('completion', () => {
  it.each(SHELLS)('%s: the checked-in script is current and what the command prints', async (shell) => {
    const r = await runCli(['completion', shell, '--quiet']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(readFileSync(join(ROOT, 'completions', COMPLETION_FILES[shell]), 'utf8'));
  });

  it('bash: the script parses and completes commands and flags', () => {
    const script = join(ROOT, 'completions', COMPLETION_FILES.bash);
    execFileSync('bash', ['-n', script]);
    const complete = (line: string) =>
      execFileSync('bash', ['-c', `source ${script}; COMP_WORDS=(${line}); COMP_CWORD=$((\${#COMP_WORDS[@]} - 1)); _agentctl; printf '%s\\n' "\${COMPREPLY[@]}"`], { encoding: 'utf8' })
        .trim()
        .split('\n');
    expect(complete('agentctl thr')).toEqual(['throttle-status']);
    expect(complete('agentctl throttle-status --max')).toEqual(['--max-level']);
    expect(complete("agentctl completion ''")).toEqual(expect.arrayContaining(['bash', 'zsh', 'fish']));
  });
});
