import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { getIdentity } from '../../src/core/identity.js';
import { State } from '../../src/core/state.js';
import { cleanEnv, envsExpired, parseJson, runCli, useTempState, waitFor } from '../helpers.js';

/** a fresh temp folder and state dir per test; processes in procs ended by PID after it */
const t = useTempState();
const procs = t.procs;
let cfgFlags: string[];
const servers: Server[] = [];

/** A pool of its own per test, away from other tests' and the default range. */
function pool(from: number, to: number): void {
  const f = join(t.dir, 'agentctl.toml');
  writeFileSync(f, `[ports]\nrange = "${from}-${to}"\n`);
  cfgFlags = ['--state-dir', t.sd, '--config', f];
}

beforeEach(() => {
  pool(23000, 23099);
});
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

const env = () => cleanEnv({ AGENTCTL_DISABLE_THROTTLE: '1' });
const cli = (args: string[]) => runCli([...cfgFlags, ...args], { env: env(), cwd: t.dir }); // globals first: after -- they would be the child's
const json = async <T>(args: string[]) => {
  const r = await cli([...args, '--json']);
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
    const holder = spawn('python3', ['-c', 'import socket,sys,time; s=socket.socket(); s.bind(("127.0.0.1", 23002)); print("bound", flush=True); time.sleep(60)'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
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
    await envsExpired(t.sd, ['old']);
    const full = await cli(['env', 'create', 'new', '--ports', '1']);
    expect(full.code).toBe(75);
    expect(full.stderr).toMatch(
      /no available ports: need 1, port pool 23100-23102 has 3 ports: 3 leased \(3 by expired environments, 0 by environments whose owner died\), 0 in use by other programs, 0 free; run: agentctl env-gc/,
    );
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
    await envsExpired(t.sd, ['stale']);
    const r = await cli(['spawn', '--json', '--name', 'w3', '--env', 'stale', '--', 'true']);
    expect(r.code).toBe(69);
    const doc = parseJson<{ reason: string; message: string }>(r.stdout);
    expect(doc.reason).toBe('dependency');
    expect(doc.message).toMatch(/env-gc will remove \(expired /);
  });

  it('bad input: exit 2 and nothing created', async () => {
    for (const args of [
      ['env', 'create', '../x'],
      ['env', 'create', 'a/b'],
      ['env', 'create', 'x', '--ports', '-1'],
      ['env', 'create', 'x', '--ttl', 'soon'],
      ['env', 'create', 'x', '--branch', 'b'],
      ['env', 'create', 'x', '--owner-pid', '0'],
      ['env', 'bogus'],
    ]) {
      const r = await cli(args);
      expect(r.code, args.join(' ')).toBe(2);
    }
    expect(existsSync(join(t.sd, 'state.db'))).toBe(false);
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
    await envsExpired(t.sd, ['gh-1', 'gh-2', 'gh-3', 'gh-4']);

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
    expect(gc.doc.pruned_repos).toEqual([]); // no worktree of ours was missing: nothing to forget

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
    await envsExpired(
      t.sd,
      Array.from({ length: 6 }, (_, i) => `g${i}`),
    );
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

interface GcDoc {
  actions: Array<{ name: string; action: string; reason: string; problems: string[]; in_use: Array<{ pid: number; why: string }>; ports: number[] }>;
  pruned_repos: string[];
  pruned_worktrees: string[];
}

describe('env-gc never takes what someone still uses', () => {
  const mkEnv = async (r: string, name: string, ttl = '10ms', extra: string[] = []) => {
    const wt = join(t.dir, 'trees', name);
    const res = await cli(['env', 'create', name, '--ttl', ttl, '--worktree', wt, '--repo', r, ...extra]);
    expect(res.code, res.stderr).toBe(0);
    return wt;
  };
  const expire = (name: string) => envsExpired(t.sd, [name]);
  /** a real `sleep` whose working folder is `cwd`, ended by its PID in afterEach */
  const sleeper = async (cwd: string) => {
    const c = spawn('sleep', ['60'], { cwd, stdio: 'ignore' });
    procs.track(c);
    await waitFor(() => {
      try {
        return execFileSync('readlink', [`/proc/${c.pid}/cwd`], { encoding: 'utf8' }).trim() === cwd;
      } catch {
        return false;
      }
    }, 5000);
    return c;
  };

  it('a worktree a live process works in is refused, even with --force, and removed once it ends', async () => {
    const r = repo();
    const wt = await mkEnv(r, 'busy');
    mkdirSync(join(wt, 'sub'));
    const c = await sleeper(join(wt, 'sub'));
    await expire('busy');
    for (const args of [['env-gc'], ['env-gc', '--force'], ['env-gc', '--dry-run', '--force']]) {
      const gc = await json<GcDoc>(args);
      expect(gc.doc.actions[0], args.join(' ')).toMatchObject({ name: 'busy', action: 'refused', in_use: [{ pid: c.pid }] });
      expect(gc.doc.actions[0]!.problems[0]).toMatch(new RegExp(`^in use by PID ${c.pid}: its working folder .*/trees/busy/sub is inside the worktree$`));
      expect(existsSync(wt)).toBe(true);
    }
    const human = await cli(['env-gc', '--force']);
    expect(human.stdout).toMatch(/refused busy: .*in use: --force does not override this/);
    const fix = await json<{ fix: { actions: string[] } }>(['doctor', '--fix', '--check', 'envs.expired']);
    expect(fix.doc.fix.actions.join('\n')).toMatch(/env-gc: 0 environment\(s\) removed, 1 refused/);
    expect(existsSync(wt)).toBe(true);
    const rm = await cli(['env', 'rm', 'busy', '--force']);
    expect(rm.code).toBe(1);
    expect(rm.stderr).toMatch(new RegExp(`refusing to remove environment busy: in use by PID ${c.pid} .*--force does not override this`));
    const exited = once(c, 'exit');
    c.kill('SIGKILL');
    await exited;
    const gc = await json<GcDoc>(['env-gc']);
    expect(gc.doc.actions[0]).toMatchObject({ name: 'busy', action: 'removed' });
    expect(existsSync(wt)).toBe(false);
  });

  it('an environment a live registered run was given (spawn --env) is refused', async () => {
    expect((await cli(['env', 'create', 'given', '--ttl', '1s'])).code).toBe(0);
    const started = await cli(['spawn', '--json', '-d', '--name', 'user', '--env', 'given', '--', 'sleep', '60']);
    expect(started.code, started.stderr).toBe(0);
    const run = { doc: parseJson<{ pid: number }>(started.stdout) };
    procs.adopt(run.doc.pid);
    await expire('given');
    const gc = await json<GcDoc>(['env-gc', '--force']);
    expect(gc.doc.actions[0]).toMatchObject({ name: 'given', action: 'refused', in_use: [{ pid: run.doc.pid, why: expect.stringMatching(/^registered run user \(r\w+\) uses the environment$/) }] });
    expect(gc.doc.actions[0]!.ports.length).toBe(1); // its ports stay leased
  });

  it('ignored files (.env, a local database) keep an expired worktree unless --force', async () => {
    const r = repo();
    writeFileSync(join(r, '.gitignore'), '.env\n*.sqlite\n');
    git(r, 'add', '.gitignore');
    git(r, 'commit', '-q', '-m', 'ignore secrets');
    const wt = await mkEnv(r, 'secrets');
    writeFileSync(join(wt, '.env'), 'API_KEY=not-in-git\n');
    await expire('secrets');
    const gc = await json<GcDoc>(['env-gc']);
    expect(gc.doc.actions[0]).toMatchObject({ name: 'secrets', action: 'refused', problems: ['1 ignored file(s) git would delete (.env)'] });
    expect(existsSync(join(wt, '.env'))).toBe(true);
    const rm = await cli(['env', 'rm', 'secrets']);
    expect(rm.code).toBe(1);
    expect(rm.stderr).toMatch(/1 ignored file\(s\) git would delete \(\.env\)/);
    const forced = await json<GcDoc>(['env-gc', '--force']);
    expect(forced.doc.actions[0]).toMatchObject({ name: 'secrets', action: 'removed' });
    expect(existsSync(wt)).toBe(false);
  });

  it("drops the git metadata of its own missing worktree only: a hand-made worktree's survives", async () => {
    const r = repo();
    const hand = join(t.dir, 'by-hand');
    git(r, 'worktree', 'add', '-q', '--detach', hand);
    rmSync(hand, { recursive: true, force: true }); // e.g. on a drive that is not mounted now
    const ours = await mkEnv(r, 'ours');
    rmSync(ours, { recursive: true, force: true });
    await expire('ours');
    const gc = await json<GcDoc>(['env-gc']);
    expect(gc.doc.actions[0]).toMatchObject({ name: 'ours', action: 'removed' });
    expect(gc.doc.pruned_worktrees).toEqual([ours]);
    expect(gc.doc.pruned_repos).toEqual([r]);
    const list = git(r, 'worktree', 'list', '--porcelain');
    expect(list).toContain(`worktree ${hand}\n`);
    expect(list).not.toContain(`worktree ${ours}\n`);
  });
});

describe('half-created environments (env create killed half-way)', () => {
  /** The identity of a process that has ended: what a killed env create leaves in its row. */
  async function deadCreator() {
    const c = await procs.node('setInterval(() => {}, 60_000)');
    const id = getIdentity(c.pid!)!;
    await procs.end(c);
    return id;
  }

  it('are reported by doctor and collected by env-gc; one still being created is left alone', async () => {
    const r = repo();
    expect((await cli(['env', 'ls'])).code).toBe(0); // the state file, migrated
    const dead = await deadCreator();
    const alive = getIdentity(process.pid)!;
    const killedAfterGit = join(t.dir, 'trees', 'half-a');
    const killedBeforeGit = join(t.dir, 'trees', 'half-b');
    const inProgress = join(t.dir, 'trees', 'busy');
    // a killed create leaves its 'creating' row, and the worktree as far as git got: made,
    // and still carrying git's own "initializing" lock (git worktree add was interrupted)
    git(r, 'worktree', 'add', '-q', '-b', 'half-a', killedAfterGit);
    git(r, 'worktree', 'lock', '--reason', 'initializing', killedAfterGit);
    git(r, 'worktree', 'add', '-q', '--detach', inProgress);
    const s = State.open(t.sd);
    const now = Date.now();
    const insert = s.db.prepare(
      "INSERT INTO envs (name, created_at, expires_at, worktree, repo, branch, status, creator_pid, creator_start_time, creator_boot_id) VALUES (?, ?, ?, ?, ?, ?, 'creating', ?, ?, ?)",
    );
    insert.run('half-a', now, now + 86_400_000, killedAfterGit, r, 'half-a', dead.pid, dead.startTime, dead.bootId);
    insert.run('half-b', now, now + 86_400_000, killedBeforeGit, r, null, dead.pid, dead.startTime, dead.bootId);
    insert.run('busy', now, now + 86_400_000, inProgress, r, null, alive.pid, alive.startTime, alive.bootId);
    s.db.prepare("INSERT INTO port_leases (port, owner_kind, owner, leased_at) VALUES (23050, 'env', 'half-b', ?)").run(now);
    s.close();

    const doctor = await json<{ checks: Array<{ id: string; status: string; value: string; remedy: string }> }>(['doctor', '--check', 'envs.half_created']);
    const check = doctor.doc.checks.find((c) => c.id === 'envs.half_created')!;
    expect(check).toMatchObject({ status: 'warn', remedy: 'agentctl env-gc' });
    expect(check.value).toMatch(new RegExp(`^2: half-a \\(env create PID ${dead.pid} ended; worktree .* exists\\), half-b \\(.*was not made\\)$`));
    const ls = await json<{ envs: Array<{ name: string; status: string }> }>(['env', 'ls']);
    expect(Object.fromEntries(ls.doc.envs.map((e) => [e.name, e.status]))).toEqual({ 'half-a': 'half-created', 'half-b': 'half-created', busy: 'creating' });
    const again = await cli(['env', 'create', 'half-a']);
    expect(again.stderr).toMatch(/was left half-created .*; run: agentctl env-gc/);

    const gc = await json<GcDoc>(['env-gc']);
    expect(gc.doc.actions.map((a) => [a.name, a.action])).toEqual([
      ['half-a', 'removed'],
      ['half-b', 'removed'],
    ]);
    expect(gc.doc.actions[0]!.reason).toBe(`half-created: env create (PID ${dead.pid}) ended before it finished`);
    expect(gc.doc.actions[1]!.ports).toEqual([23050]);
    expect(existsSync(killedAfterGit)).toBe(false);
    expect(existsSync(inProgress)).toBe(true);
    expect(git(r, 'worktree', 'list', '--porcelain')).not.toContain(killedAfterGit);
    expect((await json<{ envs: Array<{ name: string }> }>(['env', 'ls'])).doc.envs.map((e) => e.name)).toEqual(['busy']);
    const after = await json<{ checks: Array<{ id: string; status: string }> }>(['doctor', '--check', 'envs.half_created']);
    expect(after.doc.checks[0]!.status).toBe('ok');
  });

  it('env create records its intent first and marks the environment ready when done', async () => {
    const r = repo();
    const res = await json<{ env: { status: string } }>(['env', 'create', 'fine', '--worktree', join(t.dir, 'trees', 'fine'), '--repo', r]);
    expect(res.doc.env.status).toBe('ready');
    const s = State.open(t.sd);
    const row = s.db.prepare("SELECT status, creator_pid FROM envs WHERE name = 'fine'").get();
    s.close();
    expect(row).toEqual({ status: 'ready', creator_pid: null });
  });
});
