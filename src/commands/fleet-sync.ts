/**
 * agentctl _fleet-sync: record the runs that ended and give their fleet leases back, renew the
 * live ones' (internal). A detached run of a fleet-capped group has its supervisor call it
 * right after it records the exit, so the run's end frees its fleet-wide slot at once, as the
 * slot bell frees its local one, not at the next command on the host. Hidden from help.
 */
import type { Ctx, Outcome, Ui } from '../core/ctx.js';
import type { CommandDecl, OptionValues } from '../core/declaration.js';
import { noteFleetSync } from '../core/fleet/fleet.js';
import { reconcileAll } from '../core/runs/reconcile.js';

export const declaration: CommandDecl = {
  name: '_fleet-sync',
  description: "record ended runs and release their fleet leases (internal: a fleet-capped run's supervisor calls it)",
  hidden: true,
};

export async function run(_opts: OptionValues, _args: readonly string[], ctx: Ctx): Promise<Outcome<Record<string, never>>> {
  const loaded = ctx.config();
  if (!loaded.config.fleet) return {}; // nothing of the fleet here (its config changed since the spawn)
  const state = ctx.state();
  const now = ctx.now();
  reconcileAll(state, loaded, now, '_fleet-sync');
  await noteFleetSync(ctx, state, loaded, now);
  return {};
}

export function render(_r: Record<string, never>, _ui: Ui): string {
  return '';
}
