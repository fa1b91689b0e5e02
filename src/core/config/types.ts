/** The shapes of the configuration: the effective Config, where each value came from, and what loading returns. */
import type { PolicySettings } from '../policy.js';
import type { ThrottleSettings } from '../throttle.js';

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

/** What restarts an `[[agents]]` entry at the next `up`: a failure (default), any end, or nothing. */
export type RestartPolicy = 'on-failure' | 'always' | 'never';

/** One `[[agents]]` entry of the fleet file: what `agentctl up` keeps running (core/agents/). */
export interface AgentSpec {
  readonly name: string;
  readonly command: readonly string[];
  /** absolute: a relative cwd is taken from the config file's folder */
  readonly cwd: string;
  /** @default "default" */
  readonly group: string;
  /** @default 3 */
  readonly priority: number;
  /** @default 1; more than one runs as name-1..name-N */
  readonly instances: number;
  /** an environment to create or reuse, and how many ports it leases */
  readonly env?: { readonly name: string; readonly ports: number };
  readonly requires: readonly string[];
  readonly timeoutMs?: number;
  readonly memoryMax?: number;
  readonly cpuTimeMs?: number;
  readonly nice?: number;
  /** @default on-failure */
  readonly restart: RestartPolicy;
  /** passed to the child's environment */
  readonly envVars: Readonly<Record<string, string>>;
  /** the file it came from and its line, for messages */
  readonly file: string;
  readonly line?: number | undefined;
}

/** One `[[hooks]]` entry: what runs, or is posted to, after a command commits an event it listens for (core/hooks/). */
export interface HookSpec {
  /** its name in `hook.failed` events and messages: `name`, else `hooks[i]` */
  readonly name: string;
  /** event kinds: exact (`breaker.open`), `area.*`, or `*` */
  readonly on: readonly string[];
  /** argv run with the event as JSON on stdin (exactly one of command and url) */
  readonly command?: readonly string[];
  /** http(s) URL the event JSON is POSTed to; may hold a secret: shown through redactUrl */
  readonly url?: string;
  /** the hook is ended (command) or abandoned (url) after this long. @default 5 s */
  readonly timeoutMs: number;
  /** where a command runs: the config file's folder */
  readonly cwd: string;
  readonly file: string;
  readonly line?: number | undefined;
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

/** [fleet]: the fleet-wide cap on PostgreSQL (core/fleet). Present only when fleet.url is set. */
export interface FleetSettings {
  /** postgres:// URL; may hold a password: never printed, never stored (redactUrl) */
  readonly url: string;
  /** this host's id in the lease table; undefined: the machine id */
  readonly hostId: string | undefined;
  /** a lease not renewed this long expires, by the database's clock. @default 5 min */
  readonly leaseTtlMs: number;
  /** bound on every database call. @default 2 s */
  readonly timeoutMs: number;
  /** PostgreSQL unreachable: refuse fleet-capped spawns (exit 75) or admit them with a warning. @default refuse */
  readonly onUnreachable: 'refuse' | 'admit';
  /** group → fleet-wide maximum of live runs */
  readonly caps: Readonly<Record<string, number>>;
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
    /** Backoff, breaker and reset settings (see core/policy.ts). */
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
  /** `[[agents]]`: the fleet `agentctl up` keeps running (empty when the file has none) */
  readonly fleetAgents: readonly AgentSpec[];
  /** `[[hooks]]`: what runs after a command commits events (empty when no file has any) */
  readonly hooks: readonly HookSpec[];
  /** undefined without [fleet] url: nothing of the fleet runs */
  readonly fleet: FleetSettings | undefined;
  readonly state: {
    readonly eventsMaxAgeMs: number;
    readonly eventsMaxRows: number;
    readonly samplesMaxAgeMs: number;
    readonly samplesMaxRows: number;
  };
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

/** A config key's value check: returns the normalised value or throws Error(message). */
export type Validator = (raw: unknown) => unknown;

export interface KeySpec {
  readonly section: string;
  readonly key: string;
  readonly default: unknown;
  readonly validate: Validator;
  /** How a value from an environment variable (a string) becomes a TOML-like value. */
  readonly fromEnv: (text: string) => unknown;
  readonly doc: string;
}
