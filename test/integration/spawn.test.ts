/**
 * spawn end to end: admission under concurrency, backoff, breaker and dead-letter queue,
 * identity, queueing by priority. Real spawns of the built binary.
 *
 * Sizes of the heavy case (today's values are the defaults; CI runs them):
 *   AGENTCTL_TEST_SPAWNERS=100     foreground spawners started at once in each round
 *   AGENTCTL_TEST_SPAWN_ROUNDS=5   rounds of them, one after another
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { getIdentity } from '../../src/core/identity.js';
import { State } from '../../src/core/state.js';
import { alive, BIN, cleanEnv, dbGet, parseJson, queueLength, ROOT, runCli, sizeFromEnv, useTempState, waitFor } from '../helpers.js';

const WORKER = join(ROOT, 'test', 'fixtures', 'worker.mjs');
const SPAWNERS = sizeFromEnv('AGENTCTL_TEST_SPAWNERS', 100);
const ROUNDS = sizeFromEnv('AGENTCTL_TEST_SPAWN_ROUNDS', 5);
/** a fresh temp folder and state dir per test; processes in procs ended by PID after it */
const t = useTempState();
const procs = t.procs;
let log: string;
beforeEach(() => {
  log = join(t.dir, 'worker.log');
});

/**
 * Throttling off, and agents agentctl did not start not counted: caps under test must not
 * depend on what else runs on the host. The test about unmanaged agents turns counting on,
 * with a pattern only its own fixture matches.
 */
const env = (extra: Record<string, string> = {}) => cleanEnv({ AGENTCTL_DISABLE_THROTTLE: '1', AGENTCTL_SPAWN_COUNT_UNMANAGED: '0', ...extra });
const config = (toml: string) => {
  const f = join(t.dir, 'agentctl.toml');
  writeFileSync(f, toml);
  return ['--config', f];
};
const spawnCli = (args: string[], e = env()) => runCli(['spawn', '--state-dir', t.sd, ...args], { env: e, cwd: t.dir });
const worker = (label: string, ...flags: string[]) => ['--', process.execPath, WORKER, log, label, ...flags];
const lines = () => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').filter(Boolean) : []);

/** The most concurrent `start`..`end` intervals in the worker log. */
function maxOverlap(): number {
  const ev = lines()
    .map((l) => l.split(' '))
    .filter((p) => p[0] === 'start' || p[0] === 'end')
    .map((p) => ({ t: Number(p[2]), d: p[0] === 'start' ? 1 : -1 }))
    .sort((a, b) => a.t - b.t || a.d - b.d);
  let cur = 0;
  let max = 0;
  for (const e of ev) max = Math.max(max, (cur += e.d));
  return max;
}

describe('admission under concurrency', () => {
  it(
    `${SPAWNERS} concurrent foreground spawners with --max 3, in ${ROUNDS} rounds, never have more than 3 alive`,
    async () => {
      const results: Awaited<ReturnType<typeof spawnCli>>[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        const calls = Array.from({ length: SPAWNERS }, (_, i) => spawnCli(['--name', `job${round}-${i}`, '--group', 'g', '--max', '3', ...worker(`job${round}-${i}`, 'exit=0', 'after=400')]));
        results.push(...(await Promise.all(calls)));
      }
      const codes = results.map((r) => r.code);
      expect(codes.every((c) => c === 0 || c === 75)).toBe(true);
      const admitted = codes.filter((c) => c === 0).length;
      expect(admitted).toBeGreaterThanOrEqual(3);
      expect(maxOverlap()).toBeLessThanOrEqual(3);
      // every admitted run is recorded, and every refusal names its reason
      const s = State.open(t.sd);
      const runs = s.db.prepare("SELECT COUNT(*) AS n FROM runs WHERE grp = 'g' AND state = 'exited'").get() as { n: number };
      s.close();
      expect(runs.n).toBe(admitted);
      for (const r of results.filter((x) => x.code === 75)) expect(r.stderr).toMatch(/no slot for job[\d-]+: group g: (\d of 3 \(--max 3\)|\d free of 3, \d+ waiting ahead)/);
    },
    Math.max(240_000, SPAWNERS * ROUNDS * 480),
  ); // 240 s for today's 500 spawners, more for more

  it('detached spawners: exactly the cap is admitted', async () => {
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => spawnCli(['--json', '-d', '--name', `d${i}`, '--group', 'dg', '--max', '3', ...worker(`d${i}`)])));
    const ok = results.filter((r) => r.code === 0).map((r) => parseJson<{ pid: number; outcome: string }>(r.stdout));
    procs.adopt(...ok.map((o) => o.pid));
    expect(ok.length).toBe(3);
    expect(results.filter((r) => r.code === 75).length).toBe(9);
    for (const r of results.filter((x) => x.code === 75)) expect(parseJson<{ reason: string }>(r.stdout).reason).toBe('no_slot');
  });

  it("counts an agent started by hand against the host cap, not against a group's --max", async () => {
    const token = `agentctl-test-agent-${process.pid}-${Date.now()}`;
    // the host cap is 2 at every level; throttling on
    const e = env({ AGENTCTL_DISABLE_THROTTLE: '', AGENTCTL_SPAWN_COUNT_UNMANAGED: '1', AGENTCTL_AGENTS_PATTERNS: token, AGENTCTL_THROTTLE_MAX_AGENTS: '2,2,2,2' });
    await procs.node('setInterval(() => {}, 60_000)', { args: [token] });
    const a = await spawnCli(['--json', '-d', '--name', 'a1', '--max', '1', ...worker('a1')], e);
    procs.adopt(parseJson<{ pid: number }>(a.stdout).pid);
    const b = await spawnCli(['--json', '-d', '--name', 'a2', '--group', 'other', '--max', '2', ...worker('a2')], e);
    expect(b.code).toBe(75);
    expect(parseJson<{ message: string }>(b.stdout).message).toMatch(/host: 2 of 2 agents at level \d \(1 started by agentctl, 1 other agent\);/);
  });
});

describe('failures: backoff, breaker, dead-letter queue', () => {
  it('a worker that dies after 100 ms, retried in a tight loop, runs once and is then refused with the reason', async () => {
    const codes: number[] = [];
    let last = '';
    for (let i = 0; i < 8; i++) {
      const r = await spawnCli(['--name', 'flaky', ...worker('flaky', 'exit=1', 'after=100')]);
      codes.push(r.code!);
      last = r.stderr;
    }
    expect(lines().filter((l) => l.startsWith('start')).length).toBe(1);
    expect(codes[0]).toBe(1); // the child's own code, passed through
    expect(codes.slice(1).every((c) => c === 75)).toBe(true);
    expect(last).toMatch(/flaky is backing off after startup_error \(1 in a row\): no start before \d\d:\d\d:\d\d UTC \(in [45]m/);
  });

  it('with no backoff, the breaker opens after 3 consecutive failures: exit 69 and a dead-letter entry', async () => {
    const cfg = config('[spawn]\nbackoff_startup = "0s"\nbackoff_failure = "0s"\n');
    const codes: number[] = [];
    let last = '';
    for (let i = 0; i < 6; i++) {
      const r = await runCli(['spawn', '--state-dir', t.sd, ...cfg, '--name', 'flaky', ...worker('flaky', 'exit=1', 'after=100')], { env: env(), cwd: t.dir });
      codes.push(r.code!);
      last = r.stderr;
    }
    expect(lines().filter((l) => l.startsWith('start')).length).toBe(3);
    expect(codes).toEqual([1, 1, 1, 69, 69, 69]);
    expect(last).toMatch(/^agentctl: circuit open for flaky: 3 consecutive failures, last startup_error; a trial run is allowed after .* or run: agentctl breaker reset flaky/);
    const s = State.open(t.sd);
    const dlq = s.db.prepare('SELECT name, failure, restarts FROM dlq').all();
    s.close();
    expect(dlq).toEqual([{ name: 'flaky', failure: 'startup_error', restarts: 3 }]);

    // what an operator sees, and the fix
    const cli = (args: string[]) => runCli([...args, '--json', '--state-dir', t.sd, ...cfg], { env: env(), cwd: t.dir });
    const br = parseJson<{ breakers: Array<{ name: string; mode: string; consecutive_failures: number }> }>((await cli(['breaker'])).stdout);
    expect(br.breakers).toEqual([expect.objectContaining({ name: 'flaky', mode: 'open', consecutive_failures: 3 })]);
    const q = parseJson<{ entries: Array<{ id: number; name: string; context: { command: string[] } }> }>((await cli(['dlq'])).stdout);
    expect(q.entries[0]!.context.command.slice(-3)).toEqual(['flaky', 'exit=1', 'after=100']);
    const st = parseJson<{ names: Array<{ name: string; runs: number; failed: number; success_rate: number; failures: Record<string, number> }> }>((await cli(['stats'])).stdout);
    expect(st.names).toEqual([expect.objectContaining({ name: 'flaky', runs: 3, failed: 3, success_rate: 0, failures: { startup_error: 3 } })]);
    expect((await cli(['breaker', 'reset', 'flaky'])).code).toBe(0);
    const called = Date.now();
    const again = await runCli(['spawn', '--state-dir', t.sd, ...cfg, '--name', 'flaky', ...worker('flaky', 'exit=0')], { env: env(), cwd: t.dir });
    const wallMs = Date.now() - called;
    expect(again.code).toBe(0);
    const st2 = parseJson<{ names: Array<{ succeeded: number; p50_ms: number | null; p99_ms: number | null }> }>((await cli(['stats', '--name', 'flaky'])).stdout);
    expect(st2.names[0]!.succeeded).toBe(1);
    // percentiles are of succeeded runs only: the one success's recorded duration, which a real
    // node start-up makes more than 0 ms and the spawn call that waited for it bounds above
    const ok = dbGet<{ d: number }>(t.sd, "SELECT ended_at - started_at AS d FROM runs WHERE name = 'flaky' AND state = 'exited'")!;
    expect(st2.names[0]!.p50_ms).toBe(ok.d);
    expect(st2.names[0]!.p99_ms).toBe(ok.d);
    expect(ok.d).toBeGreaterThan(0);
    expect(ok.d).toBeLessThanOrEqual(wallMs);
  });

  it('dlq retry resets the breaker and starts the stored command, detached, under its limits and timeout', async () => {
    const cfg = config('[spawn]\nbackoff_startup = "0s"\nbreaker_failures = 1\n');
    const terms = ['--memory-max', '2G', '--nice', '5', '--timeout', '90s'];
    const first = await runCli(['spawn', '--state-dir', t.sd, ...cfg, '--name', 'once', ...terms, ...worker('once', 'exit=1')], { env: env(), cwd: t.dir });
    expect(first.code).toBe(1);
    const q = parseJson<{ entries: Array<{ id: number }> }>((await runCli(['dlq', '--json', '--state-dir', t.sd, ...cfg], { env: env() })).stdout);
    expect(q.entries.length).toBe(1);
    const r = await runCli(['dlq', 'retry', String(q.entries[0]!.id), '--json', '--state-dir', t.sd, ...cfg], { env: env(), cwd: t.dir });
    expect(r.code).toBe(0);
    const out = parseJson<{ entries: unknown[]; retried: { result: { outcome: string; pid: number } } }>(r.stdout);
    procs.adopt(out.retried.result.pid);
    expect(out.retried.result.outcome).toBe('started');
    expect(out.entries).toEqual([]);
    await waitFor(() => lines().filter((l) => l.startsWith('start once')).length === 2, 5000);
    // the retry is no bare rerun: a memory cap left out is how a host ends at 163 MB free
    const again = dbGet<{ limits: string; timeout_ms: number }>(t.sd, "SELECT limits, timeout_ms FROM runs WHERE name = 'once' ORDER BY started_at DESC LIMIT 1")!;
    expect(JSON.parse(again.limits)).toEqual({ memoryMax: 2 * 1024 ** 3, nice: 5 });
    expect(again.timeout_ms).toBe(90_000);
    expect((await runCli(['dlq', 'retry', '999', '--state-dir', t.sd], { env: env() })).code).toBe(1);
    expect((await runCli(['dlq', 'retry', 'x', '--state-dir', t.sd], { env: env() })).code).toBe(2);
  });

  it('a detached run records its exit code, duration and failure type', async () => {
    const cfg = config('[spawn]\nmin_uptime = "100ms"\n');
    const r = await runCli(['spawn', '--json', '-d', '--state-dir', t.sd, ...cfg, '--name', 'det', ...worker('det', 'exit=7', 'after=400')], { env: env(), cwd: t.dir });
    expect(r.code).toBe(0);
    const rest = parseJson<{ run_id: string; pid: number }>(r.stdout);
    procs.adopt(rest.pid);
    await waitFor(() => !alive(rest.pid), 5000);
    await runCli(['ps', '--state-dir', t.sd, ...cfg], { env: env() }); // any command reconciles
    const s = State.open(t.sd);
    const row = s.db.prepare('SELECT state, exit_code, failure, ended_at - started_at AS ms FROM runs WHERE id = ?').get(rest.run_id) as {
      state: string;
      exit_code: number;
      failure: string;
      ms: number;
    };
    s.close();
    expect(row).toMatchObject({ state: 'failed', exit_code: 7, failure: 'crash' });
    expect(row.ms).toBeGreaterThanOrEqual(350);
    expect(row.ms).toBeLessThan(5000);
  });
});

describe('running', () => {
  it('forwards SIGTERM to the child and passes its exit code through', async () => {
    const child = spawn(process.execPath, [BIN, 'spawn', '--state-dir', t.sd, '--name', 'fw', ...worker('fw', 'trap')], { env: env(), cwd: t.dir, stdio: 'ignore' });
    await waitFor(() => lines().some((l) => l.startsWith('start fw')), 10_000);
    child.kill('SIGTERM');
    const [code] = await once(child, 'exit');
    expect(code).toBe(42);
    expect(lines().some((l) => l.startsWith('got-TERM fw'))).toBe(true);
  });

  it('a PID file that is a symlink is replaced, never followed', async () => {
    const victim = join(t.dir, 'victim.txt');
    writeFileSync(victim, 'keep me\n');
    const { mkdirSync, symlinkSync, lstatSync } = await import('node:fs');
    mkdirSync(join(t.sd, 'pids'), { recursive: true });
    symlinkSync(victim, join(t.sd, 'pids', 'sym.pid'));
    const r = await spawnCli(['--json', '-d', '--name', 'sym', '--', 'sleep', '30']);
    procs.adopt(parseJson<{ pid: number }>(r.stdout).pid);
    expect(readFileSync(victim, 'utf8')).toBe('keep me\n');
    expect(lstatSync(join(t.sd, 'pids', 'sym.pid')).isSymbolicLink()).toBe(false);
  });

  it('gives the child AGENTCTL_RUN_ID and AGENTCTL_NAME, and a PID file holding its identity', async () => {
    const r = await spawnCli([
      '--json',
      '-d',
      '--name',
      'idw',
      '--',
      process.execPath,
      '-e',
      `require('fs').writeFileSync(${JSON.stringify(join(t.dir, 'env.txt'))}, process.env.AGENTCTL_RUN_ID + ' ' + process.env.AGENTCTL_NAME); setInterval(() => {}, 1e6)`,
    ]);
    const out = parseJson<{ run_id: string; pid: number }>(r.stdout);
    procs.adopt(out.pid);
    await waitFor(() => existsSync(join(t.dir, 'env.txt')), 5000);
    expect(readFileSync(join(t.dir, 'env.txt'), 'utf8')).toBe(`${out.run_id} idw`);
    const [first, second] = readFileSync(join(t.sd, 'pids', 'idw.pid'), 'utf8').split('\n');
    expect(Number(first)).toBe(out.pid);
    expect(JSON.parse(second!)).toEqual({ run_id: out.run_id, name: 'idw', group: 'default', pid: out.pid, start_time: getIdentity(out.pid)!.startTime, boot_id: getIdentity(out.pid)!.bootId });
    // its own process group
    expect(readFileSync(`/proc/${out.pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[2]).toBe(String(out.pid));
  });

  it('--timeout ends the whole tree, including a grandchild that left the process group', async () => {
    const gfile = join(t.dir, 'grandchild.pid');
    const r = await spawnCli(['--name', 'slow', '--timeout', '1s', '--kill-grace', '300ms', ...worker('slow', `grandchild=${gfile}`)]);
    const g = Number(readFileSync(gfile, 'utf8'));
    procs.adopt(g);
    expect(r.code).toBe(128 + 15);
    expect(r.stderr).toMatch(/slow timed out \(timeout\)/);
    await waitFor(() => !alive(g), 3000);
  });

  it("a detached run's log holds what the worker wrote, and nothing of the supervisor's (no 'Terminated' when it is stopped)", async () => {
    const r = await spawnCli(['--json', '-d', '--name', 'quietlog', '--', 'sh', '-c', 'echo out; echo err >&2; exec sleep 30']);
    const out = parseJson<{ run_id: string; pid: number; log_path: string }>(r.stdout);
    procs.adopt(out.pid);
    await waitFor(() => readFileSync(out.log_path, 'utf8') === 'out\nerr\n', 5000, { what: 'the worker wrote its two lines' });
    const sup = dbGet<{ sup_pid: number }>(t.sd, 'SELECT sup_pid FROM runs WHERE id = ?', out.run_id)!.sup_pid;
    procs.adopt(sup);
    expect((await runCli(['stop', 'quietlog', '--grace', '2s', '--state-dir', t.sd], { env: env() })).code).toBe(0);
    // the supervisor's last words (its wait ending by a signal) come as it exits
    await waitFor(() => !alive(sup), 5000, { what: 'the supervisor exited' });
    expect(readFileSync(out.log_path, 'utf8')).toBe('out\nerr\n');
  });

  it('--timeout on a detached run: the supervisor ends the tree and the run is recorded as a timeout', async () => {
    const gfile = join(t.dir, 'grandchild.pid');
    const r = await spawnCli(['--json', '-d', '--name', 'dslow', '--timeout', '1s', '--kill-grace', '300ms', ...worker('dslow', `grandchild=${gfile}`)]);
    const out = parseJson<{ run_id: string; pid: number }>(r.stdout);
    procs.adopt(out.pid);
    await waitFor(() => existsSync(gfile), 5000);
    const g = Number(readFileSync(gfile, 'utf8'));
    procs.adopt(g);
    await waitFor(() => !alive(out.pid) && !alive(g), 10_000);
    await waitFor(() => existsSync(join(t.sd, 'runs', `${out.run_id}.exit`)), 5000);
    await runCli(['ps', '--state-dir', t.sd], { env: env() });
    const s = State.open(t.sd);
    const row = s.db.prepare('SELECT failure FROM runs WHERE id = ?').get(out.run_id) as { failure: string };
    const ended = s.events({ kind: 'run.timeout' });
    s.close();
    expect(row.failure).toBe('timeout');
    // the watchdog finished its work: TERM, grace, KILL and the sweep of the escaped grandchild
    expect(ended.length).toBe(1);
    expect(ended[0]!.data).toMatchObject({ survivors: [] });
    expect((ended[0]!.data as { swept: number[] }).swept).toContain(g);
  });

  it("the timeout watchdog's _end-run reads the spawn's --config: the ends it records take its policy", async () => {
    // backoff_startup 7s here against 300s by default. Nothing but the watchdog runs agentctl
    // after the two spawns: its reconcile records the quick run's end, with this config's
    // backoff when it was handed --config, with the default one when it was not
    // not ./agentctl.toml: the runs' folder, where the watchdog runs, would find that one itself
    writeFileSync(join(t.dir, 'custom.toml'), '[spawn]\nbackoff_startup = "7s"\n');
    const cfg = ['--config', join(t.dir, 'custom.toml')];
    const slow = parseJson<{ run_id: string; pid: number }>((await spawnCli(['--json', '-d', ...cfg, '--name', 'wslow', '--timeout', '2s', '--kill-grace', '300ms', ...worker('wslow')])).stdout);
    procs.adopt(slow.pid);
    const quick = parseJson<{ run_id: string; pid: number }>((await spawnCli(['--json', '-d', ...cfg, '--name', 'wquick', '--', 'sh', '-c', 'exit 1'])).stdout);
    procs.adopt(quick.pid);
    const ended = await waitFor(() => dbGet<{ ended_at: number | null }>(t.sd, 'SELECT ended_at FROM runs WHERE id = ?', quick.run_id)?.ended_at, 15_000, {
      what: "the watchdog's reconcile recorded the quick run's end",
    });
    // recorded by the watchdog's command, not by anything else
    expect(dbGet<{ command: string }>(t.sd, "SELECT command FROM events WHERE kind = 'run.failed' AND json_extract(data, '$.run_id') = ?", quick.run_id)?.command).toBe('_end-run');
    const health = JSON.parse(dbGet<{ value: string }>(t.sd, 'SELECT value FROM health WHERE name = ?', 'wquick')!.value) as { notBefore: number; lastFailure: string };
    expect(health.lastFailure).toBe('startup_error');
    expect(health.notBefore - ended).toBeLessThanOrEqual(8_000);
  });

  it('_end-run from outside ends the tree but not the supervisor, which still records the exit', async () => {
    const r = await spawnCli(['--json', '-d', '--name', 'ext', ...worker('ext')]);
    const out = parseJson<{ run_id: string; pid: number }>(r.stdout);
    procs.adopt(out.pid);
    const sup = Number(readFileSync(`/proc/${out.pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);
    expect(readFileSync(`/proc/${sup}/environ`, 'latin1')).not.toContain('AGENTCTL_RUN_ID=');
    expect(readFileSync(`/proc/${out.pid}/environ`, 'latin1')).toContain(`AGENTCTL_RUN_ID=${out.run_id}`);
    const end = await runCli(['_end-run', out.run_id, '--grace', '500ms', '--state-dir', t.sd], { env: env() });
    expect(end.code).toBe(0);
    await waitFor(() => existsSync(join(t.sd, 'runs', `${out.run_id}.exit`)), 5000);
    await runCli(['ps', '--state-dir', t.sd], { env: env() });
    const s = State.open(t.sd);
    const row = s.db.prepare('SELECT state, signal FROM runs WHERE id = ?').get(out.run_id);
    s.close();
    expect(row).toEqual({ state: 'failed', signal: 'SIGTERM' });
  });

  it('a CPU limit the fixture exceeds is enforced, the mechanism recorded, and the run is cpu_limit with its CPU time', async () => {
    // within min_uptime: the limit's class still wins over startup_error
    const r = await spawnCli(['--json', '--name', 'hog', '--cpu-time', '1s', ...worker('hog', 'busy')], env({ AGENTCTL_SPAWN_MIN_UPTIME: '10m' }));
    const out = parseJson<{ signal: string | null; exit_code: number | null; failure: string; limit_mechanism: string; run_id: string; cpu_ms: number; peak_rss_bytes: number }>(r.stdout);
    expect(['systemd', 'prlimit', 'ulimit']).toContain(out.limit_mechanism);
    expect(out.signal === 'SIGXCPU' || out.signal === 'SIGKILL').toBe(true);
    expect(out.failure).toBe('cpu_limit');
    const s = State.open(t.sd);
    const row = s.db.prepare('SELECT limit_mechanism, limits, signal, cpu_ms, peak_rss_bytes FROM runs WHERE id = ?').get(out.run_id) as {
      limit_mechanism: string;
      limits: string;
      signal: string;
      cpu_ms: number;
      peak_rss_bytes: number;
    };
    s.close();
    expect(row.limit_mechanism).toBe(out.limit_mechanism);
    expect(JSON.parse(row.limits)).toMatchObject({ cpuTimeSec: 1 });
    expect(row.signal).toBe(out.signal);
    // the foreground agentctl's children's CPU time: about the limit (the kernel's clock and rusage differ by ~10 %)
    expect(row.cpu_ms).toBeGreaterThanOrEqual(750);
    expect(row.cpu_ms).toBeLessThan(5000);
    // sampled while it burned: a node process's peak resident set is megabytes
    expect(row.peak_rss_bytes).toBeGreaterThan(1024 * 1024);
    // and spawn's own JSON says the same
    expect([out.cpu_ms, out.peak_rss_bytes]).toEqual([row.cpu_ms, row.peak_rss_bytes]);
  });
});

describe('waiting', () => {
  it('admits waiters by priority, then age', async () => {
    // the blocker holds the group's one slot until every waiter is in the queue
    const go = join(t.dir, 'go');
    const blocker = await spawnCli(['--json', '-d', '--name', 'blocker', '--group', 'q', '--max', '1', '--', 'sh', '-c', `while [ ! -e ${go} ]; do sleep 0.05; done`]);
    procs.adopt(parseJson<{ pid: number }>(blocker.stdout).pid);
    const waiters: Array<Promise<unknown>> = [];
    for (const [i, [name, prio]] of (
      [
        ['low', 3],
        ['mid', 2],
        ['high', 1],
      ] as const
    ).entries()) {
      waiters.push(spawnCli(['--name', name, '--group', 'q', '--max', '1', '--priority', String(prio), '--wait', '30s', ...worker(name, 'exit=0', 'after=100')]));
      await waitFor(() => queueLength(t.sd) === i + 1, 10_000, { what: `${name} queued` });
    }
    writeFileSync(go, '');
    const res = (await Promise.all(waiters)) as Array<{ code: number }>;
    expect(res.map((r) => r.code)).toEqual([0, 0, 0]);
    const order = lines()
      .filter((l) => l.startsWith('start') && !l.includes('blocker'))
      .map((l) => l.split(' ')[1]);
    expect(order).toEqual(['high', 'mid', 'low']);
  });

  it('--wait gives up with 75 when its time runs out', async () => {
    const blocker = await spawnCli(['--json', '-d', '--name', 'b2', '--group', 'w', '--max', '1', ...worker('b2')]);
    procs.adopt(parseJson<{ pid: number }>(blocker.stdout).pid);
    const r = await spawnCli(['--name', 'late', '--group', 'w', '--max', '1', '--wait', '700ms', ...worker('late')]);
    expect(r.code).toBe(75);
    expect(r.stderr).toMatch(/no slot for late/);
    const s = State.open(t.sd);
    expect((s.db.prepare('SELECT COUNT(*) AS n FROM queue').get() as { n: number }).n).toBe(0);
    s.close();
  });
});

describe('identity', () => {
  it('a registered PID now owned by another process is closed, never signalled', async () => {
    const victim = await procs.node('setInterval(() => {}, 60_000)');
    await runCli(['ps', '--state-dir', t.sd], { env: env() }); // creates the state
    const s = State.open(t.sd);
    const real = getIdentity(victim.pid!)!;
    s.db
      .prepare(
        "INSERT INTO runs (id, name, grp, priority, mode, state, pid, start_time, boot_id, pgid, command, cwd, started_at) VALUES ('rreused0001', 'ghost', 'default', 3, 'detached', 'running', ?, ?, ?, ?, '[\"x\"]', '/', ?)",
      )
      .run(victim.pid, String(Number(real.startTime) - 100), real.bootId, victim.pid, Date.now() - 60_000);
    s.close();
    const end = await runCli(['_end-run', 'rreused0001', '--grace', '100ms', '--state-dir', t.sd], { env: env() });
    expect(end.code).toBe(0);
    const ps = parseJson<{ runs: unknown[] }>((await runCli(['ps', '--json', '--state-dir', t.sd], { env: env() })).stdout);
    expect(ps.runs).toEqual([]);
    expect(alive(victim.pid!)).toBe(true);
    const ev = parseJson<{ events: Array<{ reason: string }> }>((await runCli(['events', '--json', '--kind', 'run.lost', '--state-dir', t.sd], { env: env() })).stdout);
    expect(ev.events[0]!.reason).toMatch(new RegExp(`PID ${victim.pid} now belongs to another process \\(never signalled\\)`));
  });
});

describe('--max without --name', () => {
  it('warns that every run shares one name (one instance per name), and still runs; no warning with --name or --max 1', async () => {
    const warned = await spawnCli(['--max', '2', '--', 'true']);
    expect(warned.code).toBe(0);
    expect(warned.stderr).toMatch(
      /agentctl: warning: --max 2 without --name: every run of this command is named true, and a name runs once at a time; give each run its own --name \(e\.g\. --name true-\$i\)/,
    );
    for (const args of [
      ['--max', '2', '--name', 'one'],
      ['--max', '1'],
    ])
      expect((await spawnCli([...args, '--', 'true'])).stderr).not.toMatch(/warning/);
  });
});

describe('bad input: exit 2, nothing started', () => {
  it.each([
    [['--max', '0', '--', 'true'], /--max: 0 is out of range/],
    [['--priority', '5', '--', 'true'], /--priority: 5 is out of range; expected a whole number from 1 to 3/],
    [['--name', '../etc', '--', 'true'], /--name: invalid name "..\/etc"/],
    [['--name', 'a b', '--', 'true'], /--name: invalid name/],
    [['--name', 'x'], /spawn: missing command; give it after --/],
    [['--wait=5x', '--', 'true'], /--wait: invalid duration "5x"/],
    [['--memory-max', 'lots', '--', 'true'], /--memory-max: invalid size "lots"/],
    [['--timeout', '0s', '--', 'true'], /--timeout: expected a duration above 0/],
    [['--requires', 'a/b', '--', 'true'], /--requires: invalid name/],
    [['--name', 'a\nb', '--', 'true'], /--name: invalid name "a\\nb"/],
    [['--name', 'x'.repeat(65), '--', 'true'], /--name: invalid name/],
    [['--name', '..', '--', 'true'], /--name: invalid name/],
  ])('%j', async (args, msg) => {
    const r = await spawnCli(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(msg);
    expect(existsSync(join(t.sd, 'state.db'))).toBe(false);
  });
});

describe('slot bell', () => {
  it('a run that ends rings it: a foreground one from agentctl, a detached one from its supervisor', async () => {
    const bell = join(t.sd, 'slots.bell');
    const mtime = () => (existsSync(bell) ? statSync(bell).mtimeMs : 0);
    // the first waiter that listens creates the bell; without one nothing rings. Stand in for it
    // with a bell dated 1970, so any ring is a later time stamp
    expect((await spawnCli(['--name', 'b0', '--', 'true'])).code).toBe(0);
    expect(existsSync(bell)).toBe(false);
    writeFileSync(bell, '');
    utimesSync(bell, 0, 0);
    expect((await spawnCli(['--name', 'b1', '--', 'true'])).code).toBe(0);
    const afterForeground = mtime();
    expect(afterForeground).toBeGreaterThan(0);
    const d = await spawnCli(['--json', '-d', '--name', 'b2', '--', 'sleep', '0.3']);
    expect(d.code).toBe(0);
    procs.adopt(parseJson<{ pid: number }>(d.stdout).pid);
    // nothing else runs against this state folder: only b2's supervisor can touch the bell now
    await waitFor(() => mtime() > afterForeground, 10_000);
  });
});

describe('throttle and the cap', () => {
  it('the level caps a group without --max; AGENTCTL_DISABLE_THROTTLE lifts it', async () => {
    // memory thresholds below any real host: level 3 (heavy) allows one agent
    const cfg = config('[throttle]\nmemory_pct = [0.1, 0.2, 0.3]\n');
    const one = await runCli(['spawn', '--json', '-d', '--state-dir', t.sd, ...cfg, '--name', 'h1', ...worker('h1')], { env: cleanEnv({ AGENTCTL_SPAWN_COUNT_UNMANAGED: '0' }), cwd: t.dir });
    procs.adopt(parseJson<{ pid: number }>(one.stdout).pid);
    const two = await runCli(['spawn', '--json', '-d', '--state-dir', t.sd, ...cfg, '--name', 'h2', ...worker('h2')], { env: cleanEnv({ AGENTCTL_SPAWN_COUNT_UNMANAGED: '0' }), cwd: t.dir });
    expect(two.code).toBe(75);
    expect(parseJson<{ message: string }>(two.stdout).message).toMatch(/host: 1 of 1 agents at level 3/);
    const samples = () => {
      const s = State.open(t.sd);
      try {
        return (s.db.prepare('SELECT COUNT(*) AS n FROM samples').get() as { n: number }).n;
      } finally {
        s.close();
      }
    };
    const before = samples();
    expect(before).toBeGreaterThan(0);
    const lifted = await runCli(['spawn', '--json', '-d', '--state-dir', t.sd, ...cfg, '--name', 'h2', ...worker('h2')], { env: env(), cwd: t.dir });
    expect(lifted.code).toBe(0);
    procs.adopt(parseJson<{ pid: number }>(lifted.stdout).pid);
    // with throttling off the reading decides nothing, so none is taken (nor its CPU window)
    expect(samples()).toBe(before);
  });

  it('with throttling off a spawn still prunes history', async () => {
    const s = State.open(t.sd);
    const insert = s.db.prepare("INSERT INTO events (ts, command, kind, reason) VALUES (?, 'test', 'test.filler', 'filler')");
    s.db.transaction(() => {
      for (let i = 0; i < 1500; i++) insert.run(Date.now());
    })();
    s.db.prepare("DELETE FROM kv WHERE key = 'prune.last_at'").run();
    s.close();
    const r = await spawnCli(['--json', ...config('[state]\nevents_max_rows = 1000\n'), '--name', 'p1', '--', 'true']);
    expect(r.code).toBe(0);
    const after = State.open(t.sd);
    try {
      expect((after.db.prepare('SELECT COUNT(*) AS n FROM events').get() as { n: number }).n).toBeLessThanOrEqual(1000 + 5);
      expect(after.getKv<number>('prune.last_at')).toBeDefined();
    } finally {
      after.close();
    }
  });
});
