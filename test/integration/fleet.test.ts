/**
 * The fleet-wide cap (issue #15) on a real PostgreSQL: a throwaway cluster per file
 * (test/pg.ts), "hosts" simulated by separate state dirs and host ids on this machine, real
 * spawns of the built binary, `sleep` as the agent. Every run is ended by `agentctl stop` and
 * then by PID (useTempState's procs).
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { alive, cleanEnv, dbGet, runCli, type RunResult, useTempState, waitFor } from '../helpers.js';
import { type Cluster, PG_PASSWORD, startCluster } from '../pg.js';

const t = useTempState();
let cluster: Cluster;

beforeAll(async () => {
  cluster = await startCluster();
}, 120_000);
afterAll(() => cluster?.destroy());

interface Host {
  readonly id: string;
  readonly sd: string;
  readonly cfg: string;
}
let hosts: Host[] = [];

/** A "host": its own state dir and config, with this fleet section. */
function host(id: string, fleet: { cap?: number; ttl?: string; url?: string; extra?: string } = {}): Host {
  const cfg = join(t.dir, `${id}.toml`);
  const url = fleet.url ?? cluster.url;
  writeFileSync(cfg, `[fleet]\nurl = "${url}"\nhost_id = "${id}"\nlease_ttl = "${fleet.ttl ?? '5m'}"\n${fleet.extra ?? ''}\n[fleet.caps]\nclaude = ${fleet.cap ?? 4}\n`);
  const h = { id, sd: join(t.dir, `state-${id}`), cfg };
  hosts.push(h);
  return h;
}

// nothing else on this machine counts as an agent, and the throttle stays out of the figures
const env = (more: Record<string, string> = {}) =>
  cleanEnv({ AGENTCTL_DISABLE_THROTTLE: '1', AGENTCTL_AGENTS_PATTERNS: '^agentctl-fleet-test-no-such-agent$', AGENTCTL_SPAWN_COUNT_UNMANAGED: 'false', ...more });
const cli = (h: Host, args: string[], e = env()) => runCli(['--config', h.cfg, '--state-dir', h.sd, ...args], { env: e, cwd: t.dir, timeoutMs: 60_000 });

/** The live runs a host's state holds, with their PIDs (undefined PID: still starting). */
const liveRuns = (h: Host) => {
  if (!existsSync(join(h.sd, 'state.db'))) return [];
  return (dbAll(h.sd, 'SELECT id, name, pid, sup_pid FROM runs WHERE ended_at IS NULL') as Array<{ id: string; name: string; pid: number | null; sup_pid: number | null }>) ?? [];
};
function dbAll(sd: string, sql: string): unknown[] {
  // dbGet reads one row; a JSON aggregate gives all of them through it
  const row = dbGet<{ j: string | null }>(sd, `SELECT json_group_array(json_object('id', id, 'name', name, 'pid', pid, 'sup_pid', sup_pid)) AS j FROM (${sql})`);
  return JSON.parse(row?.j ?? '[]') as unknown[];
}
const leases = async () => cluster.query<{ host_id: string; run_id: string; grp: string }>('SELECT host_id, run_id, grp FROM agentctl_fleet_leases WHERE expires_at > now() ORDER BY host_id');

beforeEach(async () => {
  hosts = [];
  if (!cluster.pid()) await cluster.start();
  // fleet init creates the table once; each test starts with no leases
  const r = await cli(host('init'), ['fleet', 'init']);
  expect(r.code, r.stderr).toBe(0);
  await cluster.query('DELETE FROM agentctl_fleet_leases');
});

afterEach(async () => {
  for (const h of hosts) {
    for (const r of liveRuns(h)) t.procs.adopt(...[r.pid, r.sup_pid].filter((p): p is number => p !== null));
    if (existsSync(h.sd)) await cli(h, ['stop', '--all', '--grace', '1s']);
  }
});

const spawnClaude = (h: Host, name: string, extra: string[] = [], e = env()) => cli(h, ['spawn', '-d', '--group', 'claude', '--name', name, ...extra, '--', 'sleep', '300'], e);

describe('fleet-wide cap', () => {
  it('3 hosts x 10 concurrent spawns, cap 4: never more than 4 alive, each host keeps its own --max 2, every refusal exits 75', async () => {
    const hs = ['host-a', 'host-b', 'host-c'].map((id) => host(id, { cap: 4 }));
    const results: Array<{ h: Host; r: RunResult }> = await Promise.all(
      hs.flatMap((h) => Array.from({ length: 10 }, (_, i) => spawnClaude(h, `${h.id}-${i}`, ['--max', '2']).then((r) => ({ h, r })))),
    );
    const started = results.filter(({ r }) => r.code === 0);
    const refused = results.filter(({ r }) => r.code !== 0);
    for (const { r } of refused) {
      expect(r.code, r.stderr).toBe(75);
      expect(r.stderr).toMatch(/fleet: 4 of 4 claude sessions \(|no slot for host-/);
    }
    // every host's own cap holds, the fleet's too, and what started is what is alive and leased
    const live = hs.map((h) => liveRuns(h));
    for (const l of live) expect(l.length).toBeLessThanOrEqual(2);
    const pids = live.flat().map((r) => r.pid!);
    expect(pids.every((p) => p !== null && alive(p))).toBe(true);
    expect(started.length).toBe(pids.length);
    expect(pids.length).toBe(4);
    const held = await leases();
    expect(held.map((l) => l.run_id).sort()).toEqual(
      live
        .flat()
        .map((r) => r.id)
        .sort(),
    );
    expect(refused.some(({ r }) => r.stderr.includes('fleet: 4 of 4 claude sessions'))).toBe(true);
  }, 180_000);

  it('a refusal by the fleet gives the local slot back: no run row, no cooldown, and --json is one document', async () => {
    const a = host('host-a', { cap: 1 });
    const b = host('host-b', { cap: 1 });
    expect((await spawnClaude(a, 'a1')).code).toBe(0);
    const r = await spawnClaude(b, 'b1', ['--json']);
    expect(r.code).toBe(75);
    const doc = JSON.parse(r.stdout) as { reason: string; message: string; fleet: unknown };
    expect(doc).toMatchObject({ reason: 'fleet_full', message: 'fleet: 1 of 1 claude sessions (host-a 1)', fleet: { group: 'claude', used: 1, cap: 1, hosts: { 'host-a': 1 } } });
    expect(dbGet<{ n: number }>(b.sd, 'SELECT COUNT(*) AS n FROM runs')!.n).toBe(0);
    const ev = dbGet<{ data: string }>(b.sd, "SELECT data FROM events WHERE kind = 'spawn.refused'")!;
    expect(JSON.parse(ev.data)).toMatchObject({ reason: 'fleet_full', exit_code: 75, limit_kind: 'fleet', used: 1, limit: 1 });
    // a group without a fleet cap is not asked
    expect((await cli(b, ['spawn', '-d', '--group', 'other', '--name', 'o1', '--', 'sleep', '300'])).code).toBe(0);
  });

  it('a stopped run releases its lease at once, and a waiter on another host hears it and starts', async () => {
    const a = host('host-a', { cap: 1 });
    const b = host('host-b', { cap: 1 });
    expect((await spawnClaude(a, 'a1')).code).toBe(0);
    const waiter = spawnClaude(b, 'b1', ['--wait', '60s']);
    // the waiter has been refused by the fleet at least once before the slot frees
    const asked = () => {
      try {
        return dbGet(b.sd, "SELECT 1 AS x FROM events WHERE kind = 'spawn.admitted'") !== undefined;
      } catch {
        return false; // the state is not there, or not migrated, yet
      }
    };
    await waitFor(asked, 30_000, { what: 'b1 asked the fleet' });
    expect((await leases()).map((l) => l.host_id)).toEqual(['host-a']);
    expect((await cli(a, ['stop', 'a1', '--grace', '1s'])).code).toBe(0);
    const r = await waiter;
    expect(r.code, r.stderr).toBe(0);
    expect((await leases()).map((l) => l.host_id)).toEqual(['host-b']);
  }, 90_000);

  it('a detached run that ends on its own gives its lease back at once: no command on its host needed', async () => {
    const a = host('host-a', { cap: 1 });
    const b = host('host-b', { cap: 1 });
    const go = join(t.dir, 'go');
    const r1 = await cli(a, ['spawn', '-d', '--group', 'claude', '--name', 'a1', '--', 'sh', '-c', `while [ ! -e ${go} ]; do sleep 0.05; done`]);
    expect(r1.code, r1.stderr).toBe(0);
    expect((await leases()).map((l) => l.host_id)).toEqual(['host-a']);
    const waiter = spawnClaude(b, 'b1', ['--wait', '60s']);
    await waitFor(
      () => {
        try {
          return dbGet(b.sd, "SELECT 1 AS x FROM events WHERE kind = 'spawn.admitted'") !== undefined;
        } catch {
          return false;
        }
      },
      30_000,
      { what: 'b1 asked the fleet' },
    );
    // a1 ends; nothing is run on host-a: its supervisor records the end and releases the lease
    writeFileSync(go, '');
    const r = await waiter;
    expect(r.code, r.stderr).toBe(0);
    expect((await leases()).map((l) => l.host_id)).toEqual(['host-b']);
    expect(dbGet<{ state: string }>(a.sd, "SELECT state FROM runs WHERE name = 'a1'")?.state).toBe('exited');
  }, 90_000);

  it('ps renews the leases of live runs and releases those of runs that ended', async () => {
    const a = host('host-a', { cap: 2, ttl: '1m' });
    expect((await spawnClaude(a, 'a1')).code).toBe(0);
    expect((await spawnClaude(a, 'a2')).code).toBe(0);
    const [r1, r2] = liveRuns(a);
    const before = await cluster.query<{ run_id: string; pid: number; ms: string }>('SELECT run_id, pid, extract(epoch FROM expires_at) * 1000 AS ms FROM agentctl_fleet_leases');
    // a2's agent ends on its own (kill by its PID): its supervisor records the exit
    process.kill(r2!.pid!, 'SIGKILL');
    await waitFor(() => !alive(r2!.pid!), 10_000);
    expect((await cli(a, ['ps'])).code).toBe(0);
    const after = await cluster.query<{ run_id: string; pid: number; ms: string }>('SELECT run_id, pid, extract(epoch FROM expires_at) * 1000 AS ms FROM agentctl_fleet_leases');
    expect(after.map((l) => l.run_id)).toEqual([r1!.id]);
    expect(Number(after[0]!.ms)).toBeGreaterThan(Number(before.find((l) => l.run_id === r1!.id)!.ms));
    expect(after[0]!.pid).toBe(r1!.pid); // renewed with the run's own process, not its spawner
  });

  it('a host killed -9 (its runs and supervisors, nothing released) loses its leases after lease_ttl; another host gets the slots', async () => {
    const a = host('host-a', { cap: 2, ttl: '4s' });
    const b = host('host-b', { cap: 2, ttl: '4s' });
    expect((await spawnClaude(a, 'a1')).code).toBe(0);
    expect((await spawnClaude(a, 'a2')).code).toBe(0);
    // the host dies: supervisors first (no exit file is written), then the agents
    for (const r of liveRuns(a)) {
      process.kill(r.sup_pid!, 'SIGKILL');
      process.kill(r.pid!, 'SIGKILL');
    }
    const refused = await spawnClaude(b, 'b1');
    expect(refused.code).toBe(75);
    expect(refused.stderr).toContain('fleet: 2 of 2 claude sessions (host-a 2)');
    // host-a never speaks again; its leases expire by the database's clock
    const r1 = await spawnClaude(b, 'b1', ['--wait', '60s']);
    expect(r1.code, r1.stderr).toBe(0);
    const r2 = await spawnClaude(b, 'b2', ['--wait', '60s']);
    expect(r2.code, r2.stderr).toBe(0);
    expect((await leases()).map((l) => l.host_id)).toEqual(['host-b', 'host-b']);
  }, 90_000);
});

describe('ps --fleet', () => {
  it('adds the leases per group and host; with PostgreSQL down it says why and still lists the local runs', async () => {
    const a = host('host-a', { cap: 3 });
    const b = host('host-b', { cap: 3 });
    expect((await spawnClaude(a, 'a1')).code).toBe(0);
    expect((await spawnClaude(b, 'b1')).code).toBe(0);
    const j = await cli(a, ['ps', '--fleet', '--json']);
    expect(JSON.parse(j.stdout).fleet).toEqual({ host_id: 'host-a', groups: [{ group: 'claude', cap: 3, used: 2, hosts: { 'host-a': 1, 'host-b': 1 } }] });
    const text = await cli(a, ['ps', '--fleet']);
    expect(text.stdout).toMatch(/fleet leases \(this host: host-a\):/);
    expect(text.stdout).toMatch(/claude\s*│\s*2 of 3\s*│\s*host-a \(this host\) 1, host-b 1/);
    cluster.stop();
    const down = await cli(a, ['ps', '--fleet', '--json']);
    expect(down.code).toBe(0);
    const doc = JSON.parse(down.stdout) as { runs: Array<{ name: string }>; fleet: { error: string } };
    expect(doc.runs.map((r) => r.name)).toEqual(['a1']);
    expect(doc.fleet.error).toMatch(/cannot reach PostgreSQL/);
    const plain = host('plain', { cap: 1 });
    writeFileSync(plain.cfg, '');
    expect((await cli(plain, ['ps', '--fleet'])).code).toBe(78);
  });
});

describe('doctor', () => {
  it('shows the leases per host, writes agentctl_fleet_leases{group,host}, and warns when leases are not renewed within lease_ttl / 2', async () => {
    let a = host('host-a', { cap: 3 });
    const b = host('host-b', { cap: 3 });
    expect((await spawnClaude(a, 'a1')).code).toBe(0);
    expect((await spawnClaude(b, 'b1')).code).toBe(0);
    expect((await spawnClaude(b, 'b2')).code).toBe(0);
    const prom = join(t.dir, 'doctor.prom');
    const r = await cli(a, ['doctor', '--json', '--check', 'fleet.leases', '--prometheus', prom]);
    const doc = JSON.parse(r.stdout) as { checks: Array<{ id: string; status: string; value: string }>; fleet: unknown };
    const leasesCheck = doc.checks.find((c) => c.id === 'fleet.leases')!;
    expect(leasesCheck.value).toContain('claude 3 of 3 (host-a 1, host-b 2)');
    expect(leasesCheck.status).toBe('warn'); // at the cap
    expect(doc.fleet).toEqual({ host_id: 'host-a', groups: [{ group: 'claude', cap: 3, used: 3, hosts: { 'host-a': 1, 'host-b': 2 } }] });
    const text = readFileSync(prom, 'utf8');
    expect(text).toContain('agentctl_fleet_leases{group="claude",host="host-a"} 1');
    expect(text).toContain('agentctl_fleet_leases{group="claude",host="host-b"} 2');
    // host-a renewed at its spawn; once lease_ttl / 2 has passed without a reconcile, doctor warns
    a = host('host-a', { cap: 3, ttl: '2s' }); // the same state dir, a short lease_ttl
    const renewal = async () => (JSON.parse((await cli(a, ['doctor', '--json', '--check', 'fleet.renewal'])).stdout) as { checks: Array<{ status: string; value: string }> }).checks[0]!;
    await waitFor(async () => (await renewal()).status === 'warn', 20_000, { what: 'fleet.renewal warns' });
    expect((await renewal()).value).toMatch(/1 fleet-capped runs; leases last renewed .* ago/);
    expect((await cli(a, ['ps'])).code).toBe(0);
    expect((await renewal()).status).toBe('ok');
  }, 60_000);
});

describe('PostgreSQL down', () => {
  it('refuses fleet-capped spawns (fail closed, exit 75, a clear line), local commands keep working, nothing corrupt after it comes back', async () => {
    const a = host('host-a', { cap: 2 });
    expect((await spawnClaude(a, 'a1')).code).toBe(0);
    const a1Id = liveRuns(a)[0]!.id;
    cluster.stop();
    const r = await spawnClaude(a, 'a2');
    expect(r.code).toBe(75);
    expect(r.stderr).toMatch(
      /^agentctl: fleet: cannot reach PostgreSQL at 127\.0\.0\.1:\d+\/agentctl_fleet: .*ECONNREFUSED.*; claude has a fleet-wide cap, so its spawns are refused until PostgreSQL answers \(fleet.on_unreachable = "refuse"\)\n$/,
    );
    const j = await spawnClaude(a, 'a2', ['--json']);
    expect(j.code).toBe(75);
    expect(JSON.parse(j.stdout)).toMatchObject({ outcome: 'refused', reason: 'fleet_unreachable', exit_code: 75 });
    // everything else works on local state: another group, ps (one warning), stop
    expect((await cli(a, ['spawn', '-d', '--group', 'other', '--name', 'o1', '--', 'sleep', '300'])).code).toBe(0);
    const ps = await cli(a, ['ps', '--json']);
    expect(ps.code).toBe(0);
    expect(JSON.parse(ps.stdout)).toBeTruthy();
    expect(ps.stderr).toMatch(/warning: fleet: leases not renewed: cannot reach PostgreSQL/);
    const a1Sup = liveRuns(a).find((x) => x.name === 'a1')!.sup_pid;
    expect((await cli(a, ['stop', 'a1', '--grace', '1s'])).code).toBe(0);
    expect(liveRuns(a).map((x) => x.name)).toEqual(['o1']);
    // a1's supervisor tries to give the lease back as it exits (_fleet-sync): let it fail while
    // the database is away, or it could release the lease once the database is back
    if (a1Sup !== null) await waitFor(() => !alive(a1Sup), 15_000, { what: "a1's supervisor done" });

    await cluster.start();
    // the lease of a1 (stopped while the database was away) is released by the next spawn's
    // call, in the same transaction that takes a2's
    expect((await leases()).map((l) => l.run_id)).toEqual([a1Id]);
    expect((await spawnClaude(a, 'a2')).code).toBe(0);
    expect((await leases()).map((l) => l.run_id)).toEqual(
      liveRuns(a)
        .filter((r) => r.name === 'a2')
        .map((r) => r.id),
    );
    expect((await spawnClaude(a, 'a3')).code).toBe(0);
    expect((await spawnClaude(a, 'a4')).code).toBe(75);
    expect((await leases()).length).toBe(2);
  }, 90_000);

  it('with on_unreachable = "admit", admits on the local caps with a warning', async () => {
    const a = host('host-a', { cap: 1, extra: 'on_unreachable = "admit"\n' });
    cluster.stop();
    const r = await spawnClaude(a, 'a1');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/warning: fleet: cannot reach PostgreSQL .*; a1 admitted on this host's caps alone \(fleet.on_unreachable = "admit"\)/);
    expect(dbGet(a.sd, "SELECT 1 AS x FROM events WHERE kind = 'fleet.unreachable'")).toBeDefined();
  });
});

describe('secrets and loading', () => {
  it('the password never reaches output, events or the state folder; PGPASSWORD works without one in the URL', async () => {
    const a = host('host-a', { cap: 2 });
    const outs = [
      await spawnClaude(a, 'a1'),
      await cli(a, ['config']),
      await cli(a, ['config', '--json']),
      await cli(a, ['ps', '--json']),
      await cli(a, ['fleet', 'status', '--json']),
      await cli(a, ['events', '--json']),
    ];
    for (const o of outs) expect(o.stdout + o.stderr).not.toContain(PG_PASSWORD);
    expect(outs[1]!.stdout).toContain('REDACTED');
    for (const f of readdirSync(a.sd, { recursive: true }) as string[]) {
      const p = join(a.sd, f);
      try {
        expect(readFileSync(p).includes(PG_PASSWORD), p).toBe(false);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EISDIR') throw err;
      }
    }
    // no password in the URL: PGPASSWORD
    const b = host('host-b', { cap: 2, url: cluster.urlNoPassword });
    expect((await spawnClaude(b, 'b1', [], env({ PGPASSWORD: PG_PASSWORD }))).code).toBe(0);
    const bad = await spawnClaude(b, 'b2', [], env({ PGPASSWORD: 'wrong' }));
    expect(bad.code).toBe(75);
    expect(bad.stderr).toMatch(/password authentication failed/);
    expect(bad.stderr).not.toContain('wrong');
  });

  it('pg is loaded only when a fleet-capped spawn needs it', async () => {
    const trace = join(t.dir, 'pg-trace');
    const hook = join(t.dir, 'hook.cjs');
    // records every require of pg in the process (the bundle requires it by name, lazily)
    writeFileSync(
      hook,
      `const M = require('node:module'); const load = M._load; M._load = function (r, ...a) { if (r === 'pg') require('node:fs').appendFileSync(${JSON.stringify(trace)}, 'pg\\n'); return load.call(this, r, ...a); };\n`,
    );
    const traced = env({ NODE_OPTIONS: `--require ${hook}` });
    const plain = join(t.dir, 'plain.toml');
    writeFileSync(plain, '[spawn]\ncooldown = "0s"\n');
    const runPlain = (args: string[]) => runCli(['--config', plain, '--state-dir', join(t.dir, 'plain-state'), ...args], { env: traced, cwd: t.dir });
    expect((await runPlain(['spawn', '-d', '--group', 'claude', '--name', 'p1', '--', 'sleep', '300'])).code).toBe(0);
    expect((await runPlain(['ps'])).code).toBe(0);
    expect((await runPlain(['stop', '--all', '--grace', '1s'])).code).toBe(0);
    expect(existsSync(trace)).toBe(false);
    // the control: the same trace sees a fleet-capped spawn load it
    const a = host('host-a', { cap: 2 });
    expect((await spawnClaude(a, 'a1', [], traced)).code).toBe(0);
    expect(readFileSync(trace, 'utf8')).toContain('pg');
  });
});
