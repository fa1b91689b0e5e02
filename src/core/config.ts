/**
 * Configuration: TOML files, AGENTCTL_* environment, flags, built-in defaults.
 * Precedence: flag > AGENTCTL_* env > ./agentctl.toml > ~/.config/agentctl/config.toml > defaults.
 * `--config FILE` (or AGENTCTL_CONFIG) names the one file to read instead of the two defaults.
 * Unknown keys and out-of-range values are errors naming the file, key and line.
 * The two default files are read only when they (and their folder) belong to the invoking user
 * or root and no one else can write them; others are ignored with a reason (LoadedConfig.ignored).
 * A file named by --config or AGENTCTL_CONFIG is trusted: the caller chose it.
 */
import { readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { ConfigError, UsageError } from './errors.js';
import { trustFix, untrusted } from './fsutil.js';
import type { PolicySettings } from './spawn/policy.js';
import { DEFAULT_THROTTLE, type ThrottleSettings } from './throttle.js';
import { DURATION_HINT, SIZE_HINT, tryParseDuration, tryParseSize } from './units.js';

/** Where an effective value came from. */
export type SourceKind = 'default' | 'user' | 'project' | 'file' | 'env' | 'flag';
export interface Source {
  readonly kind: SourceKind;
  /** File path, variable name or flag. */
  readonly detail: string;
}

export interface ServiceSpec {
  readonly name: string;
  readonly pidfile?: string;
  readonly match?: string;
  readonly port?: number;
  readonly url?: string;
  /** @default 200 */
  readonly expect_status: number;
  /** HTTP/TCP check timeout in ms. @default 2000 */
  readonly timeoutMs: number;
}

/** doctor's thresholds, from [doctor] (and [throttle] for the level's cap). */
export interface DoctorThresholds {
  readonly loadWarn: number;
  readonly loadFail: number;
  readonly cpuIdleWarn: number;
  readonly memWarn: number;
  readonly memFail: number;
  readonly psiWarn: number;
  readonly failRateWarn: number;
  readonly failRateFail: number;
  readonly poolWarn: number;
  readonly spawnLoopErrors: number;
  /** distinct short-lived processes of one command line that make a restart loop. @default 5 */
  readonly restartLoopCount: number;
  /** the window they are counted in. @default 10 min */
  readonly restartLoopWindowMs: number;
  /** a process last seen younger than this, then gone, lived short. @default 60 s */
  readonly restartLoopLifetimeMs: number;
  readonly diskWarnBytes: number;
  readonly diskFailBytes: number;
}

export interface Config {
  readonly throttle: ThrottleSettings & {
    /** A stored sample older than this (or than twice cpuWindowMs) is not used to compute CPU. @default 2 min */
    readonly sampleMaxAgeMs: number;
    /**
     * The span CPU use is judged over: measured against a stored sample at least this old. A reading
     * over less (no such sample) raises the level only when the host is saturated. @default 10 s
     */
    readonly cpuWindowMs: number;
  };
  readonly spawn: {
    /** An exit sooner is a startup error: retrying at once cannot help. @default 10 s */
    readonly minUptimeMs: number;
    /** Per name, between two spawns. @default 0 (off) */
    readonly cooldownMs: number;
    /** Host-wide, between any two spawns. @default 0 (off) */
    readonly minIntervalMs: number;
    /** Backoff, breaker and reset settings (see core/spawn/policy.ts). */
    readonly policy: PolicySettings;
    /** Count agent-pattern processes agentctl did not start against group caps. @default true */
    readonly countUnmanaged: boolean;
    /** TERM, then this long, then KILL. @default 10 s */
    readonly killGraceMs: number;
    /** Detached output per run is kept to this many bytes (older logs of a name are removed). @default 10M */
    readonly logMaxBytes: number;
    /** Logs kept per name. @default 5 */
    readonly logsPerName: number;
  };
  readonly ports: { readonly from: number; readonly to: number };
  readonly env: {
    /** An environment's default time to live. @default 24 h */
    readonly ttlMs: number;
  };
  readonly reap: {
    /** 0 = off. @default 0 */
    readonly maxRuntimeMs: number;
    /** 0 = off. @default 0 */
    readonly idleMs: number;
    /** @default 10 s */
    readonly graceMs: number;
  };
  readonly dedupe: { readonly ignore: readonly string[] };
  readonly doctor: DoctorThresholds;
  readonly agents: {
    /** Regular expressions matched against a process's command line; a match counts as an agent. */
    readonly patterns: readonly string[];
    /** Regular expression for the `claude_processes` count. */
    readonly claude: string;
  };
  readonly services: readonly ServiceSpec[];
  readonly state: {
    readonly eventsMaxAgeMs: number;
    readonly eventsMaxRows: number;
    readonly samplesMaxAgeMs: number;
    readonly samplesMaxRows: number;
  };
}

type Validator = (raw: unknown) => unknown; // returns the normalised value or throws Error(message)

interface KeySpec {
  readonly section: string;
  readonly key: string;
  readonly default: unknown;
  readonly validate: Validator;
  /** How a value from an environment variable (a string) becomes a TOML-like value. */
  readonly fromEnv: (text: string) => unknown;
  readonly doc: string;
}

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
function duration(min: number, max: number): Validator {
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

const fmtMs = (ms: number) => (ms === 0 ? '0s' : ms % 86_400_000 === 0 ? `${ms / 86_400_000}d` : ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`);

const envList = (t: string) => t.split(',').map((s) => s.trim()).filter((s) => s !== '');
const envNums = (t: string) => envList(t).map((s) => (/^-?\d+(\.\d+)?$/.test(s) ? Number(s) : s));
const envNum = (t: string) => (/^\d+(\.\d+)?$/.test(t.trim()) ? Number(t.trim()) : t);
const envInt = (t: string) => (/^-?\d+$/.test(t.trim()) ? Number(t.trim()) : t);
const envStr = (t: string) => t;
const envBool = (t: string) => (/^(1|true|yes|on)$/i.test(t) ? true : /^(0|false|no|off)$/i.test(t) ? false : t);

const LEVEL_EFFORTS = ['low', 'medium', 'high'] as const;

/** Every key the config knows, in display order. Adding a key is adding one entry. */
export const KEYS: readonly KeySpec[] = [
  { section: 'throttle', key: 'memory_pct', default: [70, 80, 90], validate: percentTriple, fromEnv: envNums, doc: 'memory used % at which levels 1, 2, 3 begin' },
  { section: 'throttle', key: 'cpu_pct', default: [60, 75, 90], validate: percentTriple, fromEnv: envNums, doc: 'CPU used % at which levels 1, 2, 3 begin' },
  { section: 'throttle', key: 'max_agents', default: [5, 3, 2, 1], validate: intList4(1, 1000, 'desc'), fromEnv: envNums, doc: 'agents allowed at levels 0..3' },
  { section: 'throttle', key: 'batch_size', default: [100, 50, 25, 10], validate: intList4(1, 1_000_000, 'desc'), fromEnv: envNums, doc: 'batch size at levels 0..3' },
  { section: 'throttle', key: 'delay_ms', default: [0, 500, 1000, 2000], validate: intList4(0, 3_600_000, 'asc'), fromEnv: envNums, doc: 'delay between work items at levels 0..3' },
  { section: 'throttle', key: 'max_concurrent', default: [3, 2, 1, 1], validate: intList4(1, 1000, 'desc'), fromEnv: envNums, doc: 'concurrent requests per agent at levels 0..3' },
  { section: 'throttle', key: 'reasoning_effort', default: ['high', 'high', 'medium', 'low'], validate: stringList(4, LEVEL_EFFORTS), fromEnv: envList, doc: 'reasoning effort at levels 0..3 (low, medium, high)' },
  { section: 'throttle', key: 'recovery_interval', default: '30s', validate: duration(0, 86_400_000), fromEnv: envStr, doc: 'calm time needed to drop one level' },
  { section: 'throttle', key: 'sample_max_age', default: '2m', validate: duration(1000, 3_600_000), fromEnv: envStr, doc: 'oldest stored sample CPU is measured against (at least twice cpu_window)' },
  { section: 'throttle', key: 'cpu_window', default: '10s', validate: duration(50, 600_000), fromEnv: envStr, doc: 'span CPU use is judged over; a shorter one counts only when the host is saturated' },
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
  { section: 'spawn', key: 'host_breaker_failures', default: 5, validate: int(0, 100_000), fromEnv: envInt, doc: 'startup errors across all names within host_breaker_window above which every spawn on the host pauses (0 = off)' },
  { section: 'spawn', key: 'host_breaker_window', default: '10m', validate: duration(1000, 86_400_000), fromEnv: envStr, doc: 'the window the host breaker counts startup errors in' },
  { section: 'spawn', key: 'host_breaker_pause', default: '10m', validate: duration(0, 86_400_000), fromEnv: envStr, doc: 'how long an open host breaker refuses every spawn' },
  { section: 'spawn', key: 'count_unmanaged', default: true, validate: bool, fromEnv: envBool, doc: 'count agents agentctl did not start against caps' },
  { section: 'spawn', key: 'kill_grace', default: '10s', validate: duration(0, 3_600_000), fromEnv: envStr, doc: 'TERM, then this long, then KILL' },
  { section: 'spawn', key: 'log_max', default: '10M', validate: size(4096, 1024 ** 4), fromEnv: envStr, doc: 'detached output kept per run' },
  { section: 'spawn', key: 'logs_per_name', default: 5, validate: int(1, 1000), fromEnv: envInt, doc: 'detached logs kept per name' },
  { section: 'ports', key: 'range', default: '20000-20999', validate: portRange, fromEnv: envStr, doc: 'port pool for leases' },
  { section: 'reap', key: 'max_runtime', default: '0s', validate: duration(0, 365 * 86_400_000), fromEnv: envStr, doc: 'reap ends runs older than this (0s = off; --timeout overrides)' },
  { section: 'reap', key: 'idle', default: '0s', validate: duration(0, 365 * 86_400_000), fromEnv: envStr, doc: 'reap ends runs with no CPU progress and no log output this long (0s = off; --idle overrides)' },
  { section: 'reap', key: 'grace', default: '10s', validate: duration(0, 3_600_000), fromEnv: envStr, doc: 'reap: TERM, then this long, then KILL (--grace overrides)' },
  { section: 'dedupe', key: 'ignore', default: [], validate: regexList, fromEnv: envList, doc: 'command-line regexes dedupe-workers never touches' },
  { section: 'doctor', key: 'load_per_core', default: [0.75, 1.0], validate: ascendingPair(0, 100), fromEnv: envNums, doc: 'load per core: warn, fail' },
  { section: 'doctor', key: 'cpu_idle_warn', default: 20, validate: int(0, 100), fromEnv: envInt, doc: 'warn when CPU idle % is below this' },
  { section: 'doctor', key: 'memory_available', default: [20, 10], validate: descendingPair(0, 100), fromEnv: envNums, doc: 'memory available %: warn below, fail below' },
  { section: 'doctor', key: 'psi_memory_warn', default: 10, validate: int(0, 100), fromEnv: envInt, doc: 'warn when memory PSI some avg10 % reaches this' },
  { section: 'doctor', key: 'failure_rate', default: [20, 50], validate: ascendingPair(0, 100), fromEnv: envNums, doc: '24 h failure rate %: warn above, fail above' },
  { section: 'doctor', key: 'port_pool_warn', default: 80, validate: int(1, 100), fromEnv: envInt, doc: 'warn when this % of the port pool is leased' },
  { section: 'doctor', key: 'spawn_loop_errors', default: 5, validate: int(1, 10_000), fromEnv: envInt, doc: 'startup errors of one name in 10 min that count as a spawn loop' },
  { section: 'doctor', key: 'restart_loop_count', default: 5, validate: int(2, 10_000), fromEnv: envInt, doc: 'short-lived processes of one command line within restart_loop_window that count as a restart loop' },
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
];

const SERVICE_KEYS = ['name', 'pidfile', 'match', 'port', 'url', 'expect_status', 'timeout'] as const;

/** `section.key` → AGENTCTL_SECTION_KEY */
export function envName(section: string, key: string): string {
  return `AGENTCTL_${section}_${key}`.toUpperCase();
}

/** Config values given on the command line, keyed `section.key`, with the flag that gave them. */
export type FlagValues = Record<string, { value: unknown; flag: string }>;

export interface LoadOptions {
  /** Explicit file from `--config`; replaces the project and user files. */
  readonly configPath?: string | undefined;
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  readonly home?: string;
  readonly flags?: FlagValues;
  /** Read no files and no environment: the built-in defaults (doctor's fallback when the config is broken). */
  readonly defaultsOnly?: boolean;
}

export interface LoadedConfig {
  readonly config: Config;
  /** Every effective value with its source, keyed `section.key`, in display order. */
  readonly entries: ReadonlyArray<{ key: string; value: unknown; source: Source }>;
  /** The files that were read, lowest precedence first. */
  readonly files: readonly string[];
  /** 64-bit FNV-1a of the effective values (16 hex digits), to tell which config a run started under. */
  readonly hash: string;
  /** Default config files that exist but were not read: another user could have written them. */
  readonly ignored: readonly IgnoredConfig[];
}

export interface IgnoredConfig {
  readonly path: string;
  /** what is wrong and the fix: "owned by bob (uid 1001), mode 0644: not yours or root's; fix: ..." */
  readonly reason: string;
}

/** The warning printed for an ignored file (on stderr, unless --quiet). */
export const ignoredWarning = (i: IgnoredConfig) => `agentctl: ignoring config file ${i.path}: ${i.reason}; or name it with --config to use it anyway`;

/**
 * Why a default config file is not to be read, or undefined when it may be: the file (links
 * followed) and the folder it is in must belong to the invoking user or root and be writable
 * by no one else (a sticky folder such as /tmp excepted), like git's safe.directory. A file
 * that is not there is for readLayer to handle.
 */
export function configDistrust(path: string): string | undefined {
  const stat = (p: string) => {
    try {
      return statSync(p);
    } catch {
      return undefined;
    }
  };
  const st = stat(path);
  if (!st) return undefined;
  const u = untrusted(st);
  if (u) return `${u.what}: ${u.why}; fix: ${trustFix(path, u, 'go-w')}`;
  const dir = dirname(path);
  const dst = stat(dir);
  const d = dst && untrusted(dst, undefined, true);
  if (d) return `its folder ${dir} is ${d.what}: ${d.why}; fix: ${trustFix(dir, d, 'go-w')}`;
  return undefined;
}

interface FileLayer {
  readonly kind: SourceKind;
  readonly path: string;
  readonly text: string;
  readonly data: Record<string, unknown>;
}

/** Where config files are looked for, in precedence order lowest first. */
export function configCandidates(opts: LoadOptions): Array<{ kind: SourceKind; path: string; required: boolean; via?: string }> {
  const env = opts.env ?? process.env;
  const explicit = opts.configPath ?? env.AGENTCTL_CONFIG;
  const via = opts.configPath !== undefined ? '--config' : 'AGENTCTL_CONFIG';
  if (explicit) return [{ kind: 'file', path: resolve(opts.cwd ?? process.cwd(), explicit), required: true, via }];
  const configHome = env.XDG_CONFIG_HOME || join(opts.home ?? homedir(), '.config');
  return [
    { kind: 'user', path: join(configHome, 'agentctl', 'config.toml'), required: false },
    { kind: 'project', path: join(opts.cwd ?? process.cwd(), 'agentctl.toml'), required: false },
  ];
}

function readLayer(kind: SourceKind, path: string, required: boolean, via = '--config'): FileLayer | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (!required && code === 'ENOENT') return undefined;
    if (required && (code === 'ENOENT' || code === 'EISDIR' || code === 'ENOTDIR')) {
      throw new UsageError(`${via}: cannot read ${path}: ${code === 'ENOENT' ? 'no such file' : 'not a regular file'}`);
    }
    throw new ConfigError(`config file ${path} cannot be read: ${(err as Error).message}`, { file: path });
  }
  // The parser loads only when there is a file to parse: most runs have none.
  const toml = createRequire(import.meta.url)('smol-toml') as typeof import('smol-toml');
  let data: Record<string, unknown>;
  try {
    data = toml.parse(text) as Record<string, unknown>;
  } catch (err) {
    if (err instanceof toml.TomlError) {
      const first = err.message.split('\n')[0]!.replace(/^Invalid TOML document:\s*/i, '');
      throw new ConfigError(`config file ${path} line ${err.line}: invalid TOML: ${first}`, { file: path, line: err.line });
    }
    throw new ConfigError(`config file ${path}: invalid TOML: ${(err as Error).message}`, { file: path });
  }
  return { kind, path, text, data };
}

/**
 * Find the line of `key` inside `[section]` (or the n-th `[[section]]`), or of the section header
 * when key is undefined. TOML parsers do not report key positions, so we scan the text.
 */
export function locateKey(text: string, section: string, key?: string, index = 0): number | undefined {
  const lines = text.split(/\r?\n/);
  let current: string | undefined;
  let seen = -1;
  let headerLine: number | undefined;
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const keyRe = key === undefined ? undefined : new RegExp(`^\\s*(["']?)${esc(key)}\\1\\s*=`);
  const dottedRe = key === undefined ? undefined : new RegExp(`^\\s*${esc(section)}\\.${esc(key)}\\s*=`);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const header = /^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$/.exec(line);
    if (header) {
      current = header[1];
      if (current === section) {
        seen++;
        if (seen === index) headerLine = i + 1;
      }
      continue;
    }
    if (keyRe && current === section && seen === index && keyRe.test(line)) return i + 1;
    if (dottedRe && current === undefined && dottedRe.test(line)) return i + 1;
    if (key === undefined && current === undefined && new RegExp(`^\\s*${esc(section)}(\\.|\\s*=)`).test(line)) return i + 1;
  }
  return headerLine;
}

function where(layer: FileLayer, section: string, key?: string, index?: number) {
  const line = locateKey(layer.text, section, key, index);
  return { file: layer.path, line, key: key === undefined ? section : `${section}.${key}` };
}

function configFail(layer: FileLayer, section: string, key: string | undefined, message: string, index?: number): never {
  const w = where(layer, section, key, index);
  const keyName = index !== undefined ? `${section}[${index}]${key ? `.${key}` : ''}` : w.key;
  const at = w.line !== undefined ? ` line ${w.line}` : '';
  throw new ConfigError(`config file ${layer.path}${at}: ${keyName}: ${message}`, { file: w.file, key: keyName, ...(w.line !== undefined ? { line: w.line } : {}) });
}

const SECTIONS = new Set([...KEYS.map((k) => k.section), 'services']);

function validateServices(layer: FileLayer, raw: unknown): ServiceSpec[] {
  if (!Array.isArray(raw)) configFail(layer, 'services', undefined, 'expected [[services]] tables');
  const names = new Set<string>();
  return (raw as unknown[]).map((entry, i) => {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) configFail(layer, 'services', undefined, 'expected a table', i);
    const e = entry as Record<string, unknown>;
    for (const k of Object.keys(e)) {
      if (!(SERVICE_KEYS as readonly string[]).includes(k)) configFail(layer, 'services', k, `unknown key; accepted: ${SERVICE_KEYS.join(', ')}`, i);
    }
    const str = (k: string) => {
      if (e[k] !== undefined && (typeof e[k] !== 'string' || e[k] === '')) configFail(layer, 'services', k, 'expected a non-empty string', i);
      return e[k] as string | undefined;
    };
    const name = str('name');
    if (!name) configFail(layer, 'services', 'name', 'every service needs a name', i);
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(name!)) configFail(layer, 'services', 'name', 'expected letters, digits, ".", "_" or "-" (at most 64)', i);
    if (names.has(name!)) configFail(layer, 'services', 'name', `duplicate service name ${JSON.stringify(name)}`, i);
    names.add(name!);
    const pidfile = str('pidfile');
    const match = str('match');
    if (match !== undefined) {
      try {
        new RegExp(match);
      } catch (err) {
        configFail(layer, 'services', 'match', `invalid regular expression: ${(err as Error).message}`, i);
      }
    }
    const url = str('url');
    if (url !== undefined && !/^https?:\/\/[^\s]+$/.test(url)) configFail(layer, 'services', 'url', 'expected an http:// or https:// URL', i);
    if (e.port !== undefined && (!Number.isInteger(e.port) || (e.port as number) < 1 || (e.port as number) > 65535)) {
      configFail(layer, 'services', 'port', 'expected a port from 1 to 65535', i);
    }
    if (e.expect_status !== undefined && (!Number.isInteger(e.expect_status) || (e.expect_status as number) < 100 || (e.expect_status as number) > 599)) {
      configFail(layer, 'services', 'expect_status', 'expected an HTTP status from 100 to 599', i);
    }
    let timeoutMs = 2000;
    if (e.timeout !== undefined) {
      try {
        timeoutMs = duration(50, 60_000)(e.timeout) as number;
      } catch (err) {
        configFail(layer, 'services', 'timeout', (err as Error).message, i);
      }
    }
    if (pidfile === undefined && match === undefined && e.port === undefined && url === undefined) {
      configFail(layer, 'services', undefined, `service ${JSON.stringify(name)} needs at least one of pidfile, match, port, url`, i);
    }
    return {
      name: name!,
      ...(pidfile !== undefined ? { pidfile } : {}),
      ...(match !== undefined ? { match } : {}),
      ...(e.port !== undefined ? { port: e.port as number } : {}),
      ...(url !== undefined ? { url } : {}),
      expect_status: (e.expect_status as number | undefined) ?? 200,
      timeoutMs,
    };
  });
}

/** Check one file's structure and values; returns its validated flat values and services. */
function validateLayer(layer: FileLayer): { values: Map<string, unknown>; services?: ServiceSpec[] } {
  const values = new Map<string, unknown>();
  let services: ServiceSpec[] | undefined;
  for (const [section, body] of Object.entries(layer.data)) {
    if (!SECTIONS.has(section)) {
      configFail(layer, section, undefined, `unknown section; accepted: ${[...SECTIONS].join(', ')}`);
    }
    if (section === 'services') {
      services = validateServices(layer, body);
      continue;
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) configFail(layer, section, undefined, `expected a [${section}] table`);
    for (const [key, raw] of Object.entries(body as Record<string, unknown>)) {
      const spec = KEYS.find((k) => k.section === section && k.key === key);
      if (!spec) {
        const accepted = KEYS.filter((k) => k.section === section).map((k) => k.key);
        configFail(layer, section, key, `unknown key; accepted in [${section}]: ${accepted.join(', ')}`);
      }
      try {
        values.set(`${section}.${key}`, spec!.validate(raw));
      } catch (err) {
        configFail(layer, section, key, (err as Error).message);
      }
    }
  }
  return services ? { values, services } : { values };
}

/** Load, validate and merge the configuration. Throws ConfigError (exit 78) or UsageError. */
export function loadConfig(opts: LoadOptions = {}): LoadedConfig {
  const env = opts.defaultsOnly ? {} : (opts.env ?? process.env);
  const ignored: IgnoredConfig[] = [];
  const layers = (opts.defaultsOnly ? [] : configCandidates(opts))
    .filter((c) => {
      if (c.required) return true; // named explicitly: trusted
      const reason = configDistrust(c.path);
      if (reason !== undefined) ignored.push({ path: c.path, reason });
      return reason === undefined;
    })
    .map((c) => readLayer(c.kind, c.path, c.required, c.via))
    .filter((l): l is FileLayer => l !== undefined);

  const effective = new Map<string, { value: unknown; source: Source }>();
  for (const spec of KEYS) {
    effective.set(`${spec.section}.${spec.key}`, { value: spec.validate(spec.default), source: { kind: 'default', detail: 'built-in' } });
  }
  let services: { value: ServiceSpec[]; source: Source } = { value: [], source: { kind: 'default', detail: 'built-in' } };

  for (const layer of layers) {
    const v = validateLayer(layer);
    for (const [k, value] of v.values) effective.set(k, { value, source: { kind: layer.kind, detail: layer.path } });
    if (v.services) services = { value: v.services, source: { kind: layer.kind, detail: layer.path } };
  }

  for (const spec of KEYS) {
    const name = envName(spec.section, spec.key);
    const text = env[name];
    if (text === undefined || text === '') continue;
    try {
      effective.set(`${spec.section}.${spec.key}`, { value: spec.validate(spec.fromEnv(text)), source: { kind: 'env', detail: name } });
    } catch (err) {
      throw new ConfigError(`environment variable ${name}: ${spec.section}.${spec.key}: ${(err as Error).message}`, { file: `env:${name}`, key: `${spec.section}.${spec.key}` });
    }
  }

  for (const [k, { value, flag }] of Object.entries(opts.flags ?? {})) {
    const spec = KEYS.find((s) => `${s.section}.${s.key}` === k);
    if (!spec) throw new UsageError(`${flag}: ${k} is not a configuration key`);
    try {
      effective.set(k, { value: spec.validate(value), source: { kind: 'flag', detail: flag } });
    } catch (err) {
      throw new UsageError(`${flag}: ${(err as Error).message}`);
    }
  }

  const get = <T>(k: string) => effective.get(k)!.value as T;
  const config: Config = {
    throttle: {
      ...DEFAULT_THROTTLE,
      memoryPct: get('throttle.memory_pct'),
      cpuPct: get('throttle.cpu_pct'),
      maxAgents: get('throttle.max_agents'),
      batchSize: get('throttle.batch_size'),
      delayMs: get('throttle.delay_ms'),
      maxConcurrent: get('throttle.max_concurrent'),
      reasoningEffort: get('throttle.reasoning_effort'),
      recoveryMs: get('throttle.recovery_interval'),
      sampleMaxAgeMs: get('throttle.sample_max_age'),
      cpuWindowMs: get('throttle.cpu_window'),
      psiMemoryFullPct: get('throttle.psi_memory_full'),
      psiMemorySomePct: get('throttle.psi_memory_some'),
      swapInRate: get('throttle.swap_in_rate'),
      loadPerCore: get('throttle.load_per_core'),
    },
    spawn: {
      minUptimeMs: get('spawn.min_uptime'),
      cooldownMs: get('spawn.cooldown'),
      minIntervalMs: get('spawn.min_interval'),
      policy: {
        startupBackoffMs: get('spawn.backoff_startup'),
        failureBackoffMs: get('spawn.backoff_failure'),
        maxBackoffMs: get('spawn.backoff_max'),
        breakerFailures: get('spawn.breaker_failures'),
        maxRestartsPerHour: get('spawn.max_restarts_per_hour'),
        breakerPauseMs: get('spawn.breaker_pause'),
        resetAfterMs: get('spawn.reset_after'),
        hostBreakerFailures: get('spawn.host_breaker_failures'),
        hostBreakerWindowMs: get('spawn.host_breaker_window'),
        hostBreakerPauseMs: get('spawn.host_breaker_pause'),
      },
      countUnmanaged: get('spawn.count_unmanaged'),
      killGraceMs: get('spawn.kill_grace'),
      logMaxBytes: get('spawn.log_max'),
      logsPerName: get('spawn.logs_per_name'),
    },
    ports: get('ports.range'),
    env: { ttlMs: get('env.ttl') },
    reap: { maxRuntimeMs: get('reap.max_runtime'), idleMs: get('reap.idle'), graceMs: get('reap.grace') },
    dedupe: { ignore: get('dedupe.ignore') },
    doctor: {
      loadWarn: get<number[]>('doctor.load_per_core')[0]!,
      loadFail: get<number[]>('doctor.load_per_core')[1]!,
      cpuIdleWarn: get('doctor.cpu_idle_warn'),
      memWarn: get<number[]>('doctor.memory_available')[0]!,
      memFail: get<number[]>('doctor.memory_available')[1]!,
      psiWarn: get('doctor.psi_memory_warn'),
      failRateWarn: get<number[]>('doctor.failure_rate')[0]!,
      failRateFail: get<number[]>('doctor.failure_rate')[1]!,
      poolWarn: get('doctor.port_pool_warn'),
      spawnLoopErrors: get('doctor.spawn_loop_errors'),
      restartLoopCount: get('doctor.restart_loop_count'),
      restartLoopWindowMs: get('doctor.restart_loop_window'),
      restartLoopLifetimeMs: get('doctor.restart_loop_lifetime'),
      diskWarnBytes: get<number[]>('doctor.disk_free')[0]!,
      diskFailBytes: get<number[]>('doctor.disk_free')[1]!,
    },
    agents: { patterns: get('agents.patterns'), claude: get('agents.claude') },
    services: services.value,
    state: {
      eventsMaxAgeMs: get('state.events_max_age'),
      eventsMaxRows: get('state.events_max_rows'),
      samplesMaxAgeMs: get('state.samples_max_age'),
      samplesMaxRows: get('state.samples_max_rows'),
    },
  };

  const entries = [...effective.entries()].map(([key, e]) => ({ key, value: displayValue(key, e.value), source: e.source }));
  entries.push({ key: 'services', value: services.value.map(displayService), source: services.source });
  const hash = fnv1a64(JSON.stringify(entries.map((e) => [e.key, e.value])));
  return { config, entries, files: layers.map((l) => l.path), hash, ignored };
}

/**
 * FNV-1a, 64 bits as two 32-bit lanes: enough to tell configs apart, and it spares every
 * command loading node:crypto (a measurable share of start-up) for one hash.
 */
export function fnv1a64(text: string): string {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ 0x5bd1e995;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x01000193 + 2);
  }
  return (a >>> 0).toString(16).padStart(8, '0') + (b >>> 0).toString(16).padStart(8, '0');
}

/** Values as a person would write them in TOML (durations as text, ranges as "a-b"). */
function displayValue(key: string, value: unknown): unknown {
  const spec = KEYS.find((s) => `${s.section}.${s.key}` === key);
  if (key === 'ports.range') {
    const r = value as { from: number; to: number };
    return `${r.from}-${r.to}`;
  }
  if (key === 'spawn.log_max') return value;
  if (key === 'doctor.disk_free') return (value as number[]).map((b) => `${Math.round(b / 1024 / 1024)}M`);
  if (spec && typeof spec.default === 'string' && typeof value === 'number') return fmtMs(value);
  return value;
}

function displayService(s: ServiceSpec): Record<string, unknown> {
  const { timeoutMs, ...rest } = s;
  return { ...rest, timeout: fmtMs(timeoutMs) };
}
