/**
 * spawn --each: a batch of shell lines, each a registered run admitted through one admission
 * loop in one agentctl process. Real processes, a real state file, real signals. Jobs that
 * must overlap wait for a `go` file the test creates, so nothing depends on timing.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { State } from '../../src/core/state.js';
import { alive, BIN, cleanEnv, dbGet, parseJson, runCli, type RunResult, useTempState, waitFor } from '../helpers.js';

const t = useTempState();
let cfg: string;

beforeEach(() => {
  cfg = join(t.dir, 'agentctl.toml');
  // a retry must not wait out the default 300 s backoff of a startup error
  writeFileSync(cfg, '[spawn]\nbackoff_startup = "0s"\nbackoff_failure = "0s"\n');
});

const env = () => cleanEnv({ AGENTCTL_CONFIG: cfg, AGENTCTL_DISABLE_THROTTLE: '1' });
const cli = (args: string[]) => runCli(['--state-dir', t.sd, ...args], { env: env(), cwd: t.dir, timeoutMs: 60_000 });
const file = (name: string, text: string) => {
  const p = join(t.dir, name);
  writeFileSync(p, text);
  return p;
};

/** Start a batch in the background (stdin piped, tracked for the test's end), and its result when it ends. */
function startBatch(args: string[], stdin = ''): { child: ChildProcess; result: Promise<RunResult> } {
  const child = t.procs.track(spawn(process.execPath, [BIN, '--state-dir', t.sd, 'spawn', ...args], { cwd: t.dir, env: env(), stdio: ['pipe', 'pipe', 'pipe'] }));
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.stdin!.end(stdin);
  const result = once(child, 'close').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null, stdout, stderr }));
  return { child, result };
}

type Row = { name: string; state: string; pid: number | null; signal: string | null; grp: string; mode: string };
function runs(where = '1'): Row[] {
  if (!existsSync(join(t.sd, 'state.db'))) return [];
  const s = State.open(t.sd);
  try {
    return s.db.prepare(`SELECT name, state, pid, signal, grp, mode FROM runs WHERE ${where} ORDER BY started_at`).all() as Row[];
  } finally {
    s.close();
  }
}
const liveRuns = () => runs('ended_at IS NULL');
/** the live runs once `n` of them run, else undefined */
const whenRunning = (n: number): Row[] | undefined => {
  const live = liveRuns();
  return live.filter((r) => r.state === 'running').length === n ? live : undefined;
};

/** Each job's processes are ended by PID after the test, whatever the batch did. */
const adoptJobs = () => t.procs.adopt(...liveRuns().flatMap((r) => (r.pid !== null ? [r.pid] : [])));
// also when a test fails before it adopts them: this hook runs before useTempState's, which
// ends what was adopted (hooks run in reverse order), so no job outlives a failed test
afterEach(() => adoptJobs());

interface EachJson {
  outcome: string;
  jobs: number;
  succeeded: number;
  failed: number;
  refused: number;
  stopped: number;
  not_started: number;
  retried: number;
  halted: boolean;
  exit_code: number;
  results: Array<{ seq: number; name: string; command: string; outcome: string; exit_code: number | null; retries: number; run_ids: string[]; run_id: string | null }>;
}

describe('spawn --each', () => {
  it('holds --max: never more than 2 jobs alive, other spawns of the group see the slots taken, output grouped per job', async () => {
    const job = (n: number) => `echo "S $(date +%s%N)" >> log; echo a${n}; while [ ! -e go ]; do sleep 0.02; done; echo b${n}; echo "E $(date +%s%N)" >> log`;
    const list = file('jobs.txt', `${[1, 2, 3, 4, 5].map(job).join('\n')}\n`);
    const b = startBatch(['--each', list, '--group', 'g', '--max', '2', '--name', 'job']);
    const two = await waitFor(() => whenRunning(2), 20_000, { what: 'two jobs running' });
    adoptJobs();
    expect(two.map((r) => r.name).sort()).toEqual(['job-1', 'job-2']);
    expect(two.every((r) => r.grp === 'g' && r.pid !== null && alive(r.pid))).toBe(true);
    // another command on the host sees the batch's slots
    const other = await cli(['spawn', '--json', '--group', 'g', '--max', '2', '--name', 'other', '--', 'true']);
    expect(other.code).toBe(75);
    expect(parseJson<{ message: string }>(other.stdout).message).toMatch(/no slot for other: group g: 2 of 2/);
    expect(liveRuns()).toHaveLength(2);
    writeFileSync(join(t.dir, 'go'), '');
    const r = await b.result;
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/5 jobs: 5 succeeded/);
    // at most two intervals overlap at any moment
    const marks = readFileSync(join(t.dir, 'log'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => l.split(' ') as ['S' | 'E', string]);
    marks.sort((x, y) => (BigInt(x[1]) < BigInt(y[1]) ? -1 : BigInt(x[1]) > BigInt(y[1]) ? 1 : 0));
    let n = 0;
    let most = 0;
    for (const [k] of marks) most = Math.max(most, (n += k === 'S' ? 1 : -1));
    expect(marks).toHaveLength(10);
    expect(most).toBe(2);
    // each job's output printed whole when it ended: a<n> directly followed by b<n>
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(10);
    for (let i = 0; i < lines.length; i += 2) expect(lines[i + 1]).toBe(lines[i]!.replace('a', 'b'));
    expect(runs().map((x) => x.state)).toEqual(Array(5).fill('exited'));
  });

  it('exit 1 when a job fails, --retries runs a failed job again, --joblog in GNU parallel format', async () => {
    const counter = 'n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; [ $n -ge 2 ]';
    const list = file('jobs.txt', `true\nexit 3\n${counter}\n`);
    const joblog = join(t.dir, 'jobs.log');
    const r = await cli(['spawn', '--json', '--each', list, '--max', '1', '--retries', '1', '--joblog', joblog]);
    expect(r.code).toBe(1);
    const d = parseJson<EachJson>(r.stdout);
    expect(d).toMatchObject({ outcome: 'batch', jobs: 3, succeeded: 2, failed: 1, retried: 2, exit_code: 1 });
    expect(d.results.map((x) => [x.outcome, x.exit_code, x.retries, x.run_ids.length])).toEqual([
      ['succeeded', 0, 0, 1],
      ['failed', 3, 1, 2],
      ['succeeded', 0, 1, 2],
    ]);
    expect(readFileSync(join(t.dir, 'count'), 'utf8').trim()).toBe('2');
    expect(r.stderr).toMatch(/agentctl: 3 jobs: 2 succeeded, 1 failed \(exit 3; 1 after 1 retry\)/);
    // five runs recorded: one per attempt
    expect(runs()).toHaveLength(5);
    const [head, ...rows] = readFileSync(joblog, 'utf8').trimEnd().split('\n');
    expect(head).toBe('Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand');
    const parsed = rows.map((l) => l.split('\t'));
    expect(parsed.map((f) => [f[0], f[1], f[4], f[5], f[6], f[7], f[8]]).sort()).toEqual([
      ['1', ':', '0', '0', '0', '0', 'true'],
      ['2', ':', '0', '0', '3', '0', 'exit 3'],
      ['3', ':', '0', '0', '0', '0', counter],
    ]);
    for (const f of parsed) {
      expect(f).toHaveLength(9);
      expect(f[2]).toMatch(/^\d{10}\.\d{3}$/);
      expect(f[3]).toMatch(/^ *\d+\.\d{3}$/);
      expect(f[3]).toHaveLength(10);
    }
  });

  it('--halt-on-failure 1: after the first failure no more jobs start', async () => {
    const list = file('jobs.txt', 'exit 1\ntouch ran2\ntouch ran3\n');
    const r = await cli(['spawn', '--json', '--each', list, '--max', '1', '--halt-on-failure', '1', '--name', 'h']);
    expect(r.code).toBe(1);
    expect(parseJson<EachJson>(r.stdout)).toMatchObject({ jobs: 3, succeeded: 0, failed: 1, not_started: 2, halted: true });
    expect(existsSync(join(t.dir, 'ran2')) || existsSync(join(t.dir, 'ran3'))).toBe(false);
    expect(runs().map((x) => x.name)).toEqual(['h-1']);
    expect(r.stderr).toMatch(/3 jobs: 0 succeeded, 1 failed \(exit 1\), 2 not started \(halted: --halt-on-failure\)/);
  });

  it('quick failures of batch jobs do not open the host breaker: 8 jobs failing at once, then a spawn is admitted', async () => {
    // more than 5 startup errors in 10 minutes across names would open it for a loop; a batch
    // is bounded by its input, so all 8 run (and fail), and the host stays open for spawns
    const list = file('jobs.txt', 'exit 3\n'.repeat(8));
    const r = await cli(['spawn', '--json', '--each', list, '--max', '2', '--name', 'lint']);
    expect(r.code).toBe(1);
    expect(parseJson<EachJson>(r.stdout)).toMatchObject({ jobs: 8, succeeded: 0, failed: 8 });
    expect(runs().map((x) => x.mode)).toEqual(Array(8).fill('batch'));
    const after = await cli(['spawn', '--name', 'after', '--', 'true']);
    expect(after.code, after.stderr).toBe(0);
  });

  it('a line of plain words runs as that program, with no shell between; a shell line, or a program PATH lacks, through /bin/sh', async () => {
    const go = join(t.dir, 'go');
    // exec: the job's own PID is the loop's, ended by PID should the test fail before `go`
    const lines = [`sleep 30`, `exec sh -c 'while [ ! -e ${go} ]; do sleep 0.05; done'`, 'agentctl-no-such-program-here --x'];
    const batch = startBatch(['--each', '-', '--group', 'g', '--max', '3'], `${lines.join('\n')}\n`);
    // the two that stay, both running (the third ends at once: its program is not found)
    const live = await waitFor(
      () => {
        const l = liveRuns();
        return l.length === 2 && l.every((r) => r.state === 'running' && r.pid !== null) ? l : undefined;
      },
      20_000,
      { what: 'two jobs running' },
    );
    adoptJobs();
    // what each run was started as, as recorded
    const started = runs('ended_at IS NULL').map((r) => dbGet<{ command: string }>(t.sd, 'SELECT command FROM runs WHERE pid = ?', r.pid)!.command);
    expect(started.map((c) => JSON.parse(c) as string[]).sort()).toEqual([
      ['/bin/sh', '-c', lines[1]],
      ['sleep', '30'],
    ]);
    const plain = live.find((r) => readFileSync(`/proc/${r.pid}/cmdline`, 'utf8') === 'sleep\x0030\x00')!;
    process.kill(plain.pid!, 'SIGTERM');
    writeFileSync(go, '');
    const r = await batch.result;
    expect(r.code).toBe(1);
    // the shell's own words for a program it cannot find, in the job's output
    expect(r.stdout + r.stderr).toMatch(/agentctl-no-such-program-here: not found/);
  });

  it('a program that cannot be executed (busy being written) fails its job, 126 and why, and the batch goes on; PWD is the folder', async () => {
    const bin = join(t.dir, 'bin');
    mkdirSync(bin);
    writeFileSync(join(bin, 'busy'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
    const writer = openSync(join(bin, 'busy'), 'r+'); // held open for writing: execve says ETXTBSY
    try {
      const r = await runCli(['--state-dir', t.sd, 'spawn', '--each', file('jobs', 'busy\nenv\n'), '--joblog', join(t.dir, 'jl')], {
        env: { ...env(), PATH: `${bin}:${process.env.PATH}`, PWD: '/' },
        cwd: t.dir,
        timeoutMs: 60_000,
      });
      expect(r.code, r.stderr).toBe(1);
      expect(r.stdout + r.stderr).toContain('agentctl: could not start busy: ETXTBSY');
      const rows = readFileSync(join(t.dir, 'jl'), 'utf8')
        .trimEnd()
        .split('\n')
        .slice(1)
        .map((l) => l.split('\t'));
      expect(rows.map((c) => [c[8], c[6]]).sort()).toEqual([
        ['busy', '126'],
        ['env', '0'],
      ]);
      // started directly, as /bin/sh would have: PWD names the job's folder, not the caller's
      expect(r.stdout.split('\n')).toContain(`PWD=${t.dir}`);
    } finally {
      closeSync(writer);
    }
  });

  it('-0 reads NUL-separated commands from stdin: a command may hold a newline', async () => {
    const b = startBatch(['--json', '--each', '-', '-0'], "printf 'x\\ny' > out1\0\0echo hi > out2\0");
    const r = await b.result;
    expect(r.code).toBe(0);
    expect(parseJson<EachJson>(r.stdout)).toMatchObject({ jobs: 2, succeeded: 2 });
    expect(readFileSync(join(t.dir, 'out1'), 'utf8')).toBe('x\ny');
    expect(readFileSync(join(t.dir, 'out2'), 'utf8')).toBe('hi\n');
  });

  it('Ctrl-C stops the batch: running jobs end by the stop routine and are recorded stopped, exit 130', async () => {
    const list = file('jobs.txt', 'sleep 60\nsleep 60\nsleep 60\n');
    const b = startBatch(['--json', '--each', list, '--max', '2', '--kill-grace', '1s', '--name', 'c']);
    const two = await waitFor(() => whenRunning(2), 20_000, { what: 'two jobs running' });
    adoptJobs();
    b.child.kill('SIGINT');
    const r = await b.result;
    expect(r.code).toBe(130);
    expect(parseJson<EachJson>(r.stdout)).toMatchObject({ jobs: 3, stopped: 2, not_started: 1, exit_code: 130 });
    for (const x of two) expect(alive(x.pid!)).toBe(false);
    expect(runs().map((x) => [x.name, x.state])).toEqual([
      ['c-1', 'stopped'],
      ['c-2', 'stopped'],
    ]);
  });

  it.each([
    [['--each', 'missing.txt'], /^agentctl: --each: cannot read missing\.txt \(ENOENT\)/],
    [['--each', 'empty.txt'], /^agentctl: --each: no command lines in empty\.txt/],
    [['--each', 'jobs.txt', '--', 'true'], /^agentctl: --each: the commands come from the file/],
    [['--each', 'jobs.txt', '-d'], /^agentctl: -d: not with --each/],
    [['--retries', '1', '--', 'true'], /^agentctl: --retries: only with --each/],
    [['--each', 'jobs.txt', '--retries', 'x'], /^agentctl: --retries: /],
  ])('bad input %j exits 2 with one line and records nothing', async (args, message) => {
    file('empty.txt', '\n\n');
    file('jobs.txt', 'true\n');
    const r = await cli(['spawn', ...args]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(message);
    expect(runs()).toEqual([]);
  });

  it('a group with a fleet-wide cap is refused (exit 2): the batch would go around the fleet', async () => {
    writeFileSync(cfg, '[fleet]\nurl = "postgres://agentctl@127.0.0.1:9/fleet"\n\n[fleet.caps]\nclaude = 2\n');
    file('jobs.txt', 'true\n');
    const r = await cli(['spawn', '--each', 'jobs.txt', '--group', 'claude']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^agentctl: --each: group claude has a fleet-wide cap/);
    expect(runs()).toEqual([]);
  });
});
