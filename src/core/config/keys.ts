/**
 * The key table: every key the config knows, its default, its validator and how an
 * AGENTCTL_* variable's text becomes its value. Adding a key is adding one entry to KEYS.
 */
import { DURATION_HINT, SIZE_HINT, tryParseDuration, tryParseSize } from '../units.js';
import { FLEET_KEYS, redactUrl } from './fleet-keys.js';
import type { KeySpec, ServiceSpec, Validator } from './types.js';

export type { KeySpec, Validator } from './types.js';

const fail = (msg: string): never => {
  throw new Error(msg);
};

const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

function percentTriple(raw: unknown): unknown {
  if (!Array.isArray(raw) || raw.length !== 3 || !raw.every(isNum)) {
    fail('expected three percentages, e.g. [70, 80, 90]');
  }
  const a = raw as number[];
  if (a.some((v) => v <= 0 || v > 100)) fail(`expected percentages above 0 and at most 100, got [${a.join(', ')}]`);
  if (!(a[0]! < a[1]! && a[1]! < a[2]!)) fail(`expected three ascending percentages, got [${a.join(', ')}]`);
  return a;
}

function intList4(min: number, max: number, order: 'desc' | 'asc'): Validator {
  return (raw) => {
    if (!Array.isArray(raw) || raw.length !== 4 || !raw.every((v) => Number.isInteger(v))) {
      fail(`expected four whole numbers, one per level 0..3`);
    }
    const a = raw as number[];
    if (a.some((v) => v < min || v > max)) fail(`expected values from ${min} to ${max}, got [${a.join(', ')}]`);
    for (let i = 1; i < 4; i++) {
      if (order === 'desc' ? a[i]! > a[i - 1]! : a[i]! < a[i - 1]!) {
        fail(`expected values that ${order === 'desc' ? 'do not grow' : 'do not shrink'} from level 0 to 3, got [${a.join(', ')}]`);
      }
    }
    return a;
  };
}

function stringList(count: number | undefined, allowed?: readonly string[]): Validator {
  return (raw) => {
    if (!Array.isArray(raw) || !raw.every((v) => typeof v === 'string')) fail('expected a list of strings');
    const a = raw as string[];
    if (count !== undefined && a.length !== count) fail(`expected ${count} strings, one per level 0..${count - 1}`);
    if (allowed) for (const v of a) if (!allowed.includes(v)) fail(`${JSON.stringify(v)} is not one of ${allowed.join(', ')}`);
    return a;
  };
}

function regex(raw: unknown): unknown {
  if (typeof raw !== 'string' || raw === '') fail('expected a non-empty regular expression string');
  try {
    new RegExp(raw as string);
  } catch (err) {
    fail(`invalid regular expression: ${(err as Error).message}`);
  }
  return raw;
}

function regexList(raw: unknown): unknown {
  if (!Array.isArray(raw)) fail('expected a list of regular expression strings');
  (raw as unknown[]).forEach((r) => regex(r));
  return raw;
}

/**
 * A duration key from `min` to `max` ms. Keys that feed a timer (kill_grace, reap.grace,
 * cpu_window, a service's timeout) keep `max` within MAX_TIMER_MS (24 days; units.ts): Node's
 * timers fire at once beyond 2^31-1 ms. The others are compared with timestamps.
 */
export function duration(min: number, max: number): Validator {
  return (raw) => {
    if (typeof raw !== 'string') fail(`expected ${DURATION_HINT} as a string`);
    const ms = tryParseDuration(raw as string);
    if (ms === undefined) fail(`expected ${DURATION_HINT}, got ${JSON.stringify(raw)}`);
    if (ms! < min || ms! > max) fail(`${raw as string} is out of range (${fmtMs(min)} to ${fmtMs(max)})`);
    return ms;
  };
}

function int(min: number, max: number): Validator {
  return (raw) => {
    if (!Number.isInteger(raw)) fail(`expected a whole number from ${min} to ${max}`);
    if ((raw as number) < min || (raw as number) > max) fail(`${raw as number} is out of range (${min} to ${max})`);
    return raw;
  };
}

function ascendingPair(min: number, max: number): Validator {
  return (raw) => {
    if (!Array.isArray(raw) || raw.length !== 2 || !raw.every(isNum)) fail('expected two numbers [warn, fail]');
    const [w, f] = raw as [number, number];
    if (w < min || f > max || w > f) fail(`expected ${min} <= warn <= fail <= ${max}, got [${w}, ${f}]`);
    return raw;
  };
}

function descendingPair(min: number, max: number): Validator {
  return (raw) => {
    if (!Array.isArray(raw) || raw.length !== 2 || !raw.every(isNum)) fail('expected two numbers [warn, fail]');
    const [w, f] = raw as [number, number];
    if (f < min || w > max || w < f) fail(`expected ${max} >= warn >= fail >= ${min}, got [${w}, ${f}]`);
    return raw;
  };
}

function sizePair(raw: unknown): unknown {
  if (!Array.isArray(raw) || raw.length !== 2) fail('expected two sizes [warn, fail], e.g. ["1G", "100M"]');
  const [w, f] = (raw as unknown[]).map((x) => (typeof x === 'string' ? tryParseSize(x) : Number.isInteger(x) ? (x as number) : undefined));
  if (w === undefined || f === undefined) fail(`expected ${SIZE_HINT} for both`);
  if (w! < f!) fail('expected warn >= fail');
  return [w, f];
}

/** A number (decimals allowed) from `min` to `max`. */
function number(min: number, max: number): Validator {
  return (raw) => {
    if (!isNum(raw)) fail(`expected a number from ${min} to ${max}`);
    if ((raw as number) < min || (raw as number) > max) fail(`${raw as number} is out of range (${min} to ${max})`);
    return raw;
  };
}

/** A percentage where 0 is allowed: a threshold of 0 is always reached. */
const pct0 = number(0, 100);

function bool(raw: unknown): unknown {
  if (typeof raw !== 'boolean') fail('expected true or false');
  return raw;
}

function size(min: number, max: number): Validator {
  return (raw) => {
    const bytes = typeof raw === 'string' ? tryParseSize(raw) : Number.isInteger(raw) ? (raw as number) : undefined;
    if (bytes === undefined) fail(`expected ${SIZE_HINT}`);
    if (bytes! < min || bytes! > max) fail(`${String(raw)} is out of range`);
    return bytes;
  };
}

function portRange(raw: unknown): unknown {
  const m = typeof raw === 'string' ? /^(\d{1,5})-(\d{1,5})$/.exec(raw) : null;
  if (!m) fail('expected a port range like "20000-20999"');
  const from = Number(m![1]);
  const to = Number(m![2]);
  if (from < 1024 || to > 65535 || from > to) fail(`expected 1024 <= first <= last <= 65535, got "${raw as string}"`);
  return { from, to };
}

/** A duration as the config writes it, in the largest unit that holds it whole: 600000 is "10m", not "600s". */
const UNITS: ReadonlyArray<[string, number]> = [
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1000],
];
export const fmtMs = (ms: number): string => {
  if (ms === 0) return '0s';
  const unit = UNITS.find(([, n]) => ms % n === 0);
  return unit ? `${ms / unit[1]}${unit[0]}` : `${ms}ms`;
};

const envList = (t: string) =>
  t
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
const envNums = (t: string) => envList(t).map((s) => (/^-?\d+(\.\d+)?$/.test(s) ? Number(s) : s));
const envNum = (t: string) => (/^\d+(\.\d+)?$/.test(t.trim()) ? Number(t.trim()) : t);
const envInt = (t: string) => (/^-?\d+$/.test(t.trim()) ? Number(t.trim()) : t);
const envStr = (t: string) => t;
const envBool = (t: string) => (/^(1|true|yes|on)$/i.test(t) ? true : /^(0|false|no|off)$/i.test(t) ? false : t);
/** An on/off switch in the environment (AGENTCTL_DISABLE_THROTTLE, AGENTCTL_NO_FORKER) is on: 1, true, yes or on, any case. */
export const envOn = (value: string | undefined): boolean => envBool(value ?? '') === true;

const LEVEL_EFFORTS = ['low', 'medium', 'high'] as const;

/** Every key the config knows, in display order. Adding a key is adding one entry. */
export const KEYS: readonly KeySpec[] = [
  { section: 'throttle', key: 'memory_pct', default: [70, 80, 90], validate: percentTriple, fromEnv: envNums, doc: 'memory used % at which levels 1, 2, 3 begin' },
  { section: 'throttle', key: 'cpu_pct', default: [60, 75, 90], validate: percentTriple, fromEnv: envNums, doc: 'CPU used % at which levels 1, 2, 3 begin' },
  { section: 'throttle', key: 'max_agents', default: [5, 3, 2, 1], validate: intList4(1, 1000, 'desc'), fromEnv: envNums, doc: 'agents allowed at levels 0..3' },
  { section: 'throttle', key: 'batch_size', default: [100, 50, 25, 10], validate: intList4(1, 1_000_000, 'desc'), fromEnv: envNums, doc: 'batch size at levels 0..3' },
  { section: 'throttle', key: 'delay_ms', default: [0, 500, 1000, 2000], validate: intList4(0, 3_600_000, 'asc'), fromEnv: envNums, doc: 'delay between work items at levels 0..3' },
  { section: 'throttle', key: 'max_concurrent', default: [3, 2, 1, 1], validate: intList4(1, 1000, 'desc'), fromEnv: envNums, doc: 'concurrent requests per agent at levels 0..3' },
  {
    section: 'throttle',
    key: 'reasoning_effort',
    default: ['high', 'high', 'medium', 'low'],
    validate: stringList(4, LEVEL_EFFORTS),
    fromEnv: envList,
    doc: 'reasoning effort at levels 0..3 (low, medium, high)',
  },
  { section: 'throttle', key: 'recovery_interval', default: '30s', validate: duration(0, 86_400_000), fromEnv: envStr, doc: 'calm time needed to drop one level' },
  { section: 'throttle', key: 'sample_max_age', default: '2m', validate: duration(1000, 3_600_000), fromEnv: envStr, doc: 'oldest stored sample CPU is measured against (at least twice cpu_window)' },
  {
    section: 'throttle',
    key: 'cpu_window',
    default: '10s',
    validate: duration(50, 600_000),
    fromEnv: envStr,
    doc: 'span CPU use is judged over; a shorter one counts only when the host is saturated',
  },
  { section: 'throttle', key: 'psi_memory_full', default: 5, validate: pct0, fromEnv: envNum, doc: 'memory PSI full avg10 % at which the level is at least 2' },
  { section: 'throttle', key: 'psi_memory_some', default: 20, validate: pct0, fromEnv: envNum, doc: 'memory PSI some avg10 % at which the level is at least 1' },
  { section: 'throttle', key: 'swap_in_rate', default: 100, validate: number(0, 1_000_000_000), fromEnv: envNum, doc: 'pages swapped in per second at which the level is at least 2' },
  { section: 'throttle', key: 'load_per_core', default: 0, validate: number(0, 1000), fromEnv: envNum, doc: 'one-minute load per core at which the level is at least 1 (0 = off)' },
  { section: 'spawn', key: 'min_uptime', default: '10s', validate: duration(0, 86_400_000), fromEnv: envStr, doc: 'an exit sooner is a startup error' },
  { section: 'spawn', key: 'cooldown', default: '0s', validate: duration(0, 86_400_000), fromEnv: envStr, doc: 'per name, between two spawns (0s = off)' },
  { section: 'spawn', key: 'min_interval', default: '0s', validate: duration(0, 86_400_000), fromEnv: envStr, doc: 'host-wide, between any two spawns (0s = off)' },
  { section: 'spawn', key: 'backoff_startup', default: '300s', validate: duration(0, 86_400_000), fromEnv: envStr, doc: 'first delay after a startup error (doubles per failure)' },
  { section: 'spawn', key: 'backoff_failure', default: '60s', validate: duration(0, 86_400_000), fromEnv: envStr, doc: 'first delay after another failure (doubles per failure)' },
  { section: 'spawn', key: 'backoff_max', default: '1h', validate: duration(0, 7 * 86_400_000), fromEnv: envStr, doc: 'longest backoff' },
  { section: 'spawn', key: 'breaker_failures', default: 3, validate: int(1, 1000), fromEnv: envInt, doc: 'consecutive failures that open the breaker' },
  { section: 'spawn', key: 'max_restarts_per_hour', default: 50, validate: int(1, 100_000), fromEnv: envInt, doc: 'starts per rolling hour that open the breaker' },
  { section: 'spawn', key: 'breaker_pause', default: '1h', validate: duration(0, 7 * 86_400_000), fromEnv: envStr, doc: 'how long an open breaker refuses before one trial run' },
  { section: 'spawn', key: 'reset_after', default: '10m', validate: duration(0, 7 * 86_400_000), fromEnv: envStr, doc: 'uptime that forgives earlier failures' },
  {
    section: 'spawn',
    key: 'host_breaker_failures',
    default: 5,
    validate: int(0, 100_000),
    fromEnv: envInt,
    doc: 'startup errors across all names within host_breaker_window above which every spawn on the host pauses (0 = off)',
  },
  { section: 'spawn', key: 'host_breaker_window', default: '10m', validate: duration(1000, 86_400_000), fromEnv: envStr, doc: 'the window the host breaker counts startup errors in' },
  { section: 'spawn', key: 'host_breaker_pause', default: '10m', validate: duration(0, 86_400_000), fromEnv: envStr, doc: 'how long an open host breaker refuses every spawn' },
  { section: 'spawn', key: 'count_unmanaged', default: true, validate: bool, fromEnv: envBool, doc: 'count agents agentctl did not start against caps' },
  { section: 'spawn', key: 'kill_grace', default: '10s', validate: duration(0, 3_600_000), fromEnv: envStr, doc: 'TERM, then this long, then KILL' },
  { section: 'spawn', key: 'log_max', default: '10M', validate: size(4096, 1024 ** 4), fromEnv: envStr, doc: 'detached output kept per run' },
  { section: 'spawn', key: 'logs_per_name', default: 5, validate: int(1, 1000), fromEnv: envInt, doc: 'detached logs kept per name' },
  { section: 'ports', key: 'range', default: '20000-20999', validate: portRange, fromEnv: envStr, doc: 'port pool for leases' },
  { section: 'reap', key: 'max_runtime', default: '0s', validate: duration(0, 365 * 86_400_000), fromEnv: envStr, doc: 'reap ends runs older than this (0s = off; --timeout overrides)' },
  {
    section: 'reap',
    key: 'idle',
    default: '0s',
    validate: duration(0, 365 * 86_400_000),
    fromEnv: envStr,
    doc: 'reap ends runs with no CPU progress and no log output this long (0s = off; --idle overrides)',
  },
  { section: 'reap', key: 'grace', default: '10s', validate: duration(0, 3_600_000), fromEnv: envStr, doc: 'reap: TERM, then this long, then KILL (--grace overrides)' },
  { section: 'dedupe', key: 'ignore', default: [], validate: regexList, fromEnv: envList, doc: 'command-line regexes dedupe-workers never touches' },
  { section: 'doctor', key: 'load_per_core', default: [0.75, 1.0], validate: ascendingPair(0, 100), fromEnv: envNums, doc: 'load per core: warn, fail' },
  { section: 'doctor', key: 'cpu_idle_warn', default: 20, validate: int(0, 100), fromEnv: envInt, doc: 'warn when CPU idle % is below this' },
  { section: 'doctor', key: 'memory_available', default: [20, 10], validate: descendingPair(0, 100), fromEnv: envNums, doc: 'memory available %: warn below, fail below' },
  { section: 'doctor', key: 'psi_memory_warn', default: 10, validate: int(0, 100), fromEnv: envInt, doc: 'warn when memory PSI some avg10 % reaches this' },
  { section: 'doctor', key: 'failure_rate', default: [20, 50], validate: ascendingPair(0, 100), fromEnv: envNums, doc: '24 h failure rate %: warn above, fail above' },
  { section: 'doctor', key: 'port_pool_warn', default: 80, validate: int(1, 100), fromEnv: envInt, doc: 'warn when this % of the port pool is leased' },
  { section: 'doctor', key: 'spawn_loop_errors', default: 5, validate: int(1, 10_000), fromEnv: envInt, doc: 'startup errors of one name in 10 min that count as a spawn loop' },
  {
    section: 'doctor',
    key: 'restart_loop_count',
    default: 5,
    validate: int(2, 10_000),
    fromEnv: envInt,
    doc: 'short-lived processes of one command line within restart_loop_window that count as a restart loop',
  },
  { section: 'doctor', key: 'restart_loop_window', default: '10m', validate: duration(60_000, 86_400_000), fromEnv: envStr, doc: 'the window restart loops are counted in' },
  { section: 'doctor', key: 'restart_loop_lifetime', default: '60s', validate: duration(1000, 3_600_000), fromEnv: envStr, doc: 'a process last seen younger than this, then gone, lived short' },
  { section: 'doctor', key: 'disk_free', default: ['1G', '100M'], validate: sizePair, fromEnv: envList, doc: 'free disk in the state folder: warn below, fail below' },
  { section: 'env', key: 'ttl', default: '24h', validate: duration(60_000, 365 * 86_400_000), fromEnv: envStr, doc: 'how long an environment lives unless env create --ttl says otherwise' },
  {
    section: 'agents',
    key: 'patterns',
    // claude sessions; MCP servers as the official packages and common naming run them:
    // @modelcontextprotocol/server-x, mcp-server-x (uvx), x_mcp_server.py, filesystem-mcp
    default: ['(^|/)claude(\\s|$)', '@anthropic-ai/claude-code', '@modelcontextprotocol/server-', '(^|[/\\s_-])mcp[-_]server', '[\\w.-][-_]mcp(\\.[a-z]+)?(\\s|$)'],
    validate: regexList,
    fromEnv: envList,
    doc: 'command-line regexes of processes that count as agents',
  },
  { section: 'agents', key: 'claude', default: '(^|/)claude(\\s|$)|@anthropic-ai/claude-code', validate: regex, fromEnv: envStr, doc: 'command-line regex counted as claude_processes' },
  { section: 'state', key: 'events_max_age', default: '30d', validate: duration(3_600_000, 365 * 86_400_000), fromEnv: envStr, doc: 'events older than this are pruned' },
  { section: 'state', key: 'events_max_rows', default: 200_000, validate: int(1000, 100_000_000), fromEnv: envInt, doc: 'events kept at most' },
  { section: 'state', key: 'samples_max_age', default: '1d', validate: duration(60_000, 365 * 86_400_000), fromEnv: envStr, doc: 'resource samples older than this are pruned' },
  { section: 'state', key: 'samples_max_rows', default: 10_000, validate: int(100, 10_000_000), fromEnv: envInt, doc: 'resource samples kept at most' },
  ...FLEET_KEYS,
];

export const SERVICE_KEYS = ['name', 'pidfile', 'match', 'port', 'url', 'expect_status', 'timeout'] as const;

/** The keys of an `[[agents]]` entry (the fleet `agentctl up` keeps running; core/config/agents.ts). */
export const AGENT_KEYS = ['name', 'command', 'cwd', 'group', 'priority', 'instances', 'env', 'requires', 'timeout', 'memory_max', 'cpu_time', 'nice', 'restart', 'env_vars'] as const;

/** `section.key` → AGENTCTL_SECTION_KEY */
export function envName(section: string, key: string): string {
  return `AGENTCTL_${section}_${key}`.toUpperCase();
}

/** Values as a person would write them in TOML (durations as text, ranges as "a-b"). */
export function displayValue(key: string, value: unknown): unknown {
  const spec = KEYS.find((s) => `${s.section}.${s.key}` === key);
  if (key === 'ports.range') {
    const r = value as { from: number; to: number };
    return `${r.from}-${r.to}`;
  }
  if (key === 'spawn.log_max') return value;
  if (key === 'fleet.url') return redactUrl(value as string); // a password never leaves the config
  if (key === 'doctor.disk_free') return (value as number[]).map((b) => `${Math.round(b / 1024 / 1024)}M`);
  if (spec && typeof spec.default === 'string' && typeof value === 'number') return fmtMs(value);
  return value;
}

export function displayService(s: ServiceSpec): Record<string, unknown> {
  const { timeoutMs, ...rest } = s;
  return { ...rest, timeout: fmtMs(timeoutMs) };
}
