/**
 * Environments: a name, leased ports, an optional git worktree, a TTL and an optional owner
 * process. Removing one that holds work nobody pushed, or ignored files (.env, local
 * databases), is refused unless forced; removing a worktree a live process works in is
 * refused always. git metadata is only ever dropped for worktrees agentctl created.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, normalize, resolve } from 'node:path';
import { isInside, processesInside, realPath } from './cwd.js';
import { EXIT, ExitError } from './errors.js';
import { getIdentity, isSameProcess } from './identity.js';
import { leasesOf, releasePorts } from './ports/leases.js';
import type { EnvLeaseState } from './ports/pool.js';
import { readProcFile } from './proc.js';
import { liveRuns, runAlive } from './runs/registry.js';
import type { State } from './state.js';

export interface EnvRow {
  readonly name: string;
  readonly created_at: number;
  readonly expires_at: number;
  readonly owner_pid: number | null;
  readonly owner_start_time: string | null;
  readonly owner_boot_id: string | null;
  readonly worktree: string | null;
  readonly repo: string | null;
  readonly branch: string | null;
  /** 'creating' until env create finished (worktree and ports in place), then 'ready' */
  readonly status: string;
  /** the env create process, while status is 'creating' */
  readonly creator_pid: number | null;
  readonly creator_start_time: string | null;
  readonly creator_boot_id: string | null;
}

export function getEnv(state: State, name: string): EnvRow | undefined {
  return state.db.prepare('SELECT * FROM envs WHERE name = ?').get(name) as EnvRow | undefined;
}

export function allEnvs(state: State): EnvRow[] {
  return state.db.prepare('SELECT * FROM envs ORDER BY created_at').all() as EnvRow[];
}

/** Does the env's owner process still run? True when it has no owner. */
export function ownerAlive(e: EnvRow): boolean {
  if (e.owner_pid === null || e.owner_start_time === null || e.owner_boot_id === null) return true;
  return isSameProcess({ pid: e.owner_pid, startTime: e.owner_start_time, bootId: e.owner_boot_id });
}

/**
 * Was this env left half-created: `env create` recorded its intent, then ended (killed,
 * crashed) before the worktree and ports were in place? False while the create still runs.
 */
export function halfCreated(e: EnvRow): boolean {
  if (e.status !== 'creating') return false;
  if (e.creator_pid === null || e.creator_start_time === null || e.creator_boot_id === null) return true;
  return !isSameProcess({ pid: e.creator_pid, startTime: e.creator_start_time, bootId: e.creator_boot_id });
}

/** Which of an env's processes still run: the facts dueReason needs, looked up (envLiveness). */
export interface EnvLiveness {
  /** its env create ended before finishing (see halfCreated) */
  readonly halfCreated: boolean;
  /** its owner still runs, or it has none (see ownerAlive) */
  readonly ownerAlive: boolean;
}

/** Look up whether an env's creator and owner still run. */
export function envLiveness(e: EnvRow): EnvLiveness {
  return { halfCreated: halfCreated(e), ownerAlive: ownerAlive(e) };
}

/** Why an env should go, from facts (pure): half-created, past its TTL, or its owner died. Undefined when it should stay. */
export function dueReason(e: EnvRow, now: number, live: EnvLiveness): string | undefined {
  if (e.status === 'creating') return live.halfCreated ? `half-created: env create (PID ${e.creator_pid}) ended before it finished` : undefined;
  if (now >= e.expires_at) return `expired ${new Date(e.expires_at).toISOString()}`;
  if (!live.ownerAlive) return `owner PID ${e.owner_pid} is gone`;
  return undefined;
}

/** Why an env should go (see dueReason), its creator and owner looked up now. */
export function gcReason(e: EnvRow, now: number): string | undefined {
  return dueReason(e, now, envLiveness(e));
}

/** The first free name: NAME, then NAME-2, NAME-3 ... */
export function uniqueName(state: State, name: string): string {
  if (!getEnv(state, name)) return name;
  for (let i = 2; i < 10_000; i++) {
    const n = `${name.slice(0, 58)}-${i}`;
    if (!getEnv(state, n)) return n;
  }
  throw new ExitError(EXIT.failed, `env create: no free name like ${name}-N`, 'exists');
}

export function git(args: readonly string[], cwd: string): { code: number; out: string; err: string } {
  const r = spawnSync('git', args, { cwd, encoding: 'utf8', env: { ...process.env, LC_ALL: 'C', GIT_TERMINAL_PROMPT: '0' } });
  if (r.error) throw new ExitError(EXIT.failed, `git is not available: ${(r.error as NodeJS.ErrnoException).code ?? r.error.message}`, 'git_missing');
  return { code: r.status ?? 1, out: r.stdout.trim(), err: r.stderr.trim() };
}

/** The main repository a path belongs to (for a worktree: its main checkout). */
export function repoTop(dir: string): string | undefined {
  const r = git(['rev-parse', '--path-format=absolute', '--git-common-dir'], dir);
  if (r.code !== 0) return undefined;
  return dirname(r.out);
}

export interface Worktree {
  readonly path: string;
  readonly branch: string | null;
  readonly locked: string | null;
}

export function listWorktrees(repo: string): Worktree[] {
  const r = git(['worktree', 'list', '--porcelain'], repo);
  if (r.code !== 0) return [];
  const out: Worktree[] = [];
  for (const block of r.out.split('\n\n')) {
    const lines = block.split('\n');
    const path = lines.find((l) => l.startsWith('worktree '))?.slice(9);
    if (!path) continue;
    const branch = lines.find((l) => l.startsWith('branch '))?.slice(7) ?? null;
    const lockLine = lines.find((l) => l === 'locked' || l.startsWith('locked '));
    out.push({ path, branch, locked: lockLine === undefined ? null : lockLine.slice(7) || 'locked' });
  }
  return out;
}

/**
 * What removing this worktree would lose: uncommitted changes, ignored files (`.env`, local
 * databases: `git worktree remove` deletes them without asking), commits found on no other
 * branch or remote, or a `git worktree lock`. Empty when it is safe to remove.
 * `excuseLock` names a lock reason that is not a problem (git's own `initializing` lock, left
 * by a `git worktree add` that a killed env create interrupted).
 */
export function worktreeProblems(repo: string, path: string, opts: { excuseLock?: string } = {}): string[] {
  if (!existsSync(path)) return [];
  const problems: string[] = [];
  const wt = listWorktrees(repo).find((w) => resolve(w.path) === resolve(path));
  if (wt?.locked && wt.locked !== opts.excuseLock) problems.push(`locked (${wt.locked})`);
  const status = git(['status', '--porcelain', '--ignored'], path);
  if (status.code === 0 && status.out !== '') {
    const lines = status.out.split('\n');
    const ignored = lines.filter((l) => l.startsWith('!! ')).map((l) => l.slice(3));
    const changed = lines.length - ignored.length;
    if (changed > 0) problems.push(`${changed} uncommitted change(s)`);
    if (ignored.length) problems.push(`${ignored.length} ignored file(s) git would delete (${ignored.slice(0, 3).join(', ')}${ignored.length > 3 ? ', ...' : ''})`);
  }
  const head = git(['rev-parse', '--verify', '-q', 'HEAD'], path);
  if (head.code === 0) {
    const ownRef = wt?.branch ?? null;
    const refs = git(['for-each-ref', '--format=%(refname)', 'refs/heads', 'refs/remotes'], repo)
      .out.split('\n')
      .filter((r) => r && r !== ownRef);
    const unique = git(['rev-list', '--count', 'HEAD', ...(refs.length ? ['--not', ...refs] : [])], path);
    const n = Number(unique.out);
    if (unique.code === 0 && n > 0) problems.push(`${n} commit(s) on no other branch or remote (unpushed)`);
  }
  return problems;
}

export function addWorktree(repo: string, path: string, branch: string | undefined): void {
  const exists = branch !== undefined && git(['rev-parse', '--verify', '-q', `refs/heads/${branch}`], repo).code === 0;
  const args = branch === undefined ? ['worktree', 'add', '--detach', path] : exists ? ['worktree', 'add', path, branch] : ['worktree', 'add', '-b', branch, path];
  const r = git(args, repo);
  if (r.code !== 0) throw new ExitError(EXIT.failed, `--worktree: git worktree add failed: ${r.err.split('\n').pop() ?? r.err}`, 'git_failed');
}

/**
 * Remove one worktree agentctl created, and its git metadata. A folder already gone whose
 * metadata git still lists is forgotten by `git worktree remove` too (`pruned`): this is the
 * only pruning agentctl does. It never runs `git worktree prune`, which would also drop the
 * metadata of every missing worktree someone made by hand (on a drive not mounted now, say).
 * `unlock` first lifts a lock with exactly that reason (git's `initializing`, see worktreeProblems).
 */
export function removeWorktree(repo: string, path: string, force: boolean, opts: { unlock?: string } = {}): { ok: boolean; message: string; pruned: boolean } {
  const wt = listWorktrees(repo).find((w) => resolve(w.path) === resolve(path));
  const present = existsSync(path);
  if (!wt && !present) return { ok: true, message: 'already gone', pruned: false };
  if (wt?.locked && opts.unlock !== undefined && wt.locked === opts.unlock) git(['worktree', 'unlock', path], repo);
  const r = git(['worktree', 'remove', ...(force ? ['--force', '--force'] : []), path], repo);
  if (r.code !== 0) return { ok: false, message: r.err.split('\n').pop() ?? r.err, pruned: false };
  return { ok: true, message: present ? 'removed' : 'metadata of a missing folder removed', pruned: !present };
}

/** Who works in an environment: why its worktree (and ports) must stay, whatever --force says. */
export interface EnvUser {
  readonly pid: number;
  readonly why: string;
}

/**
 * Live processes that use this environment: any process we can read whose working folder is
 * inside its worktree (readlink /proc/PID/cwd), and live registered runs that run inside it
 * or were given it (`spawn --env`, seen as AGENTCTL_ENV in the run's environment). Other
 * users' processes are invisible to a non-root caller.
 */
export function envUsers(state: State, e: EnvRow, self: ReadonlySet<number> = new Set([process.pid])): EnvUser[] {
  const users = new Map<number, string>();
  const tree = e.worktree !== null && isAbsolute(e.worktree) ? normalize(e.worktree) : undefined;
  if (tree !== undefined) {
    for (const p of processesInside(tree, { exclude: self })) users.set(p.pid, `its working folder ${p.cwd} is inside the worktree`);
  }
  const trees = tree === undefined ? [] : [...new Set([tree, realPath(tree) ?? tree])];
  for (const r of liveRuns(state)) {
    if (r.pid === null || self.has(r.pid) || !runAlive(r, getIdentity)) continue;
    const cwd = typeof r.cwd === 'string' && isAbsolute(r.cwd) ? normalize(r.cwd) : undefined;
    if (cwd !== undefined && trees.some((t) => isInside(cwd, t))) users.set(r.pid, `registered run ${r.name} (${r.id}) runs inside the worktree`);
    else if ((readProcFile(`/proc/${r.pid}/environ`) ?? '').split('\0').includes(`AGENTCTL_ENV=${e.name}`)) users.set(r.pid, `registered run ${r.name} (${r.id}) uses the environment`);
  }
  return [...users].map(([pid, why]) => ({ pid, why })).sort((a, b) => a.pid - b.pid);
}

/**
 * A worktree path read back from the state is checked like user input before git is asked
 * to delete it: absolute and normalised. Undefined when fine, else why not.
 */
export function badWorktreePath(path: string): string | undefined {
  if (!isAbsolute(path) || normalize(path) !== path || path.includes('\0')) return `the worktree path on record (${JSON.stringify(path)}) is not an absolute, normalised path`;
  return undefined;
}

/**
 * Folders beside known worktrees that look like worktrees (a `.git` file) but that git no
 * longer knows: left behind by an rm -rf of the metadata, or a crashed cleanup.
 */
export function orphanWorktrees(repo: string, parents: Iterable<string>): string[] {
  const known = new Set(listWorktrees(repo).map((w) => resolve(w.path)));
  const out: string[] = [];
  for (const parent of new Set(parents)) {
    let names: string[];
    try {
      names = readdirSync(parent);
    } catch {
      continue;
    }
    for (const n of names) {
      const dir = join(parent, n);
      const dotgit = join(dir, '.git');
      try {
        if (!statSync(dotgit).isFile()) continue;
      } catch {
        continue;
      }
      if (known.has(resolve(dir))) continue;
      const target = /^gitdir: (.+)$/m.exec(readFileSync(dotgit, 'utf8'))?.[1];
      const abs = target ? (isAbsolute(target) ? target : resolve(dir, target)) : undefined;
      if (!abs || !existsSync(abs) || abs.startsWith(join(repo, '.git'))) out.push(dir);
    }
  }
  return out.sort();
}

/** Remove an env's row and leases (call inside a write transaction). */
export function dropEnv(state: State, e: EnvRow): number[] {
  const ports = leasesOf(state, { kind: 'env', id: e.name });
  releasePorts(state, { kind: 'env', id: e.name });
  state.db.prepare('DELETE FROM envs WHERE name = ? AND created_at = ?').run(e.name, e.created_at);
  return ports;
}

export const worktreeParent = (path: string) => dirname(resolve(path));

/** How the pool should see each environment's leases now: expired (or no such environment), owner dead, or ok. */
export function envLeaseState(state: State, now: number): EnvLeaseState {
  const envs = new Map(allEnvs(state).map((e) => [e.name, e]));
  return (name) => {
    const e = envs.get(name);
    if (!e || now >= e.expires_at) return 'expired';
    return ownerAlive(e) ? 'ok' : 'owner_dead';
  };
}
