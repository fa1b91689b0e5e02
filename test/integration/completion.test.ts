/**
 * Completion in real shells: bash (its completion function called with COMP_WORDS set), zsh (an
 * interactive `zsh -f` in a tmux pane, Tab pressed) and fish (`complete -C`), each with its
 * startup files left out, against a real state with two live detached runs, and a second state
 * with hostile rows written straight into it by SQL. zsh and fish are installed when missing
 * (test/shells.ts); without root, their tests are skipped with the reason.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMPLETION_FILES } from '../../src/cli/completion.js';
import { BIN, cleanEnv, parseJson, Procs, ROOT, runCli, tempDir, waitFor } from '../helpers.js';
import { BASH_COMPLETION, ensurePackages, TmuxShell } from '../shells.js';

const missing = ensurePackages(['bash', 'zsh', 'fish', 'bash-completion']);
const script = (shell: 'bash' | 'zsh' | 'fish') => join(ROOT, 'completions', COMPLETION_FILES[shell]);

let t: ReturnType<typeof tempDir>;
const procs = new Procs();
/** the folder the shells run in, with a file of its own for file completion */
let cwd: string;
/** the state with live runs alpha (group g1) and beta (group g2) */
let live: string;
/** a state with hostile rows beside one good one (gamma) */
let hostile: string;
/** what a hostile row would create if the shell ever ran it */
let pwned: string;
/** the environment the shells run with: agentctl on PATH, the live state as AGENTCTL_STATE_DIR */
let env: Record<string, string>;

const cli = (args: string[], more: Record<string, string> = {}) => runCli(args, { env: cleanEnv({ AGENTCTL_DISABLE_THROTTLE: '1', ...more }), cwd });

async function startRun(name: string, group: string): Promise<void> {
  const r = await cli(['--state-dir', live, 'spawn', '--json', '-d', '--name', name, '--group', group, '--', 'sleep', '300']);
  expect(r.code, r.stderr).toBe(0);
  procs.adopt(parseJson<{ pid: number }>(r.stdout).pid);
}

/** A state made by agentctl, then given rows no agentctl writes: names that are shell code and escape codes. */
async function makeHostileState(): Promise<void> {
  expect((await cli(['--state-dir', hostile, 'ps'])).code).toBe(0);
  const db = new Database(join(hostile, 'state.db'));
  const bad = [`$(touch ${pwned})`, '`touch x`', 'evil\u001b[31mred', 'a;touch b', '--help', 'x y'];
  const run = db.prepare("INSERT INTO runs (id, name, grp, priority, mode, state, pid, command, cwd, started_at) VALUES (?, ?, ?, 3, 'detached', 'running', NULL, '[\"sleep\"]', '/', 1)");
  run.run('rgood000001', 'gamma', 'ggood');
  bad.forEach((n, i) => run.run(`rbad00000${i}`, n, n));
  const health = db.prepare('INSERT INTO health (name, value, updated_at) VALUES (?, \'{"mode":"open"}\', 1)');
  health.run('gamma');
  for (const n of bad) health.run(n);
  const dlq = db.prepare("INSERT INTO dlq (id, name, run_id, failure, error, restarts, context, created_at) VALUES (?, ?, NULL, NULL, 'x', 1, '{}', 1)");
  dlq.run(7, 'gamma');
  dlq.run(8, `$(touch ${pwned})`);
  db.close();
}

beforeAll(async () => {
  t = tempDir();
  cwd = join(t.dir, 'work');
  mkdirSync(cwd);
  writeFileSync(join(cwd, 'uniquefile-here.txt'), '');
  live = join(t.dir, 'live');
  hostile = join(t.dir, 'hostile');
  pwned = join(t.dir, 'pwned');
  const bin = join(t.dir, 'bin');
  mkdirSync(bin);
  writeFileSync(join(bin, 'agentctl'), `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} "$@"\n`);
  chmodSync(join(bin, 'agentctl'), 0o755);
  env = {
    PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}`,
    HOME: t.dir,
    XDG_CONFIG_HOME: join(t.dir, 'config'),
    XDG_DATA_HOME: join(t.dir, 'data'),
    TERM: 'xterm',
    AGENTCTL_STATE_DIR: live,
    AGENTCTL_DISABLE_THROTTLE: '1',
  };
  await startRun('alpha', 'g1');
  await startRun('beta', 'g2');
  await makeHostileState();
}, 60_000);

afterAll(async () => {
  try {
    await cli(['--state-dir', live, 'stop', '--all', '--grace', '2s']);
  } finally {
    await procs.endAll();
    t.cleanup();
  }
}, 30_000);

describe('agentctl __complete', () => {
  it('prints live names and groups, one a line, from the state the command line or the environment names', async () => {
    expect((await cli(['__complete', '--state-dir', live, 'names'])).stdout).toBe('alpha\nbeta\n');
    expect((await cli(['__complete', 'groups'], { AGENTCTL_STATE_DIR: live })).stdout).toBe('g1\ng2\n');
    expect((await cli(['__complete', `--state-dir=${live}`, 'names', 'b'])).stdout).toBe('beta\n');
  });

  it('prints only values agentctl accepts: hostile rows never reach the shell', async () => {
    for (const kind of ['names', 'groups', 'breakers', 'dlq']) {
      const r = await cli(['__complete', '--state-dir', hostile, kind]);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^(?:[A-Za-z0-9][A-Za-z0-9._-]*(?:\t[A-Za-z0-9][A-Za-z0-9._-]*)?\n)+$/);
    }
    expect((await cli(['__complete', '--state-dir', hostile, 'names'])).stdout).toBe('gamma\n');
    expect((await cli(['__complete', '--state-dir', hostile, 'breakers'])).stdout).toBe('gamma\topen\n');
    expect((await cli(['__complete', '--state-dir', hostile, 'dlq'])).stdout).toBe('7\tgamma\n8\n');
  });

  it('prints nothing and exits 0 for a state that is not there, and creates none', async () => {
    const none = join(t.dir, 'none');
    const r = await cli(['__complete', '--state-dir', none, 'names']);
    expect(r).toMatchObject({ code: 0, stdout: '', stderr: '' });
    expect(existsSync(none)).toBe(false);
  });

  it('prints nothing for a state that is not a database', async () => {
    const junk = join(t.dir, 'junk');
    mkdirSync(junk, { mode: 0o700 });
    writeFileSync(join(junk, 'state.db'), 'not sqlite', { mode: 0o600 });
    expect(await cli(['__complete', '--state-dir', junk, 'names'])).toMatchObject({ code: 0, stdout: '', stderr: '' });
  });

  it('an unknown kind is bad input: one line, exit 2', async () => {
    const r = await cli(['__complete', 'nosuch']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^agentctl: __complete: expected .*names, groups, breakers, dlq\n$/);
  });

  it('is left out of --help and of the completion lists', async () => {
    expect((await cli(['--help'])).stdout).not.toContain('__complete');
    for (const shell of ['bash', 'zsh', 'fish'] as const) expect(readFileSync(script(shell), 'utf8')).not.toMatch(/'__complete|__complete:/);
  });
});

describe('agentctl help', () => {
  it('help CMD prints what CMD --help prints, and help alone what --help prints', async () => {
    for (const c of ['stop', 'spawn', 'completion']) {
      const a = await cli(['help', c]);
      expect(a.code).toBe(0);
      expect(a.stdout).toBe((await cli([c, '--help'])).stdout);
    }
    expect((await cli(['help'])).stdout).toBe((await cli(['--help'])).stdout);
    expect((await cli(['--help'])).stdout).toMatch(/\n {2}help \[command\] +show help for a command/);
  });

  it('help with an unknown command: one line naming the accepted ones, exit 2', async () => {
    const r = await cli(['help', 'nosuch']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^agentctl: help: unknown command "nosuch"; expected one of: doctor, throttle-status, spawn, .*completion\n$/);
  });
});

describe('bash', () => {
  /** The candidates bash's completion function gives for the words (the last one being completed). */
  /**
   * The candidates bash's completion function gives for the words (the last one being
   * completed), with bash-completion's functions loaded first when `withBashCompletion`.
   */
  const completeIn = (withBashCompletion: boolean, words: readonly string[]): string[] => {
    const quoted = words.map((w) => `'${w.replace(/'/g, `'\\''`)}'`).join(' ');
    const setup = `${withBashCompletion ? `source ${BASH_COMPLETION}; ` : ''}source ${script('bash')}`;
    const line = 'COMP_LINE="${COMP_WORDS[*]}"; COMP_POINT=${#COMP_LINE}';
    const run = `${setup}; COMP_WORDS=(${quoted}); COMP_CWORD=$((\${#COMP_WORDS[@]} - 1)); ${line}; _agentctl; printf '%s\\n' "\${COMPREPLY[@]}"`;
    // stderr ignored: bash-completion's compopt complains when called outside a real completion
    const out = execFileSync('bash', ['--norc', '--noprofile', '-c', run], { encoding: 'utf8', env, cwd, stdio: ['ignore', 'pipe', 'ignore'] });
    return out.split('\n').filter(Boolean);
  };
  const complete = (...words: string[]): string[] => completeIn(false, words);

  it('commands, options, -h/--help everywhere and --version before the command', () => {
    expect(complete('agentctl', 'sto')).toEqual(['stop']);
    expect(complete('agentctl', '--ver')).toEqual(['--version']);
    expect(complete('agentctl', '')).toEqual(expect.arrayContaining(['help', 'doctor', '-h', '--help', '-V', '--version']));
    expect(complete('agentctl', 'stop', '--gr')).toEqual(['--group', '--grace']);
    expect(complete('agentctl', 'stop', '--he')).toEqual(['--help']);
    expect(complete('agentctl', 'stop', '--v')).toEqual([]);
    expect(complete('agentctl', 'help', 'sp')).toEqual(['spawn']);
  });

  it('live run names and groups from the state, its --state-dir passed through', () => {
    expect(complete('agentctl', 'stop', '')).toEqual(['alpha', 'beta']);
    expect(complete('agentctl', 'stop', 'alpha', 'b')).toEqual(['beta']);
    expect(complete('agentctl', 'stop', '--group', '')).toEqual(['g1', 'g2']);
    expect(complete('agentctl', '--state-dir', hostile, 'stop', '')).toEqual(['gamma']);
    expect(complete('agentctl', 'breaker', 'reset', '--state-dir', hostile, '')).toEqual(['gamma']); // wherever it stands
    expect(complete('agentctl', '--state-dir', hostile, 'breaker', 'reset', '')).toEqual(['gamma']);
    expect(complete('agentctl', '--state-dir', hostile, 'breaker', 'ls', '')).toEqual([]);
    expect(complete('agentctl', '--state-dir', hostile, 'dlq', 'retry', '')).toEqual(['7', '8']);
    expect(complete('agentctl', '--state-dir', join(t.dir, 'none'), 'stop', '')).toEqual([]);
  });

  it('doctor --check: the check ids, for each value', () => {
    expect(complete('agentctl', 'doctor', '--check', 'host.m')).toEqual(['host.memory']);
    expect(complete('agentctl', 'doctor', '--check', 'host.load', 'state.')).toEqual(['state.integrity', 'state.disk']);
  });

  it('after spawn --: command names, then files', () => {
    expect(complete('agentctl', 'spawn', '--name', 'x', '--', 'sle')).toContain('sleep');
    expect(complete('agentctl', 'spawn', '--', 'sleep', 'uniq')).toEqual(['uniquefile-here.txt']);
    expect(complete('agentctl', 'spawn', '--', 'sleep', '--he')).toEqual([]); // no file by that name: not spawn's own --help
  });

  it.skipIf(missing.has('bash-completion'))('with bash-completion loaded, after spawn -- the child command completes as on a line of its own', () => {
    const bc = (...words: string[]) => completeIn(true, words).map((w) => w.trim());
    expect(bc('agentctl', 'spawn', '--', 'sle')).toContain('sleep');
    expect(bc('agentctl', 'spawn', '--name', 'x', '--', 'sleep', 'uniq')).toEqual(['uniquefile-here.txt']);
    // git's own completion, which bash-completion loads on demand: its subcommands, not file names
    if (existsSync('/usr/share/bash-completion/completions/git')) expect(bc('agentctl', 'spawn', '--', 'git', 'chec')).toEqual(['checkout']);
    expect(bc('agentctl', 'stop', '')).toEqual(['alpha', 'beta']);
  });

  it('a hostile state: nothing of it offered, nothing of it run', () => {
    for (const words of [
      ['stop', ''],
      ['stop', '--group', ''],
      ['breaker', 'reset', ''],
      ['dlq', 'retry', ''],
    ]) {
      for (const c of complete('agentctl', '--state-dir', hostile, ...words)) expect(c).toMatch(/^(gamma|ggood|7|8)$/);
    }
    expect(existsSync(pwned)).toBe(false);
  });
});

describe.skipIf(missing.has('zsh'))(`zsh${missing.has('zsh') ? ` (skipped: ${missing.get('zsh')})` : ''}`, () => {
  let sh: TmuxShell;
  beforeAll(async () => {
    sh = TmuxShell.start(t.dir, ['zsh', '-f'], { ...env, PS1: '%% ' });
    sh.type(`cd ${cwd}; fpath=(${join(ROOT, 'completions')} $fpath); autoload -Uz compinit && compinit -u -D; echo READY-$((6*7))`);
    sh.keys('Enter');
    await waitFor(() => sh.screen().includes('READY-42'), 10_000, { what: 'zsh with compinit' });
  });
  afterAll(() => sh?.close());

  /** Type `line` (unless undefined: go on with the line as it is), press Tab, and wait until the screen matches `want`; returns the screen. */
  const tab = async (line: string | undefined, want: RegExp): Promise<string> => {
    if (line !== undefined) {
      sh.clear();
      await waitFor(() => sh.screen().trim() === '%', 5_000, { what: 'a clear screen' });
      sh.type(line);
    }
    sh.keys('Tab');
    try {
      return await waitFor(
        () => {
          const s = sh.screen();
          return want.test(s) ? s : undefined;
        },
        10_000,
        { what: `zsh completing ${JSON.stringify(line)} to ${want}` },
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}; the screen:\n${sh.screen()}`);
    }
  };

  it('commands, options and -h/--help/--version', async () => {
    expect(await tab('agentctl thr', /% agentctl throttle-status\s*$/m)).toBeTruthy();
    const opts = await tab('agentctl --', /--version/);
    expect(opts).toMatch(/--help/);
    expect(opts).toMatch(/--state-dir/);
    expect(await tab('agentctl stop --h', /% agentctl stop --help\s*$/m)).toBeTruthy();
    expect(await tab('agentctl help thr', /% agentctl help throttle-status\s*$/m)).toBeTruthy();
  });

  it('live run names from the state, and --state-dir passed through', async () => {
    expect(await tab('agentctl stop ', /^alpha\s+beta\s*$/m)).toBeTruthy();
    // the common prefix first, then the list
    expect(await tab('agentctl stop --group ', /% agentctl stop --group g\s*$/m)).toBeTruthy();
    expect(await tab(undefined, /^g1\s+g2\s*$/m)).toBeTruthy();
    expect(await tab(`agentctl --state-dir ${hostile} stop `, /% agentctl --state-dir \S+ stop gamma\s*$/m)).toBeTruthy();
  });

  it('doctor --check ids, and after spawn -- the command and files', async () => {
    expect(await tab('agentctl doctor --check host.m', /% agentctl doctor --check host\.memory\s*$/m)).toBeTruthy();
    expect(await tab('agentctl spawn --name x -- slee', /% agentctl spawn --name x -- sleep\s*$/m)).toBeTruthy();
    expect(await tab('agentctl spawn -- sleep uniq', /% agentctl spawn -- sleep uniquefile-here\.txt\s*$/m)).toBeTruthy();
  });

  it('a hostile state: nothing of it offered, nothing of it run', async () => {
    const s = await tab(`agentctl --state-dir ${hostile} breaker reset `, /gamma/);
    expect(s).not.toMatch(/touch|evil|--help|\bx y\b/);
    await tab(`agentctl --state-dir ${hostile} dlq retry `, /^7\s+--\s+gamma/m);
    expect(existsSync(pwned)).toBe(false);
  });
});

describe.skipIf(missing.has('fish'))(`fish${missing.has('fish') ? ` (skipped: ${missing.get('fish')})` : ''}`, () => {
  /** What fish offers for `line` (candidates, without their descriptions). */
  const complete = (line: string): string[] =>
    execFileSync('fish', ['--no-config', '-c', `source ${script('fish')}; complete -C ${JSON.stringify(line).replace(/\$/g, '\\$')}`], { encoding: 'utf8', env, cwd })
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split('\t')[0]!);

  it('commands, options and -h/--help/--version', () => {
    expect(complete('agentctl thr')).toEqual(['throttle-status']);
    expect(complete('agentctl -')).toEqual(expect.arrayContaining(['-h', '--help', '-V', '--version', '--state-dir']));
    expect(complete('agentctl stop -')).toEqual(expect.arrayContaining(['-h', '--help', '--group', '--grace']));
    expect(complete('agentctl stop -')).not.toContain('--version');
    expect(complete('agentctl help sp')).toEqual(['spawn']);
  });

  it('live run names and groups from the state, and --state-dir passed through', () => {
    expect(complete('agentctl stop ')).toEqual(['alpha', 'beta']);
    expect(complete('agentctl stop --group ')).toEqual(['g1', 'g2']);
    expect(complete(`agentctl --state-dir ${hostile} stop `)).toEqual(['gamma']);
    expect(complete(`agentctl --state-dir ${hostile} breaker reset `)).toEqual(['gamma']);
    expect(complete(`agentctl --state-dir ${hostile} dlq retry `)).toEqual(['7', '8']);
    expect(complete('agentctl help stop ')).toEqual([]);
  });

  it('doctor --check ids, and after spawn -- the command and files', () => {
    expect(complete('agentctl doctor --check host.m')).toEqual(['host.memory']);
    expect(complete('agentctl spawn --name x -- sle')).toContain('sleep');
    expect(complete('agentctl spawn -- sleep uniq')).toEqual(['uniquefile-here.txt']);
  });

  it('a hostile state: nothing of it offered, nothing of it run', () => {
    for (const l of ['stop ', 'stop --group ', 'breaker reset ', 'dlq retry ']) {
      for (const c of complete(`agentctl --state-dir ${hostile} ${l}`)) expect(c).toMatch(/^(gamma|ggood|7|8)$/);
    }
    expect(existsSync(pwned)).toBe(false);
  });
});
