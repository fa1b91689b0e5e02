/**
 * dedupe-workers' rules, pure: which registered runs and which worker instances are in scope,
 * which one of each identity stays and which go, what to record. Facts come in (run rows with
 * their owners, the process table, the grouping core/workers.ts made); keep/end decisions go
 * out. core/dedupe/apply.ts gathers the facts, ends the duplicates (checking each identity
 * right before its signal) and records what it did.
 */
import type { Ended } from '../kill.js';
import type { ProcDetail } from '../proc.js';
import type { RunRow } from '../runs/registry.js';
import type { EventInput } from '../state.js';
import { type Instance, type KeepPolicy, pickKeeper, type WorkerId } from '../workers.js';

export interface DedupeGroup {
  /** `FOLDER: KEY` (e.g. `/srv/w: auto_confirm_worker.py`); the key alone with --across-folders or for programs on PATH */
  readonly identity: string;
  /** the real folder the group's scripts run from; null with --across-folders or for programs on PATH */
  readonly folder: string | null;
  readonly keep: { readonly pid: number; readonly command: string; readonly version: number };
  readonly duplicates: ReadonlyArray<{ pid: number; command: string; version: number; pids: readonly number[]; action: 'ended' | 'would_end' | 'failed'; ended?: Ended }>;
}

export interface DedupeResult {
  readonly dry_run: boolean;
  readonly across_folders: boolean;
  readonly keep_policy: KeepPolicy;
  readonly groups: readonly DedupeGroup[];
  readonly runs: ReadonlyArray<{ name: string; kept: string; ended: readonly string[] }>;
}

export const KEEP_POLICIES: readonly KeepPolicy[] = ['highest-version', 'newest', 'oldest'];

/** What is in scope: `--match` narrows it, `dedupe.ignore` takes out. */
export interface Scope {
  readonly ignore: readonly RegExp[];
  readonly match: RegExp | undefined;
}

/** A command line in scope: ignored by nothing, and matched when --match is given. */
export const inScope = (cmdline: string, scope: Scope) => !scope.ignore.some((re) => re.test(cmdline)) && (!scope.match || scope.match.test(cmdline));

/** A registered run's command line as text (the row stores its argv as JSON). */
export const runCommandLine = (r: Pick<RunRow, 'command'>) => (JSON.parse(r.command) as string[]).join(' ');

/** Registered runs in scope: with a process, ours, and in scope by their command line. */
export function runsInScope(live: ReadonlyArray<{ readonly run: RunRow; readonly ours: boolean }>, scope: Scope): RunRow[] {
  return live.filter((l) => l.run.pid !== null && l.ours && inScope(runCommandLine(l.run), scope)).map((l) => l.run);
}

/** Registered runs sharing a name: the newest stays, the others go. Names in first-seen order. */
export function planRunDuplicates(runs: readonly RunRow[]): Array<{ name: string; kept: RunRow; ended: RunRow[] }> {
  const byName = new Map<string, RunRow[]>();
  for (const r of runs) (byName.get(r.name) ?? byName.set(r.name, []).get(r.name)!).push(r);
  const out: Array<{ name: string; kept: RunRow; ended: RunRow[] }> = [];
  for (const [name, rs] of byName) {
    if (rs.length < 2) continue;
    const [kept, ...ended] = [...rs].sort((a, b) => b.started_at - a.started_at);
    out.push({ name, kept: kept!, ended });
  }
  return out;
}

/**
 * An unregistered process in scope for grouping: ours, outside the groups of the runs in scope
 * (those are deduplicated as runs), not agentctl, not ignored; with --match, matched, else a
 * script an interpreter runs.
 */
export function processInScope(
  p: ProcDetail,
  id: WorkerId,
  ctx: { readonly mine: (p: ProcDetail) => boolean; readonly runPgids: ReadonlySet<number | null>; readonly scope: Scope; readonly isAgentctl: boolean },
): boolean {
  if (ctx.runPgids.has(p.pgid) || ctx.isAgentctl) return false;
  if (ctx.scope.ignore.some((re) => re.test(p.cmdline))) return false;
  // last: whether it is ours reads /proc/PID/status
  return (ctx.scope.match ? ctx.scope.match.test(p.cmdline) : id.script) && ctx.mine(p);
}

/** One identity with more than one instance: the keeper by `keep`, the rest to end. */
export interface InstancePlan {
  readonly identity: string;
  readonly folder: string | null;
  readonly keep: Instance;
  readonly duplicates: readonly Instance[];
}

/** Every identity that runs more than once: which instance stays (see pickKeeper) and which go. */
export function planInstanceDuplicates(groups: ReadonlyMap<string, readonly Instance[]>, keep: KeepPolicy, acrossFolders: boolean): InstancePlan[] {
  const out: InstancePlan[] = [];
  for (const [identity, instances] of groups) {
    if (instances.length < 2) continue;
    const keeper = pickKeeper(instances, keep);
    out.push({ identity, folder: acrossFolders || !keeper.id.folder ? null : keeper.id.folder, keep: keeper, duplicates: instances.filter((i) => i.pid !== keeper.pid) });
  }
  return out;
}

/** The events a real dedupe records: one per identity and one per run name it acted on. */
export function dedupeEvents(groups: readonly DedupeGroup[], runs: DedupeResult['runs'], keep: KeepPolicy): EventInput[] {
  return [
    ...groups.map((g) => ({
      command: 'dedupe-workers',
      kind: 'dedupe.ended',
      subject: g.identity,
      reason: `kept PID ${g.keep.pid} (${g.keep.command.slice(0, 80)}, --keep ${keep}); ended ${g.duplicates.map((d) => `PID ${d.pid}${d.action === 'failed' ? ' (FAILED)' : ''}`).join(', ')}`,
      data: { kept: g.keep.pid, ended: g.duplicates.map((d) => d.pid) },
    })),
    ...runs.map((r) => ({
      command: 'dedupe-workers',
      kind: 'dedupe.ended',
      subject: r.name,
      reason: `registered run ${r.name} ran ${r.ended.length + 1} times: kept ${r.kept}, ended ${r.ended.join(', ')}`,
    })),
  ];
}
