/**
 * The [fleet] keys (issue #15): a fleet-wide cap per group, kept as leases in PostgreSQL.
 * Without `fleet.url` nothing of the fleet runs and the PostgreSQL driver is never loaded.
 * The URL may hold a password: it is shown redacted (redactUrl) and never echoed in errors.
 */
import { DURATION_HINT, tryParseDuration } from '../units.js';
import type { KeySpec } from './types.js';

const fail = (msg: string): never => {
  throw new Error(msg);
};

/** The longest group name, as checkName allows. */
const GROUP_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** A postgres:// or postgresql:// URL; '' means no fleet. The value is never part of a message. */
function pgUrl(raw: unknown): unknown {
  if (typeof raw !== 'string') fail('expected a postgres:// URL as a string');
  const s = raw as string;
  if (s === '') return s;
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    return fail('expected a postgres://[user@]host[:port]/database URL (the value is not shown: it may hold a password)');
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') fail(`expected a postgres:// or postgresql:// URL, got a ${u.protocol.replace(/:$/, '')}: URL`);
  if (u.hostname === '' && !u.searchParams.has('host')) fail('expected a host in the URL (postgres://user@host:5432/database)');
  return s;
}

/** The URL without its password (and without a password= query parameter): what may be shown. */
export function redactUrl(url: string): string {
  if (url === '') return url;
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = 'REDACTED';
    if (u.searchParams.has('password')) u.searchParams.set('password', 'REDACTED');
    return u.toString();
  } catch {
    return '(not shown)';
  }
}

function hostId(raw: unknown): unknown {
  if (typeof raw !== 'string') fail('expected a host id as a string');
  if (raw !== '' && !GROUP_RE.test(raw as string)) fail('expected letters, digits, ".", "_" or "-" (at most 64), starting with a letter or digit');
  return raw;
}

function durationMs(min: number, max: number, minText: string, maxText: string) {
  return (raw: unknown): unknown => {
    if (typeof raw !== 'string') fail(`expected ${DURATION_HINT} as a string`);
    const ms = tryParseDuration(raw as string);
    if (ms === undefined) fail(`expected ${DURATION_HINT}, got ${JSON.stringify(raw)}`);
    if (ms! < min || ms! > max) fail(`${raw as string} is out of range (${minText} to ${maxText})`);
    return ms;
  };
}

export const UNREACHABLE_MODES = ['refuse', 'admit'] as const;
export type UnreachableMode = (typeof UNREACHABLE_MODES)[number];

function unreachable(raw: unknown): unknown {
  if (typeof raw !== 'string' || !(UNREACHABLE_MODES as readonly string[]).includes(raw)) fail(`expected one of ${UNREACHABLE_MODES.map((m) => JSON.stringify(m)).join(', ')}`);
  return raw;
}

export const MAX_FLEET_CAP = 100_000;

/** Why one [fleet.caps] entry is wrong, or undefined. Checked per entry so errors name the line. */
export function capProblem(group: string, value: unknown): string | undefined {
  if (!GROUP_RE.test(group)) return 'expected a group name: letters, digits, ".", "_" or "-" (at most 64), starting with a letter or digit';
  if (!Number.isInteger(value) || (value as number) < 1 || (value as number) > MAX_FLEET_CAP) return `expected a whole number from 1 to ${MAX_FLEET_CAP}`;
  return undefined;
}

function caps(raw: unknown): unknown {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail('expected a table of group = fleet-wide maximum, e.g. [fleet.caps] claude = 10');
  for (const [g, v] of Object.entries(raw as Record<string, unknown>)) {
    const p = capProblem(g, v);
    if (p) fail(`${g}: ${p}`);
  }
  return { ...(raw as Record<string, number>) };
}

/** AGENTCTL_FLEET_CAPS="claude=10,batch=3" */
const envCaps = (t: string): unknown => {
  const out: Record<string, unknown> = {};
  for (const part of t.split(',').map((s) => s.trim())) {
    if (part === '') continue;
    const m = /^([^=\s]+)\s*=\s*(\S+)$/.exec(part);
    if (!m) return t; // the validator says what is expected
    out[m[1]!] = /^\d+$/.test(m[2]!) ? Number(m[2]) : m[2];
  }
  return out;
};
const envStr = (t: string) => t;

export const FLEET_KEYS: readonly KeySpec[] = [
  { section: 'fleet', key: 'url', default: '', validate: pgUrl, fromEnv: envStr, doc: 'postgres:// URL of the fleet lease store ("" = no fleet); the password may come from PGPASSWORD or ~/.pgpass' },
  { section: 'fleet', key: 'host_id', default: '', validate: hostId, fromEnv: envStr, doc: 'this host in the fleet ("" = the machine id)' },
  { section: 'fleet', key: 'lease_ttl', default: '5m', validate: durationMs(1000, 86_400_000, '1s', '1d'), fromEnv: envStr, doc: 'a lease not renewed this long expires (by the database clock)' },
  { section: 'fleet', key: 'timeout', default: '2s', validate: durationMs(100, 60_000, '100ms', '60s'), fromEnv: envStr, doc: 'bound on every database call (connect, statement)' },
  {
    section: 'fleet',
    key: 'on_unreachable',
    default: 'refuse',
    validate: unreachable,
    fromEnv: envStr,
    doc: 'when PostgreSQL cannot be reached: refuse fleet-capped spawns (exit 75) or admit them with a warning',
  },
  { section: 'fleet', key: 'caps', default: {}, validate: caps, fromEnv: envCaps, doc: 'group = fleet-wide maximum of live runs, e.g. claude = 10' },
];
