/**
 * `spawn --each`: a batch of shell command lines, each a registered run admitted through the
 * one admission loop of this process (each/loop.ts). Here: the batch's set-up (its private
 * output folder, the limits prefix), its --json document and its summary line.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SpawnDeps } from './deps.js';
import { limitPrefix } from './launch.js';
import { Batch, type BatchRun, type EachRequest, how, type JobOutcome } from './each/loop.js';

export type { EachRequest } from './each/loop.js';

/** One job in the --json document. */
export interface EachJobJson {
  seq: number;
  /** its line number in the input */
  line: number;
  name: string;
  command: string;
  outcome: JobOutcome;
  exit_code: number | null;
  signal: string | null;
  failure: string | null;
  /** the last attempt's run */
  run_id: string | null;
  run_ids: string[];
  retries: number;
  started_at: string | null;
  runtime_ms: number | null;
  message: string | null;
}

export interface EachOutput {
  outcome: 'batch';
  jobs: number;
  succeeded: number;
  failed: number;
  refused: number;
  stopped: number;
  not_started: number;
  retried: number;
  halted: boolean;
  stopped_by: string | null;
  makespan_ms: number;
  exit_code: number;
  summary: string;
  results: EachJobJson[];
}

/** Run the batch. `req` without the folder and limits, which are set up here. */
export async function runEach(deps: SpawnDeps, req: Omit<EachRequest, 'outDir' | 'argvPrefix' | 'mechanism'>): Promise<EachOutput> {
  const { prefix, mechanism } = limitPrefix(req.base.limits, deps.env);
  const outDir = mkdtempSync(join(tmpdir(), 'agentctl-each-'));
  try {
    const run = await new Batch(deps, { ...req, outDir, argvPrefix: prefix, mechanism }).run();
    return eachJson(run);
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }
}

export function eachJson(run: BatchRun): EachOutput {
  const results = run.jobs.map((j): EachJobJson => ({
    seq: j.seq,
    line: j.line,
    name: j.name,
    command: j.command,
    outcome: j.outcome,
    exit_code: j.last?.exitCode ?? null,
    signal: j.last?.signal ?? null,
    failure: j.last?.failure ?? null,
    run_id: j.last?.runId ?? null,
    run_ids: j.runIds,
    retries: Math.max(0, j.attempts - 1),
    started_at: j.last ? new Date(j.last.startedAt).toISOString() : null,
    runtime_ms: j.last ? j.last.endedAt - j.last.startedAt : null,
    message: j.message ?? null,
  }));
  const count = (o: JobOutcome) => results.filter((r) => r.outcome === o).length;
  const signum = run.stoppedBy ? (constants.signals[run.stoppedBy] ?? 1) : 0;
  const exitCode = run.stoppedBy ? 128 + signum : results.every((r) => r.outcome === 'succeeded') ? 0 : 1;
  const out = {
    outcome: 'batch' as const,
    jobs: results.length,
    succeeded: count('succeeded'),
    failed: count('failed'),
    refused: count('refused'),
    stopped: count('stopped'),
    not_started: count('not_started'),
    retried: results.filter((r) => r.retries > 0).length,
    halted: run.halted,
    stopped_by: run.stoppedBy ?? null,
    makespan_ms: run.endedAt - run.startedAt,
    exit_code: exitCode,
    results,
  };
  return { ...out, summary: summaryLine(out, results) };
}

/** `30 jobs: 28 succeeded, 2 failed (exit 1; 1 after 2 retries)`, and the rest when there is any. */
export function summaryLine(o: Omit<EachOutput, 'summary'>, results: readonly EachJobJson[]): string {
  const parts = [`${o.succeeded} succeeded`];
  if (o.failed) {
    const failed = results.filter((r) => r.outcome === 'failed');
    const ends = [...new Set(failed.map((r) => how({ exitCode: r.exit_code, signal: r.signal })))].join(', ');
    const retried = failed.filter((r) => r.retries > 0);
    const after = retried.length ? `; ${retried.length} after ${Math.max(...retried.map((r) => r.retries))} ${Math.max(...retried.map((r) => r.retries)) === 1 ? 'retry' : 'retries'}` : '';
    parts.push(`${o.failed} failed (${ends}${after})`);
  }
  if (o.refused) parts.push(`${o.refused} refused`);
  if (o.stopped) parts.push(`${o.stopped} stopped`);
  if (o.not_started) parts.push(`${o.not_started} not started`);
  const tail = o.stopped_by ? ` (stopped by ${o.stopped_by})` : o.halted ? ' (halted: --halt-on-failure)' : '';
  return `${o.jobs} job${o.jobs === 1 ? '' : 's'}: ${parts.join(', ')}${tail}`;
}
