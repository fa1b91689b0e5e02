/**
 * agentctl logs end to end, on real detached runs: the last lines and -n, lines from .prev
 * after reconcile capped the log, -f printing lines written later and exiting with the run's
 * code (and 130 on Ctrl-C), a symlink planted in place of the log refused, control characters
 * escaped, an unknown run (2) and a foreground run (1, no log).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { adoptRun, BIN, cleanEnv, dbGet, parseJson, runCli, useTempState, waitFor } from '../helpers.js';

const t = useTempState();
const procs = t.procs;

const env = () => cleanEnv({ AGENTCTL_DISABLE_THROTTLE: '1' });
/** a config with the smallest log_max, so a few kB of output get the log capped */
const config = () => {
  const path = join(t.dir, 'agentctl.toml');
  if (!existsSync(path)) writeFileSync(path, '[spawn]\nlog_max = "4K"\n', { mode: 0o600 });
  return path;
};
const cli = (args: string[]) => runCli(['--state-dir', t.sd, '--config', config(), ...args], { env: env(), cwd: t.dir, timeoutMs: 60_000 });

/** `spawn -d` a shell script; its child and supervisor ended by PID after the test. */
async function spawnD(name: string, script: string): Promise<{ run_id: string; pid: number; log_path: string }> {
  const r = await cli(['spawn', '-d', '--json', '--name', name, '--', 'sh', '-c', script]);
  expect(r.code, r.stderr).toBe(0);
  const doc = parseJson<{ run_id: string; pid: number; log_path: string }>(r.stdout);
  adoptRun(procs, t.sd, doc);
  return doc;
}

/** `agentctl logs ...` in the background, so the test can act while it follows. */
function startLogs(args: string[]): { child: ChildProcess; out: () => string; done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> } {
  const child = procs.track(spawn(process.execPath, [BIN, '--state-dir', t.sd, '--config', config(), 'logs', ...args], { cwd: t.dir, env: env(), stdio: ['ignore', 'pipe', 'pipe'] }));
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const done = once(child, 'close').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null, stdout, stderr }));
  return { child, out: () => stdout, done };
}

const seq = (from: number, to: number) => `i=${from}; while [ $i -le ${to} ]; do echo "line $i"; i=$((i+1)); done`;
const lines = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => `line ${from + i}`);

describe('agentctl logs', () => {
  it("prints a name's last 10 lines, -n N of them, -n 0 none, and --json one object per line", async () => {
    const { run_id } = await spawnD('build', `${seq(1, 30)}; exit 0`);
    expect((await cli(['wait', 'build'])).code).toBe(0);
    const ten = await cli(['logs', 'build']);
    expect(ten.code, ten.stderr).toBe(0);
    expect(ten.stdout).toBe(`${lines(21, 30).join('\n')}\n`);
    expect((await cli(['logs', run_id, '-n', '3'])).stdout).toBe('line 28\nline 29\nline 30\n');
    expect((await cli(['logs', 'build', '-n', '100'])).stdout).toBe(`${lines(1, 30).join('\n')}\n`);
    expect((await cli(['logs', 'build', '-n', '0'])).stdout).toBe('');
    const json = await cli(['logs', 'build', '-n', '2', '--json']);
    expect(
      json.stdout
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l) as unknown),
    ).toEqual([
      { run_id, name: 'build', line: 'line 29' },
      { run_id, name: 'build', line: 'line 30' },
    ]);
    expect((await cli(['logs', 'build', '-n', 'lots'])).code).toBe(2);
  });

  it('the supervisor caps a live log as it grows and an ended one at its end, no agentctl command needed', async () => {
    // ~44 kB in a burst against log_max 4K, then alive: nothing but the supervisor looks at the log
    const live = await spawnD('burst', `${seq(1, 5000)}; exec sleep 60`);
    await waitFor(() => existsSync(`${live.log_path}.prev`) && statSync(live.log_path).size <= 4096, 15_000, { what: 'the live log capped by its supervisor' });
    expect(readFileSync(`${live.log_path}.prev`, 'utf8').endsWith('line 5000\n')).toBe(true);
    expect(statSync(`${live.log_path}.prev`).size).toBe(2048);
    // a run that prints and exits at once: the supervisor caps before it records the exit
    const ended = await spawnD('quick', `${seq(1, 5000)}; exit 3`);
    const exitFile = join(t.sd, 'runs', `${ended.run_id}.exit`);
    await waitFor(() => existsSync(exitFile), 15_000, { what: 'the exit recorded' });
    expect(statSync(ended.log_path).size).toBeLessThanOrEqual(4096);
    expect(readFileSync(`${ended.log_path}.prev`, 'utf8').endsWith('line 5000\n')).toBe(true);
    expect((await cli(['wait', 'quick'])).code).toBe(3);
  });

  it('reaches into <log>.prev when the log was capped', async () => {
    // ~5.4 kB of output, then it stays alive: the next reconcile (ps) caps the live run's log
    const { log_path } = await spawnD('chatty', `${seq(1, 600)}; exec sleep 60`);
    await waitFor(
      async () => {
        await cli(['ps']);
        return existsSync(`${log_path}.prev`);
      },
      10_000,
      { what: 'the log capped into .prev' },
    );
    // the log was emptied: every line shown comes from .prev, the cut first line left out
    const r = await cli(['logs', 'chatty', '-n', '20']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`${lines(581, 600).join('\n')}\n`);
  });

  it("-f prints lines written later and exits with the run's code when it ends", async () => {
    await spawnD('slow', `echo first; while [ ! -e go ]; do sleep 0.05; done; echo second; printf 'no newline'; exit 7`);
    const f = startLogs(['slow', '-f']);
    await waitFor(() => f.out().includes('first\n'), 15_000, { what: 'the first line' });
    writeFileSync(join(t.dir, 'go'), '');
    const r = await f.done;
    expect(r.stdout).toBe('first\nsecond\nno newline\n');
    expect(r.code).toBe(7);
    expect(r.stderr).toContain('status 7');
  });

  it('-f follows the log across a cap, and its JSON lines, and ends with 130 on Ctrl-C', async () => {
    await spawnD('capped', `${seq(1, 10)}; while [ ! -e go ]; do sleep 0.05; done; ${seq(11, 600)}; exec sleep 60`);
    const f = startLogs(['capped', '-f', '--json', '-n', '5']);
    await waitFor(() => f.out().split('\n').length > 5, 15_000, { what: 'the first lines' });
    writeFileSync(join(t.dir, 'go'), '');
    // -f reconciles once a second, and so caps the log while it follows it
    await waitFor(() => f.out().includes('"line 600"'), 15_000, { what: 'the last line' });
    const { log_path } = dbGet<{ log_path: string }>(t.sd, "SELECT log_path FROM runs WHERE name = 'capped'")!;
    await waitFor(async () => {
      await cli(['ps']);
      return existsSync(`${log_path}.prev`);
    }, 10_000);
    f.child.kill('SIGINT');
    const r = await f.done;
    expect(r.code).toBe(130);
    const got = r.stdout
      .trimEnd()
      .split('\n')
      .map((l) => (JSON.parse(l) as { line: string }).line);
    expect(got).toEqual(lines(6, 600));
  });

  it("-f --next goes on with the name's next run until interrupted", async () => {
    await spawnD('again', 'echo one; exit 0');
    expect((await cli(['wait', 'again'])).code).toBe(0);
    const f = startLogs(['again', '-f', '--next', '-n', '5']);
    await waitFor(() => f.out().includes('one\n'), 15_000, { what: 'the first run' });
    await spawnD('again', 'echo two; echo three; exit 4');
    await waitFor(() => f.out().includes('three\n'), 15_000, { what: 'the next run' });
    f.child.kill('SIGINT');
    const r = await f.done;
    expect(r.code).toBe(130);
    expect(r.stdout).toBe('one\ntwo\nthree\n');
    expect(r.stderr).toContain('waiting for the next run of again');
    expect((await cli(['logs', 'again', '--next'])).code).toBe(2);
  });

  it('-f costs no CPU while the run is quiet (it sleeps on the bell and a watch on the log)', async () => {
    await spawnD('quiet', 'echo hello; exec sleep 60');
    const f = startLogs(['quiet', '-f']);
    await waitFor(() => f.out().includes('hello\n'), 15_000, { what: 'the first line' });
    /** utime + stime of a process, in clock ticks (fields 14 and 15 of /proc/PID/stat) */
    const ticks = () => {
      const fields = readFileSync(`/proc/${f.child.pid!}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return Number(fields[11]) + Number(fields[12]);
    };
    const before = ticks();
    const from = Date.now();
    await new Promise((r) => setTimeout(r, 3000));
    const used = ticks() - before;
    // a busy loop would use nearly all of it (USER_HZ is 100); a reconcile a second a few ticks
    expect(used).toBeLessThan(((Date.now() - from) / 1000) * 100 * 0.1);
    f.child.kill('SIGINT');
    expect((await f.done).code).toBe(130);
  });

  it('refuses a symlink planted in place of the log', async () => {
    const { log_path } = await spawnD('planted', 'echo mine; exit 0');
    expect((await cli(['wait', 'planted'])).code).toBe(0);
    const secret = join(t.dir, 'secret.txt');
    writeFileSync(secret, 'SECRET CONTENTS\n', { mode: 0o600 });
    rmSync(log_path);
    symlinkSync(secret, log_path);
    for (const args of [['planted'], ['planted', '-f']]) {
      const r = await cli(['logs', ...args]);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toContain('is a link or not a plain file of yours');
      expect(r.stderr).not.toContain('SECRET');
    }
  });

  it('escapes control characters in the text view; --json has the exact text', async () => {
    await spawnD('colour', `printf '\\033[31mred\\033[0m\\tok\\n'; exit 0`);
    expect((await cli(['wait', 'colour'])).code).toBe(0);
    expect((await cli(['logs', 'colour'])).stdout).toBe('\\x1b[31mred\\x1b[0m\\tok\n');
    expect(parseJson<{ line: string }>((await cli(['logs', 'colour', '--json'])).stdout).line).toBe('\u001b[31mred\u001b[0m\tok');
  });

  it('an unknown run exits 2, a foreground run 1 (no log), each with one line', async () => {
    const unknown = await cli(['logs', 'nosuch']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr.trimEnd().split('\n')).toEqual(['agentctl: logs: no run named "nosuch" (neither a run id nor a name with a run)']);
    expect((await cli(['spawn', '--name', 'fg', '--', 'sh', '-c', 'echo hi'])).code).toBe(0);
    const fg = await cli(['logs', 'fg']);
    expect(fg.code).toBe(1);
    expect(fg.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(fg.stderr).toContain('ran in the foreground');
  });
});
