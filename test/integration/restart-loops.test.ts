/**
 * doctor agents.restart_loops against a real loop: a shell loop that starts a 0.3 s python
 * script 40 times, sampled by a real `throttle-status --watch` (what a host with a watcher or
 * frequent cron readings looks like, compressed), then one real `doctor --json`.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { State } from '../../src/core/state.js';
import { BIN, cleanEnv, parseJson, Procs, runCli, tempDir, waitFor } from '../helpers.js';

interface Check {
  id: string;
  status: 'ok' | 'warn' | 'fail';
  value: string;
  remedy: string;
}

// the interpreter itself, not a version manager's shell shim (which would be a second identity)
const PY = execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim();

let t: ReturnType<typeof tempDir>;
let sd: string;
let cfg: string[];
const procs = new Procs();
const loops: ChildProcess[] = [];
const env = () => cleanEnv({ AGENTCTL_DISABLE_THROTTLE: '1' });

beforeEach(() => {
  t = tempDir();
  sd = join(t.dir, 'state');
  writeFileSync(join(t.dir, 'flaky_worker.py'), 'import sys, time\ntime.sleep(0.3)\nsys.exit(1)\n');
  writeFileSync(join(t.dir, 'agentctl.toml'), '[[services]]\nname = "flaky"\nmatch = "flaky_worker\\\\.py"\n');
  cfg = ['--config', join(t.dir, 'agentctl.toml')];
});
afterEach(async () => {
  for (const sh of loops.splice(0)) await endLoop(sh);
  await procs.endAll();
  t.cleanup();
});

/** `sh loop.sh`: start the script `n` times, one after another, as a crash loop would. */
function startLoop(n: number): ChildProcess {
  const script = join(t.dir, 'loop.sh');
  writeFileSync(script, `for i in $(seq ${n}); do ${JSON.stringify(PY)} ${JSON.stringify(join(t.dir, 'flaky_worker.py'))} --token hunter2; done\n`);
  const sh = spawn('sh', [script], { stdio: 'ignore' });
  loops.push(sh);
  return sh;
}

/** End the loop by its PID: stop it so it starts nothing new, end its current child by PID, then it. */
async function endLoop(sh: ChildProcess): Promise<void> {
  if (sh.exitCode !== null || sh.signalCode !== null) return;
  const exited = once(sh, 'exit');
  sh.kill('SIGSTOP');
  let kids: number[] = [];
  try {
    kids = readFileSync(`/proc/${sh.pid}/task/${sh.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    /* gone meanwhile */
  }
  procs.adopt(...kids); // endAll signals them only while each PID still has its start time
  sh.kill('SIGKILL');
  await exited;
}

async function restartLoops(): Promise<{ code: number | null; check: Check }> {
  const r = await runCli(['--state-dir', sd, ...cfg, 'doctor', '--json', '--check', 'agents.restart_loops'], { env: env(), cwd: t.dir });
  return { code: r.code, check: parseJson<{ checks: Check[] }>(r.stdout).checks[0]! };
}

describe('doctor agents.restart_loops', () => {
  it('flags a shell loop of 40 short python runs within one doctor run after it, with its command line', async () => {
    // the sampler: one reading every 250 ms, each recording the matching processes it sees
    const watch = spawn(process.execPath, [BIN, '--state-dir', sd, ...cfg, 'throttle-status', '--watch', '250ms'], { env: env(), cwd: t.dir, stdio: ['ignore', 'pipe', 'ignore'] });
    let readings = 0;
    watch.stdout!.on('data', () => readings++);
    try {
      await waitFor(() => readings > 0, 15_000);
      const sh = startLoop(40);
      await waitFor(() => sh.exitCode !== null, 100_000, { stepMs: 100, what: 'the loop to finish' });
      expect(sh.exitCode).toBe(1); // the last run's exit status: each run failed
    } finally {
      const exited = once(watch, 'exit');
      watch.kill('SIGKILL'); // by its PID
      await exited;
    }

    const r = await restartLoops();
    expect(r.code).toBe(1);
    expect(r.check.status).toBe('fail');
    const m = /^services\.flaky: (\S+) (\S+) --token <redacted>: (\d+) processes gone after < 1m in (\d+)s \(longest seen (\d+)ms; PIDs [\d, ]+ newest; 0 alive; parent PID (\d+) gone\)$/.exec(
      r.check.value,
    );
    expect(m, r.check.value).not.toBeNull();
    expect(m![1]).toBe(PY);
    expect(m![2]).toBe(join(t.dir, 'flaky_worker.py'));
    const flagged = Number(m![3]);
    expect(flagged).toBeGreaterThanOrEqual(5);
    expect(Number(m![5])).toBeLessThan(60_000);
    expect(Number(m![6])).toBe(loops[0]!.pid); // what restarted them: the loop, gone by now

    // the verdict rests on what the readings recorded: that many distinct processes, all gone, no secret kept
    const s = State.open(sd);
    try {
      const rec = s.db.prepare("SELECT COUNT(DISTINCT pid) AS pids, COUNT(gone_at) AS gone, SUM(command LIKE '%hunter2%') AS secrets FROM sightings WHERE matched = 'services.flaky'").get() as {
        pids: number;
        gone: number;
        secrets: number;
      };
      expect(rec).toEqual({ pids: flagged, gone: flagged, secrets: 0 });
    } finally {
      s.close();
    }
  }, 150_000);

  it('a loop no reading overlapped is invisible: the documented limit', async () => {
    await runCli(['--state-dir', sd, ...cfg, 'throttle-status', '--json'], { env: env(), cwd: t.dir });
    const sh = startLoop(8);
    await waitFor(() => sh.exitCode !== null, 60_000, { stepMs: 100, what: 'the loop to finish' });
    const r = await restartLoops();
    expect(r.check).toMatchObject({ status: 'ok', value: 'none (0 agent and service processes seen in 10m)' });
  }, 90_000);
});
