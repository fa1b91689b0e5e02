/**
 * Admission that matches the host: the level's max agents caps every agent on the host (all
 * groups plus agents agentctl did not start), `--max` caps a group within it, waiters of all
 * groups share one queue by priority then age, and a loop that renames every attempt meets
 * the host-wide startup-failure breaker. Real spawns of the real binary, run at once.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { State } from '../../src/core/state.js';
import { alive, BIN, cleanEnv, parseJson, queueLength, runCli, type RunResult, useTempState, waitFor } from '../helpers.js';

/** a fresh temp folder and state dir per test; processes in procs ended by PID after it */
const t = useTempState();
const procs = t.procs;
let cfg: string;

beforeEach(() => {
  cfg = join(t.dir, 'agentctl.toml');
  // the host cap under test is 5 at every level: concurrent start-ups can spike the CPU reading
  // on a 2-core host, and the level they reach must not change the figures tested here
  writeFileSync(cfg, '[throttle]\nmax_agents = [5, 5, 5, 5]\n');
});
afterEach(async () => {
  // before useTempState's own afterEach ends the processes and removes the folder
  await runCli(['--state-dir', t.sd, 'stop', '--all', '--grace', '1s'], { env: env() });
});

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** Only this test's fake claude processes count as agents, whatever else runs on the host. */
const env = (more: Record<string, string> = {}) => cleanEnv({ AGENTCTL_CONFIG: cfg, AGENTCTL_AGENTS_PATTERNS: `^${escapeRe(t.dir)}/claude `, ...more });
const cli = (args: string[], e = env()) => runCli(['--state-dir', t.sd, ...args], { env: e, cwd: t.dir });
const openRuns = () => {
  const s = State.open(t.sd);
  try {
    return s.db.prepare('SELECT name, grp, pid FROM runs WHERE ended_at IS NULL').all() as Array<{ name: string; grp: string; pid: number | null }>;
  } finally {
    s.close();
  }
};
async function spawnAll(specs: string[][], e = env()): Promise<RunResult[]> {
  const rs = await Promise.all(specs.map((s) => cli(['spawn', '--json', '-d', ...s], e)));
  for (const r of rs) if (r.code === 0) procs.adopt(parseJson<{ pid: number }>(r.stdout).pid);
  return rs;
}

describe('the level caps all agents on the host (1)', () => {
  it('3 groups x 6 concurrent spawns against a host cap of 5: 5 run, the rest are refused naming the host cap', async () => {
    const specs = ['a', 'b', 'c'].flatMap((g) => Array.from({ length: 6 }, (_, i) => ['--group', g, '--name', `${g}${i}`, '--', 'sleep', '60']));
    const rs = await spawnAll(specs);
    expect(rs.filter((r) => r.code === 0)).toHaveLength(5);
    const refused = rs.filter((r) => r.code !== 0);
    expect(refused.map((r) => r.code)).toEqual(Array(13).fill(75));
    for (const r of refused) expect(parseJson<{ message: string }>(r.stdout).message).toMatch(/no slot for \w+: host: 5 of 5 agents at level \d/);
    expect(openRuns()).toHaveLength(5);
    // ps shows the host's agents against the host's cap
    expect(parseJson<{ host: unknown }>((await cli(['ps', '--json'])).stdout).host).toMatchObject({ managed: 5, unmanaged: 0, agents: 5, max_agents: 5 });
    expect(parseJson<{ host_agents: unknown }>((await cli(['throttle-status', '--json'])).stdout).host_agents).toMatchObject({ managed: 5, unmanaged: 0, agents: 5, max_agents: 5 });
    // every refusal is an event naming the limit that bit
    const ev = parseJson<{ events: Array<{ data: { limit_kind?: string } }> }>((await cli(['events', '--json', '--kind', 'spawn.refused'])).stdout).events;
    expect(ev.map((e) => e.data.limit_kind)).toEqual(Array(13).fill('host'));
  });

  it('--max caps a group within the host cap, and says it was the group', async () => {
    const rs = await spawnAll(Array.from({ length: 4 }, (_, i) => ['--group', 'build', '--max', '2', '--name', `b${i}`, '--', 'sleep', '60']));
    expect(rs.filter((r) => r.code === 0)).toHaveLength(2);
    for (const r of rs.filter((x) => x.code !== 0)) expect(parseJson<{ message: string }>(r.stdout).message).toMatch(/group build: 2 of 2 \(--max 2\)/);
    // the host still has 3 slots for other groups
    const other = await spawnAll(Array.from({ length: 4 }, (_, i) => ['--group', 'other', '--name', `o${i}`, '--', 'sleep', '60']));
    expect(other.filter((r) => r.code === 0)).toHaveLength(3);
  });

  it('two unmanaged claude processes take two of the five: never more than 3 started', async () => {
    await procs.fakeClaude(t.dir);
    await procs.fakeClaude(t.dir);
    const rs = await spawnAll(Array.from({ length: 6 }, (_, i) => ['--group', `g${i % 3}`, '--name', `w${i}`, '--', 'sleep', '60']));
    expect(rs.filter((r) => r.code === 0)).toHaveLength(3);
    expect(parseJson<{ message: string }>(rs.find((r) => r.code !== 0)!.stdout).message).toMatch(/host: 5 of 5 agents at level \d \(3 started by agentctl, 2 other agents\)/);
  });

  it('waiters of all groups share the host queue: the higher priority of another group goes first', async () => {
    writeFileSync(cfg, '[throttle]\nmax_agents = [1, 1, 1, 1]\n');
    const go = join(t.dir, 'go');
    const first = await spawnAll([['--name', 'holder', '--', 'sh', '-c', `while [ ! -e ${go} ]; do sleep 0.05; done`]]);
    expect(first[0]!.code).toBe(0);
    const waiter = (name: string, group: string, priority: string) => {
      const c = spawn(process.execPath, [BIN, '--state-dir', t.sd, 'spawn', '--json', '-d', '--wait', '60s', '--group', group, '--priority', priority, '--name', name, '--', 'sleep', '60'], {
        env: env(),
        cwd: t.dir,
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      let out = '';
      c.stdout!.on('data', (d) => (out += d));
      return { c, exited: once(c, 'exit'), out: () => out };
    };
    const low = waiter('low', 'batch', '3');
    await waitFor(() => queueLength(t.sd) === 1, 10_000, { what: 'low queued' });
    const high = waiter('high', 'interactive', '1');
    await waitFor(() => queueLength(t.sd) === 2, 10_000, { what: 'high queued' });
    writeFileSync(go, '');
    await high.exited;
    procs.adopt(parseJson<{ pid: number }>(high.out()).pid);
    expect(openRuns().map((r) => r.name)).toEqual(['high']);
    expect(low.c.exitCode).toBeNull(); // still waiting for the one host slot
    low.c.kill('SIGTERM');
    await low.exited;
  });
});

describe('a spawn loop under new names meets the host breaker (3)', () => {
  it('more than 5 startup errors across names in 10 minutes pause every spawn (69) until breaker reset --host', async () => {
    const codes: number[] = [];
    for (let i = 0; i < 6; i++) codes.push((await cli(['spawn', '--name', `crashy-${i}`, '--', 'sh', '-c', 'exit 1'])).code!);
    expect(codes).toEqual(Array(6).fill(1));
    const seventh = await cli(['spawn', '--json', '--name', 'crashy-6', '--', 'sh', '-c', 'exit 1']);
    expect(seventh.code).toBe(69);
    const msg = parseJson<{ message: string }>(seventh.stdout).message;
    expect(msg).toMatch(/^host breaker open: 6 startup errors in \d+s across 6 names/);
    expect(msg).toMatch(/crashy-5 exit 1/);
    expect(msg).toMatch(/agentctl breaker reset --host$/);
    // a healthy worker of another name is paused too: the breaker is the host's
    expect((await cli(['spawn', '--name', 'healthy', '--', 'true'])).code).toBe(69);
    const ls = parseJson<{ host: { mode: string; failures: Array<{ name: string }> } }>((await cli(['breaker', '--json'])).stdout);
    expect(ls.host.mode).toBe('open');
    expect(ls.host.failures.map((f) => f.name)).toEqual(['crashy-0', 'crashy-1', 'crashy-2', 'crashy-3', 'crashy-4', 'crashy-5']);
    const reset = await cli(['breaker', 'reset', '--host', '--json']);
    expect(parseJson<{ reset_host: { was: string } }>(reset.stdout).reset_host.was).toBe('open');
    expect((await cli(['spawn', '--name', 'healthy', '--', 'true'])).code).toBe(0);
    // the failures before the reset no longer count: one more startup error does not reopen it
    expect((await cli(['spawn', '--name', 'crashy-7', '--', 'sh', '-c', 'exit 1'])).code).toBe(1);
    expect((await cli(['spawn', '--name', 'healthy2', '--', 'true'])).code).toBe(0);
  });

  it("runs killed from outside within min_uptime (KILL, or lost with their supervisor) do not open it: they fail on no one's loop", async () => {
    for (let i = 0; i < 8; i++) {
      const [r] = await spawnAll([['--name', `killed-${i}`, '--', 'sleep', '60']]);
      const run = parseJson<{ pid: number; run_id: string }>(r!.stdout);
      const s = State.open(t.sd);
      const sup = (s.db.prepare('SELECT sup_pid FROM runs WHERE id = ?').get(run.run_id) as { sup_pid: number }).sup_pid;
      s.close();
      // half lose their supervisor too (recorded lost), half are KILLed alone (recorded SIGKILL)
      if (i % 2) process.kill(sup, 'SIGKILL');
      process.kill(run.pid, 'SIGKILL');
      await waitFor(() => !alive(sup) && !alive(run.pid), 3000);
    }
    expect((await cli(['ps'])).code).toBe(0);
    const s = State.open(t.sd);
    const rows = s.db.prepare("SELECT state, signal FROM runs WHERE failure = 'startup_error' ORDER BY started_at").all() as Array<{ state: string; signal: string | null }>;
    s.close();
    expect(rows.filter((x) => x.state === 'lost')).toHaveLength(4);
    expect(rows.filter((x) => x.state === 'failed' && x.signal === 'SIGKILL')).toHaveLength(4);
    expect((await cli(['spawn', '--name', 'healthy', '--', 'true'])).code).toBe(0);
    // a crash on its own does count: six segfaults open it
    for (let i = 0; i < 6; i++) await cli(['spawn', '--name', `segv-${i}`, '--', 'sh', '-c', 'kill -SEGV $$']);
    const refused = await cli(['spawn', '--json', '--name', 'after', '--', 'true']);
    expect(refused.code).toBe(69);
    expect(parseJson<{ message: string }>(refused.stdout).message).toMatch(/segv-5 SIGSEGV/);
  });

  it('host_breaker_failures = 0 turns it off', async () => {
    writeFileSync(cfg, '[spawn]\nhost_breaker_failures = 0\n');
    for (let i = 0; i < 8; i++) expect((await cli(['spawn', '--name', `crashy-${i}`, '--', 'sh', '-c', 'exit 1'])).code).toBe(1);
  });
});

describe('protections on by default (4)', () => {
  /** A `claude` on PATH, as a naive orchestrator would call it: a shell script that lives, or one that dies at once. */
  function fakeClaude(body: string): NodeJS.ProcessEnv {
    const dir = join(t.dir, 'bin');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'claude'), `#!/bin/sh\n${body}\n`);
    chmodSync(join(dir, 'claude'), 0o755);
    // the default configuration: no config file, no agentctl variables
    return cleanEnv({ PATH: `${dir}:${process.env.PATH}` });
  }
  const defaults = (e: NodeJS.ProcessEnv) => (args: string[]) => runCli(['--state-dir', t.sd, ...args], { env: e, cwd: t.dir });
  type Check = { id: string; status: string; value: string };
  const check = async (run: (a: string[]) => Promise<RunResult>, id: string) =>
    parseJson<{ checks: Check[] }>((await run(['doctor', '--json', '--check', id])).stdout).checks.find((c) => c.id === id)!;

  it('15 x spawn -d -- claude: one per name, and under new names no more than the level allows; doctor shows the cap biting', async () => {
    const run = defaults(fakeClaude('while :; do sleep 1; done'));
    const naive = [];
    for (let i = 0; i < 15; i++) naive.push(await run(['spawn', '-d', '--json', '--', 'claude', '--print', `task ${i}`]));
    for (const r of naive) if (r.code === 0) procs.adopt(parseJson<{ pid: number }>(r.stdout).pid);
    expect(naive.filter((r) => r.code === 0)).toHaveLength(1); // the name defaults to the program: one instance
    expect(naive.slice(1).every((r) => r.code === 75 && parseJson<{ reason: string }>(r.stdout).reason === 'already_running')).toBe(true);
    const named = [];
    for (let i = 0; i < 15; i++) named.push(await run(['spawn', '-d', '--json', '--name', `claude-${i}`, '--', 'claude', '--print', `task ${i}`]));
    for (const r of named) if (r.code === 0) procs.adopt(parseJson<{ pid: number }>(r.stdout).pid);
    // level 0's cap (5) is the most any level allows: the naive run and at most 4 of these
    expect(openRuns().length).toBeLessThanOrEqual(5);
    expect(named.filter((r) => r.code === 75).length).toBeGreaterThanOrEqual(10);
    const c = await check(run, 'agents.count');
    expect(c.status).not.toBe('ok');
    expect(c.value).toMatch(/\d+ spawns? refused by the host cap in the last hour/);
  });

  it('15 x spawn -d of a claude that dies at once under new names: the host breaker opens and doctor fails on it', async () => {
    const run = defaults(fakeClaude('exit 1'));
    const codes: number[] = [];
    for (let i = 0; i < 15; i++) {
      const r = await run(['spawn', '-d', '--json', '--name', `claude-${i}`, '--', 'claude', '--print', `task ${i}`]);
      codes.push(r.code!);
      // a detached run's exit is recorded by the next command that reconciles: let this one end first
      if (r.code === 0) await waitFor(() => existsSync(join(t.sd, 'runs', `${parseJson<{ run_id: string }>(r.stdout).run_id}.exit`)), 5000);
    }
    expect(codes.filter((c) => c === 0).length).toBeLessThanOrEqual(7); // six startup errors open it; the seventh spawn may be the one recording the sixth
    expect(codes.filter((c) => c === 69).length).toBeGreaterThanOrEqual(8);
    const c = await check(run, 'runs.host_breaker');
    expect(c.status).toBe('fail');
  });
});
