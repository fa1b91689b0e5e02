/**
 * What runs used (CPU time, peak RSS) and the limit classes, end to end: detached runs under
 * real limits with their real supervisor, and exit files of the older one-line format.
 * (The foreground CPU limit case is in spawn.test.ts.)
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { State } from '../../src/core/state.js';
import { cleanEnv, dbGet, parseJson, recordedEnd, runCli, runRow, useTempState, waitFor } from '../helpers.js';

const t = useTempState();
const procs = t.procs;

/** Throttling off and other agents not counted; min_uptime long, so every run here ends within it. */
const env = () => cleanEnv({ AGENTCTL_DISABLE_THROTTLE: '1', AGENTCTL_SPAWN_COUNT_UNMANAGED: '0', AGENTCTL_SPAWN_MIN_UPTIME: '10m' });
/** `agentctl COMMAND --state-dir <temp> ARGS...`: the state dir before any `--` of spawn's. */
const cli = ([command, ...args]: string[]) => runCli([command!, '--state-dir', t.sd, ...args], { env: env(), cwd: t.dir });
/** Runs here wait on real CPU time on a shared host. */
const SLOW = 120_000;

const row = (id: string) => runRow(t.sd, id);

/** Start a detached run; its PID is ended after the test. */
async function detached(args: string[]): Promise<{ run_id: string; pid: number }> {
  const r = await cli(['spawn', '--json', '-d', ...args]);
  expect(r.code, r.stderr).toBe(0);
  const out = parseJson<{ run_id: string; pid: number }>(r.stdout);
  procs.adopt(out.pid);
  return out;
}

/** Wait until the run's supervisor left its exit file, then let `ps` record it. */
const ended = (runId: string) => recordedEnd(t.sd, runId, () => cli(['ps', '--json']));

/** Burns `ms` of its own CPU time (user + system), says so in `said`, then exits 0 once `go` exists. */
const burner = (ms: number, said: string, go: string) =>
  `const fs=require('fs');for(;;){for(let i=0;i<1e6;i++);const u=process.cpuUsage();if((u.user+u.system)/1000>=${ms})break}` +
  `fs.writeFileSync(${JSON.stringify(said)},'');const t=setInterval(()=>{if(fs.existsSync(${JSON.stringify(go)})){clearInterval(t)}},20)`;

describe('limit kills of detached runs', () => {
  it(
    'a run past --cpu-time is cpu_limit, not startup_error, with the CPU time its supervisor read, and backs off like a crash',
    async () => {
      const out = await detached(['--name', 'hog', '--cpu-time', '1s', '--', process.execPath, '-e', 'for(;;){}']);
      const r = await ended(out.run_id);
      expect(r.signal === 'SIGKILL' || r.signal === 'SIGXCPU').toBe(true);
      expect(r.failure).toBe('cpu_limit');
      expect(r.state).toBe('failed');
      // the supervisor's children's time after wait: the kernel's limit clock and rusage differ by ~10 %
      expect(r.cpu_ms).toBeGreaterThanOrEqual(750);
      expect(r.cpu_ms).toBeLessThan(5000);
      // the failure backoff (60 s), not the startup one (300 s)
      const h = JSON.parse(dbGet<{ value: string }>(t.sd, "SELECT value FROM health WHERE name = 'hog'")!.value) as { lastFailure: string; notBefore: number };
      expect(h.lastFailure).toBe('cpu_limit');
      expect(h.notBefore - r.ended_at!).toBe(60_000);
      const ev = parseJson<{ events: Array<{ kind: string; data: { failure: string; cpu_ms: number } }> }>((await cli(['events', '--json', '--kind', 'run.failed'])).stdout).events;
      expect(ev.map((e) => [e.data.failure, e.data.cpu_ms])).toEqual([['cpu_limit', r.cpu_ms]]);
    },
    SLOW,
  );

  it(
    'a run allocating past --memory-max is oom',
    async () => {
      const py = 'a = []\nwhile True: a.append(bytearray(1 << 20))';
      const out = await detached(['--name', 'eater', '--memory-max', '64M', '--', 'python3', '-c', py]);
      const r = await ended(out.run_id);
      // RLIMIT_AS: MemoryError and exit 1, the log saying so; a cgroup: the OOM killer's SIGKILL
      expect(r.exit_code === 1 || r.signal === 'SIGKILL').toBe(true);
      expect(r.failure).toBe('oom');
      expect(r.cpu_ms).not.toBeNull();
      const st = parseJson<{ names: Array<{ failures: Record<string, number> }> }>((await cli(['stats', '--json', '--name', 'eater'])).stdout);
      expect(st.names[0]!.failures).toEqual({ oom: 1 });
    },
    SLOW,
  );

  it(
    'the same exit without --memory-max is a startup error',
    async () => {
      const out = await detached(['--name', 'noleash', '--', 'python3', '-c', 'raise MemoryError()']);
      const r = await ended(out.run_id);
      expect(r.exit_code).toBe(1);
      expect(r.failure).toBe('startup_error');
    },
    SLOW,
  );
});

describe('what runs used', () => {
  it(
    'a run that burns ~0.5 s of CPU: peak RSS in ps while it runs, CPU time and peak in stats after',
    async () => {
      const said = join(t.dir, 'burnt');
      const go = join(t.dir, 'go');
      const out = await detached(['--name', 'burn', '--', process.execPath, '-e', burner(500, said, go)]);
      await waitFor(() => existsSync(said), 60_000, { what: 'burnt' });
      const ps = parseJson<{ runs: Array<{ run_id: string; cpu_ms: number; rss_bytes: number; peak_rss_bytes: number }> }>((await cli(['ps', '--json'])).stdout);
      const live = ps.runs.find((x) => x.run_id === out.run_id)!;
      // /proc's ticks and the process's own rusage differ by a tick or so
      expect(live.cpu_ms).toBeGreaterThanOrEqual(400);
      expect(live.peak_rss_bytes).toBeGreaterThan(1024 * 1024);
      expect(live.peak_rss_bytes).toBeGreaterThanOrEqual(live.rss_bytes);
      writeFileSync(go, '');
      const r = await ended(out.run_id);
      expect(r.failure).toBeNull();
      // cutime and cstime are each whole ticks, cut down: up to a tick short apiece of its own rusage
      expect(r.cpu_ms).toBeGreaterThanOrEqual(480);
      expect(r.cpu_ms).toBeLessThan(5000);
      expect(r.peak_rss_bytes).toBeGreaterThanOrEqual(live.peak_rss_bytes); // the row keeps the largest seen
      const st = parseJson<{ names: Array<{ cpu_p50_ms: number; cpu_p95_ms: number; peak_rss_p50_bytes: number; peak_rss_p95_bytes: number }> }>(
        (await cli(['stats', '--json', '--name', 'burn'])).stdout,
      );
      expect(st.names[0]).toMatchObject({ cpu_p50_ms: r.cpu_ms, cpu_p95_ms: r.cpu_ms, peak_rss_p50_bytes: r.peak_rss_bytes, peak_rss_p95_bytes: r.peak_rss_bytes });
      const text = (await cli(['stats', '--wide', '--name', 'burn'])).stdout;
      expect(text).toContain('cpu p50/95');
      expect(text).toContain('rss p50/95');
    },
    SLOW,
  );

  it(
    'while a run grows, every ps shows a peak RSS no lower than the RSS beside it, and the row keeps the largest shown',
    async () => {
      const full = join(t.dir, 'full');
      const go = join(t.dir, 'go');
      // 1 MiB more every 10 ms, touched, up to 200 MiB; then it waits for `go`
      const grower =
        `const fs=require('fs');const a=[];const t=setInterval(()=>{a.push(Buffer.alloc(1<<20,1));` +
        `if(a.length>=200){clearInterval(t);fs.writeFileSync(${JSON.stringify(full)},'');setInterval(()=>{if(fs.existsSync(${JSON.stringify(go)}))process.exit(0)},20)}},10)`;
      const out = await detached(['--name', 'grow', '--', process.execPath, '-e', grower]);
      const shown: number[] = [];
      for (let i = 0; i < 40 && (i < 3 || !existsSync(full)); i++) {
        const ps = parseJson<{ runs: Array<{ run_id: string; rss_bytes: number | null; peak_rss_bytes: number | null }> }>((await cli(['ps', '--json'])).stdout);
        const live = ps.runs.find((x) => x.run_id === out.run_id)!;
        if (live.rss_bytes === null) continue;
        expect(live.peak_rss_bytes, `ps #${i}`).toBeGreaterThanOrEqual(live.rss_bytes);
        // the row keeps what ps showed: no later ps shows less
        expect(live.peak_rss_bytes!, `ps #${i}`).toBeGreaterThanOrEqual(Math.max(0, ...shown));
        shown.push(live.peak_rss_bytes!);
      }
      expect(shown.length).toBeGreaterThan(0);
      writeFileSync(go, '');
      const r = await ended(out.run_id);
      expect(r.peak_rss_bytes).toBeGreaterThanOrEqual(Math.max(...shown));
    },
    SLOW,
  );

  it('exit files of one line (older supervisors) still read; anything unexpected is unknown', async () => {
    State.open(t.sd).close();
    mkdirSync(join(t.sd, 'runs'), { recursive: true, mode: 0o700 });
    const s = State.open(t.sd);
    const insert = s.db.prepare("INSERT INTO runs (id, name, grp, priority, mode, state, command, cwd, started_at) VALUES (?, ?, 'default', 3, 'detached', 'running', '[]', '/', ?)");
    const files: Array<[string, string, string]> = [
      ['r0000000old1', 'old', '3\n'],
      ['r0000000old2', 'junk', '0\nnot a stat line\n'],
      ['r0000000old3', 'bad', 'exit three\n'],
    ];
    for (const [id, name, text] of files) {
      insert.run(id, name, Date.now() - 60_000);
      writeFileSync(join(t.sd, 'runs', `${id}.exit`), text, { mode: 0o600 });
    }
    s.close();
    expect((await cli(['ps', '--json'])).code).toBe(0);
    expect(row('r0000000old1')).toMatchObject({ state: 'failed', exit_code: 3, failure: 'startup_error', cpu_ms: null });
    expect(row('r0000000old2')).toMatchObject({ state: 'exited', exit_code: 0, failure: null, cpu_ms: null });
    // not an exit status: the run is lost, its status unknown
    expect(row('r0000000old3')).toMatchObject({ state: 'lost', exit_code: null, cpu_ms: null });
  });
});
