/**
 * The PostgreSQL client of the fleet (issue #15), loaded only here and only when [fleet] is
 * configured: `pg` is required lazily (it stays outside the bundle, scripts/bundle.mjs), so a
 * command that never touches the fleet never loads it. Every call is bounded by fleet.timeout:
 * connecting, each statement on the server (statement_timeout, lock_timeout) and each query's
 * round trip on the client (query_timeout).
 * The password comes from the URL, PGPASSWORD or ~/.pgpass (pg reads both); it is never part
 * of a message: errors name the target as host:port/database.
 */
import { createRequire } from 'node:module';
import type { Client, ClientConfig } from 'pg';
import type { FleetSettings } from '../config/types.js';

type PgModule = typeof import('pg');

let pgModule: PgModule | undefined;

/**
 * The driver, required on first use. pg asks at load time whether it runs in a Cloudflare
 * Worker: without `navigator` (Node 20) it probes `Response`, and that getter loads Node's
 * fetch (undici): 30-40 ms of CPU, more than the rest of pg (measured: 55-75 ms with the
 * probe, 25 without). A `navigator` that says Node answers the question first; it is there
 * only while pg loads (synchronously: nothing else runs meanwhile).
 */
export function loadPg(): PgModule {
  if (pgModule) return pgModule;
  const g = globalThis as { navigator?: unknown };
  const lend = g.navigator === undefined;
  if (lend) Object.defineProperty(g, 'navigator', { value: { userAgent: `Node.js/${process.versions.node}` }, configurable: true, writable: true });
  try {
    pgModule = createRequire(import.meta.url)('pg') as PgModule;
  } finally {
    if (lend) delete g.navigator;
  }
  return pgModule;
}

/** PostgreSQL could not be asked: down, unreachable, timed out, refused our login, or not set up. */
export class FleetUnreachable extends Error {}

/** host:port/database of a URL, for messages: never its user's password. */
export function fleetTarget(url: string): string {
  try {
    const u = new URL(url);
    const host = u.hostname || u.searchParams.get('host') || 'localhost';
    return `${host}:${u.port || '5432'}${u.pathname && u.pathname !== '/' ? u.pathname : ''}`;
  } catch {
    return 'the fleet database';
  }
}

/** Why a call failed, in one line without secrets. */
export function failureText(err: unknown): string {
  const e = err as { code?: string; message?: string };
  if (e.code === '42P01' || e.code === '42883') return 'the lease table or its function is missing; run: agentctl fleet init';
  if (e.code === '57014') return 'timed out (fleet.timeout)';
  const msg = (e.message ?? String(err)).split('\n')[0]!;
  if (/timeout/i.test(msg)) return `timed out (fleet.timeout): ${msg}`;
  return e.code && !msg.includes(e.code) ? `${msg} (${e.code})` : msg;
}

export function clientConfig(fleet: FleetSettings): ClientConfig {
  const ms = fleet.timeoutMs;
  return {
    connectionString: fleet.url,
    connectionTimeoutMillis: ms,
    query_timeout: ms,
    statement_timeout: ms,
    lock_timeout: ms,
    application_name: 'agentctl',
  };
}

/** A connected client; throws FleetUnreachable. The caller ends it (`closeQuietly`). */
export async function connect(fleet: FleetSettings): Promise<Client> {
  const { Client: PgClient } = loadPg();
  const client = new PgClient(clientConfig(fleet));
  // a connection dropped later (the server stopped) must not become an uncaught error
  client.on('error', () => {});
  try {
    await client.connect();
    return client;
  } catch (err) {
    closeQuietly(client);
    throw new FleetUnreachable(`cannot reach PostgreSQL at ${fleetTarget(fleet.url)}: ${failureText(err)}`);
  }
}

export function closeQuietly(client: Client): void {
  client.end().catch(() => {});
}

/** Connect, run `fn`, close; any failure becomes FleetUnreachable with a clear line. */
export async function withClient<T>(fleet: FleetSettings, fn: (c: Client) => Promise<T>): Promise<T> {
  const client = await connect(fleet);
  try {
    return await fn(client);
  } catch (err) {
    if (err instanceof FleetUnreachable) throw err;
    throw new FleetUnreachable(`PostgreSQL at ${fleetTarget(fleet.url)}: ${failureText(err)}`);
  } finally {
    closeQuietly(client);
  }
}
