/**
 * Failure classification, backoff and the circuit breaker: pure decisions, no I/O.
 *
 * Incident 5: a worker crashed within 10 s of start and was respawned at once, 12+ copies in
 * 21 minutes. An exit within min uptime is a startup error: retrying at once cannot help, so
 * it backs off 300 s·2^n; other failures 60 s·2^n. Three consecutive failures, or too many
 * restarts in an hour (incident 4: 50), open the breaker; when its pause ends it half-opens
 * and lets one trial run decide.
 */

export type FailureType = 'startup_error' | 'crash' | 'timeout' | 'killed' | 'oom' | 'cpu_limit';

/** Every failure type, in the order classifyExit tries them (docs, stats and checks list them so). */
export const FAILURE_TYPES: readonly FailureType[] = ['timeout', 'oom', 'cpu_limit', 'startup_error', 'killed', 'crash'];

export interface ExitFacts {
  /** exit code, when the process exited normally */
  readonly exitCode: number | null;
  /** terminating signal name, when a signal ended it */
  readonly signal: string | null;
  readonly runtimeMs: number;
  /** agentctl ended it for running past --timeout */
  readonly timedOut: boolean;
  /** the kernel's OOM killer ended it, as the kernel says (a cgroup's memory.events) */
  readonly oom: boolean;
  /** agentctl (stop/reap) ended it on purpose: not the worker's failure */
  readonly stoppedByUs?: boolean;
  /** the run was started with --memory-max */
  readonly memoryLimited?: boolean;
  /** its log's last lines say an allocation failed (MemoryError, out of memory, ...; see OOM_MESSAGE) */
  readonly oomMessage?: boolean;
  /** the run's --cpu-time in seconds, when it was started with one */
  readonly cpuLimitSec?: number | null;
  /** CPU time (user + system) of the run's tree as recorded at its end, ms; null when unknown */
  readonly cpuMs?: number | null;
}

/** Signals a process dies of when an allocation fails under an address-space cap or a cgroup's OOM killer ends it. */
const OOM_SIGNALS = new Set(['SIGKILL', 'SIGABRT', 'SIGSEGV', 'SIGBUS', 'SIGTRAP']);
/** Exit codes that say the same: ENOMEM (12) as an exit code, or a shell's 128 + one of OOM_SIGNALS. */
const OOM_CODES = new Set([12, 128 + 9, 128 + 6, 128 + 11, 128 + 7, 128 + 5]);
/**
 * The share of --cpu-time a run killed by SIGKILL must have used for the kill to count as the
 * limit's. The kernel checks RLIMIT_CPU on its own clock; the user + system time its parent
 * then reads (rusage, cutime) came to about 0.9 of the limit on a virtual machine under load
 * (prlimit --cpu=1 and 3: 0.88 to 0.92 of it), so the rule asks for three quarters.
 */
const CPU_LIMIT_SHARE = 0.75;

/**
 * Did a limit the run was started under end it? `oom`: the kernel says so, or under
 * --memory-max it died of an OOM_SIGNALS signal, exited with an OOM_CODES code, or exited
 * non-zero saying an allocation failed. `cpu_limit`: under --cpu-time it died of SIGXCPU (the
 * soft limit; a shell's 152), or of SIGKILL (the hard limit; a shell's 137) having used at least
 * CPU_LIMIT_SHARE of the limit's CPU time. A CPU limit is tried first: under both limits, a
 * SIGKILL after the CPU time ran out is the CPU limit's.
 */
function limitFailure(f: ExitFacts): 'oom' | 'cpu_limit' | null {
  if (f.oom) return 'oom';
  const killed = f.signal === 'SIGKILL' || f.exitCode === 128 + 9;
  if (f.cpuLimitSec) {
    if (f.signal === 'SIGXCPU' || f.exitCode === 128 + 24) return 'cpu_limit';
    if (killed && f.cpuMs != null && f.cpuMs >= f.cpuLimitSec * 1000 * CPU_LIMIT_SHARE) return 'cpu_limit';
  }
  if (f.memoryLimited) {
    if ((f.signal !== null && OOM_SIGNALS.has(f.signal)) || (f.exitCode !== null && OOM_CODES.has(f.exitCode))) return 'oom';
    if (f.oomMessage && f.exitCode !== 0) return 'oom';
  }
  return null;
}

/** The failure type of an ended run, or null when it succeeded (or was stopped on purpose). */
export function classifyExit(f: ExitFacts, minUptimeMs: number): FailureType | null {
  if (f.stoppedByUs) return null;
  if (f.timedOut) return 'timeout';
  if (f.exitCode === 0 && f.signal === null && !f.oom) return null;
  const limit = limitFailure(f);
  if (limit) return limit;
  if (f.runtimeMs < minUptimeMs) return 'startup_error';
  if (f.signal === 'SIGKILL' || f.signal === 'SIGTERM' || f.signal === 'SIGINT' || f.signal === 'SIGHUP') return 'killed';
  return 'crash';
}

export interface PolicySettings {
  /** first delay after a startup error. @default 300 s */
  readonly startupBackoffMs: number;
  /** first delay after any other failure. @default 60 s */
  readonly failureBackoffMs: number;
  /** longest delay. @default 1 h */
  readonly maxBackoffMs: number;
  /** consecutive failures that open the breaker. @default 3 */
  readonly breakerFailures: number;
  /** starts per rolling hour that open the breaker. @default 50 */
  readonly maxRestartsPerHour: number;
  /** how long an open breaker refuses before a trial. @default 1 h */
  readonly breakerPauseMs: number;
  /** a run up this long proves the worker healthy: failures are forgotten. @default 10 min */
  readonly resetAfterMs: number;
  /** startup errors across all names within the window above which the host breaker opens. @default 5 */
  readonly hostBreakerFailures: number;
  /** the host breaker's window. @default 10 min */
  readonly hostBreakerWindowMs: number;
  /** how long an open host breaker refuses every spawn. @default 10 min */
  readonly hostBreakerPauseMs: number;
}

export const DEFAULT_POLICY: PolicySettings = {
  startupBackoffMs: 300_000,
  failureBackoffMs: 60_000,
  maxBackoffMs: 3_600_000,
  breakerFailures: 3,
  maxRestartsPerHour: 50,
  breakerPauseMs: 3_600_000,
  resetAfterMs: 600_000,
  hostBreakerFailures: 5,
  hostBreakerWindowMs: 600_000,
  hostBreakerPauseMs: 600_000,
};

/** A startup error on record, for the host breaker. */
export interface StartupFailure {
  readonly name: string;
  readonly run_id: string;
  readonly at: number;
  readonly exit_code: number | null;
  /** the signal that ended it (a crash: SIGSEGV, SIGABRT, ...) when it did not exit */
  readonly signal?: string | null;
}

/**
 * The host-wide startup-failure breaker (incident 004 under new names): a loop that gives each
 * attempt a new name never meets a name's backoff, so more than `hostBreakerFailures` startup
 * errors across all names within the window open it, pausing every spawn on the host.
 * `failures` are those since the window began and since the last reset, oldest first.
 * Returns the breaker to store when it opens now, undefined otherwise. Once its pause ends,
 * the failures still in the window make the next startup error open it again: a trial.
 */
export function hostBreakerAfter(
  current: { readonly notBefore: number } | undefined,
  failures: readonly StartupFailure[],
  now: number,
  s: Pick<PolicySettings, 'hostBreakerFailures' | 'hostBreakerWindowMs' | 'hostBreakerPauseMs'> = DEFAULT_POLICY,
): { openedAt: number; notBefore: number; reason: string; failures: StartupFailure[] } | undefined {
  if (s.hostBreakerFailures <= 0 || (current && current.notBefore > now)) return undefined;
  const recent = failures.filter((f) => f.at > now - s.hostBreakerWindowMs);
  if (recent.length <= s.hostBreakerFailures) return undefined;
  const names = new Set(recent.map((f) => f.name)).size;
  const span = Math.max(0, now - recent[0]!.at);
  return {
    openedAt: now,
    notBefore: now + s.hostBreakerPauseMs,
    reason: `${recent.length} startup errors in ${Math.round(span / 1000)}s across ${names} name${names === 1 ? '' : 's'} (more than ${s.hostBreakerFailures} in ${Math.round(s.hostBreakerWindowMs / 60_000)}m)`,
    failures: recent.slice(-10),
  };
}

/** Delay before the next start after `consecutive` failures, the last of type `last`. */
export function backoffMs(consecutive: number, last: FailureType, s: PolicySettings = DEFAULT_POLICY): number {
  if (consecutive <= 0) return 0;
  const base = last === 'startup_error' ? s.startupBackoffMs : s.failureBackoffMs;
  // 2^(n-1): the first failure waits the base delay
  return Math.min(s.maxBackoffMs, base * 2 ** Math.min(30, consecutive - 1));
}

export type BreakerMode = 'closed' | 'open' | 'half_open';

/** Per-name health, kept in the `health` table. */
export interface NameHealth {
  readonly mode: BreakerMode;
  readonly consecutiveFailures: number;
  readonly lastFailure: FailureType | null;
  /** no start before this time (backoff or open breaker), ms epoch; 0 when free */
  readonly notBefore: number;
  /** when the breaker opened, ms epoch */
  readonly openedAt: number | null;
  /** why it opened or backs off, for people */
  readonly reason: string | null;
}

export const HEALTHY: NameHealth = { mode: 'closed', consecutiveFailures: 0, lastFailure: null, notBefore: 0, openedAt: null, reason: null };

/** The effective mode now: an open breaker whose pause has ended is half-open. */
export function modeAt(h: NameHealth, now: number): BreakerMode {
  return h.mode === 'open' && now >= h.notBefore ? 'half_open' : h.mode;
}

/**
 * Update a name's health when one of its runs ends.
 * `startsLastHour` counts starts of this name in the hour before `now`.
 */
export function afterRun(h: NameHealth, outcome: { failure: FailureType | null; runtimeMs: number; endedAt: number; startsLastHour: number }, s: PolicySettings = DEFAULT_POLICY): NameHealth {
  const { failure, runtimeMs, endedAt } = outcome;
  if (failure === null) return HEALTHY;
  // a long healthy stretch before this failure: count it as the first of a new series
  const prior = runtimeMs >= s.resetAfterMs ? 0 : h.consecutiveFailures;
  const consecutive = prior + 1;
  const open = (reason: string): NameHealth => ({ mode: 'open', consecutiveFailures: consecutive, lastFailure: failure, notBefore: endedAt + s.breakerPauseMs, openedAt: endedAt, reason });
  if (h.mode === 'open' || h.mode === 'half_open') return open(`trial run failed (${failure})`);
  if (consecutive >= s.breakerFailures) return open(`${consecutive} consecutive failure${consecutive === 1 ? '' : 's'}, last ${failure}`);
  if (outcome.startsLastHour >= s.maxRestartsPerHour) return open(`${outcome.startsLastHour} starts in the last hour (limit ${s.maxRestartsPerHour})`);
  return {
    mode: 'closed',
    consecutiveFailures: consecutive,
    lastFailure: failure,
    notBefore: endedAt + backoffMs(consecutive, failure, s),
    openedAt: null,
    reason: `${failure} (${consecutive} in a row)`,
  };
}

/** A run that stayed up past `resetAfterMs` (or min uptime, for a half-open trial) closes the breaker. */
export function afterHealthyUptime(h: NameHealth): NameHealth {
  return h.consecutiveFailures === 0 && h.mode === 'closed' ? h : HEALTHY;
}
