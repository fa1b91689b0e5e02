import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cleanEnv, parseJson, Procs, runCli, tempDir } from '../helpers.js';

let t: ReturnType<typeof tempDir>;
let sd: string;
let cfgFlags: string[];
const procs = new Procs();
const servers: Server[] = [];

/** A pool of its own per test, away from other tests' and the default range. */
function pool(from: number, to: number): void {
  const f = join(t.dir, 'agentctl.toml');
  writeFileSync(f, `[ports]\nrange = "${from}-${to}"\n`);
  cfgFlags = ['--state-dir', sd, '--config', f];
}

beforeEach(() => {
  t = tempDir();
  sd = join(t.dir, 'state');
  pool(23000, 23099);
});
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
  await procs.endAll();
  t.cleanup();
});

const env = () => cleanEnv({ AGENTCTL_DISABLE_THROTTLE: '1' });
const cli = (args: string[]) => runCli([...cfgFlags, ...args], { env: env(), cwd: t.dir }); // globals first: after -- they would be the child's
const json = async <T>(args: string[]) => {
  const r = await cli([...args, "--json"]);
  return { ...r, doc: parseJson<T>(r.stdout) };
};
const git = (cwd: string, ...args: string[]) => execFileSync('git', ['-c', 'user.email=t@example.com', '-c', 'user.name=t', ...args], { cwd, encoding: 'utf8' }).trim();

function repo(): string {
  const dir = join(t.dir, 'repo');
  mkdirSync(dir);
  git(dir, 'init', '-q', '-b', 'main');
  writeFileSync(join(dir, 'README'), 'x\n');
  git(dir, 'add', '.');
  git(dir, 'commit', '-q', '-m', 'init');
  return dir;
}

function listen(port: number, host = '127.0.0.1'): Promise<Server> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen({ port, host }, () => resolve(s));
    servers.push(s);
  });
}

interface EnvDoc {
  env: { name: string; ports: number[]; worktree: string | null };
}

describe('env create / ls / rm', () => {
  it('leases ports, refuses a duplicate name clearly, or suffixes with --unique', async () => {
    const a = await json<EnvDoc>(['env', 'create', 'reading-ui-improvement', '--ports', '2']);
    expect(a.code).toBe(0);
    expect(a.doc.env.ports).toEqual([23000, 23001]);
    const dup = await cli(['env', 'create', 'reading-ui-improvement']);
    expect(dup.code).toBe(1);
    expect(dup.stderr).toMatch(/^agentctl: environment 'reading-ui-improvement' already exists \(created .*\); pass --unique for a fresh name, or run: agentctl env rm reading-ui-improvement\n$/);
    const u = await json<EnvDoc>(['env', 'create', 'reading-ui-improvement', '--unique']);
    expect(u.doc.env.name).toBe('reading-ui-improvement-2');
    expect(u.doc.env.ports).toEqual([23002]);
    const ls = await json<{ envs: Array<{ name: string }> }>(['env', 'ls']);
    expect(ls.doc.envs.map((e) => e.name)).toEqual(['reading-ui-improvement', 'reading-ui-improvement-2']);
    const dry = await json<{ removed: string; ports: number[]; dry_run: boolean }>(['env', 'rm', 'reading-ui-improvement', '--dry-run']);
    expect(dry.doc).toMatchObject({ removed: 'reading-ui-improvement', ports: [23000, 23001], dry_run: true });
    expect((await json<{ envs: unknown[] }>(['env', 'ls'])).doc.envs.length).toBe(2); // nothing changed
    expect((await cli(['env', 'rm', 'reading-ui-improvement'])).code).toBe(0);
    const ports = await json<{ leased: number }>(['ports']);
    expect(ports.doc.leased).toBe(1);
  });

  it('never leases a port someone listens on, or one bound without listening', async () => {
    await listen(23000);
    await listen(23001, '::1').catch(() => undefined);
    // a socket bound but not listening is invisible in /proc/net/tcp: only binding finds it
    const holder = spawn('python3', ['-c', 'import socket,sys,time; s=socket.socket(); s.bind(("127.0.0.1", 23002)); print("bound", flush=True); time.sleep(60)'], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await once(holder.stdout!, 'data');
      const r = await json<EnvDoc>(['env', 'create', 'e1', '--ports', '2']);
      expect(r.code).toBe(0);
      for (const busy of [23000, 23002]) expect(r.doc.env.ports).not.toContain(busy);
      expect(r.doc.env.ports.length).toBe(2);
    } finally {
      const exited = once(holder, 'exit');
      holder.kill('SIGKILL');
      await exited;
    }
  });

  it('20 concurrent creates never share a port', async () => {
    const rs = await Promise.all(Array.from({ length: 20 }, (_, i) => json<EnvDoc>(['env', 'create', `c${i}`, '--ports', '2'])));
    expect(rs.map((r) => r.code)).toEqual(rs.map(() => 0));
    const all = rs.flatMap((r) => r.doc.env.ports);
    expect(all.length).toBe(40);
    expect(new Set(all).size).toBe(40);
  });

  it('pool exhaustion names the expired holders and env-gc brings the ports back', async () => {
    pool(23100, 23102);
    expect((await cli(['env', 'create', 'old', '--ports', '3', '--ttl', '50ms'])).code).toBe(0);
    await new Promise((r) => setTimeout(r, 100));
    const full = await cli(['env', 'create', 'new', '--ports', '1']);
    expect(full.code).toBe(75);
    expect(full.stderr).toMatch(/no available ports: need 1, port pool 23100-23102 has 3 ports: 3 leased \(3 by expired environments, 0 by environments whose owner died\), 0 in use by other programs, 0 free; run: agentctl env-gc/);
    const gc = await json<{ actions: Array<{ name: string; action: string; ports: number[] }> }>(['env-gc']);
    expect(gc.doc.actions).toEqual([expect.objectContaining({ name: 'old', action: 'removed', ports: [23100, 23101, 23102] })]);
    expect((await cli(['env', 'create', 'new', '--ports', '1'])).code).toBe(0);
  });

  it('an environment whose owner died is collected', async () => {
    const owner = await procs.node('setInterval(() => {}, 60_000)');
    await cli(['env', 'create', 'owned', '--owner-pid', String(owner.pid)]);
    const before = await json<{ actions: unknown[] }>(['env-gc', '--dry-run']);
    expect(before.doc.actions).toEqual([]);
    await procs.end(owner);
    const gc = await json<{ actions: Array<{ reason: string; action: string }> }>(['env-gc']);
    expect(gc.doc.actions[0]).toMatchObject({ action: 'removed', reason: `owner PID ${owner.pid} is gone` });
  });

  it("a run's ports are released when it exits", async () => {
    const r = await cli(['spawn', '--name', 'web', '--port', '2', '--', 'sh', '-c', 'echo "$PORT $PORT_2 $AGENTCTL_PORTS" > ports.txt']);
    expect(r.code).toBe(0);
    expect(execFileSync('cat', [join(t.dir, 'ports.txt')], { encoding: 'utf8' }).trim()).toBe('23000 23001 23000,23001');
    expect((await json<{ leased: number }>(['ports'])).doc.leased).toBe(0);
  });

  it('spawn --env gives the child the environment and its ports', async () => {
    await cli(['env', 'create', 'staging', '--ports', '1']);
    const r = await cli(['spawn', '--name', 'w', '--env', 'staging', '--', 'sh', '-c', 'echo "$AGENTCTL_ENV $PORT" > env.txt']);
    expect(r.code).toBe(0);
    expect(execFileSync('cat', [join(t.dir, 'env.txt')], { encoding: 'utf8' }).trim()).toBe('staging 23000');
    expect((await cli(['spawn', '--name', 'w2', '--env', 'nope', '--', 'true'])).code).toBe(69);
  });

  it('spawn --env refuses an environment env-gc is due to remove', async () => {
    expect((await cli(['env', 'create', 'stale', '--ports', '1', '--ttl', '50ms'])).code).toBe(0);
    await new Promise((r) => setTimeout(r, 120));
    const r = await cli(['spawn', '--json', '--name', 'w3', '--env', 'stale', '--', 'true']);
    expect(r.code).toBe(69);
    const doc = parseJson<{ reason: string; message: string }>(r.stdout);
    expect(doc.reason).toBe('dependency');
    expect(doc.message).toMatch(/env-gc will remove \(expired /);
  });

  it('bad input: exit 2 and nothing created', async () => {
    for (const args of [['env', 'create', '../x'], ['env', 'create', 'a/b'], ['env', 'create', 'x', '--ports', '-1'], ['env', 'create', 'x', '--ttl', 'soon'], ['env', 'create', 'x', '--branch', 'b'], ['env', 'create', 'x', '--owner-pid', '0'], ['env', 'bogus']]) {
      const r = await cli(args);
      expect(r.code, args.join(' ')).toBe(2);
    }
    expect(existsSync(join(sd, 'state.db'))).toBe(false);
  });
});

describe('env-gc with real git worktrees', () => {
  it('removes clean worktrees, refuses dirty, locked and unpushed ones unless --force, prunes, reports orphans (refusals logged once an hour)', async () => {
    const r = repo();
    const trees = join(t.dir, 'trees');
    const mk = async (name: string) => {
      const res = await cli(['env', 'create', name, '--ttl', '10ms', '--worktree', join(trees, name), '--repo', r, '--branch', name]);
      expect(res.code, res.stderr).toBe(0);
      return join(trees, name);
    };
    const clean = await mk('gh-1');
    const dirty = await mk('gh-2');
    const locked = await mk('gh-3');
    const unpushed = await mk('gh-4');
    writeFileSync(join(dirty, 'wip.txt'), 'half done\n');
    git(r, 'worktree', 'lock', '--reason', 'agent busy', locked);
    writeFileSync(join(unpushed, 'fix.txt'), 'fix\n');
    git(unpushed, 'add', '.');
    git(unpushed, 'commit', '-q', '-m', 'fix only here');
    // a folder that looks like a worktree whose metadata git no longer has
    mkdirSync(join(trees, 'gh-0'));
    writeFileSync(join(trees, 'gh-0', '.git'), `gitdir: ${join(r, '.git', 'worktrees', 'gh-0')}\n`);
    await new Promise((res) => setTimeout(res, 50));

    const dry = await json<{ actions: Array<{ name: string; action: string }> }>(['env-gc', '--dry-run']);
    expect(Object.fromEntries(dry.doc.actions.map((a) => [a.name, a.action]))).toEqual({ 'gh-1': 'would_remove', 'gh-2': 'refused', 'gh-3': 'refused', 'gh-4': 'refused' });
    expect(existsSync(clean)).toBe(true);

    const gc = await json<{ actions: Array<{ name: string; action: string; problems: string[] }>; orphan_worktrees: string[]; pruned_repos: string[] }>(['env-gc']);
    const by = Object.fromEntries(gc.doc.actions.map((a) => [a.name, a]));
    expect(by['gh-1']!.action).toBe('removed');
    expect(by['gh-2']!.problems.join()).toMatch(/uncommitted/);
    expect(by['gh-3']!.problems.join()).toMatch(/locked \(agent busy\)/);
    expect(by['gh-4']!.problems.join()).toMatch(/1 commit\(s\) on no other branch or remote \(unpushed\)/);
    expect(existsSync(clean)).toBe(false);
    expect(existsSync(dirty) && existsSync(locked) && existsSync(unpushed)).toBe(true);
    expect(gc.doc.orphan_worktrees).toEqual([join(trees, 'gh-0')]);
    expect(gc.doc.pruned_repos.length).toBe(1);

    // a second collection an instant later refuses again but does not log the refusals again
    await cli(['env-gc']);
    expect((await json<{ events: unknown[] }>(['events', '--kind', 'env.gc_refused'])).doc.events.length).toBe(3);
    const forced = await json<{ actions: Array<{ action: string }> }>(['env-gc', '--force']);
    expect(forced.doc.actions.map((a) => a.action)).toEqual(['removed', 'removed', 'removed']);
    expect(git(r, 'worktree', 'list').split('\n').length).toBe(1);
    expect((await json<{ envs: unknown[] }>(['env', 'ls'])).doc.envs).toEqual([]);
  });

  it('two env-gc at once: both succeed and each environment is removed once', async () => {
    for (let i = 0; i < 6; i++) await cli(['env', 'create', `g${i}`, '--ttl', '10ms']);
    await new Promise((r) => setTimeout(r, 50));
    const [a, b] = await Promise.all([cli(['env-gc']), cli(['env-gc'])]);
    expect([a.code, b.code]).toEqual([0, 0]);
    const ev = await json<{ events: unknown[] }>(['events', '--kind', 'env.removed']);
    expect(ev.doc.events.length).toBe(6);
  });

  it('env rm refuses unsafe worktrees without --force', async () => {
    const r = repo();
    const wt = join(t.dir, 'trees', 'w');
    await cli(['env', 'create', 'w', '--worktree', wt, '--repo', r]);
    writeFileSync(join(wt, 'x'), 'y');
    const refused = await cli(['env', 'rm', 'w']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/refusing to remove worktree .*: 1 uncommitted change\(s\); commit and push it, or pass --force/);
    expect((await cli(['env', 'rm', 'w', '--force'])).code).toBe(0);
    expect(existsSync(wt)).toBe(false);
  });
});
