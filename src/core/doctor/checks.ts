/**
 * doctor is a table of checks: each is data (id, group, title) and a function from the
 * gathered facts to a status, a measured value, a threshold and a remedy command. Adding a
 * check is adding one entry to its group's file:
 *
 *   host.ts          load, CPU, memory, pressure
 *   agents-runs.ts   agents on the host, throttle, duplicates, restart loops; agentctl's runs
 *   ports-envs.ts    the port pool, listeners, environments and their worktrees
 *   services.ts      one check per configured service
 *   fleet.ts         one check per [[agents]] entry (the fleet up keeps running)
 *   config-state.ts  the configuration, the state database and its disk
 *
 * This module assembles the table in the order doctor shows it.
 */
import type { DoctorThresholds } from '../config/types.js';
import { agentRunChecks } from './agents-runs.js';
import type { Check, CheckEntry } from './check.js';
import { configStateChecks } from './config-state.js';
import { hostChecks } from './host.js';
import { portEnvChecks } from './ports-envs.js';

export type { Check, CheckResult, Facts, Status } from './check.js';
export { stalePidFiles } from './agents-runs.js';
export { serviceChecks } from './services.js';
export { agentChecks } from './agents.js';

const TABLE: readonly CheckEntry[] = [...hostChecks, ...agentRunChecks, ...portEnvChecks, ...configStateChecks];

/** The table with the configured thresholds bound; services come from serviceChecks(). */
export function checks(t: DoctorThresholds): Check[] {
  return TABLE.map((e) => ({ id: e.id, group: e.group, title: e.title, run: (f) => e.run(f, t) }));
}
