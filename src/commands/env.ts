/** agentctl env create|ls|rm: named environments with leased ports and optional git worktrees. */
import { resolve } from 'node:path';
import type { Ctx, Outcome, Ui } from '../core/ctx.js';
import { EXIT, ExitError, UsageError } from '../core/errors.js';
import {
  addWorktree,
  allEnvs,
  badWorktreePath,
  dropEnv,
  envLeaseState,
  type EnvRow,
  envUsers,
  getEnv,
  halfCreated,
  ownerAlive,
  removeWorktree,
  repoTop,
  uniqueName,
  worktreeProblems,
} from '../core/envs.js';
import { getIdentity } from '../core/identity.js';
import { checkName } from '../core/names.js';
import { leasePorts, leasesOf, leaseVerified, listeningPorts } from '../core/ports/leases.js';
import { exhaustedMessage } from '../core/ports/pool.js';
import type { LoadedConfig } from '../core/config/types.js';
import type { State } from '../core/state.js';
import { printable } from '../core/text.js';
import { formatDuration, parseDuration, parseIntInRange } from '../core/units.js';
import type { CommandDecl, OptionValues } from '../core/declaration.js';

export const declaration: CommandDecl = {
  name: 'env',
  description: 'named environments: leased ports, an optional git worktree, a TTL (create, ls, rm)',
  args: [
    { name: '[action]', help: 'create, ls or rm', choices: ['create', 'ls', 'rm'], default: 'ls' },
    { name: '[name]', help: 'environment name' },
  ],
  options: [
    { flags: '--ports <n>', help: 'ports to lease from the pool (create)', default: '1' },
    { flags: '--ttl <duration>', help: 'time to live (create)', configKey: 'env.ttl' },
    { flags: '--worktree <path>', help: 'create a git worktree at path (create)', path: 'dir' },
    { flags: '--repo <dir>', help: 'repository for --worktree (default: the current folder)', path: 'dir' },
    { flags: '--branch <branch>', help: 'branch for --worktree (created when missing; default: detached HEAD)' },
    { flags: '--owner-pid <pid>', help: 'the environment ends when this process does (create)' },
    { flags: '--unique', help: 'add a suffix (-2, -3...) when the name is taken (create)' },
    { flags: '--force', help: 'rm: remove a worktree with uncommitted, unpushed or locked work' },
    { flags: '--dry-run', help: 'rm: say what would be removed, change nothing' },
  ],
  examples: [
    'agentctl env create reading-ui-improvement --ports 2 --ttl 24h',
    'agentctl env create gh-123 --unique --worktree trees/gh-123 --branch gh-123',
    'agentctl env ls --json',
    'agentctl env rm gh-123',
  ],
};

export interface EnvView {
  readonly name: string;
  readonly ports: readonly number[];
  readonly created_at: string;
  readonly expires_at: string;
  readonly expired: boolean;
  readonly owner_pid: number | null;
  readonly owner_alive: boolean;
  readonly worktree: string | null;
  readonly repo: string | null;
  readonly branch: string | null;
  /** `ready`; `creating` while env create runs; `half-created` when it ended before finishing (env-gc collects it) */
  readonly status: 'ready' | 'creating' | 'half-created';
}

export type EnvResult =
  | { readonly action: 'create'; readonly env: EnvView }
  | { readonly action: 'ls'; readonly envs: readonly EnvView[] }
  | { readonly action: 'rm'; readonly removed: string; readonly ports: readonly number[]; readonly worktree: string | null; readonly dry_run?: boolean };

export function view(state: State, e: EnvRow, now: number): EnvView {
  return {
    name: e.name,
    ports: leasesOf(state, { kind: 'env', id: e.name }),
    created_at: new Date(e.created_at).toISOString(),
    expires_at: new Date(e.expires_at).toISOString(),
    expired: now >= e.expires_at,
    owner_pid: e.owner_pid,
    owner_alive: ownerAlive(e),
    worktree: e.worktree,
    repo: e.repo,
    branch: e.branch,
    status: e.status !== 'creating' ? 'ready' : halfCreated(e) ? 'half-created' : 'creating',
  };
}

interface CreateRequest {
  readonly requested: string;
  readonly count: number;
  readonly ttlMs: number;
  readonly owner: ReturnType<typeof getIdentity>;
  readonly worktree?: string | undefined;
  readonly repo?: string | undefined;
  readonly branch?: string | undefined;
}

/** env create's arguments, checked: exit 2 naming the flag for anything wrong. */
function createRequest(opts: OptionValues, args: readonly string[], ctx: Ctx, loaded: LoadedConfig): CreateRequest {
  const requested = checkName(args[1] ?? '', 'env create NAME');
  const count = parseIntInRange(String(opts.ports), '--ports', 0, 100);
  const ttlMs = opts.ttl !== undefined ? parseDuration(String(opts.ttl), '--ttl') : loaded.config.env.ttlMs;
  if (ttlMs <= 0) throw new UsageError('--ttl: expected a duration above 0');
  let owner: ReturnType<typeof getIdentity>;
  if (opts.ownerPid !== undefined) {
    const pid = parseIntInRange(String(opts.ownerPid), '--owner-pid', 1, 4_194_304);
    owner = getIdentity(pid);
    if (!owner) throw new UsageError(`--owner-pid: no process ${pid} is running`);
  }
  const branch = opts.branch !== undefined ? String(opts.branch) : undefined;
  if (branch !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._/-]{0,200}$/.test(branch)) throw new UsageError(`--branch: invalid branch name ${JSON.stringify(branch)}`);
  if (opts.worktree === undefined) {
    if (opts.repo !== undefined || branch !== undefined) throw new UsageError('--repo and --branch go with --worktree');
    return { requested, count, ttlMs, owner };
  }
  const worktree = resolve(ctx.cwd, String(opts.worktree));
  const from = resolve(ctx.cwd, String(opts.repo ?? '.'));
  const repo = repoTop(from);
  if (!repo) throw new UsageError(`--repo: ${from} is not inside a git repository`);
  return { requested, count, ttlMs, owner, worktree, repo, branch };
}

/** The row that says 'creating' (with the creator's identity) until the worktree and ports are in place. */
function insertCreating(state: State, name: string, now: number, r: CreateRequest, creator: ReturnType<typeof getIdentity>): void {
  state.db
    .prepare(
      "INSERT INTO envs (name, created_at, expires_at, owner_pid, owner_start_time, owner_boot_id, worktree, repo, branch, status, creator_pid, creator_start_time, creator_boot_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'creating', ?, ?, ?)",
    )
    .run(
      name,
      now,
      now + r.ttlMs,
      r.owner?.pid ?? null,
      r.owner?.startTime ?? null,
      r.owner?.bootId ?? null,
      r.worktree ?? null,
      r.repo ?? null,
      r.branch ?? null,
      creator?.pid ?? null,
      creator?.startTime ?? null,
      creator?.bootId ?? null,
    );
}

async function create(opts: OptionValues, args: readonly string[], ctx: Ctx): Promise<Outcome<EnvResult>> {
  const loaded = ctx.config();
  const req = createRequest(opts, args, ctx, loaded);
  const { requested, count, ttlMs, worktree, repo, branch } = req;
  const state = ctx.state();
  const range = loaded.config.ports;
  const now = ctx.now();
  const listening = listeningPorts();
  // intent first: the row says 'creating' (with this process's identity) until the worktree
  // and ports are in place, so a create killed half-way is found by doctor and collected by env-gc
  const creator = getIdentity(process.pid);
  let name = requested;
  const first = (skip: ReadonlySet<number>) =>
    state.write(() => {
      if (getEnv(state, requested)) {
        if (!opts.unique) {
          const e = getEnv(state, requested)!;
          if (halfCreated(e))
            throw new ExitError(EXIT.failed, `environment '${requested}' was left half-created by an env create (PID ${e.creator_pid}) that ended before finishing; run: agentctl env-gc`, 'exists');
          throw new ExitError(
            EXIT.failed,
            `environment '${requested}' already exists (created ${new Date(e.created_at).toISOString()}, expires ${new Date(e.expires_at).toISOString()}); pass --unique for a fresh name, or run: agentctl env rm ${requested}`,
            'exists',
          );
        }
        name = uniqueName(state, requested);
      }
      const ports = leasePorts(state, range, count, { kind: 'env', id: name }, listening, now, skip);
      if (!ports) throw new ExitError(EXIT.tryLater, exhaustedMessage(state, range, count, envLeaseState(state, now)), 'ports_exhausted');
      insertCreating(state, name, now, req, creator);
      return ports;
    });
  const ports = await leaseVerified(state, range, { kind: 'env', id: name }, count, (skip) => first(skip));
  if (!ports) {
    const message = state.write(() => {
      const e = getEnv(state, name);
      if (e) dropEnv(state, e);
      return exhaustedMessage(state, range, count, envLeaseState(state, now));
    });
    throw new ExitError(EXIT.tryLater, message, 'ports_exhausted');
  }
  if (worktree && repo) {
    try {
      addWorktree(repo, worktree, branch);
    } catch (err) {
      state.write(() => {
        const e = getEnv(state, name);
        if (e) dropEnv(state, e);
      });
      throw err;
    }
  }
  state.write(() => {
    state.db.prepare("UPDATE envs SET status = 'ready', creator_pid = NULL, creator_start_time = NULL, creator_boot_id = NULL WHERE name = ? AND created_at = ?").run(name, now);
    state.event({
      command: 'env',
      kind: 'env.created',
      subject: name,
      reason: `ports ${ports.join(', ') || 'none'}; expires in ${formatDuration(ttlMs)}${worktree ? `; worktree ${worktree}` : ''}${name !== requested ? ` (${requested} was taken)` : ''}`,
      data: { ports, ttl_ms: ttlMs, worktree: worktree ?? null },
    });
  });
  return { data: { action: 'create', env: view(state, getEnv(state, name)!, ctx.now()) } };
}

async function rm(opts: OptionValues, args: readonly string[], ctx: Ctx): Promise<Outcome<EnvResult>> {
  const name = checkName(args[1] ?? '', 'env rm NAME');
  const state = ctx.state();
  const e = state.guard(() => getEnv(state, name));
  if (!e) throw new ExitError(EXIT.failed, `no environment named '${name}'; see agentctl env ls`, 'not_found');
  const force = Boolean(opts.force);
  // a live process working in it: never, --force or not (it would lose its working folder)
  const users = state.guard(() => envUsers(state, e));
  if (users.length) {
    throw new ExitError(
      EXIT.failed,
      `refusing to remove environment ${name}: in use by ${users.map((u) => `PID ${u.pid} (${u.why})`).join(', ')}; stop it first (--force does not override this)`,
      'env_in_use',
      { in_use: users },
    );
  }
  const badPath = e.worktree ? badWorktreePath(e.worktree) : undefined;
  if (badPath) throw new ExitError(EXIT.failed, `refusing to remove environment ${name}: ${badPath}`, 'worktree_unsafe');
  if (e.worktree && e.repo) {
    const problems = worktreeProblems(e.repo, e.worktree, { excuseLock: halfCreated(e) ? 'initializing' : undefined });
    if (problems.length && !force)
      throw new ExitError(EXIT.failed, `refusing to remove worktree ${e.worktree}: ${problems.join('; ')}; commit and push it, or pass --force`, 'worktree_unsafe', { problems });
  }
  if (opts.dryRun) {
    return { data: { action: 'rm', removed: name, ports: state.guard(() => leasesOf(state, { kind: 'env', id: name })), worktree: e.worktree, dry_run: true } };
  }
  if (e.worktree && e.repo) {
    const r = removeWorktree(e.repo, e.worktree, force, { unlock: halfCreated(e) ? 'initializing' : undefined });
    if (!r.ok) throw new ExitError(EXIT.failed, `git worktree remove ${e.worktree} failed: ${r.message}`, 'git_failed');
  }
  const ports = state.write(() => {
    const p = dropEnv(state, e);
    state.event({
      command: 'env',
      kind: 'env.removed',
      subject: name,
      reason: `removed by hand${force ? ' (--force)' : ''}; released ports ${p.join(', ') || 'none'}`,
      data: { ports: p, worktree: e.worktree },
    });
    return p;
  });
  return { data: { action: 'rm', removed: name, ports, worktree: e.worktree } };
}

export async function run(opts: OptionValues, args: readonly string[], ctx: Ctx): Promise<Outcome<EnvResult>> {
  const action = args[0];
  if (action === 'create') return create(opts, args, ctx);
  if (action === 'rm') return rm(opts, args, ctx);
  if (action === 'ls') {
    const state = ctx.state();
    const now = ctx.now();
    return { data: { action: 'ls', envs: state.guard(() => allEnvs(state).map((e) => view(state, e, now))) }, alwaysPrint: true };
  }
  throw new UsageError(`env: unknown action ${JSON.stringify(action)}; expected create, ls or rm`);
}

function line(e: EnvView, ui: Ui): string[] {
  const left = Date.parse(e.expires_at) - Date.now();
  return [
    e.name,
    e.ports.join(',') || '-',
    e.expired ? ui.c.red('expired') : formatDuration(left),
    e.owner_pid === null ? '-' : `${e.owner_pid}${e.owner_alive ? '' : ui.c.red(' (gone)')}`,
    e.worktree ?? '-',
  ];
}

export function render(r: EnvResult, ui: Ui): string {
  switch (r.action) {
    case 'create':
      return `created ${ui.c.bold(r.env.name)}: ports ${r.env.ports.join(', ') || 'none'}, expires ${r.env.expires_at}${r.env.worktree ? `\nworktree: ${printable(r.env.worktree)}` : ''}`;
    case 'rm':
      if (r.dry_run) return `would remove ${printable(r.removed)}: ports ${r.ports.join(', ') || 'none'}${r.worktree ? `, worktree ${printable(r.worktree)}` : ''}`;
      return `removed ${printable(r.removed)}: released ports ${r.ports.join(', ') || 'none'}${r.worktree ? `, worktree ${printable(r.worktree)}` : ''}`;
    case 'ls':
      return r.envs.length
        ? ui.table(
            ['name', 'ports', 'expires in', 'owner', 'worktree'],
            r.envs.map((e) => line(e, ui)),
            { name: 'cut-last', worktree: 'cut' },
          )
        : 'no environments';
  }
}
