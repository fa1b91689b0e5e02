/**
 * agentctl wait end to end, on real detached runs: exit codes (the run's own, the first
 * non-zero of several, --any, 75 on --timeout, 2 for an unknown run), a name's latest run,
 * runs killed from outside (with and without the supervisor's bell), and that waiting costs
 * no CPU.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { adoptRun, alive, BIN, cleanEnv, dbGet, parseJson, ROOT, runCli, useTempState, waitFor, watchesInotify } from '../helpers.js';

const WORKER = join(ROOT, 'test', 'fixtures', 'worker.mjs');
/** a fresh temp folder and state dir per test; processes in procs ended by PID after it */
const t = useTempState();
const procs = t.procs;

const env = () => cleanEnv({ AGENTCTL_DISABLE_THROTTLE: '1' });
const cli = (args: string[]) => runCli(['--state-dir', t.sd, ...args], { env: env(), cwd: t.dir, timeoutMs: 60_000 });

interface WaitedRun {
  run_id: string;
  name: string;
  state: string;
  exit_code: number | null;
  signal: string | null;
  duration_ms: number;
  status: number | null;
}
interface WaitDoc {
  runs: WaitedRun[];
  timed_out: boolean;
  decided_by: string | null;
  waited_ms: number;
}

/** `spawn -d` the worker fixture: exits `exit` after `after` ms, or runs until ended. */
async function spawnD(name: string, worker: { exit?: number; after?: number } = {}): Promise<{ run_id: string; pid: number }> {
  const flags = [...(worker.exit !== undefined ? [`exit=${worker.exit}`] : []), ...(worker.after !== undefined ? [`after=${worker.after}`] : [])];
  const r = await cli(['spawn', '-d', '--json', '--name', name, '--', process.execPath, WORKER, join(t.dir, 'worker.log'), name, ...flags]);
  expect(r.code, r.stderr).toBe(0);
  const doc = parseJson<{ run_id: string; pid: number }>(r.stdout);
  adoptRun(procs, t.sd, doc);
  return doc;
}

/** `agentctl wait ...` started in the background, so the test can act while it waits. */
function startWait(args: string[]): { child: ChildProcess; done: Promise<{ code: number | null; stdout: string; stderr: string }> } {
  const child = procs.track(spawn(process.execPath, [BIN, '--state-dir', t.sd, 'wait', ...args], { cwd: t.dir, env: env(), stdio: ['ignore', 'pipe', 'pipe'] }));
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const done = once(child, 'close').then(([code]) => ({ code: code as number | null, stdout, stderr }));
  return { child, done };
}

/** utime + stime of a process, in clock ticks (fields 14 and 15 of /proc/PID/stat). */
function cpuTicks(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

const listening = (child: ChildProcess) => waitFor(() => existsSync(join(t.sd, 'slots.bell')) && watchesInotify(child.pid!), 10_000, { what: 'wait listening on the bell' });

describe('agentctl wait', () => {
  it('waits for a run that exits 3, and exits 3', async () => {
    const run = await spawnD('three', { exit: 3, after: 1500 });
    const r = await cli(['wait', '--json', 'three']);
    expect(r.code, r.stderr).toBe(3);
    const doc = parseJson<WaitDoc>(r.stdout);
    expect(doc.timed_out).toBe(false);
    expect(doc.decided_by).toBe(run.run_id);
    expect(doc.runs).toEqual([expect.objectContaining({ run_id: run.run_id, name: 'three', state: 'failed', exit_code: 3, signal: null, status: 3 })]);
    expect(doc.runs[0]!.duration_ms).toBeGreaterThanOrEqual(1000);
    // the run is recorded as ended, as any reconciling command would
    expect(dbGet<{ exit_code: number }>(t.sd, 'SELECT exit_code FROM runs WHERE id = ?', run.run_id)?.exit_code).toBe(3);
    // the human view: one line per run
    const again = await cli(['wait', run.run_id]);
    expect(again.code).toBe(3);
    expect(again.stdout.trim()).toMatch(new RegExp(`^three ${run.run_id}: failed, exit 3 after `));
  });

  it('several runs: waits for all, exits with the first non-zero in argument order', async () => {
    const ok = await spawnD('ok', { exit: 0, after: 300 });
    const four = await spawnD('four', { exit: 4, after: 1500 });
    const five = await spawnD('five', { exit: 5, after: 200 });
    const r = await cli(['wait', '--json', 'ok', 'four', 'five']);
    expect(r.code, r.stderr).toBe(4);
    const doc = parseJson<WaitDoc>(r.stdout);
    expect(doc.runs.map((x) => [x.run_id, x.status])).toEqual([
      [ok.run_id, 0],
      [four.run_id, 4],
      [five.run_id, 5],
    ]);
    expect(doc.decided_by).toBe(four.run_id);
    expect((await cli(['wait', 'ok'])).code).toBe(0);
  });

  it('--any returns as soon as one ends, with its code, leaving the others running', async () => {
    const long = await spawnD('long');
    const quick = await spawnD('quick', { exit: 6, after: 500 });
    const r = await cli(['wait', '--any', '--json', 'long', 'quick']);
    expect(r.code, r.stderr).toBe(6);
    const doc = parseJson<WaitDoc>(r.stdout);
    expect(doc.decided_by).toBe(quick.run_id);
    expect(doc.runs[0]).toMatchObject({ run_id: long.run_id, state: 'running', status: null });
    expect(alive(long.pid)).toBe(true);
  });

  it('--timeout exits 75 while the run lives, and touches nothing', async () => {
    const run = await spawnD('slow');
    const started = Date.now();
    const r = await cli(['wait', '--json', '--timeout', '1500ms', 'slow']);
    expect(r.code).toBe(75);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1500);
    const doc = parseJson<WaitDoc>(r.stdout);
    expect(doc).toMatchObject({ timed_out: true, decided_by: null, runs: [{ run_id: run.run_id, state: 'running', status: null }] });
    expect(r.stderr).toContain('timed out');
    expect(alive(run.pid)).toBe(true);
    expect((await cli(['wait', '--timeout', 'soon', 'slow'])).code).toBe(2);
  });

  it('a name means its latest run; a run id that run', async () => {
    const first = await spawnD('again', { exit: 0 });
    expect((await cli(['wait', 'again'])).code).toBe(0);
    const second = await spawnD('again', { exit: 4, after: 300 });
    const r = await cli(['wait', '--json', 'again']);
    expect(r.code).toBe(4);
    expect(parseJson<WaitDoc>(r.stdout).runs[0]!.run_id).toBe(second.run_id);
    expect((await cli(['wait', first.run_id])).code).toBe(0);
  });

  it('an unknown name or id: exit 2, one line naming it, nothing waited for', async () => {
    const run = await spawnD('known');
    const started = Date.now();
    const r = await cli(['wait', 'known', 'nosuch']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toEqual([expect.stringContaining('"nosuch"')]);
    expect(Date.now() - started).toBeLessThan(10_000);
    const j = await cli(['wait', '--json', 'r0000000000000']);
    expect(j.code).toBe(2);
    expect(parseJson<{ error: { code: number; details: { unknown: string[] } } }>(j.stdout).error).toMatchObject({ code: 2, details: { unknown: ['r0000000000000'] } });
    expect((await cli(['wait', '../x'])).code).toBe(2);
    expect(alive(run.pid)).toBe(true);
  });

  it('a run killed by SIGKILL from outside: 128 + 9', async () => {
    const run = await spawnD('victim');
    const w = startWait(['--json', 'victim']);
    await listening(w.child);
    process.kill(run.pid, 'SIGKILL'); // the test's own detached run, by its PID
    const r = await w.done;
    expect(r.code, r.stderr).toBe(137);
    expect(parseJson<WaitDoc>(r.stdout).runs[0]).toMatchObject({ run_id: run.run_id, exit_code: null, signal: 'SIGKILL', status: 137 });
  });

  it('a run whose supervisor and process are killed -9 rings no bell: noticed by the slow poll, reported lost, exit 1', async () => {
    const run = await spawnD('ghost');
    const sup = dbGet<{ sup_pid: number }>(t.sd, 'SELECT sup_pid FROM runs WHERE id = ?', run.run_id)!.sup_pid;
    const w = startWait(['--json', 'ghost']);
    await listening(w.child);
    process.kill(sup, 'SIGKILL'); // first the supervisor, so nobody writes the exit or rings
    await waitFor(() => !alive(sup), 5000);
    process.kill(run.pid, 'SIGKILL');
    const r = await w.done;
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/ghost .* was lost/);
    expect(parseJson<WaitDoc>(r.stdout)).toMatchObject({ timed_out: false, decided_by: run.run_id, runs: [{ run_id: run.run_id, state: 'lost', exit_code: null, status: 1 }] });
  });

  it('waiting costs no CPU: a wait of seconds uses a small part of one', async () => {
    const run = await spawnD('idle');
    const w = startWait(['idle']);
    await listening(w.child);
    await new Promise((r) => setTimeout(r, 1000)); // past its start-up
    const before = cpuTicks(w.child.pid!);
    const from = Date.now();
    await new Promise((r) => setTimeout(r, 4000));
    const used = cpuTicks(w.child.pid!) - before;
    const elapsedTicks = ((Date.now() - from) / 1000) * 100; // USER_HZ is 100 on Linux
    // a busy loop would use nearly all of it; a reconcile a second uses a few ticks
    expect(used).toBeLessThan(elapsedTicks * 0.1);
    expect(w.child.exitCode).toBeNull();
    process.kill(run.pid, 'SIGKILL');
    expect((await w.done).code).toBe(137);
  });
});
