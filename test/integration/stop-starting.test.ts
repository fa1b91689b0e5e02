/**
 * stop and a run that is still starting: a run admitted a moment ago has no process yet. The
 * stop waits for it to get one (its starter records it, reconcile adopts it) and stops it,
 * rather than report it not running and let it start after the stop said it was done.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { getIdentity } from '../../src/core/identity.js';
import { alive, cleanEnv, insertRun, parseJson, runCli, useTempState, waitFor } from '../helpers.js';
import { runRow } from '../rows.js';

const t = useTempState();
const env = () => cleanEnv({ AGENTCTL_DISABLE_THROTTLE: '1' });
const cli = (args: string[]) => runCli(['--state-dir', t.sd, ...args], { env: env(), cwd: t.dir, timeoutMs: 60_000 });

describe('stop and starting runs', () => {
  it('waits for a starting run to get its process, then stops it', async () => {
    expect((await cli(['ps'])).code).toBe(0); // the state exists
    const runId = 'rstart00001';
    const childFile = join(t.sd, 'runs', `${runId}.child`);
    const go = join(t.dir, 'go');
    // the starter: starts the child (its own group, carrying the run id) once told to, and
    // records its PID where a supervisor does, as a spawner slow to start it would
    const starter = t.procs.track(
      spawn('/bin/sh', ['-c', `mkdir -p "$(dirname "$1")"; while [ ! -e "$2" ]; do sleep 0.05; done; AGENTCTL_RUN_ID=${runId} setsid sleep 300 & echo $! > "$1"; wait`, 'starter', childFile, go], {
        stdio: 'ignore',
        env: env(),
      }),
    );
    const id = await waitFor(() => getIdentity(starter.pid!), 5000);
    const row = runRow({
      id: runId,
      name: 'late',
      state: 'starting',
      pid: null,
      pgid: null,
      start_time: null,
      boot_id: id.bootId,
      sup_pid: id.pid,
      sup_start_time: id.startTime,
      started_at: Date.now(),
      command: '["sleep","300"]',
      cwd: t.dir,
    });
    insertRun(t.sd, row);

    const stopping = cli(['stop', 'late', '--grace', '2s', '--json']);
    // the stop is waiting on the starting run when the child comes
    setTimeout(() => touch(go), 300);
    const r = await stopping;
    const doc = parseJson<{ not_running: string[]; graceful: string[]; selected: Array<{ name: string; pid: number }> }>(r.stdout);
    if (doc.selected.length === 0) {
      // the stop did not wait: the child still comes, and is ended after the test
      touch(go);
      t.procs.adopt(await waitFor(() => (existsSync(childFile) ? Number(readFileSync(childFile, 'utf8').trim()) || undefined : undefined), 5000));
    }
    expect(r.code, r.stderr).toBe(0);
    expect(doc.not_running).toEqual([]);
    expect(doc.graceful).toEqual(['late']);
    // the child the starter started (the stop's record removed its .child file)
    const child = doc.selected[0]!.pid;
    t.procs.adopt(child);
    expect(child).toBeGreaterThan(1);
    await waitFor(() => !alive(child), 5000, { what: 'the child ended' });
  });
});

function touch(path: string): void {
  if (!existsSync(path)) writeFileSync(path, '');
}
