import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { alive, cleanEnv, dbGet, parseJson, ROOT, runCli, useTempState, waitFor } from '../helpers.js';

const FIX = join(ROOT, 'test', 'fixtures');
const t = useTempState();
const env = () => cleanEnv({ AGENTCTL_DISABLE_THROTTLE: '1' });
const cli = (args: string[]) => runCli(['--state-dir', t.sd, ...args], { env: env(), cwd: t.dir });

interface Row {
  entry: string;
  name: string;
  status: string;
  detail: string;
  run_id: string | null;
  pid: number | null;
  retry_at: string | null;
}
interface UpJson {
  agents: Row[];
  pruned: Array<{ name: string; pid: number | null; graceful: boolean | null }>;
}

const fleet = (text: string) => writeFileSync(join(t.dir, 'agentctl.toml'), text);
const SLEEPERS = `
[[agents]]
name = "db"
command = ["sleep", "300"]

[[agents]]
name = "web"
command = ["sleep", "301"]
requires = ["db"]
instances = 2
`;

/** up --json, every PID it reports ended by the test afterwards */
async function up(...args: string[]): Promise<{ code: number | null; json: UpJson; stderr: string }> {
  const r = await cli(['up', '--json', ...args]);
  const json = parseJson<UpJson>(r.stdout);
  for (const a of json.agents) if (a.pid !== null) t.procs.adopt(a.pid);
  return { code: r.code, json, stderr: r.stderr };
}
const statuses = (j: UpJson) => Object.fromEntries(j.agents.map((a) => [a.name, a.status]));
const runCount = () => dbGet<{ n: number }>(t.sd, 'SELECT COUNT(*) AS n FROM runs')!.n;
const cmdline = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');

describe('[[agents]] in the config', () => {
  const bad = async (toml: string, line: number, key: string) => {
    fleet(toml);
    const r = await cli(['up']);
    expect(r.code).toBe(78);
    expect(r.stderr).toContain(join(t.dir, 'agentctl.toml'));
    expect(r.stderr).toContain(`line ${line}`);
    expect(r.stderr).toContain(key);
  };
  it('an unknown key names the file, the line and the key', () => bad('[[agents]]\nname = "a"\ncommand = ["true"]\nrestrt = "always"\n', 4, 'agents[0].restrt'));
  it('a bad restart value names the accepted ones', async () => {
    await bad('[[agents]]\nname = "a"\ncommand = ["true"]\n\n[[agents]]\nname = "b"\ncommand = ["true"]\nrestart = "sometimes"\n', 8, 'agents[1].restart');
  });
  it('a requires cycle is a config error at the requires line', async () => {
    await bad('[[agents]]\nname = "a"\ncommand = ["true"]\nrequires = ["b"]\n[[agents]]\nname = "b"\ncommand = ["true"]\nrequires = ["a"]\n', 4, 'requires cycle: a -> b -> a');
  });
});

describe('agentctl up', () => {
  it('starts the entries in dependency order; a second up starts nothing', async () => {
    fleet(SLEEPERS);
    const first = await up();
    expect(first.code).toBe(0);
    expect(first.json.agents.map((a) => [a.name, a.status])).toEqual([
      ['db', 'started'],
      ['web-1', 'started'],
      ['web-2', 'started'],
    ]);
    for (const a of first.json.agents) expect(alive(a.pid!)).toBe(true);
    const second = await up();
    expect(second.code).toBe(0);
    expect(statuses(second.json)).toEqual({ db: 'running', 'web-1': 'running', 'web-2': 'running' });
    expect(second.json.agents.map((a) => a.pid)).toEqual(first.json.agents.map((a) => a.pid));
    expect(runCount()).toBe(3);
    // the admissions are up's: its events say so
    const admitted = dbGet<{ commands: string }>(t.sd, "SELECT group_concat(DISTINCT command) AS commands FROM events WHERE kind = 'spawn.admitted'")!;
    expect(admitted.commands).toBe('up');
  });

  it('two ups at once start each instance once', async () => {
    fleet(`[[agents]]\nname = "w"\ncommand = ["sleep", "300"]\ninstances = 4\n`);
    const [a, b] = await Promise.all([up(), up()]);
    expect([a.code, b.code]).toEqual([0, 0]);
    expect(runCount()).toBe(4);
    const started = [...a.json.agents, ...b.json.agents].filter((x) => x.status === 'started').map((x) => x.name);
    expect(started.sort()).toEqual(['w-1', 'w-2', 'w-3', 'w-4']);
    const live = dbGet<{ n: number }>(t.sd, 'SELECT COUNT(DISTINCT pid) AS n FROM runs WHERE ended_at IS NULL')!.n;
    expect(live).toBe(4);
  });

  it('--dry-run says what it would start and starts nothing', async () => {
    fleet(SLEEPERS);
    const r = await up('--dry-run');
    expect(r.code).toBe(0);
    expect(statuses(r.json)).toEqual({ db: 'would_start', 'web-1': 'would_start', 'web-2': 'would_start' });
    expect(dbGet<{ n: number }>(t.sd, 'SELECT COUNT(*) AS n FROM runs')?.n ?? 0).toBe(0);
  });

  it('reports drift after an entry changes, and --restart-changed restarts it', async () => {
    fleet(`[[agents]]\nname = "a"\ncommand = ["sleep", "300"]\n`);
    const first = await up();
    const old = first.json.agents[0]!.pid!;
    fleet(`[[agents]]\nname = "a"\ncommand = ["sleep", "302"]\n`);
    const drift = await up();
    expect(drift.code).toBe(0);
    expect(drift.json.agents[0]!.status).toBe('drift');
    expect(alive(old)).toBe(true);
    const again = await up('--restart-changed', '--grace', '5s');
    expect(again.json.agents[0]!.status).toBe('started');
    const fresh = again.json.agents[0]!.pid!;
    expect(fresh).not.toBe(old);
    await waitFor(() => !alive(old), 10_000);
    expect(cmdline(fresh)).toBe('sleep 302');
    expect((await up()).json.agents[0]!.status).toBe('running');
  });

  it('a failing entry waits out its backoff, with when', async () => {
    fleet(`[[agents]]\nname = "bad"\ncommand = ["sh", "-c", "exit 3"]\n`);
    const first = await up();
    expect(first.json.agents[0]!.status).toBe('started');
    // the exit is recorded by the next command that reads runs: up itself
    const second = await waitFor(async () => {
      const r = await up();
      return r.json.agents[0]!.status === 'waiting' ? r : undefined;
    }, 10_000);
    expect(second.code).toBe(0);
    expect(second.json.agents[0]!.retry_at).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(second.json.agents[0]!.detail).toContain('backing off');
    expect(runCount()).toBe(1);
  });

  it('restart = never leaves a failed entry failed: exit 1', async () => {
    fleet(`[[agents]]\nname = "once"\ncommand = ["sh", "-c", "exit 3"]\nrestart = "never"\n`);
    await up();
    await waitFor(async () => (await up()).json.agents[0]!.status === 'failed', 10_000);
    const r = await up();
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('once failed');
  });

  it('--prune stops the runs of an entry removed from the file', async () => {
    fleet(SLEEPERS);
    const first = await up();
    const db = first.json.agents.find((a) => a.name === 'db')!.pid!;
    fleet(`[[agents]]\nname = "db"\ncommand = ["sleep", "300"]\n`);
    const kept = await up();
    expect(kept.json.pruned).toEqual([]);
    const pruned = await up('--prune', '--grace', '5s');
    expect(pruned.json.pruned.map((p) => p.name).sort()).toEqual(['web-1', 'web-2']);
    for (const a of first.json.agents.filter((x) => x.entry === 'web')) await waitFor(() => !alive(a.pid!), 10_000);
    expect(alive(db)).toBe(true);
  });
});

describe('agentctl down', () => {
  it('stops the entries gracefully; a plain up leaves them down, up NAME brings them back', async () => {
    fleet(SLEEPERS);
    const first = await up();
    const r = await cli(['down', '--json', '--grace', '5s']);
    expect(r.code).toBe(0);
    const rows = parseJson<{ agents: Array<{ name: string; status: string }> }>(r.stdout).agents;
    expect(rows.map((x) => x.status)).toEqual(['graceful', 'graceful', 'graceful']);
    for (const a of first.json.agents) expect(alive(a.pid!)).toBe(false);
    expect(dbGet<{ n: number }>(t.sd, "SELECT COUNT(*) AS n FROM runs WHERE state = 'stopped'")!.n).toBe(3);
    const after = await up();
    expect(after.code).toBe(0);
    expect(statuses(after.json)).toEqual({ db: 'down', 'web-1': 'down', 'web-2': 'down' });
    const back = await up('web');
    expect(back.code).toBe(0);
    expect(statuses(back.json)).toEqual({ db: 'started', 'web-1': 'started', 'web-2': 'started' });
  });
});

describe('incident 001: the duplicate daemons', () => {
  it('with the fleet file, only auto_confirm_worker_v2.py --daemon runs, once', async () => {
    fleet(`[[agents]]\nname = "auto-confirm"\ncommand = ["python3", "auto_confirm_worker_v2.py", "--daemon"]\ncwd = "${FIX}"\n`);
    const first = await up();
    expect(first.json.agents[0]!.status).toBe('started');
    const pid = first.json.agents[0]!.pid!;
    // python3 may be a shim that execs the real one: the worker and its flag are what count
    expect(cmdline(pid)).toContain('auto_confirm_worker_v2.py --daemon');
    expect(cmdline(pid)).not.toContain('auto_confirm_worker.py');
    const [a, b] = await Promise.all([up(), up()]);
    expect([a.json.agents[0]!.status, b.json.agents[0]!.status]).toEqual(['running', 'running']);
    expect(runCount()).toBe(1);
    const ps = parseJson<{ runs: Array<{ name: string; pid: number }> }>((await cli(['ps', '--json'])).stdout);
    expect(ps.runs.map((r) => [r.name, r.pid])).toEqual([['auto-confirm', pid]]);
  });
});

describe('doctor', () => {
  it('has one check per entry', async () => {
    fleet(SLEEPERS);
    await up();
    await cli(['down', 'db', '--grace', '5s']);
    const r = await cli(['doctor', '--json', '--check', 'agent.db', 'agent.web']);
    const checks = parseJson<{ checks: Array<{ id: string; status: string; value: string }> }>(r.stdout).checks;
    expect(checks.map((c) => [c.id, c.status])).toEqual([
      ['agent.db', 'warn'],
      ['agent.web', 'ok'],
    ]);
    expect(checks[0]!.value).toContain('db (down)');
  });
});
