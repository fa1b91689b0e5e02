/** agentctl fleet init|status: the fleet-wide cap's lease table on PostgreSQL (docs/fleet-postgres.md). */
import type { Ctx, Outcome, Ui } from '../core/ctx.js';
import { EXIT, ExitError } from '../core/errors.js';
import { fleetInit, type FleetStatus, fleetStatus } from '../core/fleet/fleet.js';
import { FleetUnreachable } from '../core/fleet/pg.js';
import type { CommandDecl, OptionValues } from '../core/declaration.js';
import { formatDuration } from '../core/units.js';

export const declaration: CommandDecl = {
  name: 'fleet',
  description: 'the fleet-wide cap on PostgreSQL: "fleet init" creates the lease table, "fleet status" shows the leases per group and host',
  args: [{ name: '[action]', help: 'init or status', choices: ['init', 'status'], default: 'status' }],
  examples: ['agentctl fleet init', 'agentctl fleet status', 'agentctl fleet status --json | jq \'.groups[] | select(.group == "claude")\''],
  exitCodes: '78 no [fleet] url configured; 75 PostgreSQL could not be reached (or timed out).',
};

export type FleetResult = ({ action: 'init' } & { database: string; table: string }) | ({ action: 'status' } & FleetStatus);

export async function run(_opts: OptionValues, args: readonly string[], ctx: Ctx): Promise<Outcome<FleetResult>> {
  const action = args[0] ?? 'status';
  const fleet = ctx.config().config.fleet;
  if (!fleet) throw new ExitError(EXIT.config, 'fleet: no fleet configured; set [fleet] url = "postgres://..." (see docs/fleet-postgres.md)', 'fleet_not_configured');
  try {
    if (action === 'init') return { data: { action: 'init', ...(await fleetInit(fleet)) } };
    return { data: { action: 'status', ...(await fleetStatus(fleet)) } };
  } catch (err) {
    if (err instanceof FleetUnreachable) throw new ExitError(EXIT.tryLater, `fleet: ${err.message}`, 'fleet_unreachable');
    throw err;
  }
}

export function render(r: FleetResult, ui: Ui): string {
  if (r.action === 'init') return `fleet: lease table ${r.table} ready in ${r.database}`;
  const rows = r.groups.map((g) => [
    g.group,
    g.cap === null ? '-' : g.cap,
    g.used,
    Object.entries(g.hosts)
      .map(([h, n]) => `${h} ${n}`)
      .join(', ') || ui.c.dim('none'),
  ]);
  const head = ui.pairs([
    ['this host', r.host_id],
    ['database', r.database],
  ]);
  if (rows.length === 0) return `${head}\n${ui.c.dim('no fleet caps and no leases')}`;
  const leases = r.leases.map((l) => [l.group, l.host, l.run_id, l.name, l.pid, formatDuration(Math.max(0, l.expires_in_ms))]);
  return [
    head,
    ui.table(['group', 'cap', 'leases', 'hosts'], rows, { hosts: 'wrap' }),
    leases.length ? ui.table(['group', 'host', 'run', 'name', 'pid', 'expires in'], leases, { name: 'cut-last' }) : '',
  ]
    .filter(Boolean)
    .join('\n');
}
