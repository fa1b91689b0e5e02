/**
 * The forker (src/core/spawn/forker.ts): one Perl process forks the supervisors `up` starts.
 * Checked on real processes: the supervisor's command line and process group, the child's
 * folder, environment and log, that the caller's PERL5OPT never reaches the forker, and the
 * ways a start fails (a folder that is gone, a supervisor that dies before it reports).
 * Also reconcile's side of the forker's window: a starting run whose spawner died while its
 * supervisor runs is waited for, not closed as lost.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { getIdentity, readProcStat } from '../../src/core/identity.js';
import { Forker } from '../../src/core/spawn/forker.js';
import { SUPERVISOR_SCRIPT } from '../../src/core/spawn/launch.js';
import { alive, cleanEnv, dbGet, parseJson, runCli, useTempState, waitFor } from '../helpers.js';
import { runRow } from '../rows.js';

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
    const r = await runCli(['--state-dir', t.sd, 'up', '--json'], { env: env({ PERL5OPT: '-MHostile', PERL5LIB: lib }), cwd: t.dir });
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
      // its own process group, in the forker's session: Node's spawn would have made it lead a
      // session of its own, so this also shows the forker started it
      expect(sup.pgid).toBe(row.sup_pid);
      expect(sup.sid).not.toBe(row.sup_pid);
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
  });
});

describe.runIf(hasPerl)('Forker', () => {
  const request = (runId: string, cwd: string, script = SUPERVISOR_SCRIPT) => {
    const forker = Forker.find(script)!;
    const logFd = openSync(join(t.dir, `${runId}.log`), 'a', 0o600);
    const started = forker.start({ runId, cwd, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, logFd });
    forker.close();
    return started.finally(() => closeSync(logFd));
  };

  it('fails a start whose folder is gone, naming it', async () => {
    await expect(request('rgone000001', join(t.dir, 'no-such-folder'))).rejects.toThrow(/cd .*no-such-folder/);
  });

  it('fails a start whose supervisor ends before it reports a child', async () => {
    await expect(request('rquiet00001', t.dir, 'exit 0\n')).rejects.toThrow(/did not report/);
  });

  it('takes its two lines in either order', async () => {
    // this supervisor reports at once, often before the forker prints its own line
    const runs = Array.from({ length: 8 }, (_, i) => `rorder0000${i}`);
    const forker = Forker.find('printf \'%s 4242\\n\' "$1" >&3\n')!;
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

  it('is not found where there is no perl', () => {
    expect(Forker.find(SUPERVISOR_SCRIPT, ['/nonexistent/perl'])).toBeUndefined();
  });
});

describe('reconcile and a starting run whose spawner died', () => {
  it('waits while a supervisor of the run is alive, and closes it as lost once none is', async () => {
    expect((await runCli(['--state-dir', t.sd, 'ps'], { env: env(), cwd: t.dir })).code).toBe(0); // the state exists
    const runId = 'rsupwait001';
    // the spawner: a process that has ended
    const gone = t.procs.track(spawn('sleep', ['300'], { stdio: 'ignore' }));
    const goneId = await waitFor(() => getIdentity(gone.pid!), 5000);
    await t.procs.end(gone);
    const row = runRow({
      id: runId,
      name: 'forked',
      state: 'starting',
      mode: 'detached',
      pid: null,
      pgid: null,
      start_time: null,
      boot_id: goneId.bootId,
      sup_pid: goneId.pid,
      sup_start_time: goneId.startTime,
      started_at: Date.now(),
      command: '["sleep","300"]',
      cwd: t.dir,
    });
    const db = new Database(join(t.sd, 'state.db'));
    const cols = Object.keys(row);
    db.prepare(`INSERT INTO runs (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`).run(...Object.values(row));
    db.close();
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
});
