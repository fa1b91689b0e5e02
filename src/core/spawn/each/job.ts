/**
 * One job of a batch: an admitted run started as `/bin/sh -c LINE` in its own process group,
 * owned by the batch process (its supervisor: other commands leave its end to us), its output
 * kept in two private files and printed whole when it ends, so jobs never interleave lines
 * (GNU parallel's default grouping). Its end is recorded through finishRun like any run's.
 */
import { type ChildProcess, spawn as spawnChild } from 'node:child_process';
import { closeSync, constants, openSync, readSync, statSync, writeSync } from 'node:fs';
import { removeFile } from '../../fsutil.js';
import { join } from 'node:path';
import { getIdentity, type ProcessIdentity } from '../../identity.js';
import { endRun, finishRun } from '../../runs/end.js';
import { writePidFile } from '../../runs/files.js';
import { getRun, registryFor, type RunState } from '../../runs/registry.js';
import type { SpawnDeps } from '../deps.js';

/** What the batch knows of one job's attempt while it runs. */
export interface LiveJob {
  readonly runId: string;
  readonly pid: number;
  readonly id: ProcessIdentity | undefined;
  readonly startedAt: number;
  readonly timer: NodeJS.Timeout | undefined;
  /** record its PID now if that has not happened yet (before anyone signals it) */
  readonly recordRunning: () => void;
}

/** How an attempt ended, as recorded. */
export interface JobEnd {
  readonly runId: string;
  readonly pid: number;
  readonly startedAt: number;
  readonly endedAt: number;
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly failure: string | null;
  readonly state: RunState;
}

export interface JobStart {
  readonly seq: number;
  readonly attempt: number;
  readonly name: string;
  readonly group: string;
  readonly command: string;
  readonly argv: readonly string[];
  readonly cwd: string;
  readonly runId: string;
  readonly timeoutMs: number | undefined;
  readonly killGraceMs: number;
}

/** Where the job's output waits until it ends: a private folder of the batch's. */
const outFiles = (dir: string, j: JobStart) => ({ out: join(dir, `${j.seq}.${j.attempt}.out`), err: join(dir, `${j.seq}.${j.attempt}.err`) });

/** Start the admitted run; `ended` is called once, when it has ended and is recorded. */
export function startJob(deps: SpawnDeps, dir: string, j: JobStart, ended: (e: JobEnd) => void): LiveJob | undefined {
  const { state } = deps;
  const files = outFiles(dir, j);
  const fdOut = openSync(files.out, 'wx', 0o600);
  const fdErr = openSync(files.err, 'wx', 0o600);
  let child: ChildProcess | undefined;
  let thrown: Error | undefined;
  try {
    // PWD as /bin/sh would export it: the caller's when it names the job's folder, else the folder
    const env = { ...deps.env, PWD: sameDir(deps.env.PWD, j.cwd) ? deps.env.PWD : j.cwd, AGENTCTL_RUN_ID: j.runId, AGENTCTL_NAME: j.name };
    child = spawnChild(j.argv[0]!, j.argv.slice(1), { cwd: j.cwd, env, stdio: ['ignore', fdOut, fdErr], detached: true });
  } catch (err) {
    // some exec failures (ETXTBSY, ELOOP, ENAMETOOLONG...) are thrown rather than emitted
    thrown = err as Error;
  } finally {
    closeSync(fdOut);
    closeSync(fdErr);
  }
  const startedAt = deps.now();
  const pid = child?.pid;
  if (pid === undefined) {
    // not started (a program gone or busy, a cwd gone, a limit tool missing): the spawner's
    // failure, 126 when the program is there but cannot run, else 127, as the shell says it;
    // the reason goes to the job's stderr. Recorded after the caller has filed the attempt.
    const notStarted = (err: Error) => {
      const code = (err as NodeJS.ErrnoException).code ?? err.message;
      const status = code === 'ENOENT' ? 127 : 126;
      appendLine(files.err, `agentctl: could not start ${j.argv[0]}: ${code}`);
      ended(record(deps, j, 0, startedAt, status, null, `could not start: ${code}`));
    };
    if (thrown) setImmediate(() => notStarted(thrown));
    else child!.once('error', notStarted);
    return undefined;
  }
  const id = getIdentity(pid);
  // the row says `starting` (counted by everyone) until this runs: after the other jobs that
  // ended with this one have started, so a round of starts is not held up by its bookkeeping
  let recorded = false;
  const recordRunning = () => {
    if (recorded) return;
    recorded = true;
    state.write(() => {
      state.db
        .prepare("UPDATE runs SET state = 'running', pid = ?, start_time = ?, boot_id = ?, pgid = ? WHERE id = ? AND ended_at IS NULL")
        .run(pid, id?.startTime ?? null, id?.bootId ?? null, pid, j.runId);
      if (id) writePidFile(state, { id: j.runId, name: j.name, grp: j.group }, id);
    });
  };
  setImmediate(recordRunning);
  const timer = j.timeoutMs !== undefined ? setTimeout(() => void stopJob(deps, j.runId, j.killGraceMs, { timedOut: true, why: `ran past --timeout ${j.timeoutMs}ms` }), j.timeoutMs) : undefined;
  child!.once('exit', (code, sig) => {
    if (timer) clearTimeout(timer);
    recordRunning(); // a job that ended before its bookkeeping ran: its PID is recorded first
    ended(record(deps, j, pid, startedAt, code, sig, 'exited in a batch (spawn --each)'));
  });
  return { runId: j.runId, pid, id, startedAt, timer, recordRunning };
}

/** Do two paths name one folder (same device and inode)? */
function sameDir(a: string | undefined, b: string): boolean {
  if (!a) return false;
  try {
    const x = statSync(a);
    const y = statSync(b);
    return x.dev === y.dev && x.ino === y.ino;
  } catch {
    return false;
  }
}

/** A line at the end of a job's private output file (best effort). */
function appendLine(path: string, line: string): void {
  try {
    const fd = openSync(path, constants.O_WRONLY | constants.O_APPEND | constants.O_NOFOLLOW);
    try {
      writeSync(fd, `${line}\n`);
    } finally {
      closeSync(fd);
    }
  } catch {
    /* the job's output is gone: the recorded failure still says why */
  }
}

/** Record an attempt's end (unless a stopper recorded it first) and read back how it is recorded. */
function record(deps: SpawnDeps, j: JobStart, pid: number, startedAt: number, exitCode: number | null, signal: string | null, why: string): JobEnd {
  const { state } = deps;
  const endedAt = deps.now();
  const row = state.write(() => {
    const cur = getRun(state, j.runId);
    if (cur && cur.ended_at === null) finishRun(state, cur, { exitCode, signal, endedAt, why }, registryFor(deps.config, deps.now(), 'spawn'));
    return getRun(state, j.runId);
  });
  return {
    runId: j.runId,
    pid,
    startedAt,
    endedAt: row?.ended_at ?? endedAt,
    exitCode: row ? row.exit_code : exitCode,
    signal: row ? row.signal : signal,
    failure: row?.failure ?? null,
    state: row?.state ?? 'lost',
  };
}

/** End a job's tree by the stop routine (TERM, grace, KILL, identity proven before each signal). */
export async function stopJob(deps: SpawnDeps, runId: string, graceMs: number, how: { timedOut: boolean; why: string }): Promise<void> {
  const row = getRun(deps.state, runId);
  if (!row || row.ended_at !== null) return;
  await endRun(deps.state, deps.config, row, graceMs, { ...how, command: 'spawn' });
}

/** Print what the attempt wrote (stdout to `out`, stderr to `err`), then remove its files. */
export function flushOutput(dir: string, j: Pick<JobStart, 'seq' | 'attempt'>, out: NodeJS.WritableStream, err: NodeJS.WritableStream): void {
  const files = outFiles(dir, j as JobStart);
  copyOut(files.out, out);
  copyOut(files.err, err);
  removeFile(files.out);
  removeFile(files.err);
}

function copyOut(path: string, to: NodeJS.WritableStream): void {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch {
    return;
  }
  try {
    const buf = Buffer.allocUnsafe(1 << 16);
    for (let n = readSync(fd, buf); n > 0; n = readSync(fd, buf)) to.write(Buffer.from(buf.subarray(0, n)));
  } finally {
    closeSync(fd);
  }
}
