/**
 * The two detached supervisors side by side: the compiled one (native/supervise.c, built into
 * dist/agentctl-supervise, used wherever it was built) and the /bin/sh script (launch.ts, used
 * without a compiler or with AGENTCTL_SUPERVISOR=sh). The rest of the suite runs whichever is
 * the default (the compiled one, which scripts/ci-deps.sh makes sure can be built); here every
 * duty a supervisor has is checked on both, and each case first proves which one ran.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, copyFileSync, cpSync, existsSync, openSync, readdirSync, readFileSync, readlinkSync, realpathSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BIN, cleanEnv, dbAll, dbGet, parseJson, recordedEnd, ROOT, runCli, runRow, useTempState, waitFor } from '../helpers.js';

const t = useTempState();
const procs = t.procs;
const NATIVE = join(ROOT, 'dist', 'agentctl-supervise');

const row = (id: string) => runRow(t.sd, id);
/** /proc/PID/stat's fields after the command name: [state, ppid, pgrp, session, ...] */
const statOf = (pid: number) => {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return s.slice(s.lastIndexOf(')') + 2).split(' ');
};

describe.each([
  ['compiled', {}],
  ['shell', { AGENTCTL_SUPERVISOR: 'sh' }],
] as const)('the %s supervisor', (kind, extra) => {
  const env = () => cleanEnv({ AGENTCTL_DISABLE_THROTTLE: '1', AGENTCTL_SPAWN_COUNT_UNMANAGED: '0', AGENTCTL_SPAWN_MIN_UPTIME: '10m', ...extra });
  const cli = ([command, ...args]: string[]) => runCli([command!, '--state-dir', t.sd, ...args], { env: env(), cwd: t.dir });

  async function detached(args: string[]): Promise<{ run_id: string; pid: number; log_path: string }> {
    const r = await cli(['spawn', '--json', '-d', ...args]);
    expect(r.code, r.stderr).toBe(0);
    const out = parseJson<{ run_id: string; pid: number; log_path: string }>(r.stdout);
    procs.adopt(out.pid);
    const sup = row(out.run_id).sup_pid;
    if (sup !== null) procs.adopt(sup);
    return out;
  }

  const ended = (runId: string) => recordedEnd(t.sd, runId, () => cli(['ps', '--json']), 30_000);

  it('is the one that runs, named agentctl-supervise -s RUN_ID; its child leads its own session and group', async () => {
    if (kind === 'compiled') expect(existsSync(NATIVE), `${NATIVE} was not built (no C compiler?)`).toBe(true);
    const out = await detached(['--name', 'plain', '--', 'sleep', '60']);
    const sup = row(out.run_id).sup_pid!;
    expect(readFileSync(`/proc/${sup}/cmdline`, 'utf8').split('\0').slice(0, -1)).toEqual(['agentctl-supervise', '-s', out.run_id]);
    expect(readlinkSync(`/proc/${sup}/exe`)).toBe(realpathSync(kind === 'compiled' ? NATIVE : '/bin/sh'));
    const [, ppid, pgrp, session] = statOf(out.pid);
    expect([Number(ppid), Number(pgrp), Number(session)]).toEqual([sup, out.pid, out.pid]);
    const childEnv = readFileSync(`/proc/${out.pid}/environ`, 'utf8').split('\0');
    expect(childEnv).toContain(`AGENTCTL_RUN_ID=${out.run_id}`);
    expect(childEnv).toContain('AGENTCTL_NAME=plain');
    expect(childEnv.filter((e) => e.startsWith('AGENTCTL_SUP_'))).toEqual([]);
    expect((await cli(['stop', 'plain', '--grace', '2s'])).code).toBe(0);
    expect(await ended(out.run_id)).toMatchObject({ state: 'stopped' });
  });

  it('records the exit code, the signal that ended a child, and the CPU time its tree used', async () => {
    const three = await detached(['--name', 'three', '--', 'sh', '-c', 'exit 3']);
    const killed = await detached(['--name', 'killed', '--', 'sh', '-c', 'kill -KILL $$']);
    const busy = await detached(['--name', 'busy', '--', process.execPath, '-e', 'const t=Date.now(); while (process.cpuUsage().user < 400e3 && Date.now() - t < 20e3);']);
    expect(await ended(three.run_id)).toMatchObject({ state: 'failed', exit_code: 3, signal: null });
    expect(await ended(killed.run_id)).toMatchObject({ state: 'failed', signal: 'SIGKILL' });
    const b = await ended(busy.run_id);
    expect(b).toMatchObject({ state: 'exited', exit_code: 0 });
    expect(b.cpu_ms).toBeGreaterThanOrEqual(350);
    expect((await cli(['wait', 'three'])).code).toBe(3);
  });

  it('a command that is not found: exit 127, and its log says so', async () => {
    const out = await detached(['--name', 'nosuch', '--', 'agentctl-no-such-command-here']);
    expect(await ended(out.run_id)).toMatchObject({ exit_code: 127 });
    expect(readFileSync(out.log_path, 'utf8')).toMatch(/agentctl-no-such-command-here.*(not found|No such file or directory)/);
  });

  it('--timeout: its watchdog ends the run, recorded as a timeout', async () => {
    const out = await detached(['--name', 'slow', '--timeout', '700ms', '--kill-grace', '300ms', '--', 'sh', '-c', "trap '' TERM; sleep 30"]);
    const r = await ended(out.run_id);
    expect(r.failure).toBe('timeout');
    expect(existsSync(join(t.sd, 'runs', `${out.run_id}.timeout`)) || r.ended_at !== null).toBe(true);
  });

  it('caps the log at log_max while the child runs, and once more at its end', async () => {
    writeFileSync(join(t.dir, 'agentctl.toml'), '[spawn]\nlog_max = "4K"\n', { mode: 0o600 });
    const lines = 'i=1; while [ $i -le 5000 ]; do echo "line $i"; i=$((i+1)); done';
    const live = await detached(['--name', 'burst', '--', 'sh', '-c', `${lines}; exec sleep 60`]);
    await waitFor(() => existsSync(`${live.log_path}.prev`) && statSync(live.log_path).size <= 4096, 15_000, { what: 'the live log capped' });
    expect(readFileSync(`${live.log_path}.prev`, 'utf8').endsWith('line 5000\n')).toBe(true);
    expect(statSync(`${live.log_path}.prev`).size).toBe(2048);
    const quick = await detached(['--name', 'quick', '--', 'sh', '-c', `${lines}; exit 4`]);
    expect(await ended(quick.run_id)).toMatchObject({ exit_code: 4 });
    expect(statSync(quick.log_path).size).toBeLessThanOrEqual(4096);
    expect(readFileSync(`${quick.log_path}.prev`, 'utf8').endsWith('line 5000\n')).toBe(true);
  });

  it('--restart on-failure: it asks again after the end and starts the next run; stop ends the policy', async () => {
    writeFileSync(join(t.dir, 'agentctl.toml'), '[spawn]\nbackoff_startup = "1s"\nbackoff_failure = "1s"\n', { mode: 0o600 });
    const first = await detached(['--name', 'again', '--restart', 'on-failure', '--retries', '3', '--', 'sh', '-c', 'sleep 0.3; exit 1']);
    const next = await waitFor(() => dbGet<{ id: string; pid: number | null }>(t.sd, "SELECT id, pid FROM runs WHERE name = 'again' AND restart_attempt = 1 AND pid IS NOT NULL"), 30_000, {
      what: 'the restarted run',
    });
    procs.adopt(next.pid!);
    expect(next.id).not.toBe(first.run_id);
    expect((await cli(['stop', 'again', '--grace', '2s'])).code).toBe(0);
    const sups = [row(first.run_id).sup_pid, row(next.id).sup_pid];
    await waitFor(() => sups.every((p) => p === null || !existsSync(`/proc/${p}`) || statOf(p)[0] === 'Z'), 10_000, { what: 'the supervisors ending' });
  });

  it.runIf(kind === 'compiled')('the child gets stdin, stdout and stderr only, whatever other descriptors the caller left open', async () => {
    // fd 4 left open by the caller, not close-on-exec: Node hands it to agentctl, and agentctl's
    // spawns hand it on to whatever they start
    const c = spawn(process.execPath, [BIN, 'spawn', '--state-dir', t.sd, '--json', '-d', '--name', 'fds', '--', 'sleep', '60'], {
      cwd: t.dir,
      env: env(),
      stdio: ['ignore', 'pipe', 'pipe', 'ignore', 'pipe'],
    });
    let stdout = '';
    c.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    const [code] = (await once(c, 'exit')) as [number | null];
    expect(code).toBe(0);
    const out = parseJson<{ run_id: string; pid: number }>(stdout.trim());
    procs.adopt(out.pid);
    expect(readdirSync(`/proc/${out.pid}/fd`).sort()).toEqual(['0', '1', '2']);
    const sup = row(out.run_id).sup_pid!;
    expect(readdirSync(`/proc/${sup}/fd`).sort()).toEqual(['0', '1', '2']);
    expect((await cli(['stop', 'fds', '--grace', '2s'])).code).toBe(0);
    c.stdio[4]?.destroy();
  });
});

describe('a compiled supervisor that passes the checks but cannot be executed', () => {
  // a copy of the built agentctl whose dist/agentctl-supervise is an ELF program of this machine
  // with a dynamic loader that does not exist: its exec fails (ENOENT), as one on a noexec
  // mount, or deleted by a rebuild meanwhile, would
  const copy = () => {
    const root = join(t.dir, 'install');
    cpSync(join(ROOT, 'bin'), join(root, 'bin'), { recursive: true });
    cpSync(join(ROOT, 'dist'), join(root, 'dist'), { recursive: true });
    cpSync(join(ROOT, 'package.json'), join(root, 'package.json'));
    symlinkSync(join(ROOT, 'node_modules'), join(root, 'node_modules'));
    const elf = readFileSync('/bin/true');
    const at = elf.indexOf('ld-');
    expect(at).toBeGreaterThan(0);
    const end = elf.indexOf(0, at);
    elf[end - 1] = 'Z'.charCodeAt(0);
    writeFileSync(join(root, 'dist', 'agentctl-supervise'), elf, { mode: 0o755 });
    return join(root, 'bin', 'agentctl');
  };
  const env = () => cleanEnv({ AGENTCTL_DISABLE_THROTTLE: '1', AGENTCTL_SPAWN_COUNT_UNMANAGED: '0' });

  const runWith = (bin: string, args: string[]) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const c = spawn(process.execPath, [bin, '--state-dir', t.sd, ...args], { cwd: t.dir, env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      c.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      c.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      c.once('close', (code) => resolve({ code, stdout, stderr }));
    });

  it('one busy being written (ETXTBSY, which Node throws rather than reports): the shell supervises', async () => {
    const bin = copy();
    const sup = join(t.dir, 'install', 'dist', 'agentctl-supervise');
    copyFileSync(join(ROOT, 'dist', 'agentctl-supervise'), sup);
    const writer = openSync(sup, 'r+');
    try {
      const r = await runWith(bin, ['spawn', '--json', '-d', '--name', 'busy', '--', 'sleep', '60']);
      expect(r.code, r.stderr).toBe(0);
      const out = parseJson<{ run_id: string; pid: number }>(r.stdout);
      procs.adopt(out.pid);
      expect(readlinkSync(`/proc/${row(out.run_id).sup_pid}/exe`)).toBe(realpathSync('/bin/sh'));
      expect((await runWith(bin, ['stop', 'busy', '--grace', '2s'])).code).toBe(0);
    } finally {
      closeSync(writer);
    }
  });

  it('spawn -d and up fall back to the shell supervisor, once per start, and the runs run', async () => {
    const bin = copy();
    const run = (args: string[]) => runWith(bin, args);
    const one = await run(['spawn', '--json', '-d', '--name', 'solo', '--', 'sleep', '60']);
    expect(one.code, one.stderr).toBe(0);
    const solo = parseJson<{ run_id: string; pid: number }>(one.stdout);
    procs.adopt(solo.pid);
    writeFileSync(join(t.dir, 'agentctl.toml'), '[[agents]]\nname = "a"\ncommand = ["sleep", "60"]\n\n[[agents]]\nname = "b"\ncommand = ["sleep", "60"]\n', { mode: 0o600 });
    const up = await run(['up', '--json']);
    expect(up.code, up.stderr).toBe(0);
    const rows = dbAll<{ id: string; pid: number; sup_pid: number; state: string }>(t.sd, 'SELECT id, pid, sup_pid, state FROM runs WHERE ended_at IS NULL');
    procs.adopt(...rows.map((r) => r.pid));
    expect(rows.map((r) => r.state)).toEqual(['running', 'running', 'running']);
    for (const r of rows) expect(readlinkSync(`/proc/${r.sup_pid}/exe`)).toBe(realpathSync('/bin/sh'));
    expect((await run(['stop', '--all', '--grace', '2s'])).code).toBe(0);
  });
});
