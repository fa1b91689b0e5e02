/**
 * What a doctor check is, and the small helpers every group of checks shares: the result
 * shapes for "ok" and "cannot tell", grading against warn/fail thresholds, and the fact
 * readers more than one check needs.
 */
import type { DoctorThresholds, LoadedConfig } from '../config/types.js';
import type { ThrottleReport } from '../measure.js';
import type { ProcDetail } from '../proc.js';
import { liveRuns, type RunRow } from '../runs/registry.js';
import type { State } from '../state.js';

export type Status = 'ok' | 'warn' | 'fail';

export interface CheckResult {
  readonly status: Status;
  /** the measured value, for people ("0.62 per core") */
  readonly value: string;
  /** what ok means ("< 0.75 warn, < 1.0 fail") */
  readonly threshold: string;
  /** a command that fixes or explains it; empty when ok */
  readonly remedy: string;
  /** the measured number, for JSON and Prometheus, when there is one */
  readonly metric?: number | null;
}

/** Everything the checks read, gathered once. */
export interface Facts {
  readonly now: number;
  readonly config: LoadedConfig | undefined;
  readonly configError: string | undefined;
  readonly state: State | undefined;
  readonly stateError: string | undefined;
  readonly stateDir: string;
  readonly report: ThrottleReport | undefined;
  readonly procs: readonly ProcDetail[];
  /** agentctl's environment (AGENTCTL_SUPERVISOR) */
  readonly env: NodeJS.ProcessEnv;
}

export interface Check {
  readonly id: string;
  readonly group: 'host' | 'agents' | 'runs' | 'ports' | 'services' | 'fleet' | 'config' | 'state';
  readonly title: string;
  run(f: Facts): CheckResult | Promise<CheckResult>;
}

/**
 * One row of the table as written in a group's file: a check whose run also reads the
 * configured doctor thresholds. checks() binds the thresholds and hands out plain Checks.
 */
export interface CheckEntry extends Omit<Check, 'run'> {
  run(f: Facts, t: DoctorThresholds): CheckResult | Promise<CheckResult>;
}

export const ok = (value: string, threshold: string, metric?: number | null): CheckResult => ({ status: 'ok', value, threshold, remedy: '', ...(metric !== undefined ? { metric } : {}) });
export const skip = (why: string): CheckResult => ({ status: 'warn', value: why, threshold: '-', remedy: 'agentctl doctor --check state.integrity', metric: null });

/** Grade `v` against warn/fail thresholds (higher is worse, or lower is worse). */
export function grade(v: number, warn: number, fail: number, higherIsWorse = true): Status {
  if (higherIsWorse) return v >= fail ? 'fail' : v >= warn ? 'warn' : 'ok';
  return v < fail ? 'fail' : v < warn ? 'warn' : 'ok';
}

/** The runs the registry calls live; none without a state. */
export function live(f: Facts): RunRow[] {
  return f.state ? liveRuns(f.state) : [];
}
