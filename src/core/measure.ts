/**
 * Measure the host and decide the throttle level, in four steps: sample the CPU window (the
 * previous sample from the state db, or a short probe), compute its readings (CPU, swap rates),
 * decide the level (the raw level through the stored hysteresis state), and record the level
 * and the sample in one short IMMEDIATE transaction so concurrent callers agree on the level.
 */
import type { Config } from './config/types.js';
import { envOn } from './config/keys.js';
import { bootId } from './identity.js';
import { type AgentCounts, countAgents, type ProcInfo } from './proc.js';
import { type CpuCounters, cpuUsedPct, type PsiReading, type Sampler, type Snapshot } from './resources.js';
import { recordSightings } from './sightings.js';
import { pruneHistory } from './runs/files.js';
import type { State } from './state.js';
import { round } from './units.js';
import { type LevelState, nextLevel, paramsFor, type RawLevel, rawLevel, type ThrottleLevel, type ThrottleParams, type ThrottleSettings } from './throttle.js';

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
  return envOn(env.AGENTCTL_DISABLE_THROTTLE);
}

export async function measure(deps: MeasureDeps, config: Config, state: State, command = 'throttle-status'): Promise<ThrottleReport> {
  const t = config.throttle;
  const boot = bootId();
  const w = await sampleWindow(deps, t, state, boot);
  const r = windowReadings(w);

  const procs = await deps.listProcesses();
  recordSightings(state, procs, config, deps.now());
  const counts = countAgents(procs, config.agents);

  const disabled = throttleDisabled(deps.env);
  const snap = w.end;
  const raw = rawLevel(
    {
      memoryUsedPct: snap.memory.usedPct,
      cpuUsedPct: r.cpu,
      cpuShortWindow: w.short,
      psiMemorySome: snap.psi?.memory_some_avg10,
      psiMemoryFull: snap.psi?.memory_full_avg10,
      swapInPerS: r.swapInPerS,
      loadPerCore: snap.load[0] / snap.cpus,
    },
    t,
  );
  const decided = record(state, { boot, snap, cpu: r.cpu, raw, disabled, command, recoveryMs: t.recoveryMs });

  // history stays small whoever writes samples (watch, spawn, the library): at most every 10 min
  pruneHistory(state, config.state, snap.ts);
  return report({ w, r, counts, raw, decided, disabled, t });
}

/** Counter readings at the start of the CPU window. */
interface WindowStart {
  readonly ts: number;
  readonly cpu: CpuCounters;
  readonly swapIn: number | undefined;
  readonly swapOut: number | undefined;
}

/** The span CPU use is judged over: its two ends, and how it was found. */
interface CpuWindow {
  readonly start: WindowStart;
  readonly end: Snapshot;
  /** a stored sample provided the start */
  readonly fromStored: boolean;
  /** shorter than throttle.cpu_window: CPU raises the level only if the host is saturated */
  readonly short: boolean;
  /** our own CPU time inside the window (the counters' unit), left out of the reading; 0 when unknown */
  readonly own: number;
}

/**
 * The start of the CPU window. CPU is judged over at least throttle.cpu_window (10 s): our own
 * start-up, and that of a spawn loop's other agentctl runs, are spikes of ~100 ms that only a
 * window much longer than they are averages away. So: the newest stored sample at least that old.
 */
function storedStart(state: State, boot: string, ts: number, t: Config['throttle']): { prev: StoredSample | undefined; short: boolean } {
  const maxAgeMs = Math.max(t.sampleMaxAgeMs, 2 * t.cpuWindowMs);
  const stored = (sql: string, newest: number) => state.guard(() => state.db.prepare(sql).get(boot, ts - newest, ts - maxAgeMs) as StoredSample | undefined);
  const SELECT = 'SELECT ts, cpu_total, cpu_idle, swap_in, swap_out FROM samples WHERE boot_id = ? AND ts <= ? AND ts >= ?';
  const prev = stored(`${SELECT} ORDER BY ts DESC LIMIT 1`, t.cpuWindowMs);
  if (prev) return { prev, short: false };
  // None that old (a fresh state, or the first seconds of a burst of calls): the oldest one there
  // is, without waiting. Such a short window counts only when it shows a saturated host.
  return { prev: stored(`${SELECT} ORDER BY ts ASC LIMIT 1`, Math.min(CPU_PROBE_MS, t.cpuWindowMs)), short: true };
}

/** Gather the samples: a snapshot now, and the window's start from the state db or a short probe. */
async function sampleWindow(deps: MeasureDeps, t: Config['throttle'], state: State, boot: string): Promise<CpuWindow> {
  const snap = await deps.sampler.snapshot(deps.now());
  const { prev, short } = storedStart(state, boot, snap.ts, t);
  const own0 = deps.sampler.ownCpu?.();
  if (prev && prev.cpu_total <= snap.cpu.total) {
    const start = { ts: prev.ts, cpu: { total: prev.cpu_total, idle: prev.cpu_idle }, swapIn: prev.swap_in ?? undefined, swapOut: prev.swap_out ?? undefined };
    // a process started inside the window spent all its CPU time in it; a longer-lived one
    // (--watch, a library user) cannot tell how much of its time falls inside
    return { start, end: snap, fromStored: true, short, own: own0 && own0.startedAt >= prev.ts ? own0.used : 0 };
  }
  // nothing stored to compare with: read the counters twice, a short probe apart (no 10 s wait)
  const probeMs = Math.min(CPU_PROBE_MS, t.cpuWindowMs);
  await deps.sleep(probeMs);
  const c = deps.sampler.counters();
  const end = { ...snap, ts: deps.now(), cpu: c.cpu, swapIn: c.swapIn, swapOut: c.swapOut };
  const own1 = deps.sampler.ownCpu?.();
  const start = { ts: snap.ts, cpu: snap.cpu, swapIn: snap.swapIn, swapOut: snap.swapOut };
  return { start, end, fromStored: false, short: probeMs < t.cpuWindowMs, own: own0 && own1 ? own1.used - own0.used : 0 };
}

/** What the window reads: CPU used (our own time left out), and swap rates in pages per second. */
interface WindowReadings {
  readonly windowMs: number;
  readonly cpu: number;
  readonly swapInPerS: number | null;
  readonly swapOutPerS: number | null;
}

function windowReadings(w: CpuWindow): WindowReadings {
  const windowMs = Math.max(1, w.end.ts - w.start.ts);
  const rate = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined || b < a ? null : round(((b - a) * 1000) / windowMs, 2));
  return { windowMs, cpu: cpuUsedPct(w.start.cpu, w.end.cpu, w.own) ?? 0, swapInPerS: rate(w.start.swapIn, w.end.swapIn), swapOutPerS: rate(w.start.swapOut, w.end.swapOut) };
}

/** The level, and what to store for it. */
interface Decision {
  readonly level: ThrottleLevel;
  /** gradual recovery holds the level above what the readings call for */
  readonly held: boolean;
  /** the hysteresis state to store; absent when throttling is disabled */
  readonly next?: LevelState;
  /** the level changed (or this is the first reading): from what, and why */
  readonly change?: { readonly from: ThrottleLevel | null; readonly reason: string };
}

/** Decide the level from the readings' raw level and the stored hysteresis state. Pure. */
function decideLevel(prev: LevelState | undefined, raw: RawLevel, disabled: boolean, now: number, recoveryMs: number): Decision {
  if (disabled) return { level: 0, held: false };
  const next = nextLevel(prev, raw.level, now, recoveryMs);
  const level = next.level;
  const held = level > raw.level;
  if (prev && prev.level === level) return { level, held, next };
  const reason = prev
    ? level > prev.level
      ? `level ${prev.level} -> ${level}: ${raw.reasons.join(', ')}`
      : `level ${prev.level} -> ${level}: calm for ${Math.round(recoveryMs / 1000)}s per step`
    : `first reading: level ${level}${raw.reasons.length ? `: ${raw.reasons.join(', ')}` : ''}`;
  return { level, held, next, change: { from: prev?.level ?? null, reason } };
}

/**
 * Decide and record in one IMMEDIATE transaction, so concurrent callers agree on the level: the
 * hysteresis state, the level change's event, and the sample the next caller measures CPU from.
 */
function record(state: State, m: { boot: string; snap: Snapshot; cpu: number; raw: RawLevel; disabled: boolean; command: string; recoveryMs: number }): Decision {
  const { snap, raw } = m;
  const now = snap.ts;
  return state.write(() => {
    const d = decideLevel(state.getKv<LevelState>('throttle.state')?.value, raw, m.disabled, now, m.recoveryMs);
    if (d.next) state.setKv('throttle.state', d.next, now);
    if (d.change) {
      const data = { from: d.change.from, to: d.level, raw: raw.level, memory_used_pct: round(snap.memory.usedPct), cpu_used_pct: round(m.cpu) };
      state.event({ command: m.command, kind: 'throttle.level', subject: `level ${d.level}`, reason: d.change.reason, data }, now);
    }
    state.db
      .prepare('INSERT INTO samples (ts, boot_id, cpu_total, cpu_idle, swap_in, swap_out, memory_used_pct, cpu_used_pct, load1, raw_level, level) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
      .run(now, m.boot, snap.cpu.total, snap.cpu.idle, snap.swapIn ?? null, snap.swapOut ?? null, snap.memory.usedPct, m.cpu, snap.load[0], raw.level, d.level);
    return d;
  });
}

/** The report: the readings, the decided level, and why it is what it is. */
function report(m: { w: CpuWindow; r: WindowReadings; counts: AgentCounts; raw: RawLevel; decided: Decision; disabled: boolean; t: ThrottleSettings }): ThrottleReport {
  const { w, r, raw, decided, t } = m;
  const snap = w.end;
  const reasons: string[] = [];
  if (m.disabled) reasons.push('throttling disabled by AGENTCTL_DISABLE_THROTTLE');
  else {
    reasons.push(...raw.reasons);
    if (decided.held) reasons.push(`recovering: one level down per ${Math.round(t.recoveryMs / 1000)}s of calm (readings call for level ${raw.level})`);
  }
  const swapUsed = snap.memory.swapTotalBytes > 0 ? ((snap.memory.swapTotalBytes - snap.memory.swapFreeBytes) / snap.memory.swapTotalBytes) * 100 : 0;
  return {
    timestamp: new Date(snap.ts).toISOString(),
    memory_used_pct: round(snap.memory.usedPct),
    cpu_used_pct: round(r.cpu),
    claude_processes: m.counts.claude,
    node_processes: m.counts.node,
    throttle_level: decided.level,
    throttle_params: paramsFor(decided.level, t),
    agent_processes: m.counts.agents,
    raw_level: raw.level,
    reasons,
    disabled: m.disabled,
    cpus: snap.cpus,
    load_1m: snap.load[0],
    load_5m: snap.load[1],
    load_15m: snap.load[2],
    load_per_core: round(snap.load[0] / snap.cpus, 2),
    memory_total_bytes: snap.memory.totalBytes,
    memory_available_bytes: snap.memory.availableBytes,
    swap_used_pct: round(swapUsed),
    swap_in_per_s: r.swapInPerS,
    swap_out_per_s: r.swapOutPerS,
    psi: snap.psi,
    cpu_window_ms: r.windowMs,
    cpu_from_stored_sample: w.fromStored,
    cpu_short_window: w.short,
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
