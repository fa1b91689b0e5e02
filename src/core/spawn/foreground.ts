/**
 * Supervising a foreground run: the child in its own process group, our SIGINT/TERM/HUP
 * forwarded to it, --timeout ending its tree, and its exit recorded and passed through
 * (the child's code, or 128 + signal number).
 */
import { type ChildProcess, spawn as spawnChild } from 'node:child_process';
import { constants } from 'node:os';
import { getIdentity, type ProcessIdentity } from '../identity.js';
import { endTree, signalProcess } from '../kill.js';
import { finishRun } from '../runs/end.js';
import { writePidFile } from '../runs/files.js';
import { getRun, registryFor } from '../runs/registry.js';
import { ownChildTicks, readPeakRss, TICK_MS } from '../runs/usage.js';
import type { SpawnDeps, SpawnRequest } from './deps.js';
import type { Launch } from './launch.js';
import type { SpawnResult } from './result.js';

/** Under --json stdout carries our one document, so the child's output goes to stderr (`childStdoutToStderr`). */
export async function superviseForeground(deps: SpawnDeps, req: SpawnRequest, run: Launch, childStdoutToStderr: boolean): Promise<SpawnResult> {
  const { state } = deps;
  const { runId, argv } = run;
  const env = { ...deps.env, ...run.portEnv, AGENTCTL_RUN_ID: runId, AGENTCTL_NAME: req.name };
  const ticksBefore = ownChildTicks();
  const child = spawnChild(argv[0]!, argv.slice(1), { cwd: req.cwd, env, stdio: ['inherit', childStdoutToStderr ? 2 : 'inherit', 'inherit'], detached: true });
  const spawnError = await spawned(child);
  if (spawnError) {
    const why = `could not start ${req.command[0]}: ${(spawnError as NodeJS.ErrnoException).code ?? spawnError.message}`;
    state.write(() => finishRun(state, getRun(state, runId)!, { exitCode: 127, signal: null, endedAt: deps.now(), why }, registryFor(deps.config, deps.now(), 'spawn')));
    return {
      outcome: 'finished',
      runId,
      pid: 0,
      name: req.name,
      exitCode: 127,
      signal: null,
      failure: 'startup_error',
      durationMs: 0,
      cpuMs: null,
      peakRssBytes: null,
      limitMechanism: run.mechanism,
      timedOut: false,
      waitedMs: run.waitedMs,
      passThrough: 127,
    };
  }
  const pid = child.pid!;
  const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.once('exit', (code, sig) => resolve([code, sig])));
  const id = getIdentity(pid);
  state.write(() => {
    state.db.prepare("UPDATE runs SET state = 'running', pid = ?, start_time = ?, boot_id = ?, pgid = ? WHERE id = ?").run(pid, id?.startTime ?? null, id?.bootId ?? null, pid, runId);
    if (id) writePidFile(state, { id: runId, name: req.name, grp: req.group }, id);
  });
  deps.onStart?.({ runId, pid });
  const guard = guardChild(id, runId, req);
  const peak = samplePeakRss(pid);
  const [code, sig] = await exited;
  // Node has reaped it: its tree's CPU time is now in ours (our only child meanwhile)
  const ticksAfter = ownChildTicks();
  const usage = { cpuMs: ticksBefore !== null && ticksAfter !== null ? Math.max(0, ticksAfter - ticksBefore) * TICK_MS : null, peakRssBytes: peak.stop() };
  const { interrupted, timedOut } = await guard.release();
  const endedAt = deps.now();
  const row = getRun(state, runId)!;
  // a signal the operator sent (Ctrl-C, a TERM to agentctl) is a stop, not the worker failing
  const stoppedByUs = interrupted && !timedOut;
  const why = timedOut ? `ran past --timeout ${req.timeoutMs}ms` : stoppedByUs ? 'stopped by a forwarded signal' : 'exited in the foreground';
  const fin = state.write(() => finishRun(state, row, { exitCode: code, signal: sig, endedAt, timedOut, stoppedByUs, why, ...usage }, registryFor(deps.config, deps.now(), 'spawn')));
  const signum = sig ? (constants.signals[sig] ?? 1) : 0;
  return {
    outcome: 'finished',
    runId,
    pid,
    name: req.name,
    exitCode: code,
    signal: sig,
    failure: fin.failure,
    durationMs: endedAt - row.started_at,
    cpuMs: fin.usage.cpu_ms,
    peakRssBytes: fin.usage.peak_rss_bytes,
    limitMechanism: run.mechanism,
    timedOut,
    waitedMs: run.waitedMs,
    passThrough: code ?? 128 + signum,
  };
}

/**
 * The child's peak RSS, read from /proc while it runs (every 250 ms for its first 2 s, then
 * every second: a short run still gets readings) and kept as the largest; `stop` ends the
 * readings and returns it, null when none was read.
 */
function samplePeakRss(pid: number): { stop(): number | null } {
  const started = Date.now();
  let peak: number | null = null;
  let timer: NodeJS.Timeout | undefined;
  const read = () => {
    const v = readPeakRss(pid);
    if (v !== null && v > (peak ?? -1)) peak = v;
    timer = setTimeout(read, Date.now() - started < 2000 ? 250 : 1000);
    timer.unref();
  };
  // not at once: before its exec the child is still a copy of us, and exec starts a new mark
  timer = setTimeout(read, 250);
  timer.unref();
  return {
    stop() {
      clearTimeout(timer);
      return peak;
    },
  };
}

/** Did the child start? Undefined once it runs, or the error that kept it from running. */
function spawned(child: ChildProcess): Promise<Error | undefined> {
  return new Promise<Error | undefined>((resolve) => {
    child.once('spawn', () => resolve(undefined));
    child.once('error', (err) => resolve(err));
  });
}

/**
 * While the child runs: forward our signals to its group, and end its tree at --timeout.
 * `release` undoes both once it exited (sweeping what a timeout left) and says what happened.
 */
function guardChild(id: ProcessIdentity | undefined, runId: string, req: SpawnRequest): { release(): Promise<{ interrupted: boolean; timedOut: boolean }> } {
  let interrupted = false;
  const forward = (sig: NodeJS.Signals) => () => {
    if (id && signalProcess(id, sig, { group: true })) interrupted = true;
  };
  const handlers = (['SIGINT', 'SIGTERM', 'SIGHUP'] as const).map((s) => [s, forward(s)] as const);
  for (const [s, h] of handlers) process.on(s, h);
  let timedOut = false;
  const timer =
    req.timeoutMs !== undefined && id
      ? setTimeout(() => {
          timedOut = true;
          void endTree(id, { runId, graceMs: req.killGraceMs });
        }, req.timeoutMs)
      : undefined;
  return {
    async release() {
      if (timer) clearTimeout(timer);
      for (const [s, h] of handlers) process.removeListener(s, h);
      if (timedOut && id) await endTree(id, { runId, graceMs: 0 }); // sweep what the timeout left
      return { interrupted, timedOut };
    },
  };
}
