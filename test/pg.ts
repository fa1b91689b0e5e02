/**
 * A throwaway PostgreSQL cluster for tests: initdb in a temp folder, postgres on 127.0.0.1 at a
 * free port (and a unix socket in the same folder), from Debian's postgresql package
 * (scripts/ci-deps.sh installs it). PostgreSQL refuses to run as root, so under root the
 * cluster belongs to the package's `postgres` system user and its tools run through runuser.
 *
 * TCP connections need the test role's password (scram-sha-256), so the password path of the
 * code under test is real; the socket is `trust` for the helper's own admin work.
 * One cluster per test file: `startCluster()` in beforeAll, `cluster.destroy()` in afterAll.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { removeTree, waitFor } from './helpers.js';

export const PG_ROLE = 'agentctl_test';
export const PG_DB = 'agentctl_fleet';
/** The test role's password: tests assert it never appears in output or state. */
export const PG_PASSWORD = 'pw-7f3c9e-not-for-output';

/** The directory holding initdb and pg_ctl, or undefined when PostgreSQL is not installed. */
export function pgBinDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
      .sort((a, b) => Number(b) - Number(a));
    if (versions[0]) return join(root, versions[0], 'bin');
  }
  const which = spawnSync('sh', ['-c', 'command -v initdb'], { encoding: 'utf8' });
  return which.status === 0 ? join(which.stdout.trim(), '..') : undefined;
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

export interface Cluster {
  readonly port: number;
  /** the folder of the unix socket */
  readonly socketDir: string;
  /** postgres://role:password@127.0.0.1:port/db */
  readonly url: string;
  /** the same URL without the password (for PGPASSWORD tests) */
  readonly urlNoPassword: string;
  /** the postmaster's PID while running */
  pid(): number | undefined;
  /** pg_ctl stop -m immediate: as a crash would (no checkpoint) */
  stop(): void;
  /** start again on the same port and folder; resolves when it accepts connections */
  start(): Promise<void>;
  /** a connection as the test role, for assertions */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<R[]>;
  /** stop it and remove its folder */
  destroy(): void;
}

export async function startCluster(): Promise<Cluster> {
  const bin = pgBinDir();
  if (!bin) throw new Error('PostgreSQL is not installed: run scripts/ci-deps.sh');
  const root = process.getuid?.() === 0;
  const dir = mkdtempSync(join(tmpdir(), 'agentctl-pg-'));
  const data = join(dir, 'data');
  const port = await freePort();
  const owner = root ? { uid: Number(execFileSync('id', ['-u', 'postgres']).toString()), gid: Number(execFileSync('id', ['-g', 'postgres']).toString()) } : undefined;
  writeFileSync(join(dir, 'pwfile'), `${PG_PASSWORD}\n`, { mode: 0o600 });
  if (owner) {
    chownSync(dir, owner.uid, owner.gid);
    chownSync(join(dir, 'pwfile'), owner.uid, owner.gid);
  }
  // as the cluster's owner, in its folder (root's cwd may be closed to it)
  const tool = (name: string, args: string[]) => {
    const argv = root ? ['runuser', '-u', 'postgres', '--', join(bin, name), ...args] : [join(bin, name), ...args];
    const r = spawnSync(argv[0]!, argv.slice(1), { cwd: dir, encoding: 'utf8', env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' } });
    if (r.status !== 0) throw new Error(`${name} ${args.join(' ')} exited ${r.status}: ${r.stderr || r.stdout}\n${readLog()}`);
    return r.stdout;
  };
  const readLog = () => {
    try {
      return readFileSync(join(dir, 'log'), 'utf8').slice(-2000);
    } catch {
      return '';
    }
  };
  tool('initdb', ['-D', data, '-U', PG_ROLE, `--pwfile=${join(dir, 'pwfile')}`, '--auth-local=trust', '--auth-host=scram-sha-256', '-E', 'UTF8', '--no-sync']);
  const opts = `-c listen_addresses=127.0.0.1 -p ${port} -k ${dir} -c fsync=off -c max_connections=200`;
  const start = async () => {
    // pg_ctl -w returns once the server accepts connections
    tool('pg_ctl', ['start', '-w', '-t', '60', '-D', data, '-l', join(dir, 'log'), '-o', opts]);
    await waitFor(() => spawnSync(join(bin, 'pg_isready'), ['-h', '127.0.0.1', '-p', String(port)]).status === 0, 30_000, { what: 'PostgreSQL accepting connections' });
  };
  await start();
  const admin = new pg.Client({ host: dir, port, user: PG_ROLE, database: 'postgres' });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${PG_DB}`);
  await admin.end();

  const url = `postgres://${PG_ROLE}:${PG_PASSWORD}@127.0.0.1:${port}/${PG_DB}`;
  const pid = () => {
    try {
      const n = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
      return Number.isInteger(n) && n > 0 ? n : undefined;
    } catch {
      return undefined;
    }
  };
  const stop = () => {
    if (pid() !== undefined) tool('pg_ctl', ['stop', '-w', '-m', 'immediate', '-D', data]);
  };
  return {
    port,
    socketDir: dir,
    url,
    urlNoPassword: `postgres://${PG_ROLE}@127.0.0.1:${port}/${PG_DB}`,
    pid,
    stop,
    start,
    async query(sql, params) {
      const c = new pg.Client({ host: dir, port, user: PG_ROLE, database: PG_DB });
      await c.connect();
      try {
        return (await c.query(sql, params)).rows;
      } finally {
        await c.end();
      }
    },
    destroy() {
      try {
        stop();
      } finally {
        removeTree(dir);
      }
    },
  };
}
