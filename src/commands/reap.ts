/**
 * agentctl reap: find and end what should not be running. Designed for cron
 * (`*\/5 * * * * agentctl reap --quiet`): silent when there is nothing to do, one reaper at a
 * time (a second exits 0), every finding with its reason.
 */
import type { Ctx, Outcome, Ui } from '../core/ctx.js';
import { userFilter } from '../core/users.js';
import { EXIT } from '../core/errors.js';
import { reap } from '../core/reap/apply.js';
import type { ReapResult } from '../core/reap/plan.js';
import { printable } from '../core/text.js';
import { parseDuration } from '../core/units.js';
import { noteFleetSync } from '../core/fleet/fleet.js';
import type { CommandDecl, OptionValues } from '../core/declaration.js';

export const declaration: CommandDecl = {
  name: 'reap',
  description: 'find and end what should not run: dead or reused registered runs, overdue and hung runs, orphans, zombies (reported)',
  options: [
    { flags: '--dry-run', help: 'report findings, change nothing' },
    { flags: '--timeout <duration>', help: "end runs older than this (each run's own --timeout always counts)", configKey: 'reap.max_runtime' },
    { flags: '--idle <duration>', help: 'end runs with no CPU progress and no log output for this long', configKey: 'reap.idle' },
    { flags: '--grace <duration>', help: 'TERM, then this long, then KILL', configKey: 'reap.grace' },
    { flags: '--orphans', help: 'also end agent processes whose parent died and that nothing registered' },
    { flags: '--shed', help: "at throttle level 3 (heavy), stop lowest-priority runs until the level's agent count is met" },
    { flags: '--all-users', help: "root only: also act on other users' processes" },
    { flags: '--verbose', help: 'also say so when another reap holds the lock and this one did nothing' },
  ],
  examples: [
    'agentctl reap --dry-run',
    '*/5 * * * * AGENTCTL_STATE_DIR=/var/lib/agentctl agentctl reap --quiet --idle 5m   # the state the spawns use',
    'agentctl reap --orphans --json',
    'agentctl reap --shed',
  ],
};

const duration = (v: OptionValues[string], flag: string) => (v !== undefined ? parseDuration(String(v), flag) : undefined);

export async function run(opts: OptionValues, _args: readonly string[], ctx: Ctx): Promise<Outcome<ReapResult>> {
  ctx.config(); // a broken configuration is reported before a bad flag
  const data = await reap(ctx, {
    dryRun: Boolean(opts.dryRun),
    timeoutMs: duration(opts.timeout, '--timeout'),
    idleMs: duration(opts.idle, '--idle'),
    graceMs: duration(opts.grace, '--grace'),
    mine: userFilter(Boolean(opts.allUsers)),
    orphans: Boolean(opts.orphans),
    shed: Boolean(opts.shed),
  });
  if (!opts.dryRun && !data.skipped) await noteFleetSync(ctx, ctx.state(), ctx.config(), ctx.now()); // renew this host's fleet leases
  // another reaper holds the lock: nothing was done, and cron mail should not say so each time
  if (data.skipped && !opts.verbose && !ctx.globals.json) return { exitCode: EXIT.ok };
  const failed = data.findings.some((f) => f.action === 'failed');
  return { data, exitCode: failed ? EXIT.failed : EXIT.ok, ...(failed ? { message: 'some processes could not be ended; see the findings' } : {}) };
}

export function render(r: ReapResult, ui: Ui): string {
  if (r.skipped) return `reap: ${r.skipped}; nothing done`;
  return r.findings
    .map((f) => {
      const what = f.action === 'failed' ? ui.c.red('FAILED') : f.action.replace('_', ' ');
      const who = f.run_id ? `${printable(f.name ?? '')} (${f.run_id}, PID ${f.pid})` : `PID ${f.pid}`;
      const how = f.ended ? ` [${f.ended.graceful ? 'ended by TERM' : 'KILLed after the grace'}${f.ended.swept.length ? `, ${f.ended.swept.length} escaped swept` : ''}]` : '';
      return `${f.kind.padEnd(10)} ${what} ${who}: ${printable(f.reason)}${how}`;
    })
    .join('\n');
}
