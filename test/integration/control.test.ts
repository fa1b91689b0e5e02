import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { getIdentity } from '../../src/core/identity.js';
import { State } from '../../src/core/state.js';
import { alive, cleanEnv, parseJson, ROOT, runCli, useTempState, waitFor } from '../helpers.js';
import { testUser } from '../users.js';

const FIX = join(ROOT, 'test', 'fixtures');
const WORKER = join(FIX, 'worker.mjs');
/** a fresh temp folder and state dir per test; processes in procs ended by PID after it */
const t = useTempState();
const procs = t.procs;

const env = (more: Record<string, string> = {}) => cleanEnv({ AGENTCTL_DISABLE_THROTTLE: '1', ...more });
const cli = (args: string[], e = env()) => runCli(['--state-dir', t.sd, ...args], { env: e, cwd: t.dir });

/** The python process the last python() call started (inside its shell wrapper, if any). */
let lastPython = 0;

/** Start a python fixture from test/fixtures and wait until it runs; returns its PID (the wrapper's, with `wrap`). */
async function python(script: string, args: string[] = [], more: Record<string, string> = {}, wrap = false, prefix: string[] = []): Promise<number> {
  const ready = join(t.dir, `${script}.${procs.count}.ready`);
  const cmd = prefix.length ? [...prefix, script, ...args] : wrap ? ['sh', '-c', `python3 ${script} ${args.join(' ')}; echo done`] : ['python3', script, ...args];
  const c = spawn(cmd[0]!, cmd.slice(1), { cwd: FIX, env: { ...process.env, READY: ready, ...more }, stdio: 'ignore' });
  procs.track(c);
  await waitFor(() => existsSync(ready), 10_000);
  const pid = Number(readFileSync(ready, 'utf8'));
  procs.adopt(pid);
  lastPython = pid;
  return wrap ? c.pid! : pid;
}

describe('dedupe-workers (incident 2)', () => {
  it('keeps the _v2, ends the plain copy and the shell wrapper with its child, leaves unrelated workers', async () => {
    const plain = await python('auto_confirm_worker.py', ['--daemon']);
    const v2 = await python('auto_confirm_worker_v2.py', ['--daemon']);
    const wrapper = await python('auto_confirm_worker.py', ['--daemon'], {}, true);
    const wrapped = lastPython;
    const other = await python('unrelated_worker.py');
    const dry = await cli(['dedupe-workers', '--dry-run', '--json', '--match', 'auto_confirm|unrelated']);
    const plan = parseJson<{ groups: Array<{ identity: string; keep: { pid: number }; duplicates: Array<{ pid: number; pids: number[] }> }> }>(dry.stdout);
    expect(plan.groups.length).toBe(1);
    expect(plan.groups[0]!.keep.pid).toBe(v2);
    expect(plan.groups[0]!.duplicates.map((d) => d.pid).sort()).toEqual([plain, wrapper].sort());
    expect(plan.groups[0]!.duplicates.find((d) => d.pid === wrapper)!.pids).toContain(wrapped);
    expect([plain, v2, wrapper, wrapped, other].every(alive)).toBe(true); // dry run changed nothing

    const r = await cli(['dedupe-workers', '--grace', '2s', '--match', 'auto_confirm|unrelated']);
    expect(r.code).toBe(0);
    await waitFor(() => !alive(plain) && !alive(wrapper) && !alive(wrapped), 5000);
    expect(alive(v2)).toBe(true);
    expect(alive(other)).toBe(true);
  });

  it('a duplicate that ignores TERM is KILLed after the grace', async () => {
    const stubborn = await python('auto_confirm_worker.py', [], { IGNORE_TERM: '1' });
    const keeper = await python('auto_confirm_worker_v2.py');
    const started = Date.now();
    const r = await cli(['dedupe-workers', '--grace', '700ms', '--json', '--match', 'auto_confirm']);
    const doc = parseJson<{ groups: Array<{ duplicates: Array<{ pid: number; ended: { graceful: boolean; forced: boolean } }> }> }>(r.stdout);
    expect(doc.groups[0]!.duplicates[0]).toMatchObject({ pid: stubborn, ended: { graceful: false, forced: true } });
    expect(Date.now() - started).toBeGreaterThanOrEqual(700);
    expect(alive(stubborn)).toBe(false);
    expect(alive(keeper)).toBe(true);
  });

  it.runIf(process.getuid?.() === 0)("as root, leaves another user's workers that run with root's effective id (/proc says root's)", async () => {
    // as a setuid program's process: real user agentctl-test, effective root (python itself, not
    // a launcher script: a shell run so drops to the real user)
    const py = execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim();
    const asOther = ['setpriv', `--ruid=${testUser().uid}`, '--', py];
    const a = await python('auto_confirm_worker.py', ['--daemon'], {}, false, asOther);
    const b = await python('auto_confirm_worker_v2.py', ['--daemon'], {}, false, asOther);
    expect([statSync(`/proc/${a}`).uid, statSync(`/proc/${b}`).uid]).toEqual([0, 0]);
    const dry = parseJson<{ groups: unknown[] }>((await cli(['dedupe-workers', '--dry-run', '--json', '--match', 'auto_confirm'])).stdout);
    expect(dry.groups).toEqual([]);
    expect((await cli(['dedupe-workers', '--grace', '1s', '--match', 'auto_confirm'])).code).toBe(0);
    expect([a, b].every(alive)).toBe(true);
    // --all-users is how root acts on them
    const all = parseJson<{ groups: unknown[] }>((await cli(['dedupe-workers', '--dry-run', '--json', '--all-users', '--match', 'auto_confirm'])).stdout);
    expect(all.groups.length).toBe(1);
  });

  it('bad input', async () => {
    expect((await cli(['dedupe-workers', '--keep', 'best'])).code).toBe(2);
    expect((await cli(['dedupe-workers', '--match', '(unclosed'])).code).toBe(2);
  });
});

describe('reap', () => {
  const spawnD = async (name: string, ...args: string[]) => {
    const r = await cli(['spawn', '--json', '-d', '--name', name, ...args]);
    const doc = parseJson<{ run_id: string; pid: number }>(r.stdout);
    procs.adopt(doc.pid);
    return doc;
  };

  it('is silent under --quiet when there is nothing to do', async () => {
    const r = await cli(['reap', '--quiet']);
    expect(r).toMatchObject({ code: 0, stdout: '', stderr: '' });
  });

  it('ends a run past --timeout: TERM, grace, KILL for one that ignores TERM, and sweeps a grandchild that called setsid', async () => {
    const gfile = join(t.dir, 'g.pid');
    const run = await spawnD(
      'stubborn',
      '--',
      process.execPath,
      '-e',
      `process.on('SIGTERM', () => {}); const g = require('child_process').spawn(process.execPath, ['-e', 'setInterval(() => {}, 1e6)'], { detached: true, stdio: 'ignore' }); g.unref(); require('fs').writeFileSync(${JSON.stringify(gfile)}, String(g.pid)); setInterval(() => {}, 1e6)`,
    );
    await waitFor(() => existsSync(gfile) && readFileSync(gfile, 'utf8') !== '', 5000);
    // ended by afterEach too, should an assertion below fail before reap sweeps it
    procs.adopt(Number(readFileSync(gfile, 'utf8')));
    // zombies other processes left on this host (PID 1 here never reaps) are reported too: skip them
    const before = await cli(['reap', '--dry-run', '--json', '--timeout', '100ms']);
    expect(parseJson<{ findings: Array<{ kind: string; action: string }> }>(before.stdout).findings.filter((x) => x.kind !== 'zombie')).toEqual([
      expect.objectContaining({ kind: 'timeout', action: 'would_end' }),
    ]);
    const r = await cli(['reap', '--json', '--timeout', '100ms', '--grace', '500ms']);
    const f = parseJson<{ findings: Array<{ kind: string; action: string; ended: { graceful: boolean; forced: boolean; swept: number[]; survivors: number[] } }> }>(r.stdout).findings.filter(
      (x) => x.kind !== 'zombie',
    );
    expect(f[0]).toMatchObject({ kind: 'timeout', action: 'ended', ended: { graceful: false, forced: true, survivors: [] } });
    expect(f[0]!.ended.swept.length).toBe(1);
    procs.adopt(...f[0]!.ended.swept);
    expect(alive(run.pid)).toBe(false);
    expect(f[0]!.ended.swept.every((p) => !alive(p))).toBe(true);
    const s = State.open(t.sd);
    expect(s.db.prepare('SELECT failure FROM runs WHERE id = ?').get(run.run_id)).toEqual({ failure: 'timeout' });
    s.close();
  });

  it('hung detection: a sleeping run is hung, a busy one is not', async () => {
    const sleepy = await spawnD('sleepy', '--', process.execPath, WORKER, join(t.dir, 'w.log'), 'sleepy');
    const busy = await spawnD('busy', '--', process.execPath, WORKER, join(t.dir, 'w.log'), 'busy', 'busy');
    // zombies left on this host by others are reported too: look only at our runs
    const ours = (out: string) => parseJson<{ findings: Array<{ kind: string; name: string }> }>(out).findings.filter((f) => f.kind !== 'zombie');
    const first = await cli(['reap', '--json', '--idle', '1s']);
    expect(ours(first.stdout)).toEqual([]);
    // the sleep is the behaviour under test: sleepy must stay idle for longer than --idle 1s
    await new Promise((r) => setTimeout(r, 1300));
    const second = ours((await cli(['reap', '--json', '--idle', '1s', '--grace', '500ms'])).stdout);
    expect(second.map((f) => [f.kind, f.name])).toEqual([['hung', 'sleepy']]);
    expect(alive(sleepy.pid)).toBe(false);
    expect(alive(busy.pid)).toBe(true);
  });

  it('closes a run whose PID was reused without signalling it, and one whose process is gone', async () => {
    const victim = await procs.node('setInterval(() => {}, 60_000)');
    const gone = await spawnD('gone', '--', 'sleep', '30');
    await cli(['ps']);
    const s = State.open(t.sd);
    const real = getIdentity(victim.pid!)!;
    s.db
      .prepare(
        "INSERT INTO runs (id, name, grp, priority, mode, state, pid, start_time, boot_id, pgid, command, cwd, started_at) VALUES ('rreused0002', 'ghost', 'default', 3, 'foreground', 'running', ?, '1', ?, ?, '[\"x\"]', '/', ?)",
      )
      .run(victim.pid, real.bootId, victim.pid, Date.now());
    // make the detached run's supervisor and child vanish without a trace
    const sup = s.db.prepare('SELECT sup_pid FROM runs WHERE id = ?').get(gone.run_id) as { sup_pid: number };
    s.close();
    process.kill(sup.sup_pid, 'SIGKILL');
    process.kill(gone.pid, 'SIGKILL');
    await waitFor(() => !alive(gone.pid), 3000);
    const r = parseJson<{ findings: Array<{ kind: string; name: string; action: string }> }>((await cli(['reap', '--json'])).stdout);
    const mine = r.findings.filter((f) => f.kind === 'gone' || f.kind === 'pid_reused');
    expect(mine.map((f) => [f.kind, f.name, f.action]).sort()).toEqual([
      ['gone', 'gone', 'closed'],
      ['pid_reused', 'ghost', 'closed'],
    ]);
    expect(alive(victim.pid!)).toBe(true);
  });

  it('two reapers at once both succeed and end each run once', async () => {
    for (let i = 0; i < 3; i++) await spawnD(`old${i}`, '--', 'sleep', '30');
    const [a, b] = await Promise.all([cli(['reap', '--json', '--timeout', '1ms', '--grace', '300ms']), cli(['reap', '--json', '--timeout', '1ms', '--grace', '300ms'])]);
    expect([a.code, b.code]).toEqual([0, 0]);
    const ended = [a, b].flatMap((r) => parseJson<{ findings: Array<{ action: string }> }>(r.stdout).findings).filter((f) => f.action === 'ended');
    expect(ended.length).toBe(3);
    const ev = parseJson<{ events: unknown[] }>((await cli(['events', '--json', '--kind', 'reap.timeout'])).stdout);
    expect(ev.events.length).toBe(3);
  });

  it('--shed at level 3 ends the lowest priority first, counting agents it did not start', async () => {
    // every host is at level 3 with these memory thresholds; level 3 allows 2 agents. The
    // pattern matches only this test's stand-in for an agent started by hand.
    writeFileSync(join(t.dir, 'agentctl.toml'), '[throttle]\nmemory_pct = [0.1, 0.2, 0.3]\nmax_agents = [5, 3, 2, 2]\n[agents]\npatterns = ["shed-test-agent"]\n');
    const runs = [];
    for (const prio of ['1', '2', '3']) runs.push(await spawnD(`p${prio}`, '--priority', prio, '--', 'sleep', '30'));
    const byHand = await procs.node('setInterval(() => {}, 1e6) // shed-test-agent');
    // 3 runs + 1 agent by hand = 4 against 2: priority 3 goes, then 2; --orphans reads the same agents
    const r = await cli(['reap', '--shed', '--orphans', '--json', '--grace', '200ms'], cleanEnv());
    const shed = parseJson<{ findings: Array<{ kind: string; name: string; action: string }> }>(r.stdout).findings.filter((f) => f.kind === 'shed');
    expect(shed.map((f) => [f.name, f.action])).toEqual([
      ['p3', 'ended'],
      ['p2', 'ended'],
    ]);
    expect(alive(runs[0]!.pid)).toBe(true);
    expect(alive(runs[1]!.pid) || alive(runs[2]!.pid)).toBe(false);
    expect(alive(byHand.pid!)).toBe(true);
  });

  it('reports a zombie with its parent', async () => {
    // a parent that never waits for its child
    const ready = join(t.dir, 'z.ready');
    const parent = spawn('python3', ['-c', `import os, time\npid = os.fork()\nif pid == 0:\n    os._exit(0)\nopen(${JSON.stringify(ready)}, 'w').write(str(pid))\ntime.sleep(60)\n`], {
      stdio: 'ignore',
    });
    procs.track(parent);
    await waitFor(() => existsSync(ready) && readFileSync(ready, 'utf8') !== '', 5000);
    const kid = Number(readFileSync(ready, 'utf8'));
    await waitFor(() => readFileSync(`/proc/${kid}/stat`, 'utf8').split(') ')[1]![0] === 'Z', 3000);
    const r = parseJson<{ findings: Array<{ kind: string; pid: number; reason: string; action: string }> }>((await cli(['reap', '--json'])).stdout);
    const z = r.findings.find((f) => f.kind === 'zombie' && f.pid === kid)!;
    expect(z.action).toBe('reported');
    expect(z.reason).toMatch(new RegExp(`its parent PID ${parent.pid} \\(.*python3`));
  });
});

describe('stop', () => {
  it('stops by name, group or all; reports graceful and forced', async () => {
    const ok = parseJson<{ pid: number }>((await cli(['spawn', '--json', '-d', '--name', 'polite', '--group', 'g', '--', 'sleep', '30'])).stdout);
    const ready = join(t.dir, 'rude.ready');
    const rudeJs = "process.on('SIGTERM', () => {}); require('fs').writeFileSync(process.argv[1], ''); setInterval(() => {}, 1e6)";
    const rude = parseJson<{ pid: number }>((await cli(['spawn', '--json', '-d', '--name', 'rude', '--group', 'g', '--', process.execPath, '-e', rudeJs, ready])).stdout);
    procs.adopt(ok.pid, rude.pid);
    // rude must ignore the TERM for the test to mean anything: wait until its handler is in
    // place. Not by SigCgt: Node catches TERM from its first instruction (to restore the
    // terminal, then die of it), so the bit is set before the script's own handler is
    await waitFor(() => existsSync(ready), 10_000, { what: 'rude catching SIGTERM' });
    const r = await cli(['stop', '--group', 'g', '--grace', '600ms', '--json']);
    const doc = parseJson<{ graceful: string[]; forced: string[]; failed: string[]; duration_ms: number }>(r.stdout);
    expect(r.code).toBe(0);
    expect(doc.graceful).toEqual(['polite']);
    expect(doc.forced).toEqual(['rude']);
    expect(doc.duration_ms).toBeGreaterThanOrEqual(600);
    expect(alive(ok.pid) || alive(rude.pid)).toBe(false);
    // a stop is not the worker's failure: no backoff afterwards
    const again = await cli(['spawn', '--json', '-d', '--name', 'polite', '--', 'sleep', '30']);
    expect(again.code).toBe(0);
    procs.adopt(parseJson<{ pid: number }>(again.stdout).pid);
    const all = parseJson<{ graceful: string[] }>((await cli(['stop', '--all', '--json'])).stdout);
    expect(all.graceful).toEqual(['polite']);
    expect(parseJson<{ not_running: string[] }>((await cli(['stop', 'nobody', '--json'])).stdout).not_running).toEqual(['nobody']);
    expect((await cli(['stop'])).code).toBe(2);
  });
});

describe('stop on a foreground run', () => {
  it('is recorded as a stop by the waiting spawn, not a failure: no backoff follows', async () => {
    const fg = spawn(process.execPath, [join(ROOT, 'bin', 'agentctl'), '--state-dir', t.sd, 'spawn', '--name', 'fg', '--', 'sleep', '30'], { env: env(), stdio: 'ignore' });
    procs.track(fg);
    await waitFor(() => existsSync(join(t.sd, 'pids', 'fg.pid')), 5000);
    const exited = once(fg, 'exit');
    const r = await cli(['stop', 'fg', '--grace', '2s', '--json']);
    expect(parseJson<{ graceful: string[] }>(r.stdout).graceful).toEqual(['fg']);
    await exited;
    const s = State.open(t.sd);
    expect(s.db.prepare("SELECT state, failure FROM runs WHERE name = 'fg'").get()).toEqual({ state: 'stopped', failure: null });
    s.close();
    const again = await cli(['spawn', '--json', '-d', '--name', 'fg', '--', 'sleep', '30']);
    expect(again.code).toBe(0);
    procs.adopt(parseJson<{ pid: number }>(again.stdout).pid);
  });
});

describe('other users', () => {
  it.runIf(process.getuid?.() === 0)('a process of user nobody is never signalled without --all-users', async () => {
    const { chmodSync, mkdirSync } = await import('node:fs');
    const shared = join(t.dir, 'shared');
    mkdirSync(shared);
    chmodSync(t.dir, 0o755);
    chmodSync(shared, 0o777);
    const marker = join(shared, 'nobody.ready');
    // /bin/sh, not python3: the test's python may live under root's home, closed to nobody
    writeFileSync(join(shared, 'dup.sh'), 'if [ -n "$MARKER" ]; then echo $$ > "$MARKER"; fi\nwhile :; do sleep 1; done\n');
    const c = spawn('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', '/bin/sh', join(shared, 'dup.sh')], { stdio: 'ignore', env: { ...process.env, MARKER: marker } });
    procs.track(c);
    await waitFor(() => existsSync(marker), 5000);
    const theirs = Number(readFileSync(marker, 'utf8'));
    procs.adopt(theirs);
    const mine = spawn('/bin/sh', [join(shared, 'dup.sh')], { stdio: 'ignore' });
    procs.track(mine);
    await waitFor(() => alive(mine.pid!) && readFileSync(`/proc/${mine.pid}/cmdline`, 'latin1').includes('dup.sh'), 5_000, { what: 'our dup.sh running' });
    const plan = parseJson<{ groups: unknown[] }>((await cli(['dedupe-workers', '--dry-run', '--json', '--match', 'dup\\.sh'])).stdout);
    expect(plan.groups).toEqual([]); // only one of them is ours
    // ending for real without --all-users leaves theirs alone
    expect((await cli(['dedupe-workers', '--match', 'dup\\.sh', '--grace', '300ms'])).code).toBe(0);
    expect(alive(theirs)).toBe(true);
    const all = parseJson<{ groups: Array<{ duplicates: unknown[] }> }>((await cli(['dedupe-workers', '--dry-run', '--json', '--all-users', '--match', 'dup\\.sh'])).stdout);
    expect(all.groups.length).toBe(1);
    expect(alive(theirs)).toBe(true);
  });

  it.runIf(process.getuid?.() === 0)('stop leaves a registered run of user nobody alone without --all-users', async () => {
    const c = spawn('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', '/bin/sleep', '60'], { stdio: 'ignore', detached: true });
    procs.track(c);
    await waitFor(() => {
      try {
        return readFileSync(`/proc/${c.pid}/cmdline`, 'latin1').startsWith('/bin/sleep');
      } catch {
        return false;
      }
    }, 3000);
    await cli(['ps']);
    const id = getIdentity(c.pid!)!;
    const s = State.open(t.sd);
    s.db
      .prepare(
        "INSERT INTO runs (id, name, grp, priority, mode, state, pid, start_time, boot_id, pgid, command, cwd, started_at) VALUES ('rnobody0001', 'theirs', 'default', 3, 'detached', 'running', ?, ?, ?, ?, '[\"sleep\"]', '/', ?)",
      )
      .run(c.pid, id.startTime, id.bootId, c.pid, Date.now());
    s.close();
    const r = parseJson<{ selected: unknown[]; not_running: string[] }>((await cli(['stop', 'theirs', '--grace', '200ms', '--json'])).stdout);
    expect(r.selected).toEqual([]);
    expect(alive(c.pid!)).toBe(true);
    const all = parseJson<{ graceful: string[] }>((await cli(['stop', 'theirs', '--all-users', '--grace', '1s', '--json'])).stdout);
    expect(all.graceful).toEqual(['theirs']);
  });

  it.runIf(process.getuid?.() === 0)('reap --orphans leaves an orphaned agent of user nobody alone without --all-users', async () => {
    // an agent-looking process of user nobody whose parent has exited (re-parented to init)
    const token = `61.${process.pid}${Date.now() % 1000}`;
    const c = spawn('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', '/bin/sh', '-c', `sleep ${token} & echo $!`], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    c.stdout!.on('data', (d) => (out += d));
    await once(c, 'exit');
    const theirs = Number(out.trim());
    procs.adopt(theirs);
    await waitFor(() => readFileSync(`/proc/${theirs}/stat`, 'utf8').split(') ')[1]!.split(' ')[1] === '1', 3000);
    const e = env({ AGENTCTL_AGENTS_PATTERNS: `^sleep ${token.replace('.', '\\.')}$` });
    const r = parseJson<{ findings: Array<{ kind: string; pid: number }> }>((await cli(['reap', '--orphans', '--json', '--grace', '200ms'], e)).stdout);
    expect(r.findings.filter((f) => f.kind === 'orphan')).toEqual([]);
    expect(alive(theirs)).toBe(true);
    const dry = parseJson<{ findings: Array<{ kind: string; pid: number }> }>((await cli(['reap', '--orphans', '--all-users', '--dry-run', '--json'], e)).stdout);
    expect(dry.findings.filter((f) => f.kind === 'orphan').map((f) => f.pid)).toEqual([theirs]);
    const all = parseJson<{ findings: Array<{ kind: string; pid: number; action: string }> }>((await cli(['reap', '--orphans', '--all-users', '--json', '--grace', '200ms'], e)).stdout);
    expect(all.findings.find((f) => f.kind === 'orphan')).toMatchObject({ pid: theirs, action: 'ended' });
  });
});

describe('reap: one reaper at a time', () => {
  it('a reap that finds the lock held does nothing: silent in human form, says why under --verbose and --json, exit 0', async () => {
    // the lock names a live process (this test's): a second reaper must leave everything to it
    const s = State.open(t.sd);
    try {
      s.write(() => s.setKv('reap.lock', getIdentity(process.pid)!));
    } finally {
      s.close();
    }
    const quiet = await cli(['reap']);
    expect(quiet).toMatchObject({ code: 0, stdout: '', stderr: '' });
    const verbose = await cli(['reap', '--verbose']);
    expect(verbose).toMatchObject({ code: 0, stdout: `reap: another reap (PID ${process.pid}) is running; nothing done\n` });
    const json = await cli(['--json', 'reap']);
    expect(json.code).toBe(0);
    expect(parseJson(json.stdout)).toEqual({ dry_run: false, skipped: `another reap (PID ${process.pid}) is running`, findings: [] });
  });
});
