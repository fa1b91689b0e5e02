/**
 * The fleet's one table, created by `agentctl fleet init` (idempotent). One row is one lease:
 * a live run of a fleet-capped group on one host. Leases expire by the database's clock
 * (`expires_at` against `now()`), so the hosts' clocks never decide who holds a slot.
 * Released leases are deleted; expired ones are deleted by the next admission of their group.
 */
import type { Client } from 'pg';

export const LEASE_TABLE = 'agentctl_fleet_leases';

/** NOTIFY channel: the payload is the group whose lease was released. */
export const RELEASE_CHANNEL = 'agentctl_fleet_release';

export const FLEET_SCHEMA = `
CREATE TABLE IF NOT EXISTS ${LEASE_TABLE} (
  grp         text        NOT NULL,
  host_id     text        NOT NULL,
  run_id      text        NOT NULL,
  name        text        NOT NULL,
  pid         integer     NOT NULL,
  start_time  text        NOT NULL,
  boot_id     text        NOT NULL,
  taken_at    timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz NOT NULL,
  PRIMARY KEY (host_id, run_id)
);
CREATE INDEX IF NOT EXISTS ${LEASE_TABLE}_grp_expires ON ${LEASE_TABLE} (grp, expires_at);
`;

/** Create the table and its index when missing; existing leases are kept. */
export async function initSchema(client: Client): Promise<void> {
  // two hosts running init at once would race in CREATE ... IF NOT EXISTS: one at a time
  await client.query(`BEGIN; SELECT pg_advisory_xact_lock(hashtext('agentctl.fleet.init')); ${FLEET_SCHEMA} COMMIT;`);
}
