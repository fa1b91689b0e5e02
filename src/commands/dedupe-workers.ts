/**
 * agentctl dedupe-workers: one instance per worker identity (incident 2: a worker, its _v2
 * and a shell wrapper all running at once). Keeps one per identity and ends the rest with
 * their trees; registered runs sharing a name count as duplicates too. The identity keeps
 * the script's real folder (from each process's cwd), so the same name in two projects is
 * two workers unless --across-folders.
 */
import type { Ctx, Outcome, Ui } from '../core/ctx.js';
import { cachedRealPath, procCwd } from '../core/cwd.js';
import { type Ended, endProcess, endRun, userFilter } from '../core/control.js';
import { EXIT, UsageError } from '../core/errors.js';
import { bootId, isSameProcess } from '../core/identity.js';
import { listDetailed, processUid, programName } from '../core/proc.js';
import { reconcileAll } from '../core/runs/reconcile.js';
import { liveRuns } from '../core/runs/registry.js';
import { printable, redactText, showCommand } from '../core/text.js';
import { parseDuration } from '../core/units.js';
import { groupInstances, type KeepPolicy, mayRunScript, pickKeeper } from '../core/workers.js';
import type { CommandDecl } from '../core/declaration.js';

export const declaration: CommandDecl = {
  name: 'dedupe-workers',
  description: 'one instance per worker identity (the script in its real folder, without interpreter, _vN suffix or daemon flags): end the rest',
  options: [
    { flags: '--match <regex>', help: 'only command lines matching this (default: processes running a script)' },
    { flags: '--keep <policy>', help: 'which instance to keep (highest-version breaks ties by newest)', choices: ['highest-version', 'newest', 'oldest'], default: 'highest-version' },
    { flags: '--grace <duration>', help: 'TERM, then this long, then KILL', configKey: 'reap.grace' },
    { flags: '--dry-run', help: 'show the groups and what would be ended' },
    { flags: '--all-users', help: "root only: also other users' processes" },
    { flags: '--across-folders', help: 'the same script name in two folders is one worker (default: two)' },
  ],
  examples: ['agentctl dedupe-workers --dry-run', "agentctl dedupe-workers --match 'auto_confirm_worker'", 'agentctl dedupe-workers --keep oldest --json'],
};

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

const POLICIES: readonly KeepPolicy[] = ['highest-version', 'newest', 'oldest'];

export async function run(opts: Record<string, unknown>, _args: readonly string[], ctx: Ctx): Promise<Outcome<DedupeResult>> {
  const keep = String(opts.keep) as KeepPolicy;
  if (!POLICIES.includes(keep)) throw new UsageError(`--keep: invalid value ${JSON.stringify(keep)}; expected one of ${POLICIES.join(', ')}`);
  let match: RegExp | undefined;
  if (opts.match !== undefined) {
    try {
      match = new RegExp(String(opts.match));
    } catch (err) {
      throw new UsageError(`--match: invalid regular expression ${JSON.stringify(String(opts.match))}: ${(err as Error).message}`);
    }
  }
  const graceMs = opts.grace !== undefined ? parseDuration(String(opts.grace), '--grace') : undefined;
  const dry = Boolean(opts.dryRun);
  const acrossFolders = Boolean(opts.acrossFolders);
  const mine = userFilter(Boolean(opts.allUsers));
  const loaded = ctx.config();
  const grace = graceMs ?? loaded.config.reap.graceMs;
  const ignore = loaded.config.dedupe.ignore.map((r) => new RegExp(r));
  const state = ctx.state();
  if (!dry) reconcileAll(state, loaded, ctx.now(), 'dedupe-workers');

  // registered runs sharing a name: keep the newest
  const runCmd = (r: { command: string }) => (JSON.parse(r.command) as string[]).join(' ');
  const live = state
    .guard(() => liveRuns(state))
    .filter((r) => r.pid !== null && mine({ pid: r.pid, uid: processUid(r.pid) }) && !ignore.some((re) => re.test(runCmd(r))) && (!match || match.test(runCmd(r))));
  const runPgids = new Set(live.map((r) => r.pgid));
  const byName = new Map<string, typeof live>();
  for (const r of live) (byName.get(r.name) ?? byName.set(r.name, []).get(r.name)!).push(r);
  const runGroups: Array<{ name: string; kept: string; ended: string[] }> = [];
  for (const [name, rs] of byName) {
    if (rs.length < 2) continue;
    const sorted = [...rs].sort((a, b) => b.started_at - a.started_at);
    const [kept, ...rest] = sorted;
    if (!dry) for (const r of rest) await endRun(state, loaded, r, grace, { timedOut: false, why: `duplicate of ${kept!.id} (dedupe-workers)`, command: 'dedupe-workers' });
    runGroups.push({ name, kept: kept!.id, ended: rest.map((r) => r.id) });
  }

  // unregistered processes grouped by worker identity
  // without --match only script runners can be in scope: read just their command lines
  const procs = listDetailed('/proc', { argv: match ? true : mayRunScript }).filter((p) => p.state !== 'Z' && p.argv.length > 0);
  const byPid = new Map(procs.map((p) => [p.pid, p]));
  const groups = groupInstances(
    procs.map((p) => ({ pid: p.pid, ppid: p.ppid, start: p.startTicks, argv: p.argv })),
    (p, id) => {
      const d = byPid.get(p.pid)!;
      if (!mine(d) || runPgids.has(d.pgid) || programName(p.argv) === 'agentctl') return false;
      if (ignore.some((re) => re.test(d.cmdline))) return false;
      return match ? match.test(d.cmdline) : id.script;
    },
    { acrossFolders, cwdOf: (pid) => procCwd(pid), realpath: cachedRealPath() },
  );
  const out: DedupeGroup[] = [];
  for (const [identity, instances] of groups) {
    if (instances.length < 2) continue;
    const keeper = pickKeeper(instances, keep);
    const dups: Array<DedupeGroup['duplicates'][number]> = [];
    for (const inst of instances) {
      if (inst.pid === keeper.pid) continue;
      const command = redactText(byPid.get(inst.pid)?.cmdline ?? '');
      if (dry) {
        dups.push({ pid: inst.pid, command, version: inst.id.version, pids: inst.pids, action: 'would_end' });
        continue;
      }
      const id = { pid: inst.pid, startTime: String(inst.start), bootId: bootId() };
      if (!isSameProcess(id)) continue; // gone, or the PID was reused
      const ended = await endProcess(id, grace);
      dups.push({ pid: inst.pid, command, version: inst.id.version, pids: inst.pids, action: ended.survivors.length ? 'failed' : 'ended', ended });
    }
    out.push({ identity: redactText(identity), folder: acrossFolders || !keeper.id.folder ? null : keeper.id.folder, keep: { pid: keeper.pid, command: redactText(byPid.get(keeper.pid)?.cmdline ?? ''), version: keeper.id.version }, duplicates: dups });
  }
  if (!dry && (out.length || runGroups.length)) {
    state.write(() => {
      for (const g of out) {
        state.event({ command: 'dedupe-workers', kind: 'dedupe.ended', subject: g.identity, reason: `kept PID ${g.keep.pid} (${g.keep.command.slice(0, 80)}, --keep ${keep}); ended ${g.duplicates.map((d) => `PID ${d.pid}${d.action === 'failed' ? ' (FAILED)' : ''}`).join(', ')}`, data: { kept: g.keep.pid, ended: g.duplicates.map((d) => d.pid) } });
      }
      for (const r of runGroups) state.event({ command: 'dedupe-workers', kind: 'dedupe.ended', subject: r.name, reason: `registered run ${r.name} ran ${r.ended.length + 1} times: kept ${r.kept}, ended ${r.ended.join(', ')}` });
    });
  }
  const failed = out.some((g) => g.duplicates.some((d) => d.action === 'failed'));
  return { data: { dry_run: dry, across_folders: acrossFolders, keep_policy: keep, groups: out, runs: runGroups }, exitCode: failed ? EXIT.failed : EXIT.ok, ...(failed ? { message: 'some duplicates could not be ended' } : {}) };
}

export function render(r: DedupeResult, ui: Ui): string {
  if (!r.groups.length && !r.runs.length) return 'no duplicate workers';
  const lines: string[] = [];
  for (const g of r.groups) {
    lines.push(`${ui.c.bold(g.identity)}: keep PID ${g.keep.pid} (${showCommand(g.keep.command, 70)})`);
    for (const d of g.duplicates) lines.push(`  ${d.action === 'failed' ? ui.c.red('FAILED') : d.action.replace('_', ' ')} PID ${d.pid}${d.pids.length > 1 ? ` (+${d.pids.length - 1} in its tree)` : ''}: ${showCommand(d.command, 70)}`);
  }
  for (const x of r.runs) lines.push(`run ${printable(x.name)}: kept ${x.kept}, ${r.dry_run ? 'would end' : 'ended'} ${x.ended.join(', ')}`);
  return lines.join('\n');
}
