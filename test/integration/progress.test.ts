/**
 * Status lines through a real pseudo-terminal (util-linux script(1)): `spawn --wait`, `wait`,
 * `stop --grace` and `throttle-status --wait-level` show one line on the terminal's stderr that
 * says what they wait for and how long, redraw it in place as it changes, and erase it before
 * their own output, leaving no status behind. And the cases that must show none: stderr piped
 * or redirected, `--quiet`, `--json`, `TERM=dumb`.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { adoptRun, BIN, cleanEnv, dbGet, parseJson, queueLength, ROOT, runCli, useTempState, waitFor } from '../helpers.js';

const WORKER = join(ROOT, 'test', 'fixtures', 'worker.mjs');
const ERASE = '\r\u001b[2K';
const COLS = 100;

const t = useTempState();
const procs = t.procs;

const env = (extra: Record<string, string> = {}) => cleanEnv({ AGENTCTL_DISABLE_THROTTLE: '1', TERM: 'xterm', ...extra });
const cli = (args: string[]) => runCli(['--state-dir', t.sd, ...args], { env: env(), cwd: t.dir, timeoutMs: 60_000 });
const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
/** agentctl's command line for a shell, with this test's state dir */
const agentctl = (args: string[]) => [process.execPath, BIN, '--state-dir', t.sd, ...args].map(q).join(' ');

/** PIDs under `pid` (children, grandchildren, ...), from /proc. */
function descendants(pid: number): number[] {
  const kids = new Map<number, number[]>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      (kids.get(ppid) ?? kids.set(ppid, []).get(ppid)!).push(Number(d));
    } catch {
      /* gone */
    }
  }
  const out: number[] = [];
  const stack = [pid];
  while (stack.length) for (const k of kids.get(stack.pop()!) ?? []) (stack.push(k), out.push(k));
  return out;
}

interface Pty {
  readonly child: ChildProcess;
  /** everything the terminal got so far (stdout and stderr both) */
  out(): string;
  readonly done: Promise<{ code: number | null; out: string }>;
}

/** Run a shell command line on a pseudo-terminal of COLS columns; the processes under it are ended by PID after the test. */
function inPty(line: string, extraEnv: Record<string, string> = {}): Pty {
  const child = procs.track(spawn('script', ['-qfec', `stty cols ${COLS}; exec ${line}`, '/dev/null'], { cwd: t.dir, env: env(extraEnv), stdio: ['ignore', 'pipe', 'pipe'] }));
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  const done = once(child, 'close').then(([code]) => ({ code: code as number | null, out }));
  // agentctl runs under script: adopt it (and what it starts), so it is ended by PID too
  void waitFor(() => descendants(child.pid!).length > 0 || child.exitCode !== null, 10_000).then(() => procs.adopt(...descendants(child.pid!)));
  return { child, out: () => out, done };
}

/** The status lines drawn, in order: what follows an erase up to the next erase, on one line. */
function statusLines(out: string): string[] {
  const parts = out.split(ERASE).slice(1);
  return parts.slice(0, -1).filter((p) => p !== '' && !p.includes('\n'));
}

/**
 * The terminal is left clean: a status line was drawn, every one was erased (what follows the
 * last erase is whole lines of other output, none of them a status), and none was wider than
 * the terminal.
 */
function expectClean(out: string, status: RegExp): void {
  expect(statusLines(out).length).toBeGreaterThan(0);
  const last = out.split(ERASE).at(-1)!;
  expect(last === '' || last.endsWith('\n'), JSON.stringify(last)).toBe(true);
  expect(last).not.toMatch(status);
  for (const l of statusLines(out)) expect(l.length).toBeLessThanOrEqual(COLS - 1);
}

/** `spawn -d` a command (the worker fixture, which runs until ended, by default); its PID and supervisor are ended after the test. */
async function spawnD(name: string, extra: string[] = [], command?: string[]): Promise<{ run_id: string; pid: number }> {
  const r = await cli(['spawn', '-d', '--json', '--name', name, ...extra, '--', ...(command ?? [process.execPath, WORKER, join(t.dir, 'worker.log'), name])]);
  expect(r.code, r.stderr).toBe(0);
  const doc = parseJson<{ run_id: string; pid: number }>(r.stdout);
  adoptRun(procs, t.sd, doc);
  return doc;
}

/** A command started in the background with stdout and stderr piped. */
function piped(args: string[]): { child: ChildProcess; done: Promise<{ code: number | null; stdout: string; stderr: string }> } {
  const child = procs.track(spawn(process.execPath, [BIN, '--state-dir', t.sd, ...args], { cwd: t.dir, env: env(), stdio: ['ignore', 'pipe', 'pipe'] }));
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return { child, done: once(child, 'close').then(([code]) => ({ code: code as number | null, stdout, stderr })) };
}

const hasScript = spawnSync('script', ['--version'], { encoding: 'utf8' }).status === 0;
const SLOT = /^waiting for a slot in group g: (\d+(st|nd|rd|th)) in queue, 1 of 1 running, (\d+)s$/;

describe.skipIf(!hasScript)('status lines on a terminal', () => {
  it('spawn --wait: the queue place and the clock, redrawn; none on a pipe, a redirect, --quiet, --json or TERM=dumb; erased before the child runs', async () => {
    await spawnD('hold', ['--group', 'g', '--max', '1']);
    const wait = (name: string, more: string[] = []) => [...more, 'spawn', '--wait', '60s', '--name', name, '--group', 'g', '--max', '1', '--', 'echo', `ADMITTED-${name}`];
    // the ones that must show nothing queue first, so they have waited longer than the one that shows
    const pipe = piped(wait('np'));
    await waitFor(() => queueLength(t.sd) === 1, 20_000, { what: 'the piped waiter queued' });
    const redirect = inPty(`${agentctl(wait('nr'))} 2>${q(join(t.dir, 'nr.err'))}`);
    await waitFor(() => queueLength(t.sd) === 2, 20_000, { what: 'the redirected waiter queued' });
    const quiet = inPty(agentctl(wait('nq', ['--quiet'])));
    const json = inPty(agentctl(wait('nj', ['--json'])));
    const dumb = inPty(agentctl(wait('nd')), { TERM: 'dumb' });
    await waitFor(() => queueLength(t.sd) === 5, 20_000, { what: 'the silent waiters queued' });
    const shown = inPty(agentctl(wait('w6')));
    // the line appears with the place in the queue, and its clock moves
    await waitFor(() => statusLines(shown.out()).some((l) => SLOT.exec(l)?.[3] === '1'), 30_000, { what: 'a status line at 1s' });
    await waitFor(() => statusLines(shown.out()).some((l) => SLOT.exec(l)?.[3] === '2'), 30_000, { what: 'a status line at 2s' });
    expect(SLOT.exec(statusLines(shown.out())[0]!)?.[1]).toBe('6th');

    expect((await cli(['stop', 'hold', '--grace', '5s'])).code).toBe(0);
    const s = await shown.done;
    expect(s.code).toBe(0);
    expect(s.out).toContain('ADMITTED-w6');
    // the line was erased before the child's output, and nothing is left of it
    expect(s.out.lastIndexOf(ERASE)).toBeLessThan(s.out.indexOf('ADMITTED-w6'));
    expectClean(s.out, /waiting for/);

    // waited as long or longer, and printed no status line and no erase
    const p = await pipe.done;
    expect(p.code).toBe(0);
    expect(p.stderr).not.toContain('waiting for');
    expect(p.stderr).not.toContain('\u001b');
    for (const silent of [redirect, quiet, json, dumb]) {
      const r = await silent.done;
      expect(r.code).toBe(0);
      expect(r.out).not.toContain('waiting for');
      expect(r.out).not.toContain(ERASE);
    }
    const nrErr = readFileSync(join(t.dir, 'nr.err'), 'utf8');
    expect(nrErr).not.toContain('waiting for');
    expect(nrErr).not.toContain('\u001b');
    expect((await json.done).out).toMatch(/^\{"outcome":"finished"/m);
  }, 120_000);

  it('wait: the runs still waited for, the list shrinking as they end; --json on the same terminal shows none', async () => {
    await spawnD('alpha');
    await spawnD('beta');
    const silent = inPty(agentctl(['--json', 'wait', 'alpha', 'beta']));
    const w = inPty(agentctl(['wait', 'alpha', 'beta']));
    await waitFor(() => statusLines(w.out()).some((l) => /^waiting for 2 runs: alpha, beta, [1-9]\d*s$/.test(l)), 30_000, { what: 'the line for both runs' });
    expect((await cli(['stop', 'alpha'])).code).toBe(0);
    await waitFor(() => statusLines(w.out()).some((l) => /^waiting for beta, \d+s$/.test(l)), 30_000, { what: 'the line for what is left' });
    expect((await cli(['stop', 'beta'])).code).toBe(0);
    const r = await w.done;
    expect(r.out).toMatch(/alpha r\w+: stopped/);
    expectClean(r.out, /waiting for/);
    const s = await silent.done;
    expect(s.out).not.toContain('waiting for');
    expect(s.out).not.toContain(ERASE);
    expect(s.out).toMatch(/"runs":/);
  }, 120_000);

  it('stop --grace: the run, its PID and how much of the grace has passed, for a process that ignores TERM', async () => {
    const run = await spawnD('stubborn', [], ['sh', '-c', 'trap "" TERM; sleep 100']);
    const s = inPty(agentctl(['stop', 'stubborn', '--grace', '4s']));
    const line = new RegExp(`^stopping stubborn \\(pid ${run.pid}\\): (\\d)s of 4s grace$`);
    await waitFor(() => statusLines(s.out()).some((l) => line.exec(l)?.[1] === '1'), 30_000, { what: 'the grace at 1s' });
    await waitFor(() => statusLines(s.out()).some((l) => line.exec(l)?.[1] === '2'), 30_000, { what: 'the grace at 2s' });
    const r = await s.done;
    expect(r.code).toBe(0);
    expect(r.out).toContain('forced (KILL after the grace): stubborn');
    expectClean(r.out, /stopping/);
  }, 60_000);

  it('throttle-status --wait-level: the level against the one wanted, why, and the timeout', async () => {
    const config = join(t.dir, 'heavy.toml');
    writeFileSync(config, '[throttle]\nmemory_pct = [0.1, 0.2, 0.3]\n');
    const s = inPty(agentctl(['--config', config, 'throttle-status', '--wait-level', '1', '--timeout', '3s']), { AGENTCTL_DISABLE_THROTTLE: '0' });
    const r = await s.done;
    expect(r.code).toBe(75);
    const lines = statusLines(r.out);
    expect(
      lines.some((l) => /^waiting for throttle level 1 or below: level 3 heavy: memory .*, [12]s of 3s$/.test(l)),
      JSON.stringify(lines),
    ).toBe(true);
    expectClean(r.out, /waiting for/);
  }, 60_000);
});
