/**
 * dedupe-workers' I/O shell: gather the runs and the process table, group the workers, ask
 * core/dedupe/plan.ts which stay, end the rest (each identity checked right before its signal),
 * record it. Shared by `agentctl dedupe-workers` and `doctor --fix-processes`.
 */
import { endTree } from '../kill.js';
import { endRun } from '../runs/end.js';
import { userFilter } from '../users.js';
import type { Ctx } from '../ctx.js';
import { cachedRealPath, procCwd } from '../cwd.js';
import { bootId, isSameProcess } from '../identity.js';
import { listDetailed, type ProcDetail, processUid, programName } from '../proc.js';
import { reconcileAll } from '../runs/reconcile.js';
import { liveRuns } from '../runs/registry.js';
import { redactText } from '../text.js';
import { groupInstances, type KeepPolicy, mayRunScript } from '../workers.js';
import { dedupeEvents, type DedupeGroup, type DedupeResult, type InstancePlan, planInstanceDuplicates, planRunDuplicates, processInScope, runsInScope, type Scope } from './plan.js';

/** What to deduplicate and how; what is left out takes its default. */
export interface DedupeOptions {
  /** @default 'highest-version' */
  readonly keep?: KeepPolicy | undefined;
  /** only command lines it matches; without it, scripts an interpreter runs */
  readonly match?: RegExp | undefined;
  /** @default reap.grace from the config */
  readonly graceMs?: number | undefined;
  /** @default false */
  readonly dryRun?: boolean | undefined;
  /** one worker per name whatever its folder. @default false */
  readonly acrossFolders?: boolean | undefined;
  /** which processes are ours to end. @default our own user's (userFilter(false)) */
  readonly mine?: ((p: Pick<ProcDetail, 'uid' | 'pid'>) => boolean) | undefined;
}

/** Keep one instance per worker identity and one run per name; end the rest. */
export async function dedupe(ctx: Ctx, o: DedupeOptions = {}): Promise<DedupeResult> {
  const keep = o.keep ?? 'highest-version';
  const dry = Boolean(o.dryRun);
  const acrossFolders = Boolean(o.acrossFolders);
  const mine = o.mine ?? userFilter(false);
  const loaded = ctx.config();
  const grace = o.graceMs ?? loaded.config.reap.graceMs;
  const scope: Scope = { ignore: loaded.config.dedupe.ignore.map((r) => new RegExp(r)), match: o.match };
  const state = ctx.state();
  if (!dry) reconcileAll(state, loaded, ctx.now(), 'dedupe-workers');

  // registered runs sharing a name: keep the newest
  const live = runsInScope(
    state.guard(() => liveRuns(state)).map((run) => ({ run, ours: run.pid !== null && mine({ pid: run.pid, uid: processUid(run.pid) }) })),
    scope,
  );
  const runs: Array<{ name: string; kept: string; ended: string[] }> = [];
  for (const g of planRunDuplicates(live)) {
    if (!dry) for (const r of g.ended) await endRun(state, loaded, r, grace, { timedOut: false, why: `duplicate of ${g.kept.id} (dedupe-workers)`, command: 'dedupe-workers' });
    runs.push({ name: g.name, kept: g.kept.id, ended: g.ended.map((r) => r.id) });
  }

  // unregistered processes grouped by worker identity
  // without --match only script runners can be in scope: read just their command lines
  const procs = listDetailed('/proc', { argv: o.match ? true : mayRunScript }).filter((p) => p.state !== 'Z' && p.argv.length > 0);
  const byPid = new Map(procs.map((p) => [p.pid, p]));
  const runPgids = new Set(live.map((r) => r.pgid));
  const groups = groupInstances(
    procs.map((p) => ({ pid: p.pid, ppid: p.ppid, start: p.startTicks, argv: p.argv })),
    (p, id) => processInScope(byPid.get(p.pid)!, id, { mine, runPgids, scope, isAgentctl: programName(p.argv) === 'agentctl' }),
    { acrossFolders, cwdOf: (pid) => procCwd(pid), realpath: cachedRealPath() },
  );
  const commandOf = (pid: number) => redactText(byPid.get(pid)?.cmdline ?? '');
  const out: DedupeGroup[] = [];
  for (const g of planInstanceDuplicates(groups, keep, acrossFolders)) out.push(await endDuplicates(g, commandOf, grace, dry));
  if (!dry && (out.length || runs.length)) state.write(() => dedupeEvents(out, runs, keep).forEach((e) => state.event(e)));
  return { dry_run: dry, across_folders: acrossFolders, keep_policy: keep, groups: out, runs };
}

/** End one identity's duplicates: under --dry-run only say so; a PID gone or reused since the table was read is left alone. */
async function endDuplicates(g: InstancePlan, commandOf: (pid: number) => string, grace: number, dry: boolean): Promise<DedupeGroup> {
  const dups: Array<DedupeGroup['duplicates'][number]> = [];
  for (const inst of g.duplicates) {
    const base = { pid: inst.pid, command: commandOf(inst.pid), version: inst.id.version, pids: inst.pids };
    if (dry) {
      dups.push({ ...base, action: 'would_end' });
      continue;
    }
    const id = { pid: inst.pid, startTime: String(inst.start), bootId: bootId() };
    if (!isSameProcess(id)) continue; // gone, or the PID was reused
    const ended = await endTree(id, { graceMs: grace });
    dups.push({ ...base, action: ended.survivors.length ? 'failed' : 'ended', ended });
  }
  return { identity: redactText(g.identity), folder: g.folder, keep: { pid: g.keep.pid, command: commandOf(g.keep.pid), version: g.keep.id.version }, duplicates: dups };
}
