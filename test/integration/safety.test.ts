/**
 * Never the wrong process, never the wrong file: supervisors are not agents, identity before
 * every signal, orphans only with a provenance, escaped descendants ended and reported, a
 * spawner killed after launch leaks nothing, no link followed in the state folder, nothing read
 * back from the state leaves it, stop markers lapse with their stopper, stop on a full disk,
 * and a dry-run stop that says what the real one does. Real processes, files and signals.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmdirSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bootId, getIdentity } from '../../src/core/identity.js';
import { findByRunId } from '../../src/core/kill.js';
import { State } from '../../src/core/state.js';
import { alive, BIN, cleanEnv, parseJson, rng, runCli, useTempState, waitFor } from '../helpers.js';
import { testUser } from '../users.js';

/** a fresh temp folder and state dir per test; processes in procs ended by PID after it */
const t = useTempState();
const procs = t.procs;

const env = (more: Record<string, string> = {}) => cleanEnv({ AGENTCTL_DISABLE_THROTTLE: '1', ...more });
const cli = (args: string[], e = env()) => runCli(['--state-dir', t.sd, ...args], { env: e, cwd: t.dir });
const stat = (pid: number) => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
const ppidOf = (pid: number) => Number(stat(pid)[1]);
const sidOf = (pid: number) => Number(stat(pid)[3]);
const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const db = () => State.open(t.sd);
const row = (name: string) => {
  const s = db();
  try {
    return s.db.prepare('SELECT * FROM runs WHERE name = ? ORDER BY started_at DESC LIMIT 1').get(name) as Record<string, unknown>;
  } finally {
    s.close();
  }
};
type Started = { run_id: string; pid: number };
async function spawnD(name: string, cmd: string[], more: string[] = [], e = env()): Promise<Started> {
  const r = await cli(['spawn', '--json', '-d', '--name', name, ...more, '--', ...cmd], e);
  expect(r.code, r.stderr).toBe(0);
  const s = parseJson<Started>(r.stdout);
  procs.adopt(s.pid);
  return s;
}
/** A process started by `sh -c 'CMD & echo $!'` with detached set: PID 1's child once the shell exits. */
async function reparented(cmd: string, opts: { setsid?: boolean; extraEnv?: Record<string, string> } = {}): Promise<number> {
  const c = spawn('/bin/sh', ['-c', `${opts.setsid ? 'setsid ' : ''}${cmd} >/dev/null 2>&1 </dev/null & echo $!`], { stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, ...opts.extraEnv } });
  let out = '';
  c.stdout!.on('data', (d) => (out += d));
  await once(c, 'exit');
  const pid = Number(out.trim());
  procs.adopt(pid);
  await waitFor(() => alive(pid) && ppidOf(pid) === 1, 3000);
  // with setsid the shell's child may fork before it leads its session: wait for it
  if (opts.setsid) await waitFor(() => sidOf(pid) === pid, 3000);
  return pid;
}

describe('supervisors are not agents (1)', () => {
  it('a script named claude spawned -d by its path counts once, and reap --orphans leaves its supervisor alone', async () => {
    const script = join(t.dir, 'claude');
    writeFileSync(script, '#!/bin/sh\nwhile :; do sleep 1; done\n');
    chmodSync(script, 0o755);
    // only this test's claude counts, whatever else runs on the host
    const e = env({ AGENTCTL_AGENTS_CLAUDE: `${escapeRe(script)}( |$)`, AGENTCTL_AGENTS_PATTERNS: `${escapeRe(script)}( |$)` });
    const run = await spawnD('claude-1', [script, '--print', 'hello'], [], e);
    const sup = ppidOf(run.pid);
    procs.adopt(sup);
    expect(readFileSync(`/proc/${sup}/cmdline`, 'latin1').split('\0')).toEqual(['agentctl-supervise', '-s', run.run_id, '']);
    const ts = parseJson<{ claude_processes: number; agent_processes: number }>(
      (
        await runCli(['--state-dir', t.sd, 'throttle-status', '--json'], {
          env: cleanEnv({ AGENTCTL_AGENTS_CLAUDE: e.AGENTCTL_AGENTS_CLAUDE!, AGENTCTL_AGENTS_PATTERNS: e.AGENTCTL_AGENTS_PATTERNS! }),
        })
      ).stdout,
    );
    expect([ts.claude_processes, ts.agent_processes]).toEqual([1, 1]);
    const dry = parseJson<{ findings: Array<{ kind: string; pid: number }> }>((await cli(['reap', '--orphans', '--dry-run', '--json'], e)).stdout);
    expect(dry.findings.filter((f) => f.kind === 'orphan')).toEqual([]);
    const real = await cli(['reap', '--orphans', '--json', '--grace', '200ms'], e);
    expect(parseJson<{ findings: Array<{ kind: string }> }>(real.stdout).findings.filter((f) => f.kind === 'orphan')).toEqual([]);
    expect(alive(sup) && alive(run.pid)).toBe(true);
    // ps shows the child's command, read from the state
    const ps = parseJson<{ runs: Array<{ run_id: string; command: string[] }>; unmanaged: unknown[] }>((await cli(['ps', '--json'], e)).stdout);
    expect(ps.runs.find((r) => r.run_id === run.run_id)?.command).toEqual([script, '--print', 'hello']);
    expect(ps.unmanaged).toEqual([]);
    expect((await cli(['stop', 'claude-1', '--grace', '2s'], e)).code).toBe(0);
  });
});

describe('identity before every signal (2)', () => {
  /** A run row naming a live, unrelated process leading its own group, with the wrong start time. */
  async function reusedRow(name: string): Promise<{ pid: number; runId: string }> {
    const pid = await reparented('sleep 300', { setsid: true });
    const id = getIdentity(pid)!;
    const runId = `r${Date.now().toString(36)}zz1`;
    const s = db();
    s.db
      .prepare(
        "INSERT INTO runs (id, name, grp, priority, mode, state, pid, start_time, boot_id, pgid, command, cwd, started_at) VALUES (?, ?, 'default', 3, 'detached', 'running', ?, ?, ?, ?, '[\"sleep\"]', '/', ?)",
      )
      .run(runId, name, pid, String(Number(id.startTime) - 5), bootId(), pid, Date.now());
    s.close();
    return { pid, runId };
  }

  it('stop of a run whose PID was reused signals nothing and records the run as lost', async () => {
    await cli(['ps']); // create the state
    const { pid, runId } = await reusedRow('reused');
    const r = await cli(['stop', 'reused', '--grace', '300ms', '--json']);
    expect(r.code).toBe(0);
    expect(alive(pid)).toBe(true);
    expect(parseJson<{ closed: Array<{ run_id: string; why: string }> }>(r.stdout).closed).toEqual([{ run_id: runId, name: 'reused', pid, why: 'pid reused' }]);
  });

  it('the detached --timeout watchdog (_end-run) leaves a process that reused the PID alone', async () => {
    await cli(['ps']);
    const { pid, runId } = await reusedRow('watched');
    const r = await cli(['_end-run', runId, '--grace', '200ms', '--json']);
    expect(r.code).toBe(0);
    expect(alive(pid)).toBe(true);
  });

  it('a descendant left in the group after its leader exits is KILLed by its own identity', async () => {
    // the leader exits on TERM; its child ignores TERM and stays in the group
    const run = await spawnD('leader', ['sh', '-c', `sh -c 'trap "" TERM; while :; do sleep 1; done' & trap 'exit 0' TERM; while :; do sleep 1; done`]);
    await waitFor(
      () =>
        readdirSync('/proc').some(
          (n) =>
            /^\d+$/.test(n) &&
            n !== String(run.pid) &&
            alive(Number(n)) &&
            (() => {
              try {
                return stat(Number(n))[2] === String(run.pid) && ppidOf(Number(n)) === run.pid;
              } catch {
                return false;
              }
            })(),
        ),
      3000,
    );
    const r = parseJson<{ forced: string[]; ended: Array<{ survivors: number[] }> }>((await cli(['stop', 'leader', '--grace', '500ms', '--json'])).stdout);
    expect(r.forced).toEqual(['leader']);
    expect(r.ended[0]!.survivors).toEqual([]);
    expect(findByRunId(run.run_id)).toEqual([]);
  });
});

describe('orphans need a provenance (3)', () => {
  it('reap --orphans ends an agent whose starter died, and leaves a ppid-1 daemon leading its own session alone', async () => {
    const token = `${process.pid}${Date.now() % 100000}`;
    const e = env({ AGENTCTL_AGENTS_PATTERNS: `^sleep (7|8)\\.${token}$` });
    const orphan = await reparented(`sleep 7.${token}`);
    const service = await reparented(`sleep 8.${token}`, { setsid: true });
    expect(sidOf(orphan)).not.toBe(orphan);
    const dry = parseJson<{ findings: Array<{ kind: string; pid: number; reason: string }> }>((await cli(['reap', '--orphans', '--dry-run', '--json'], e)).stdout);
    expect(dry.findings.filter((f) => f.kind === 'orphan').map((f) => f.pid)).toEqual([orphan]);
    const real = parseJson<{ findings: Array<{ kind: string; pid: number; action: string }> }>((await cli(['reap', '--orphans', '--json', '--grace', '300ms'], e)).stdout);
    expect(real.findings.filter((f) => f.kind === 'orphan')).toEqual([expect.objectContaining({ pid: orphan, action: 'ended' })]);
    expect(alive(orphan)).toBe(false);
    expect(alive(service)).toBe(true);
  });

  it('a daemon carrying the id of a run this state recorded as ended is ours to reap; one with an unknown run id is not', async () => {
    const token = `${process.pid}${Date.now() % 100000}`;
    const e = env({ AGENTCTL_AGENTS_PATTERNS: `^sleep 9\\.${token}$` });
    await cli(['ps']);
    const s = db();
    s.db
      .prepare(
        "INSERT INTO runs (id, name, grp, priority, mode, state, command, cwd, started_at, ended_at) VALUES ('r0000000gone', 'gone', 'default', 3, 'detached', 'exited', '[\"true\"]', '/', ?, ?)",
      )
      .run(Date.now() - 60_000, Date.now() - 50_000);
    s.close();
    const left = await reparented(`sleep 9.${token}`, { setsid: true, extraEnv: { AGENTCTL_RUN_ID: 'r0000000gone' } });
    // the same, carrying a run id this state never recorded (another state folder's): left alone
    const stranger = await reparented(`sleep 9.${token}`, { setsid: true, extraEnv: { AGENTCTL_RUN_ID: 'r00000other' } });
    const real = parseJson<{ findings: Array<{ kind: string; pid: number; reason: string; action: string }> }>((await cli(['reap', '--orphans', '--json', '--grace', '300ms'], e)).stdout);
    expect(real.findings.filter((f) => f.kind === 'orphan')).toEqual([expect.objectContaining({ pid: left, action: 'ended', reason: expect.stringMatching(/left behind by run r0000000gone/) })]);
    expect(alive(stranger)).toBe(true);
  });
});

describe('a run started from inside another run is not part of it (2)', () => {
  it('stop of the outer run leaves the inner detached run and its supervisor alone', async () => {
    const inner = join(t.dir, 'inner.json');
    const outer = await spawnD('outer', ['sh', '-c', `"${process.execPath}" "${BIN}" --state-dir "${t.sd}" spawn -d --json --name inner -- sleep 60 > "${inner}"; sleep 60`]);
    await waitFor(() => existsSync(inner) && readFileSync(inner, 'utf8').includes('"pid"'), 10_000);
    const run = parseJson<{ pid: number; run_id: string }>(readFileSync(inner, 'utf8'));
    procs.adopt(run.pid);
    const sup = Number(row('inner').sup_pid);
    procs.adopt(sup);
    expect(readFileSync(`/proc/${sup}/environ`, 'latin1')).not.toContain(`AGENTCTL_RUN_ID=${outer.run_id}`);
    expect((await cli(['stop', 'outer', '--grace', '1s'])).code).toBe(0);
    expect(alive(outer.pid)).toBe(false);
    expect(alive(run.pid) && alive(sup)).toBe(true);
    expect(row('inner')).toMatchObject({ state: 'running', ended_at: null });
  });
});

describe('escaped descendants (5)', () => {
  it('stop ends a child that did env -i setsid, and reports it', async () => {
    const marker = join(t.dir, 'escaped.pid');
    const run = await spawnD('escaper', ['sh', '-c', `env -i setsid sh -c 'echo $$ > ${marker}; exec sleep 300' & wait`]);
    await waitFor(() => existsSync(marker) && readFileSync(marker, 'utf8').trim() !== '', 3000);
    const escaped = Number(readFileSync(marker, 'utf8'));
    procs.adopt(escaped);
    expect(readFileSync(`/proc/${escaped}/environ`, 'latin1')).not.toMatch(/AGENTCTL_RUN_ID/);
    expect(stat(escaped)[2]).not.toBe(String(run.pid)); // its own group
    const r = await cli(['stop', 'escaper', '--grace', '1s', '--json']);
    expect(r.code).toBe(0);
    const doc = parseJson<{ ended: Array<{ swept: number[]; survivors: number[] }> }>(r.stdout);
    expect(doc.ended[0]!.swept).toContain(escaped);
    expect(doc.ended[0]!.survivors).toEqual([]);
    expect(alive(escaped)).toBe(false);
  });
});

describe('a spawner killed right after launch leaks nothing (6)', () => {
  it('40 spawn -d killed at random points: every child still running is recorded and can be stopped', async () => {
    const random = rng(11);
    for (let i = 0; i < 40; i++) {
      const child = spawn(process.execPath, [BIN, '--state-dir', t.sd, 'spawn', '-d', '--name', `k${i}`, '--', 'sleep', '300'], { env: env(), cwd: t.dir, stdio: 'ignore' });
      const exited = once(child, 'exit');
      const timer = setTimeout(() => child.kill('SIGKILL'), 60 + Math.floor(random() * 200));
      await exited;
      clearTimeout(timer);
    }
    expect((await cli(['ps'])).code).toBe(0); // reconciles: adopts or closes
    const s = db();
    const runs = s.db.prepare('SELECT id, state, pid, ended_at FROM runs').all() as Array<{ id: string; state: string; pid: number | null; ended_at: number | null }>;
    s.close();
    const leaks: string[] = [];
    for (const r of runs) {
      const carriers = findByRunId(r.id);
      procs.adopt(...carriers);
      if (carriers.length && (r.ended_at !== null || r.pid === null || !carriers.includes(r.pid))) leaks.push(`${r.id} ${r.state} pid=${r.pid} but ${carriers.join(',')} runs`);
    }
    expect(leaks).toEqual([]);
    expect((await cli(['stop', '--all', '--grace', '1s'])).code).toBe(0);
    for (const r of runs) expect(findByRunId(r.id)).toEqual([]);
  }, 120_000);
});

describe('adoption takes only our own processes (6)', () => {
  it.runIf(process.getuid?.() === 0)("another user's process carrying the run id of a dead spawner is not adopted", async () => {
    const user = testUser();
    await cli(['ps']);
    const runId = `r${Date.now().toString(36)}zz2`;
    // a starting run whose spawner is long gone, and a stranger's setsid process claiming it
    const s = db();
    s.db
      .prepare(
        "INSERT INTO runs (id, name, grp, priority, mode, state, command, cwd, started_at, sup_pid, sup_start_time) VALUES (?, 'claimed', 'default', 3, 'detached', 'starting', '[\"sleep\"]', '/', ?, 999999, '1')",
      )
      .run(runId, Date.now() - 60_000);
    s.close();
    const c = spawn('setpriv', [`--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups', 'setsid', 'sleep', '300'], {
      stdio: 'ignore',
      env: { PATH: process.env.PATH, AGENTCTL_RUN_ID: runId },
    });
    await waitFor(() => alive(c.pid!) && readFileSync(`/proc/${c.pid}/cmdline`, 'latin1').startsWith('sleep'), 3000);
    const stranger = c.pid!;
    procs.adopt(stranger);
    expect(findByRunId(runId)).toEqual([stranger]);
    expect((await cli(['ps'])).code).toBe(0);
    expect(row('claimed')).toMatchObject({ state: 'lost', pid: null });
    expect(alive(stranger)).toBe(true);
  });
});

describe('no link is followed inside the state folder (7)', () => {
  function victim(name: string): { path: string; mtime: number } {
    const path = join(t.dir, name);
    writeFileSync(path, 'precious\n');
    utimesSync(path, new Date(1_000_000), new Date(1_000_000));
    return { path, mtime: statSync(path).mtimeMs };
  }
  const intact = (v: { path: string; mtime: number }) => {
    expect(readFileSync(v.path, 'utf8')).toBe('precious\n');
    expect(statSync(v.path).mtimeMs).toBe(v.mtime);
  };

  it('exit file, timeout marker and slot bell planted as symlinks: their targets are untouched', async () => {
    const exitV = victim('exit-victim');
    const markV = victim('marker-victim');
    const bellV = victim('bell-victim');
    const go = join(t.dir, 'go');
    const run = await spawnD('planted', ['sh', '-c', `while [ ! -e ${go} ]; do sleep 0.05; done; sleep 5`], ['--timeout', '1s', '--kill-grace', '200ms']);
    symlinkSync(exitV.path, join(t.sd, 'runs', `${run.run_id}.exit`));
    symlinkSync(markV.path, join(t.sd, 'runs', `${run.run_id}.timeout`));
    symlinkSync(bellV.path, join(t.sd, 'slots.bell'));
    writeFileSync(go, '');
    // the watchdog ends it after 1s; the supervisor then cannot write its exit file
    await waitFor(() => !alive(run.pid), 10_000);
    const sup = Number(row('planted').sup_pid);
    await waitFor(() => !alive(sup), 5000);
    expect((await cli(['ps'])).code).toBe(0);
    expect(row('planted').ended_at).not.toBeNull();
    intact(exitV);
    intact(markV);
    intact(bellV);
    expect(lstatSync(join(t.sd, 'slots.bell')).isSymbolicLink()).toBe(true);
  });

  it('a log and its .prev replaced by symlinks: capping the log truncates and overwrites nothing outside', async () => {
    const logV = victim('log-victim');
    const prevV = victim('prev-victim');
    const cfg = join(t.dir, 'agentctl.toml');
    writeFileSync(cfg, '[spawn]\nlog_max = "64K"\n');
    const go = join(t.dir, 'go');
    const run = await spawnD('chatty', ['sh', '-c', `while [ ! -e ${go} ]; do sleep 0.05; done; head -c 200000 /dev/zero | tr "\\0" x; sleep 300`], [], env({ AGENTCTL_CONFIG: cfg }));
    const log = join(t.sd, 'logs', `chatty.${run.run_id}.log`);
    // a .prev planted before the first cap: the supervisor's cap replaces the link, never writes through it
    symlinkSync(prevV.path, `${log}.prev`);
    writeFileSync(go, '');
    await waitFor(() => !lstatSync(`${log}.prev`).isSymbolicLink() && statSync(log).size <= 64 * 1024, 15_000, { what: 'the log capped by its supervisor' });
    intact(prevV);
    // now the log itself is a link to a file past twice log_max: neither a reconcile (ps) nor
    // the supervisor's last cap at the run's end (stop waits for it) truncates the target
    writeFileSync(logV.path, 'x'.repeat(300_000));
    const before = statSync(logV.path).mtimeMs;
    execFileSync('ln', ['-sfn', logV.path, log]);
    expect((await cli(['ps'], env({ AGENTCTL_CONFIG: cfg }))).code).toBe(0);
    expect((await cli(['stop', 'chatty', '--grace', '1s'], env({ AGENTCTL_CONFIG: cfg }))).code).toBe(0);
    expect(statSync(logV.path).size).toBe(300_000);
    expect(statSync(logV.path).mtimeMs).toBe(before);
    expect(lstatSync(log).isSymbolicLink()).toBe(true);
  });
});

describe('what is read back from the state stays in the state folder (8)', () => {
  it('a stored log_path is never used: the log capped is the one the run id names', async () => {
    const v = join(t.dir, 'big-victim');
    writeFileSync(v, 'y'.repeat(300_000));
    const cfg = join(t.dir, 'agentctl.toml');
    writeFileSync(cfg, '[spawn]\nlog_max = "64K"\n');
    const run = await spawnD('quiet', ['sleep', '300'], [], env({ AGENTCTL_CONFIG: cfg }));
    const s = db();
    s.db.prepare('UPDATE runs SET log_path = ? WHERE id = ?').run(v, run.run_id);
    s.close();
    expect((await cli(['ps'], env({ AGENTCTL_CONFIG: cfg }))).code).toBe(0);
    expect(statSync(v).size).toBe(300_000);
    await cli(['stop', 'quiet', '--grace', '1s']);
  });

  it('a run row with a name that agentctl never accepts: a clear error, no file outside', async () => {
    await cli(['ps']);
    const outside = join(t.dir, 'x.pid');
    const s = db();
    s.db
      .prepare("INSERT INTO runs (id, name, grp, priority, mode, state, command, cwd, started_at) VALUES ('r00000bad001', '../../x', 'default', 3, 'detached', 'starting', '[\"true\"]', '/', ?)")
      .run(Date.now() - 3_600_000);
    s.close();
    const r = await cli(['ps', '--json']);
    expect(r.code).toBe(1);
    expect(parseJson<{ error: { message: string } }>(r.stdout).error.message).toMatch(/run name that agentctl never accepts/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(existsSync(outside)).toBe(false);
  });
});

describe('stop markers lapse with their stopper (16)', () => {
  it("a stop killed during its grace does not make the run's later failure a stop", async () => {
    const go = join(t.dir, 'fail-now');
    const run = await spawnD('stubborn', ['sh', '-c', `trap '' TERM; while [ ! -e ${go} ]; do sleep 0.05; done; exit 3`]);
    const stopper = spawn(process.execPath, [BIN, '--state-dir', t.sd, 'stop', 'stubborn', '--grace', '60s'], { env: env(), stdio: 'ignore' });
    const exited = once(stopper, 'exit');
    await waitFor(() => {
      const s = db();
      try {
        return s.db.prepare('SELECT 1 FROM kv WHERE key = ?').get(`stopping:${run.run_id}`) !== undefined;
      } finally {
        s.close();
      }
    }, 5000);
    stopper.kill('SIGKILL');
    await exited;
    // the grace the dead stopper promised is long past when the run fails on its own
    const s = db();
    s.db.prepare("UPDATE kv SET value = json_set(value, '$.at', ?) WHERE key = ?").run(Date.now() - 120_000, `stopping:${run.run_id}`);
    s.close();
    writeFileSync(go, '');
    await waitFor(() => !alive(run.pid), 5000);
    await waitFor(
      () => {
        void cli(['ps']);
        return row('stubborn').ended_at !== null;
      },
      10_000,
      { stepMs: 300, what: 'stubborn recorded as ended' },
    );
    expect(row('stubborn')).toMatchObject({ state: 'failed', exit_code: 3 });
  });
});

describe('stop --dry-run says what stop will do (18)', () => {
  it('a run whose process is gone is listed as one to record, not to stop; the real stop agrees', async () => {
    const gone = await spawnD('gone', ['sleep', '300']);
    const live = await spawnD('live', ['sleep', '300']);
    const sup = Number(row('gone').sup_pid);
    // the supervisor dies first, and is gone before its run is killed: else it records the exit
    process.kill(sup, 'SIGKILL');
    await waitFor(() => !alive(sup), 5_000, { what: 'the supervisor gone' });
    process.kill(gone.pid, 'SIGKILL');
    await waitFor(() => !alive(gone.pid), 5_000, { what: 'the run gone' });
    const dry = parseJson<{ selected: Array<{ name: string }>; closed: Array<{ name: string; why: string }> }>((await cli(['stop', '--all', '--dry-run', '--json'])).stdout);
    expect(dry.selected.map((s) => s.name)).toEqual(['live']);
    expect(dry.closed.map((c) => c.name)).toEqual(['gone']);
    const real = parseJson<{ selected: Array<{ name: string }>; closed: Array<{ name: string }>; graceful: string[] }>((await cli(['stop', '--all', '--grace', '2s', '--json'])).stdout);
    expect(real.selected.map((s) => s.name)).toEqual(['live']);
    expect(real.closed.map((c) => c.name)).toEqual(['gone']);
    expect(real.graceful).toEqual(['live']);
    expect(alive(live.pid)).toBe(false);
  });
});

describe('stop on a full disk (17)', () => {
  const mnt = () => join(t.dir, 'small');
  it.runIf(process.getuid?.() === 0)('still signals, from the PID files, and says the record could not be written', async () => {
    mkdirSync(mnt());
    if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt()]).status !== 0) {
      console.log('skipped: cannot mount a tmpfs here');
      rmdirSync(mnt());
      return;
    }
    const small = join(mnt(), 'state');
    try {
      const r = await runCli(['--state-dir', small, 'spawn', '-d', '--json', '--name', 'full', '--', 'sleep', '300'], { env: env(), cwd: t.dir });
      const run = parseJson<Started>(r.stdout);
      procs.adopt(run.pid);
      spawnSync('dd', ['if=/dev/zero', `of=${join(mnt(), 'filler')}`, 'bs=4k'], { stdio: 'ignore' });
      const stop = await runCli(['--state-dir', small, 'stop', 'full', '--grace', '1s', '--json'], { env: env(), cwd: t.dir });
      expect(alive(run.pid)).toBe(false);
      const doc = parseJson<{ ended?: Array<{ pid: number }>; record_error?: string; error?: unknown }>(stop.stdout);
      expect(stop.code).toBe(1);
      expect(doc.ended?.map((e) => e.pid)).toEqual([run.pid]);
      expect(doc.record_error).toMatch(/disk full|disk I\/O error/);
      expect(stop.stderr).toMatch(/could not record it/);
      expect(stop.stderr).not.toMatch(/\n\s+at /);
    } finally {
      execFileSync('umount', [mnt()]);
      rmdirSync(mnt());
    }
  });
});
