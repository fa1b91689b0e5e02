/**
 * The fleet's one table, created by `agentctl fleet init` (idempotent). One row is one lease:
 * a live run of a fleet-capped group on one host. Leases expire by the database's clock
 * (`expires_at` against `now()`), so the hosts' clocks never decide who holds a slot.
 * Released leases are deleted; expired ones are deleted by the next admission of their group.
 * Admission is one function call (TAKE_FUNCTION); `init` replaces the function, so running it
 * again after an upgrade brings the function up to date.
 */
import type { Client } from 'pg';

export const LEASE_TABLE = 'agentctl_fleet_leases';

/**
 * Admission in one round trip: the host's renew-and-release, then (under an advisory lock on
 * the group) the count and the insert, in a function the server runs as one transaction. A
 * spawn waits on the network once instead of nine times.
 */
export const TAKE_FUNCTION = 'agentctl_fleet_take';

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
CREATE OR REPLACE FUNCTION ${TAKE_FUNCTION}(
  p_grp text, p_cap integer, p_host text, p_run text, p_name text, p_pid integer, p_start text, p_boot text, p_ttl double precision,
  l_runs text[], l_pids integer[], l_starts text[], l_boots text[], p_ended text[])
RETURNS TABLE (granted boolean, holder text, n bigint)
LANGUAGE plpgsql VOLATILE AS $fn$
#variable_conflict use_column
DECLARE
  used bigint;
  g record;
BEGIN
  -- this host's reconcile first: renew its unexpired leases of live runs, release its ended runs'
  UPDATE ${LEASE_TABLE} AS l SET expires_at = now() + make_interval(secs => p_ttl), pid = v.pid, start_time = v.start_time, boot_id = v.boot_id
    FROM unnest(l_runs, l_pids, l_starts, l_boots) AS v(run_id, pid, start_time, boot_id)
    WHERE l.host_id = p_host AND l.run_id = v.run_id AND l.expires_at > now();
  FOR g IN WITH gone AS (DELETE FROM ${LEASE_TABLE} AS d WHERE d.host_id = p_host AND d.run_id = ANY(p_ended) RETURNING d.grp) SELECT DISTINCT gone.grp FROM gone LOOP
    PERFORM pg_notify('${RELEASE_CHANNEL}', g.grp);
  END LOOP;
  -- one host at a time per group; each statement below sees what the one before us committed
  PERFORM pg_advisory_xact_lock(hashtext('agentctl.fleet:' || p_grp));
  DELETE FROM ${LEASE_TABLE} AS d WHERE d.grp = p_grp AND d.expires_at <= now();
  SELECT count(*) INTO used FROM ${LEASE_TABLE} AS c WHERE c.grp = p_grp AND c.expires_at > now();
  IF used < p_cap THEN
    INSERT INTO ${LEASE_TABLE} (grp, host_id, run_id, name, pid, start_time, boot_id, expires_at)
      VALUES (p_grp, p_host, p_run, p_name, p_pid, p_start, p_boot, now() + make_interval(secs => p_ttl))
      ON CONFLICT (host_id, run_id) DO UPDATE SET expires_at = EXCLUDED.expires_at;
    RETURN QUERY SELECT true, NULL::text, 0::bigint;
    RETURN;
  END IF;
  RETURN QUERY SELECT false, c.host_id, count(*) FROM ${LEASE_TABLE} AS c WHERE c.grp = p_grp AND c.expires_at > now() GROUP BY c.host_id ORDER BY c.host_id;
END
$fn$;
`;

/** Create the table and its index when missing; existing leases are kept. */
export async function initSchema(client: Client): Promise<void> {
  // two hosts running init at once would race in CREATE ... IF NOT EXISTS: one at a time
  await client.query(`BEGIN; SELECT pg_advisory_xact_lock(hashtext('agentctl.fleet.init')); ${FLEET_SCHEMA} COMMIT;`);
}
