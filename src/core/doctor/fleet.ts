/**
 * doctor's fleet checks, present only with [fleet]: the leases across the fleet per group and
 * host (fleet.leases, which asks PostgreSQL within fleet.timeout), and whether this host renews
 * its leases often enough (fleet.renewal: cron's reap must run more often than lease_ttl / 2).
 */
import { FLEET_RENEWED_KEY, fleetCap, type FleetStatus, fleetStatus } from '../fleet/fleet.js';
import { FleetUnreachable } from '../fleet/pg.js';
import { formatDuration } from '../units.js';
import { type Check, type CheckResult, type Facts, live, ok } from './check.js';

export const FLEET_CHECK_IDS = ['fleet.leases', 'fleet.renewal'] as const;

/** What fleet.leases saw, for doctor's --json and its Prometheus file. */
export interface FleetSeen {
  status?: FleetStatus;
}

export function fleetChecks(f: Facts, seen: FleetSeen): Check[] {
  const fleet = f.config?.config.fleet;
  if (!fleet) return [];
  return [
    {
      id: 'fleet.leases',
      group: 'config',
      title: 'fleet leases on PostgreSQL',
      run: async (): Promise<CheckResult> => {
        try {
          const s = await fleetStatus(fleet);
          seen.status = s;
          const full = s.groups.filter((g) => g.cap !== null && g.used >= g.cap);
          const text = s.groups
            .map(
              (g) =>
                `${g.group} ${g.used}${g.cap !== null ? ` of ${g.cap}` : ''} (${
                  Object.entries(g.hosts)
                    .map(([h, n]) => `${h} ${n}`)
                    .join(', ') || 'none'
                })`,
            )
            .join('; ');
          const value = text || 'no leases';
          const total = s.leases.length;
          return full.length
            ? { status: 'warn', value: `${value}; at the cap: ${full.map((g) => g.group).join(', ')}`, threshold: 'below each fleet cap', remedy: 'agentctl fleet status', metric: total }
            : ok(value, 'below each fleet cap', total);
        } catch (err) {
          if (!(err instanceof FleetUnreachable)) throw err;
          // refusing is what fleet-capped spawns do now: that is a failure of the host's work
          return {
            status: fleet.onUnreachable === 'refuse' ? 'fail' : 'warn',
            value: err.message,
            threshold: 'reachable within fleet.timeout',
            remedy: 'agentctl fleet status; see docs/fleet-postgres.md',
            metric: null,
          };
        }
      },
    },
    {
      id: 'fleet.renewal',
      group: 'config',
      title: 'fleet leases renewed often enough',
      run: (): CheckResult => {
        const threshold = `renewed within lease_ttl / 2 (${formatDuration(fleet.leaseTtlMs / 2)})`;
        if (!f.state) return { status: 'warn', value: f.stateError ?? 'no state', threshold, remedy: 'agentctl doctor --check state.integrity', metric: null };
        const mine = live(f).filter((r) => fleetCap(f.config!.config, r.grp) !== undefined);
        if (mine.length === 0) return ok('no fleet-capped runs on this host', threshold, null);
        const at = f.state.getKv<{ at: number }>(FLEET_RENEWED_KEY)?.value.at;
        const age = at === undefined ? undefined : f.now - at;
        if (age !== undefined && age <= fleet.leaseTtlMs / 2) return ok(`renewed ${formatDuration(age)} ago`, threshold, age / 1000);
        return {
          status: 'warn',
          value: `${mine.length} fleet-capped runs; leases ${age === undefined ? 'never renewed' : `last renewed ${formatDuration(age)} ago`}: they expire after ${formatDuration(fleet.leaseTtlMs)} and other hosts take the slots`,
          threshold,
          remedy: `run agentctl reap from cron at least every ${formatDuration(fleet.leaseTtlMs / 2)}`,
          metric: age === undefined ? null : age / 1000,
        };
      },
    },
  ];
}
