import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { State } from '../../src/core/state.js';
import { alive, cleanEnv, envsExpired, parseJson, ROOT, runCli, useTempState, waitFor } from '../helpers.js';

/** a fresh temp folder and state dir per test; processes in procs ended by PID after it */
const t = useTempState();
const procs = t.procs;
const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

interface Check {
  id: string;
  status: 'ok' | 'warn' | 'fail';
  value: string;
  remedy: string;
}
interface Doc {
  score: number;
  status: string;
  checks: Check[];
  fix?: { actions: string[]; before: { checks: Check[] } };
}

const env = () => cleanEnv({ AGENTCTL_DISABLE_THROTTLE: '1' });
function config(toml: string): string[] {
  const f = join(t.dir, 'agentctl.toml');
  writeFileSync(f, toml);
  return ['--config', f];
}
async function doctor(args: string[], cfg: string[] = []) {
  const r = await runCli(['--state-dir', t.sd, ...cfg, 'doctor', '--json', ...args], { env: env(), cwd: t.dir });
  return { ...r, doc: parseJson<Doc>(r.stdout) };
}
const check = (d: Doc, id: string) => d.checks.find((c) => c.id === id)!;

function http(status: number): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer((_req, res) => {
      res.statusCode = status;
      res.end('x');
    });
    servers.push(s);
    s.listen(0, '127.0.0.1', () => resolve((s.address() as { port: number }).port));
  });
}

describe('doctor', () => {
  it('checks configured services: HTTP 200 passes; HTTP 500, a dead port and a missing process fail', async () => {
    const good = await http(200);
    const bad = await http(500);
    const cfg = config(
      [
        '[[services]]\nname = "orchestrator"\nport = ' + good + '\nurl = "http://127.0.0.1:' + good + '/health"\nexpect_status = 200',
        '[[services]]\nname = "api"\nurl = "http://127.0.0.1:' + bad + '/health"',
        '[[services]]\nname = "site"\nport = 1\ntimeout = "500ms"',
        '[[services]]\nname = "worker"\nmatch = "no_such_worker_[0-9]+\\\\.py"',
      ].join('\n'),
    );
    const r = await doctor(['--check', 'services.orchestrator', 'services.api', 'services.site', 'services.worker'], cfg);
    expect(r.code).toBe(1);
    expect(check(r.doc, 'services.orchestrator')).toMatchObject({ status: 'ok' });
    expect(check(r.doc, 'services.orchestrator').value).toMatch(/port \d+ accepting; .*HTTP 200/);
    expect(check(r.doc, 'services.api')).toMatchObject({ status: 'fail' });
    expect(check(r.doc, 'services.api').value).toMatch(/HTTP 500 .*\(expected 200\)/);
    expect(check(r.doc, 'services.site').value).toMatch(/port 1 ECONNREFUSED/);
    expect(check(r.doc, 'services.worker').value).toBe('0 processes match');
  });

  it('finds two processes listening on one port', async () => {
    const ready = join(t.dir, 'port');
    const c = spawn(
      'python3',
      [
        '-c',
        `import socket, time
socks = []
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1); s.bind(("127.0.0.1", 0)); s.listen(); socks.append(s)
port = s.getsockname()[1]
s2 = socket.socket(); s2.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1); s2.bind(("127.0.0.1", port)); s2.listen(); socks.append(s2)
open(${JSON.stringify(ready)}, "w").write(str(port))
time.sleep(60)`,
      ],
      { stdio: 'ignore' },
    );
    procs.track(c);
    await waitFor(() => existsSync(ready) && readFileSync(ready, 'utf8') !== '', 5000);
    const port = readFileSync(ready, 'utf8');
    const r = await doctor(['--check', 'ports.double_listeners']);
    expect(check(r.doc, 'ports.double_listeners').status).toBe('warn');
    expect(check(r.doc, 'ports.double_listeners').value).toContain(port);
  });

  it('finds a duplicate worker', async () => {
    for (const script of ['auto_confirm_worker.py', 'auto_confirm_worker_v2.py']) {
      const ready = join(t.dir, `${script}.ready`);
      procs.track(spawn('python3', [script, '--daemon'], { cwd: join(ROOT, 'test', 'fixtures'), env: { ...process.env, READY: ready }, stdio: 'ignore' }));
      await waitFor(() => existsSync(ready), 5000);
    }
    const r = await doctor(['--check', 'agents.duplicates']);
    expect(check(r.doc, 'agents.duplicates')).toMatchObject({ status: 'warn', remedy: 'agentctl dedupe-workers --dry-run' });
    expect(check(r.doc, 'agents.duplicates').value).toMatch(/auto_confirm_worker\.py x2/);
  });

  it('finds a spawn loop and a high failure rate in the state db', async () => {
    await doctor(['--check', 'state.integrity']);
    const s = State.open(t.sd);
    const now = Date.now();
    const ins = s.db.prepare(
      "INSERT INTO runs (id, name, grp, priority, mode, state, command, cwd, started_at, ended_at, failure, exit_code) VALUES (?, 'coordinator-worker', 'default', 3, 'detached', 'failed', '[\"w\"]', '/', ?, ?, 'startup_error', 1)",
    );
    for (let i = 0; i < 6; i++) ins.run(`rloop00000${i}`, now - 60_000 + i * 1000, now - 59_000 + i * 1000);
    s.close();
    const r = await doctor(['--check', 'runs.spawn_loops', 'runs.failure_rate']);
    expect(check(r.doc, 'runs.spawn_loops')).toMatchObject({ status: 'fail', value: 'coordinator-worker: 6 startup errors in 6s, last exits 1, 1, 1, 1, 1; last command: w' });
    expect(check(r.doc, 'runs.failure_rate')).toMatchObject({ status: 'fail', value: '100.0% (6 of 6)' });
    expect(r.code).toBe(1);
  });

  it('doctor.fail is told once per failing stretch of a check, and doctor.recovered when it passes again', async () => {
    await doctor(['--check', 'state.integrity']);
    const s = State.open(t.sd);
    const now = Date.now();
    const ins = s.db.prepare(
      "INSERT INTO runs (id, name, grp, priority, mode, state, command, cwd, started_at, ended_at, failure, exit_code) VALUES (?, 'w', 'default', 3, 'detached', 'failed', '[\"w\"]', '/', ?, ?, 'crash', 1)",
    );
    for (let i = 0; i < 3; i++) ins.run(`rfail00000${i}`, now - 60_000 + i * 1000, now - 50_000 + i * 1000);
    s.close();
    const kinds = () => {
      const st = State.open(t.sd);
      try {
        return st.events({ command: 'doctor' }).flatMap((e) => (e.kind === 'doctor.fail' || e.kind === 'doctor.recovered' ? [`${e.kind} ${e.subject}`] : []));
      } finally {
        st.close();
      }
    };
    // as cron's doctor every minute: the failing check is told at the first run only
    for (let i = 0; i < 3; i++) expect(check((await doctor(['--check', 'runs.failure_rate'])).doc, 'runs.failure_rate').status).toBe('fail');
    expect(kinds()).toEqual(['doctor.fail runs.failure_rate']);
    // a run of other checks says nothing of it
    await doctor(['--check', 'state.integrity']);
    expect(kinds()).toEqual(['doctor.fail runs.failure_rate']);
    // passes again (a higher threshold): recovered, once; failing again later is told again
    // not ./agentctl.toml, which the runs without --config would read too
    writeFileSync(join(t.dir, 'lenient.toml'), '[doctor]\nfailure_rate = [99, 100]\n');
    const lenient = ['--config', join(t.dir, 'lenient.toml')];
    expect(check((await doctor(['--check', 'runs.failure_rate'], lenient)).doc, 'runs.failure_rate').status).not.toBe('fail');
    await doctor(['--check', 'runs.failure_rate'], lenient);
    await doctor(['--check', 'runs.failure_rate']);
    expect(kinds()).toEqual(['doctor.fail runs.failure_rate', 'doctor.recovered runs.failure_rate', 'doctor.fail runs.failure_rate']);
  });

  it('a name whose breaker opened for startup errors is a spawn loop, with the default limits, its exits and its command redacted and escaped', async () => {
    // the default backoff (300 s) would refuse the second start; the breaker (3 failures) is the default
    const cfg = config('[spawn]\nbackoff_startup = "0s"\n');
    const codes: Array<number | null> = [];
    for (let i = 0; i < 4; i++) {
      const r = await runCli(['--state-dir', t.sd, ...cfg, 'spawn', '--name', 'coordinator-worker', '--', 'sh', '-c', 'exit 3', 'x', '--token', 'hunter2', '\x1b[2J'], { env: env(), cwd: t.dir });
      codes.push(r.code);
    }
    expect(codes).toEqual([3, 3, 3, 69]); // the fourth is refused: the breaker is open
    const r = await doctor(['--check', 'runs.spawn_loops', 'runs.breakers'], cfg);
    expect(r.code).toBe(1);
    const c = check(r.doc, 'runs.spawn_loops');
    expect(c.status).toBe('fail');
    expect(c.value).toMatch(
      /^coordinator-worker: 3 startup errors in \d+m?s, last exits 3, 3, 3; breaker open since \S+Z \(3 consecutive failures, last startup_error\); last command: sh -c exit 3 x --token <redacted> \\x1b\[2J$/,
    );
    expect(c.value).not.toContain('hunter2');
    expect(c.value).not.toContain('\x1b');
    expect(c.remedy).toBe('agentctl events --kind run.failed --since 1h; agentctl stats --name coordinator-worker; once fixed: agentctl breaker reset coordinator-worker');
    // reset by hand: no longer a loop (3 startup errors are under doctor.spawn_loop_errors)
    expect((await runCli(['--state-dir', t.sd, ...cfg, 'breaker', 'reset', 'coordinator-worker'], { env: env(), cwd: t.dir })).code).toBe(0);
    expect(check((await doctor(['--check', 'runs.spawn_loops'], cfg)).doc, 'runs.spawn_loops')).toMatchObject({ status: 'ok', value: 'none' });
  });

  it('reports the host-wide breaker open from its kv row, closed once its pause has passed, and an unreadable row', async () => {
    await doctor(['--check', 'state.integrity']);
    const now = Date.now();
    const write = (value: unknown) => {
      const s = State.open(t.sd);
      s.setKv('breaker.host', value, now);
      s.close();
    };
    const failures = Array.from({ length: 6 }, (_, i) => ({
      name: i === 5 ? 'crashy-\x1b]0;PWNED\x07' : `crashy-${i}`,
      run_id: `r0mwuwoc${i}sj801`,
      at: now - 40_000 + i * 1000,
      exit_code: i === 4 ? null : 1,
    }));
    write({ openedAt: now - 35_000, notBefore: now + 565_000, reason: '6 startup errors in 41s across 6 names (more than 5 in 10m)', failures });
    const open = await doctor(['--check', 'runs.host_breaker']);
    expect(open.code).toBe(1);
    const c = check(open.doc, 'runs.host_breaker');
    expect(c).toMatchObject({ status: 'fail', remedy: 'agentctl events --kind run.failed --since 1h; once fixed: agentctl breaker reset --host' });
    expect(c.value).toMatch(
      /^open since \S+Z, every spawn refused for 9m \d+s more: 6 startup errors in 41s across 6 names \(more than 5 in 10m\); last failures: crashy-1 exit 1 \(run r0mwuwoc1sj801\), crashy-2 exit 1 .*crashy-4 no exit code .*crashy-\\x1b\]0;PWNED\\x07 exit 1 \(run r0mwuwoc5sj801\)$/,
    );
    // the real command closes it
    expect((await runCli(['--state-dir', t.sd, 'breaker', 'reset', '--host'], { env: env(), cwd: t.dir })).code).toBe(0);
    expect(check((await doctor(['--check', 'runs.host_breaker'])).doc, 'runs.host_breaker')).toMatchObject({ status: 'ok', value: 'closed' });
    write({ openedAt: now - 700_000, notBefore: now - 100_000, reason: 'old', failures: [] });
    expect(check((await doctor(['--check', 'runs.host_breaker'])).doc, 'runs.host_breaker')).toMatchObject({ status: 'ok' });
    expect(check((await doctor(['--check', 'runs.host_breaker'])).doc, 'runs.host_breaker').value).toMatch(/^closed \(last opened \S+: old\)$/);
    write({ openedAt: 'yesterday', failures: 3 });
    expect(check((await doctor(['--check', 'runs.host_breaker'])).doc, 'runs.host_breaker')).toMatchObject({ status: 'warn', remedy: 'agentctl breaker reset --host' });
  });

  it('a corrupt state db fails its check but doctor still runs the others', async () => {
    mkdirSync(t.sd, { recursive: true });
    writeFileSync(join(t.sd, 'state.db'), 'not a database '.repeat(500));
    const r = await doctor([]);
    expect(r.code).toBe(1);
    expect(check(r.doc, 'state.integrity')).toMatchObject({ status: 'fail' });
    expect(check(r.doc, 'state.integrity').value).toMatch(/not a usable SQLite database/);
    expect(check(r.doc, 'config.valid').status).toBe('ok');
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('a broken config fails config.valid; the rest runs on the defaults', async () => {
    const cfg = config('[throttle]\nmemory_pct = [90, 80, 70]\n');
    const r = await doctor(['--check', 'config.valid', 'state.integrity'], cfg);
    expect(check(r.doc, 'config.valid').status).toBe('fail');
    expect(check(r.doc, 'config.valid').value).toMatch(/line 2: throttle\.memory_pct/);
    expect(check(r.doc, 'state.integrity').status).toBe('ok');
  });

  it('--fix turns stale PID files, dead runs and an expired environment into passing checks', async () => {
    await runCli(['--state-dir', t.sd, 'env', 'create', 'reading-ui-improvement', '--ttl', '10ms'], { env: env(), cwd: t.dir });
    const det = parseJson<{ pid: number; run_id: string }>((await runCli(['--state-dir', t.sd, 'spawn', '--json', '-d', '--name', 'gone', '--', 'sleep', '30'], { env: env(), cwd: t.dir })).stdout);
    const s = State.open(t.sd);
    const sup = (s.db.prepare('SELECT sup_pid FROM runs WHERE id = ?').get(det.run_id) as { sup_pid: number }).sup_pid;
    s.close();
    process.kill(sup, 'SIGKILL'); // the supervisor dies first: nobody records the exit
    await waitFor(() => !alive(sup), 5_000, { what: 'the supervisor gone' }); // before its run ends, or it would record it
    process.kill(det.pid, 'SIGKILL');
    writeFileSync(join(t.sd, 'pids', 'old-worker.pid'), '999999\n{"run_id":"rx","pid":999999,"start_time":"1","boot_id":"x"}\n');
    await waitFor(() => !alive(det.pid), 5_000, { what: 'the run gone' });
    await envsExpired(t.sd, ['reading-ui-improvement']);
    const ids = ['runs.stale', 'envs.expired', 'ports.pool'];
    const before = await doctor(['--check', ...ids]);
    expect(ids.map((id) => check(before.doc, id).status)).toEqual(['warn', 'warn', 'warn']);
    const fixed = await doctor(['--check', ...ids, '--fix']);
    expect(fixed.code).toBe(0);
    expect(ids.map((id) => check(fixed.doc, id).status)).toEqual(['ok', 'ok', 'ok']);
    expect(fixed.doc.fix!.before.checks.map((c) => c.status)).toEqual(['warn', 'warn', 'warn']);
    expect(fixed.doc.fix!.actions.join('\n')).toMatch(/removed 1 stale PID file/);
    expect(fixed.doc.score).toBe(10);
  });

  it('--strict makes warnings fail; --prometheus writes every check and the score', async () => {
    await runCli(['--state-dir', t.sd, 'env', 'create', 'old', '--ttl', '10ms'], { env: env(), cwd: t.dir });
    await envsExpired(t.sd, ['old']);
    const prom = join(t.dir, 'doctor.prom');
    const lax = await doctor(['--check', 'envs.expired', '--prometheus', prom]);
    expect(lax.code).toBe(0);
    expect(lax.doc.score).toBe(9.5);
    const strict = await doctor(['--check', 'envs.expired', '--strict']);
    expect(strict.code).toBe(1);
    const text = readFileSync(prom, 'utf8');
    expect(text).toMatch(/^agentctl_doctor_score 9\.5$/m);
    expect(text).toMatch(/^agentctl_doctor_check_status\{id="envs\.expired",group="ports"\} 1$/m);
  });

  it('config.supervisor names the supervisor detached runs get: the compiled one, or the shell and why', async () => {
    const get = async (more: Record<string, string> = {}) => {
      const r = await runCli(['--state-dir', t.sd, 'doctor', '--json', '--check', 'config.supervisor'], { env: { ...env(), ...more }, cwd: t.dir });
      return check(parseJson<Doc>(r.stdout), 'config.supervisor');
    };
    expect(await get()).toMatchObject({ status: 'ok', value: `compiled: ${join(ROOT, 'dist', 'agentctl-supervise')}`, metric: 1 });
    expect(await get({ AGENTCTL_SUPERVISOR: 'sh' })).toMatchObject({ status: 'ok', value: '/bin/sh script (AGENTCTL_SUPERVISOR=sh)', metric: 0 });
  });

  it('runs on a fresh machine with no config and no state, and --check names what is unknown', async () => {
    const r = await runCli(['--state-dir', join(t.dir, 'fresh'), 'doctor', '--json'], { env: env(), cwd: t.dir });
    const d = parseJson<Doc>(r.stdout);
    expect(d.checks.map((c) => c.id)).toEqual([
      'host.load',
      'host.cpu_idle',
      'host.memory',
      'host.pressure',
      'agents.count',
      'agents.throttle',
      'agents.duplicates',
      'agents.restart_loops',
      'runs.stale',
      'runs.spawn_loops',
      'runs.host_breaker',
      'runs.breakers',
      'runs.failure_rate',
      'ports.pool',
      'ports.double_listeners',
      'envs.expired',
      'envs.worktrees',
      'envs.half_created',
      'config.valid',
      'config.drift',
      'config.supervisor',
      'state.integrity',
      'state.disk',
    ]);
    // nothing recorded and nothing configured yet: these cannot find a problem on any host
    const fresh = [
      'runs.stale',
      'runs.spawn_loops',
      'runs.host_breaker',
      'runs.breakers',
      'runs.failure_rate',
      'ports.pool',
      'envs.expired',
      'envs.worktrees',
      'envs.half_created',
      'config.valid',
      'config.drift',
      'config.supervisor',
      'state.integrity',
    ];
    expect(fresh.map((id) => [id, check(d, id).status])).toEqual(fresh.map((id) => [id, 'ok']));
    // the host's own checks may find anything on a shared machine: the score, status and exit
    // code are exactly what the checks make of it (docs/doctor.md: 10 - 2 a failure - 0.5 a warning)
    const fails = d.checks.filter((c) => c.status === 'fail').length;
    const warns = d.checks.filter((c) => c.status === 'warn').length;
    expect(d.score).toBe(Math.max(0, Math.round((10 - 2 * fails - 0.5 * warns) * 10) / 10));
    expect(d.status).toBe(fails ? 'fail' : warns ? 'warn' : 'ok');
    expect(r.code).toBe(fails ? 1 : 0);
    for (const c of d.checks) expect(c.status === 'ok' || c.remedy !== '').toBe(true);
    const human = await runCli(['--state-dir', join(t.dir, 'fresh'), 'doctor'], { env: env(), cwd: t.dir });
    expect(human.stdout).toMatch(/health score \d+(\.\d)?\/10/);
    const bad = await runCli(['--state-dir', t.sd, 'doctor', '--check', 'host.nope'], { env: env(), cwd: t.dir });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--check: unknown check "host.nope"; known: host.load/);
  });
});
