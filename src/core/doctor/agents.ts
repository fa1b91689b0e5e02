/** doctor's checks of the config's [[agents]] entries: one per entry, ok when every instance runs. */
import { downMarker } from '../agents/apply.js';
import { instanceNames } from '../agents/plan.js';
import type { Check, CheckResult, Facts } from './check.js';
import { live } from './check.js';

/** One check per [[agents]] entry: its instances running (a run of that name, started by up or not). */
export function agentChecks(f: Facts): Check[] {
  return (f.config?.config.fleetAgents ?? []).map((spec) => ({
    id: `agent.${spec.name}`,
    group: 'fleet' as const,
    title: `agent ${spec.name}`,
    run: (): CheckResult => {
      const names = instanceNames(spec);
      const running = new Set(live(f).map((r) => r.name));
      const missing = names.filter((n) => !running.has(n));
      const threshold = `${names.length} instance${names.length === 1 ? '' : 's'} running`;
      const up = names.length - missing.length;
      if (!missing.length) return { status: 'ok', value: `${up} of ${names.length} running`, threshold, remedy: '', metric: up };
      const downed = f.state ? missing.filter((n) => f.state!.getKv(downMarker(n)) !== undefined) : [];
      // taken down on purpose: said, not failed
      const status = downed.length === missing.length ? 'warn' : 'fail';
      const why = `${up} of ${names.length} running; not running: ${missing.map((n) => (downed.includes(n) ? `${n} (down)` : n)).join(', ')}`;
      return { status, value: why, threshold, remedy: `agentctl up ${spec.name}`, metric: up };
    },
  }));
}
