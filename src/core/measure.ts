/**
 * Measure the host and decide the throttle level: readings + the previous sample from the
 * state db (for CPU and swap rates) + hysteresis state, all in one short IMMEDIATE
 * transaction so concurrent callers agree on the level.
 */
import type { Config } from './config/types.js';
import { bootId } from './identity.js';
import { countAgents, type ProcInfo } from './proc.js';
import { cpuUsedPct, type PsiReading, type Sampler, type Snapshot } from './resources.js';
import { recordSightings } from './sightings.js';
import type { State } from './state.js';
import { round } from './units.js';
import { type LevelState, nextLevel, paramsFor, rawLevel, type ThrottleLevel, type ThrottleParams } from './throttle.js';

/** What throttle-status reports; field names up to throttle_params are the resource_metrics.json seed's. */
export interface ThrottleReport {
  readonly timestamp: string;
  readonly memory_used_pct: number;
  readonly cpu_used_pct: number;
  readonly claude_processes: number;
  readonly node_processes: number;
  readonly throttle_level: ThrottleLevel;
  readonly throttle_params: ThrottleParams;
  /** processes matching the agent patterns */
  readonly agent_processes: number;
  /** the level the readings call for before gradual recovery */
  readonly raw_level: ThrottleLevel;
  /** why the level is what it is */
  readonly reasons: readonly string[];
  /** AGENTCTL_DISABLE_THROTTLE=1 forced level 0 */
  readonly disabled: boolean;
  readonly cpus: number;
  readonly load_1m: number;
  readonly load_5m: number;
  readonly load_15m: number;
  readonly load_per_core: number;
  readonly memory_total_bytes: number;
  readonly memory_available_bytes: number;
  readonly swap_used_pct: number;
  /** pages per second over the CPU window; null when the kernel does not say */
  readonly swap_in_per_s: number | null;
  readonly swap_out_per_s: number | null;
  /** null where the kernel has no PSI */
  readonly psi: PsiReading | null;
  /** the span CPU use was measured over, and whether a stored sample provided its start */
  readonly cpu_window_ms: number;
  readonly cpu_from_stored_sample: boolean;
  /** the span was shorter than throttle.cpu_window: CPU raised the level only if the host was saturated */
  readonly cpu_short_window: boolean;
}

export interface MeasureDeps {
  readonly now: () => number;
  readonly sleep: (ms: number) => Promise<void>;
  readonly env: NodeJS.ProcessEnv;
  readonly sampler: Sampler;
  readonly listProcesses: () => Promise<ProcInfo[]>;
}

/**
 * With no stored sample to measure CPU against, read the counters this far apart: long enough
 * for a few clock ticks per CPU (10 ms each), short enough not to slow a command down noticeably.
 */
export const CPU_PROBE_MS = 250;

interface StoredSample {
  ts: number;
  cpu_total: number;
  cpu_idle: number;
  swap_in: number | null;
  swap_out: number | null;
}

/** Is throttling switched off by AGENTCTL_DISABLE_THROTTLE (1, true, yes, on)? */
export function throttleDisabled(env: NodeJS.ProcessEnv): boolean {
  return /^(1|true|yes|on)$/i.test(env.AGENTCTL_DISABLE_THROTTLE ?? '');
}

export async function measure(deps: MeasureDeps, config: Config, state: State, command = 'throttle-status'): Promise<ThrottleReport> {
  const t = config.throttle;
  let snap: Snapshot = await deps.sampler.snapshot(deps.now());
  const boot = bootId();

  // The start of the CPU window. CPU is judged over at least throttle.cpu_window (10 s): our own
  // start-up, and that of a spawn loop's other agentctl runs, are spikes of ~100 ms that only a
  // window much longer than they are averages away. So: the newest stored sample at least that old.
  const maxAgeMs = Math.max(t.sampleMaxAgeMs, 2 * t.cpuWindowMs);
  const probeMs = Math.min(CPU_PROBE_MS, t.cpuWindowMs);
  const stored = (sql: string, newest: number) =>
    state.guard(() => state.db.prepare(sql).get(boot, snap.ts - newest, snap.ts - maxAgeMs) as StoredSample | undefined);
  const SELECT = 'SELECT ts, cpu_total, cpu_idle, swap_in, swap_out FROM samples WHERE boot_id = ? AND ts <= ? AND ts >= ?';
  let prev = stored(`${SELECT} ORDER BY ts DESC LIMIT 1`, t.cpuWindowMs);
  let short = false;
  // None that old (a fresh state, or the first seconds of a burst of calls): the oldest one there
  // is, without waiting. Such a short window counts only when it shows a saturated host.
  if (!prev) {
    prev = stored(`${SELECT} ORDER BY ts ASC LIMIT 1`, probeMs);
    short = true;
  }
  const own0 = deps.sampler.ownCpu?.();
  let start: { ts: number; cpu: { total: number; idle: number }; swapIn: number | undefined; swapOut: number | undefined };
  let fromStored = false;
  // our own CPU time inside the window is left out of the reading: at its start, or undefined when unknown
  let ownAtStart: number | undefined;
  if (prev && prev.cpu_total <= snap.cpu.total) {
    start = { ts: prev.ts, cpu: { total: prev.cpu_total, idle: prev.cpu_idle }, swapIn: prev.swap_in ?? undefined, swapOut: prev.swap_out ?? undefined };
    fromStored = true;
    // a process started inside the window spent all its CPU time in it; a longer-lived one
    // (--watch, a library user) cannot tell how much of its time falls inside
    ownAtStart = own0 && own0.startedAt >= prev.ts ? 0 : undefined;
  } else {
    // nothing stored to compare with: read the counters twice, a short probe apart (no 10 s wait)
    start = { ts: snap.ts, cpu: snap.cpu, swapIn: snap.swapIn, swapOut: snap.swapOut };
    ownAtStart = own0?.used;
    short = probeMs < t.cpuWindowMs;
    await deps.sleep(probeMs);
    const c = deps.sampler.counters();
    snap = { ...snap, ts: deps.now(), cpu: c.cpu, swapIn: c.swapIn, swapOut: c.swapOut };
  }
  const ownAtEnd = fromStored ? own0 : deps.sampler.ownCpu?.();
  const own = ownAtStart !== undefined && ownAtEnd ? ownAtEnd.used - ownAtStart : 0;
  const windowMs = Math.max(1, snap.ts - start.ts);
  const cpu = cpuUsedPct(start.cpu, snap.cpu, own) ?? 0;
  const rate = (a: number | undefined, b: number | undefined) =>
    a === undefined || b === undefined || b < a ? null : round(((b - a) * 1000) / windowMs, 2);
  const swapInPerS = rate(start.swapIn, snap.swapIn);

  const procs = await deps.listProcesses();
  recordSightings(state, procs, config, deps.now());
  const counts = countAgents(procs, config.agents);

  const disabled = throttleDisabled(deps.env);
  const raw = rawLevel({ memoryUsedPct: snap.memory.usedPct, cpuUsedPct: cpu, cpuShortWindow: short, psiMemorySome: snap.psi?.memory_some_avg10, psiMemoryFull: snap.psi?.memory_full_avg10, swapInPerS, loadPerCore: snap.load[0] / snap.cpus }, t);
  const now = snap.ts;

  const decided = state.write(() => {
    const prevState = state.getKv<LevelState>('throttle.state')?.value;
    let level: ThrottleLevel;
    if (disabled) {
      level = 0;
    } else {
      const next = nextLevel(prevState, raw.level, now, t.recoveryMs);
      level = next.level;
      state.setKv('throttle.state', next, now);
      if (!prevState || prevState.level !== level) {
        state.event(
          {
            command,
            kind: 'throttle.level',
            subject: `level ${level}`,
            reason: prevState
              ? level > prevState.level
                ? `level ${prevState.level} -> ${level}: ${raw.reasons.join(', ')}`
                : `level ${prevState.level} -> ${level}: calm for ${Math.round(t.recoveryMs / 1000)}s per step`
              : `first reading: level ${level}${raw.reasons.length ? `: ${raw.reasons.join(', ')}` : ''}`,
            data: { from: prevState?.level ?? null, to: level, raw: raw.level, memory_used_pct: round(snap.memory.usedPct), cpu_used_pct: round(cpu) },
          },
          now,
        );
      }
    }
    state.db
      .prepare(
        'INSERT INTO samples (ts, boot_id, cpu_total, cpu_idle, swap_in, swap_out, memory_used_pct, cpu_used_pct, load1, raw_level, level) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      )
      .run(now, boot, snap.cpu.total, snap.cpu.idle, snap.swapIn ?? null, snap.swapOut ?? null, snap.memory.usedPct, cpu, snap.load[0], raw.level, level);
    return { level, held: !disabled && level > raw.level };
  });

  // history stays small whoever writes samples (watch, spawn, the library): at most every 10 min
  state.prune(config.state, now);

  const reasons: string[] = [];
  if (disabled) reasons.push('throttling disabled by AGENTCTL_DISABLE_THROTTLE');
  else {
    reasons.push(...raw.reasons);
    if (decided.held) reasons.push(`recovering: one level down per ${Math.round(t.recoveryMs / 1000)}s of calm (readings call for level ${raw.level})`);
  }

  const swapUsed = snap.memory.swapTotalBytes > 0 ? ((snap.memory.swapTotalBytes - snap.memory.swapFreeBytes) / snap.memory.swapTotalBytes) * 100 : 0;
  return {
    timestamp: new Date(now).toISOString(),
    memory_used_pct: round(snap.memory.usedPct),
    cpu_used_pct: round(cpu),
    claude_processes: counts.claude,
    node_processes: counts.node,
    throttle_level: decided.level,
    throttle_params: paramsFor(decided.level, t),
    agent_processes: counts.agents,
    raw_level: raw.level,
    reasons,
    disabled,
    cpus: snap.cpus,
    load_1m: snap.load[0],
    load_5m: snap.load[1],
    load_15m: snap.load[2],
    load_per_core: round(snap.load[0] / snap.cpus, 2),
    memory_total_bytes: snap.memory.totalBytes,
    memory_available_bytes: snap.memory.availableBytes,
    swap_used_pct: round(swapUsed),
    swap_in_per_s: swapInPerS,
    swap_out_per_s: rate(start.swapOut, snap.swapOut),
    psi: snap.psi,
    cpu_window_ms: windowMs,
    cpu_from_stored_sample: fromStored,
    cpu_short_window: short,
  };
}

/** The seed-compatible resource_metrics.json document. */
export function seedMetrics(r: ThrottleReport): Record<string, unknown> {
  return {
    timestamp: r.timestamp,
    memory_used_pct: r.memory_used_pct,
    cpu_used_pct: r.cpu_used_pct,
    claude_processes: r.claude_processes,
    node_processes: r.node_processes,
    throttle_level: r.throttle_level,
    throttle_params: r.throttle_params,
  };
}
