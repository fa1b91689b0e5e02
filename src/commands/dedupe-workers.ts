/**
 * agentctl dedupe-workers: one instance per worker identity (incident 2: a worker, its _v2
 * and a shell wrapper all running at once). Keeps one per identity and ends the rest with
 * their trees; registered runs sharing a name count as duplicates too. The identity keeps
 * the script's real folder (from each process's cwd), so the same name in two projects is
 * two workers unless --across-folders.
 */
import type { Ctx, Outcome, Ui } from '../core/ctx.js';
import { userFilter } from '../core/users.js';
import { dedupe } from '../core/dedupe/apply.js';
import { type DedupeResult, KEEP_POLICIES } from '../core/dedupe/plan.js';
import { EXIT, UsageError } from '../core/errors.js';
import { printable, showCommand } from '../core/text.js';
import { parseDuration } from '../core/units.js';
import type { KeepPolicy } from '../core/workers.js';
import type { CommandDecl, OptionValues } from '../core/declaration.js';

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

function matchFlag(v: OptionValues[string]): RegExp | undefined {
  if (v === undefined) return undefined;
  const text = String(v);
  try {
    return new RegExp(text);
  } catch (err) {
    throw new UsageError(`--match: invalid regular expression ${JSON.stringify(text)}: ${(err as Error).message}`);
  }
}

export async function run(opts: OptionValues, _args: readonly string[], ctx: Ctx): Promise<Outcome<DedupeResult>> {
  const keep = String(opts.keep) as KeepPolicy;
  if (!KEEP_POLICIES.includes(keep)) throw new UsageError(`--keep: invalid value ${JSON.stringify(keep)}; expected one of ${KEEP_POLICIES.join(', ')}`);
  const data = await dedupe(ctx, {
    keep,
    match: matchFlag(opts.match),
    graceMs: opts.grace !== undefined ? parseDuration(String(opts.grace), '--grace') : undefined,
    dryRun: Boolean(opts.dryRun),
    acrossFolders: Boolean(opts.acrossFolders),
    mine: userFilter(Boolean(opts.allUsers)),
  });
  const failed = data.groups.some((g) => g.duplicates.some((d) => d.action === 'failed'));
  return { data, exitCode: failed ? EXIT.failed : EXIT.ok, ...(failed ? { message: 'some duplicates could not be ended' } : {}) };
}

export function render(r: DedupeResult, ui: Ui): string {
  if (!r.groups.length && !r.runs.length) return 'no duplicate workers';
  const lines: string[] = [];
  for (const g of r.groups) {
    lines.push(`${ui.c.bold(g.identity)}: keep PID ${g.keep.pid} (${showCommand(g.keep.command, 70)})`);
    for (const d of g.duplicates)
      lines.push(
        `  ${d.action === 'failed' ? ui.c.red('FAILED') : d.action.replace('_', ' ')} PID ${d.pid}${d.pids.length > 1 ? ` (+${d.pids.length - 1} in its tree)` : ''}: ${showCommand(d.command, 70)}`,
      );
  }
  for (const x of r.runs) lines.push(`run ${printable(x.name)}: kept ${x.kept}, ${r.dry_run ? 'would end' : 'ended'} ${x.ended.join(', ')}`);
  return lines.join('\n');
}
