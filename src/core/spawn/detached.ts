/**
 * Launching a detached run: its log (older ones of the name pruned), the /bin/sh supervisor
 * (launch.ts) that outlives us and records the exit, and the run row moved to `running`.
 * A run that could not start is closed as exit 127.
 */
import { closeSync, lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ensurePrivateDir, removeFile } from '../fsutil.js';
import { fleetCap } from '../fleet/fleet.js';
import { getIdentity } from '../identity.js';
import { finishRun } from '../runs/end.js';
import { childFile, exitFile, logFile, runDir, timeoutMarker, writePidFile } from '../runs/files.js';
import { getRun, registryFor } from '../runs/registry.js';
import { openLogForAppend } from '../safefs.js';
import type { State } from '../state.js';
import type { SpawnDeps, SpawnRequest } from './deps.js';
import { UnsureStart } from './forker.js';
import { type DetachedStart, type Launch, startDetached } from './launch.js';
import type { SpawnResult } from './result.js';

export async function launchDetached(deps: SpawnDeps, req: SpawnRequest, run: Launch): Promise<SpawnResult> {
  const { state } = deps;
  const { runId } = run;
  ensurePrivateDir(state.paths.logs);
  ensurePrivateDir(runDir(state));
  const logPath = logFile(state, { id: runId, name: req.name });
  pruneLogs(state.paths.logs, req.name, deps.config.config.spawn.logsPerName - 1);
  let started: DetachedStart;
  let logFd: number | undefined;
  try {
    logFd = openLogForAppend(logPath);
    started = await startSupervisor(deps, req, run, logFd, logPath);
  } catch (err) {
    // a supervisor that may have started the child leaves the run to reconcile (adopted from
    // runs/RUN_ID.child, or lost): closing it here would leave that child unrecorded
    if (err instanceof UnsureStart) throw new UnsureStart(`${err.message}; run ${runId} is left to the next reconcile, which adopts its child if it runs`);
    state.write(() =>
      finishRun(state, getRun(state, runId)!, { exitCode: 127, signal: null, endedAt: deps.now(), why: `could not start: ${(err as Error).message}` }, registryFor(deps.config, deps.now(), 'spawn')),
    );
    throw err;
  } finally {
    if (logFd !== undefined) closeSync(logFd);
  }
  recordRunning(state, req, runId, started, logPath);
  deps.onStart?.({ runId, pid: started.pid });
  return { outcome: 'started', runId, pid: started.pid, name: req.name, logPath, limitMechanism: run.mechanism, trial: run.trial, waitedMs: run.waitedMs, ports: run.ports };
}

function startSupervisor(deps: SpawnDeps, req: SpawnRequest, run: Launch, logFd: number, logPath: string): Promise<DetachedStart> {
  const { state } = deps;
  const { runId } = run;
  const timeoutSec = req.timeoutMs ? Math.max(1, Math.ceil(req.timeoutMs / 1000)) : 0;
  const watchdog = [deps.selfArgv[0]!, deps.selfArgv[1]!, state.paths.dir, `${req.killGraceMs}ms`] as const;
  // the supervisor's identity is recorded in the step that starts it: a spawner killed
  // from here on leaves a row that reconcile can follow to the child (runFate, adopt)
  const recordSupervisor = (supPid: number) => {
    const sup = getIdentity(supPid);
    if (sup) state.write(() => state.db.prepare('UPDATE runs SET sup_pid = ?, sup_start_time = ? WHERE id = ? AND ended_at IS NULL').run(sup.pid, sup.startTime, runId));
  };
  // the supervisor's own environment has no run id: it hands that to the child only
  // nor the run id of a run this spawn was called from: stopping that run must not take this one
  const { AGENTCTL_RUN_ID: _outer, AGENTCTL_NAME: _outerName, ...supEnv } = deps.env;
  return startDetached({
    argv: run.argv,
    cwd: req.cwd,
    env: { ...supEnv, ...run.portEnv },
    logFd,
    exitFile: exitFile(state, runId),
    timeoutMarker: timeoutMarker(state, runId),
    childFile: childFile(state, runId),
    timeoutSec,
    log: logPath,
    logMax: deps.config.config.spawn.logMaxBytes,
    fleetSync: fleetCap(deps.config.config, req.group) !== undefined,
    restart: req.restart !== undefined,
    configPath: deps.configPath,
    configHome: deps.configHome,
    runId,
    name: req.name,
    watchdog,
    onSupervisor: recordSupervisor,
    forker: deps.forker,
  });
}

function recordRunning(state: State, req: SpawnRequest, runId: string, started: DetachedStart, logPath: string): void {
  const id = getIdentity(started.pid);
  const sup = getIdentity(started.supervisorPid);
  state.write(() => {
    // a run that already ended (its exit recorded by a reconcile meanwhile) stays ended
    const changed = state.db
      .prepare("UPDATE runs SET state = 'running', pid = ?, start_time = ?, boot_id = ?, pgid = ?, sup_pid = ?, sup_start_time = ?, log_path = ? WHERE id = ? AND ended_at IS NULL")
      .run(started.pid, id?.startTime ?? null, id?.bootId ?? null, started.pid, started.supervisorPid, sup?.startTime ?? null, logPath, runId).changes;
    if (id && changed) writePidFile(state, { id: runId, name: req.name, grp: req.group }, id);
  });
}

/** The log folder as this process last listed it: `up` starting 20 runs listed it 20 times. */
let listed: { dir: string; at: number; files: string[] } | undefined;
const LISTING_REUSE_MS = 1000;

/** Keep the newest `keep` logs of a name (and their .prev halves); older ones go. */
function pruneLogs(dir: string, name: string, keep: number): void {
  // <name>.<run id>.log exactly: a prefix match would take worker.v2's logs for worker's
  const mineRe = new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.r[0-9a-z]+\\.log$`);
  try {
    // best effort, so a listing a second old will do: a log another process wrote meanwhile is
    // pruned by the next start of its name
    const now = Date.now();
    if (!listed || listed.dir !== dir || now - listed.at > LISTING_REUSE_MS) listed = { dir, at: now, files: readdirSync(dir) };
    const names = listed.files.filter((f) => mineRe.test(f));
    if (names.length <= keep) return; // nothing to prune: no need to look at their times
    const mine = names
      .flatMap((f) => {
        try {
          return [{ f, t: lstatSync(join(dir, f)).mtimeMs }];
        } catch {
          return []; // gone meanwhile
        }
      })
      .sort((a, b) => b.t - a.t);
    for (const { f } of mine.slice(keep)) {
      removeFile(join(dir, f));
      removeFile(join(dir, `${f}.prev`));
    }
  } catch {
    /* best effort */
  }
}
