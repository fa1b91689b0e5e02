/**
 * The lease operations, each one statement or one transaction on a connected client:
 * take (advisory transaction lock on the group, count the unexpired leases, insert when under
 * the cap), renew and release a host's leases, and read them. Expiry is by the database's clock.
 */
import type { Client } from 'pg';
import { LEASE_TABLE, RELEASE_CHANNEL, TAKE_FUNCTION } from './schema.js';

export interface LeaseHolder {
  readonly runId: string;
  readonly name: string;
  readonly pid: number;
  readonly startTime: string;
  readonly bootId: string;
}

/** What the fleet holds of a group: unexpired leases per host, host ids sorted. */
export interface GroupCount {
  readonly used: number;
  readonly hosts: ReadonlyArray<{ readonly host: string; readonly n: number }>;
}

export type TakeResult = { readonly granted: true } | { readonly granted: false; readonly count: GroupCount };

const ttlSeconds = (ms: number) => ms / 1000;

async function countGroup(client: Client, group: string): Promise<GroupCount> {
  const rows = (
    await client.query<{ host_id: string; n: string }>(`SELECT host_id, count(*) AS n FROM ${LEASE_TABLE} WHERE grp = $1 AND expires_at > now() GROUP BY host_id ORDER BY host_id`, [group])
  ).rows;
  const hosts = rows.map((r) => ({ host: r.host_id, n: Number(r.n) }));
  return { used: hosts.reduce((a, h) => a + h.n, 0), hosts };
}

/**
 * One call, one transaction on the server (TAKE_FUNCTION): renew this host's live leases and
 * release its ended runs' (`sync`), then lock the group (so two hosts never both take its last
 * slot), drop its expired leases, count the rest, and insert ours when under `cap`.
 */
export async function takeLease(
  client: Client,
  args: { group: string; cap: number; hostId: string; holder: LeaseHolder; ttlMs: number; sync: { live: readonly LeaseHolder[]; ended: readonly string[] } },
): Promise<TakeResult> {
  const { group, cap, hostId, holder, sync } = args;
  const rows = (
    await client.query<{ granted: boolean; holder: string | null; n: string }>(`SELECT granted, holder, n FROM ${TAKE_FUNCTION}($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`, [
      group,
      cap,
      hostId,
      holder.runId,
      holder.name,
      holder.pid,
      holder.startTime,
      holder.bootId,
      ttlSeconds(args.ttlMs),
      sync.live.map((h) => h.runId),
      sync.live.map((h) => h.pid),
      sync.live.map((h) => h.startTime),
      sync.live.map((h) => h.bootId),
      [...sync.ended],
    ])
  ).rows;
  if (rows[0]?.granted) return { granted: true };
  const hosts = rows.map((r) => ({ host: r.holder ?? '?', n: Number(r.n) }));
  return { granted: false, count: { used: hosts.reduce((a, h) => a + h.n, 0), hosts } };
}

/** Is a group under its cap now? (a waiter's check before it asks its own host again) */
export async function hasRoom(client: Client, group: string, cap: number): Promise<boolean> {
  return (await countGroup(client, group)).used < cap;
}

/**
 * A host's reconcile, in one transaction: renew the unexpired leases of its live runs (with
 * their process identity, once known) and delete those of its ended runs. An expired lease is
 * never renewed: its slot may be someone else's by now. Returns how many were renewed and released.
 */
export async function syncLeases(client: Client, args: { hostId: string; live: readonly LeaseHolder[]; ended: readonly string[]; ttlMs: number }): Promise<{ renewed: number; released: number }> {
  const { hostId, live, ended } = args;
  await client.query('BEGIN');
  try {
    const renewed = live.length
      ? ((
          await client.query(
            `UPDATE ${LEASE_TABLE} AS l SET expires_at = now() + make_interval(secs => $2), pid = v.pid, start_time = v.start_time, boot_id = v.boot_id
             FROM (SELECT * FROM unnest($3::text[], $4::int[], $5::text[], $6::text[]) AS t(run_id, pid, start_time, boot_id)) AS v
             WHERE l.host_id = $1 AND l.run_id = v.run_id AND l.expires_at > now()`,
            [hostId, ttlSeconds(args.ttlMs), live.map((h) => h.runId), live.map((h) => h.pid), live.map((h) => h.startTime), live.map((h) => h.bootId)],
          )
        ).rowCount ?? 0)
      : 0;
    const released = ended.length ? await releaseIn(client, hostId, ended) : 0;
    await client.query('COMMIT');
    return { renewed, released };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  }
}

/** Delete a host's leases of these runs, and wake the waiters of their groups (NOTIFY, delivered at commit). */
async function releaseIn(client: Client, hostId: string, runIds: readonly string[]): Promise<number> {
  const r = await client.query<{ n: string }>(
    `WITH gone AS (DELETE FROM ${LEASE_TABLE} WHERE host_id = $1 AND run_id = ANY($2::text[]) RETURNING grp),
          woken AS (SELECT pg_notify($3, grp) FROM (SELECT DISTINCT grp FROM gone) AS g)
     SELECT (SELECT count(*) FROM gone) AS n, (SELECT count(*) FROM woken) AS w`,
    [hostId, [...runIds], RELEASE_CHANNEL],
  );
  return Number(r.rows[0]?.n ?? 0);
}

/** Release leases at once (a run ended here): one statement. */
export async function releaseLeases(client: Client, hostId: string, runIds: readonly string[]): Promise<number> {
  return runIds.length ? releaseIn(client, hostId, runIds) : 0;
}

export interface LeaseRow {
  readonly group: string;
  readonly host: string;
  readonly run_id: string;
  readonly name: string;
  readonly pid: number;
  readonly expires_in_ms: number;
}

/** Every unexpired lease, by group, host and run (for fleet status and ps --fleet). */
export async function listLeases(client: Client): Promise<LeaseRow[]> {
  const rows = (
    await client.query<{ grp: string; host_id: string; run_id: string; name: string; pid: number; ms: string }>(
      `SELECT grp, host_id, run_id, name, pid, (extract(epoch FROM expires_at - now()) * 1000)::bigint AS ms
       FROM ${LEASE_TABLE} WHERE expires_at > now() ORDER BY grp, host_id, run_id`,
    )
  ).rows;
  return rows.map((r) => ({ group: r.grp, host: r.host_id, run_id: r.run_id, name: r.name, pid: r.pid, expires_in_ms: Number(r.ms) }));
}
