/**
 * The forker (src/core/spawn/forker.ts): one Perl process forks the supervisors `up` starts.
 * Checked on real processes: the supervisor's command line and process group, the child's
 * folder, environment and log, that the caller's PERL5OPT never reaches the forker, and the
 * ways a start fails (a folder that is gone, a supervisor that dies before it reports).
 * Also reconcile's side of the forker's window: a starting run whose spawner died while its
 * supervisor runs is waited for, not closed as lost.
 */
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { getIdentity, readProcStat } from '../../src/core/identity.js';
import { Forker, NotForked } from '../../src/core/spawn/forker.js';
import { startDetached, SUPERVISOR_SCRIPT } from '../../src/core/spawn/launch.js';
import { alive, cleanEnv, dbGet, insertRun, parseJson, runCli, useTempState, waitFor } from '../helpers.js';
import { runRow } from '../rows.js';
import { testUser } from '../users.js';

const t = useTempState();
const env = (extra: Record<string, string> = {}) => cleanEnv({ AGENTCTL_DISABLE_THROTTLE: '1', ...extra });
const argvOf = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0$/, '').split('\0');
const hasPerl = ['/usr/bin/perl', '/bin/perl'].some((p) => existsSync(p));

describe.runIf(hasPerl)('up starts its supervisors through the forker', () => {
  it("names each supervisor as Node would, gives the child its folder, environment and log, and keeps the caller's PERL5OPT out of the forker", async () => {
    const work = join(t.dir, 'work');
    mkdirSync(work);
    // a module that, loaded into any perl, leaves a mark
    const lib = join(t.dir, 'perl5');
    mkdirSync(lib);
    const mark = join(t.dir, 'perl-ran-hostile-module');
    writeFileSync(join(lib, 'Hostile.pm'), `package Hostile; open(my $f, '>', '${mark}'); close $f; 1;\n`);
    writeFileSync(
      join(t.dir, 'agentctl.toml'),
      `[[agents]]\nname = "w"\ncommand = ["sh", "-c", "echo out-$MARK; echo err-$MARK >&2; pwd; exec sleep 300"]\ncwd = "work"\ninstances = 2\nenv_vars = { MARK = "m1" }\n`,
    );
    const r = await runCli(['--state-dir', t.sd, 'up', '--json'], { env: env({ PERL5OPT: '-MHostile', PERL5LIB: lib, AGENTCTL_DEBUG: '1' }), cwd: t.dir });
    const doc = parseJson<{ agents: Array<{ name: string; status: string; run_id: string; pid: number }> }>(r.stdout);
    for (const a of doc.agents) if (a.pid) t.procs.adopt(a.pid);
    expect(r.code, r.stderr).toBe(0);
    expect(doc.agents.map((a) => [a.name, a.status])).toEqual([
      ['w-1', 'started'],
      ['w-2', 'started'],
    ]);
    for (const a of doc.agents) {
      const row = dbGet<{ sup_pid: number; pid: number; log_path: string; state: string }>(t.sd, 'SELECT sup_pid, pid, log_path, state FROM runs WHERE id = ?', a.run_id)!;
      expect(row.state).toBe('running');
      expect(row.pid).toBe(a.pid);
      expect(argvOf(row.sup_pid)).toEqual(['agentctl-supervise', '-s', a.run_id]);
      const sup = readProcStat(row.sup_pid)!;
      // its own session and group, as Node's spawn gives it
      expect(sup.pgid).toBe(row.sup_pid);
      expect(sup.sid).toBe(row.sup_pid);
      const child = readProcStat(a.pid)!;
      expect(child.sid).toBe(a.pid);
      expect(child.ppid).toBe(row.sup_pid);
      expect(readFileSync(`/proc/${a.pid}/environ`, 'utf8').split('\0')).toContain(`AGENTCTL_RUN_ID=${a.run_id}`);
      const log = await waitFor(() => {
        const text = readFileSync(row.log_path, 'utf8');
        return text.includes(work) ? text : undefined;
      }, 5000);
      expect(log).toContain('out-m1');
      expect(log).toContain('err-m1');
    }
    expect(existsSync(mark)).toBe(false);
    // and the forker started them: with AGENTCTL_DEBUG, up says so
    expect(r.stderr).toMatch(/agentctl: 2 supervisors forked by \/(usr\/)?bin\/perl/);
  });

  it('AGENTCTL_NO_FORKER=1: up spawns each supervisor from Node; an entry whose folder is gone fails alone', async () => {
    writeFileSync(join(t.dir, 'agentctl.toml'), `[[agents]]\nname = "w"\ncommand = ["sleep", "300"]\n\n[[agents]]\nname = "gone"\ncommand = ["sleep", "300"]\ncwd = "no-such-folder"\n`);
    const r = await runCli(['--state-dir', t.sd, 'up', '--json'], { env: env({ AGENTCTL_NO_FORKER: '1', AGENTCTL_DEBUG: '1' }), cwd: t.dir });
    const doc = parseJson<{ agents: Array<{ name: string; status: string; detail: string; pid: number | null }> }>(r.stdout);
    for (const a of doc.agents) if (a.pid) t.procs.adopt(a.pid);
    expect(r.code).toBe(1);
    expect(doc.agents.map((a) => [a.name, a.status])).toEqual([
      ['w', 'started'],
      ['gone', 'failed'],
    ]);
    expect(doc.agents[1]!.detail).toMatch(/no-such-folder: no such folder/);
    expect(r.stderr).not.toMatch(/forked by/);
  });
});

describe.runIf(hasPerl)('Forker', () => {
  const request = (runId: string, cwd: string, script = SUPERVISOR_SCRIPT, forker = Forker.find(script)!) => {
    const logFd = openSync(join(t.dir, `${runId}.log`), 'a', 0o600);
    const started = forker.start({ runId, cwd, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, logFd });
    forker.close();
    return started.finally(() => closeSync(logFd));
  };

  it('fails a start whose folder is gone, naming it', async () => {
    await expect(request('rgone000001', join(t.dir, 'no-such-folder'))).rejects.toThrow(/cd .*no-such-folder/);
  });

  it('fails a start whose supervisor ends before it reports a child', async () => {
    await expect(request('rquiet00001', t.dir, 'exit 0\n')).rejects.toThrow(/ended \(wait status 0\) before it reported the child|did not report/);
  });

  it('takes its two lines in either order', async () => {
    // this supervisor reports at once, often before the forker prints its own line
    const runs = Array.from({ length: 8 }, (_, i) => `rorder0000${i}`);
    const forker = Forker.find('printf \'%s 4242 %s\\n\' "$1" "$$" >&3\n')!;
    const fds = runs.map((id) => openSync(join(t.dir, `${id}.log`), 'a', 0o600));
    const got = await Promise.all(runs.map((runId, i) => forker.start({ runId, cwd: t.dir, env: {}, logFd: fds[i]! })));
    forker.close();
    fds.forEach((fd) => closeSync(fd));
    for (const g of got) {
      expect(g.pid).toBe(4242);
      expect(g.supervisorPid).toBeGreaterThan(1);
      expect(g.supervisorPid).not.toBe(4242);
    }
  });

  it('fails a start whose supervisor dies before it reports, without waiting for the forker to end', async () => {
    // the forker stays open (up closes it only once every start has settled)
    const forker = Forker.find(`case "$1" in rdies*) kill -9 $$;; esac\nprintf '%s 4242 %s\\n' "$1" "$$" >&3\n`)!;
    const fds = [0, 1].map((i) => openSync(join(t.dir, `${i}.log`), 'a', 0o600));
    try {
      const [dies, fine] = await Promise.allSettled([
        forker.start({ runId: 'rdies000001', cwd: t.dir, env: {}, logFd: fds[0]! }),
        forker.start({ runId: 'rfine000001', cwd: t.dir, env: {}, logFd: fds[1]! }),
      ]);
      expect(dies.status === 'rejected' && String(dies.reason)).toMatch(/supervisor ended \(wait status 9\) before it reported the child/);
      expect(fine.status === 'fulfilled' && fine.value.pid).toBe(4242);
    } finally {
      forker.close();
      fds.forEach((fd) => closeSync(fd));
    }
  });

  it('a start that fails in its folder does not take the next ones with it', async () => {
    // a script larger than a pipe holds: writing it to a child that failed meets a closed
    // pipe, which must not end the forker (SIGPIPE)
    const big = `${'# padding\n'.repeat(12_000)}printf '%s 4242 %s\\n' "$1" "$$" >&3\n`;
    const forker = Forker.find(big)!;
    const fds = [0, 1, 2].map((i) => openSync(join(t.dir, `${i}.log`), 'a', 0o600));
    try {
      const got = await Promise.allSettled([
        forker.start({ runId: 'rbad0000001', cwd: join(t.dir, 'no-such-folder'), env: {}, logFd: fds[0]! }),
        forker.start({ runId: 'rgood000001', cwd: t.dir, env: {}, logFd: fds[1]! }),
        forker.start({ runId: 'rgood000002', cwd: t.dir, env: {}, logFd: fds[2]! }),
      ]);
      expect(got.map((g) => g.status)).toEqual(['rejected', 'fulfilled', 'fulfilled']);
    } finally {
      forker.close();
      fds.forEach((fd) => closeSync(fd));
    }
  });

  it("a folder named with newlines cannot forge another run's line", async () => {
    const forker = Forker.find(`printf '%s 4242 %s\\n' "$1" "$$" >&3\n`)!;
    const fds = [0, 1].map((i) => openSync(join(t.dir, `${i}.log`), 'a', 0o600));
    try {
      const [forged, victim] = await Promise.allSettled([
        forker.start({ runId: 'rforge00001', cwd: '/nope\nrvictim0001 supervisor 1\nrvictim0001 1 1\n', env: {}, logFd: fds[0]! }),
        forker.start({ runId: 'rvictim0001', cwd: t.dir, env: {}, logFd: fds[1]! }),
      ]);
      expect(forged.status).toBe('rejected');
      expect(victim.status === 'fulfilled' && victim.value.pid).toBe(4242);
      expect(victim.status === 'fulfilled' && victim.value.supervisorPid).not.toBe(1);
    } finally {
      forker.close();
      fds.forEach((fd) => closeSync(fd));
    }
  });

  it('a perl that does not run starts nothing, and startDetached then spawns the supervisor from Node', async () => {
    const fake = join(t.dir, 'perl');
    writeFileSync(fake, '#!/bin/sh\necho "perl: broken" >&2\nexit 1\n', { mode: 0o755 });
    const forker = Forker.find(SUPERVISOR_SCRIPT, [fake])!;
    await expect(request('rbroken0001', t.dir, SUPERVISOR_SCRIPT, forker)).rejects.toThrow(NotForked);
    const logFd = openSync(join(t.dir, 'fallback.log'), 'a', 0o600);
    const again = Forker.find(SUPERVISOR_SCRIPT, [fake])!;
    try {
      const started = await startDetached({
        argv: ['sleep', '300'],
        cwd: t.dir,
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
        logFd,
        exitFile: join(t.dir, 'rfallback01.exit'),
        timeoutMarker: join(t.dir, 'rfallback01.timeout'),
        childFile: join(t.dir, 'rfallback01.child'),
        timeoutSec: 0,
        log: join(t.dir, 'fallback.log'),
        logMax: 0,
        runId: 'rfallback01',
        name: 'fallback',
        watchdog: [process.execPath, '/nonexistent', t.dir, '1000ms'],
        forker: again,
      });
      t.procs.adopt(started.pid);
      expect(argvOf(started.supervisorPid)).toEqual(['agentctl-supervise', '-s', 'rfallback01']);
      expect(again.count).toBe(0);
    } finally {
      again.close();
      closeSync(logFd);
    }
  });

  it('a supervisor it could not record still starts: the running row records it with the child', async () => {
    const forker = Forker.find(`printf '%s 4242 %s\\n' "$1" "$$" >&3\n`)!;
    const fd = openSync(join(t.dir, 'busy.log'), 'a', 0o600);
    try {
      const got = await forker.start({
        runId: 'rbusy000001',
        cwd: t.dir,
        env: {},
        logFd: fd,
        onSupervisor: () => {
          throw new Error('the state is locked');
        },
      });
      expect(got.pid).toBe(4242);
    } finally {
      forker.close();
      closeSync(fd);
    }
  });

  it('is not found where there is no perl', () => {
    expect(Forker.find(SUPERVISOR_SCRIPT, ['/nonexistent/perl'])).toBeUndefined();
  });
});

describe('reconcile and a starting run whose spawner died', () => {
  /** A detached run `starting`, admitted a moment ago by a spawner that has ended since. */
  async function startingRowOfDeadSpawner(runId: string): Promise<void> {
    expect((await runCli(['--state-dir', t.sd, 'ps'], { env: env(), cwd: t.dir })).code).toBe(0); // the state exists
    const gone = t.procs.track(spawn('sleep', ['300'], { stdio: 'ignore' }));
    const goneId = await waitFor(() => getIdentity(gone.pid!), 5000);
    await t.procs.end(gone);
    insertRun(
      t.sd,
      runRow({
        id: runId,
        name: runId,
        state: 'starting',
        pid: null,
        pgid: null,
        start_time: null,
        boot_id: goneId.bootId,
        sup_pid: goneId.pid,
        sup_start_time: goneId.startTime,
        started_at: Date.now(),
        command: '["sleep","300"]',
        cwd: t.dir,
      }),
    );
  }

  it('waits while a supervisor of the run is alive, and closes it as lost once none is', async () => {
    const runId = 'rsupwait001';
    await startingRowOfDeadSpawner(runId);
    // its supervisor, named as one, not yet recorded anywhere
    const sup = t.procs.track(spawn('/bin/sh', ['-s', runId], { argv0: 'agentctl-supervise', stdio: ['pipe', 'ignore', 'ignore'] }));
    // it blocks reading the rest of its stdin, which stays open: no child to leave behind
    sup.stdin.write('read -r line\n');
    await waitFor(() => argvOf(sup.pid!)[0] === 'agentctl-supervise', 5000);
    // ps reconciles every live run first
    const state = async () => {
      expect((await runCli(['--state-dir', t.sd, 'ps', '--json'], { env: env(), cwd: t.dir })).code).toBe(0);
      return dbGet<{ state: string }>(t.sd, 'SELECT state FROM runs WHERE id = ?', runId)!.state;
    };
    expect(await state()).toBe('starting');
    await t.procs.end(sup);
    expect(alive(sup.pid!)).toBe(false);
    expect(await state()).toBe('lost');
  });

  it.runIf(process.getuid?.() === 0)("a process named for the run whose real user is another's is not its supervisor, though /proc says root's", async () => {
    const runId = 'rsupwait002';
    await startingRowOfDeadSpawner(runId);
    // another user's process running with root's effective id, as a setuid program's does:
    // cat named `agentctl-supervise -s RUN_ID`, blocked opening a FIFO of that name (an empty
    // environment: perl run with another real user refuses a PATH it did not set)
    const user = testUser();
    execFileSync('mkfifo', [join(t.dir, runId)]);
    const impostor = t.procs.track(
      spawn('/usr/bin/setpriv', [`--ruid=${user.uid}`, '--', '/usr/bin/perl', '-e', `exec { '/bin/cat' } 'agentctl-supervise', '-s', '${runId}'`], { cwd: t.dir, env: {}, stdio: 'ignore' }),
    );
    await waitFor(() => argvOf(impostor.pid!)[0] === 'agentctl-supervise', 5000);
    expect(statSync(`/proc/${impostor.pid}`).uid).toBe(0);
    expect((await runCli(['--state-dir', t.sd, 'ps', '--json'], { env: env(), cwd: t.dir })).code).toBe(0);
    expect(dbGet<{ state: string }>(t.sd, 'SELECT state FROM runs WHERE id = ?', runId)!.state).toBe('lost');
  });
});
