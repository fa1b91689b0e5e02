/**
 * `[[hooks]]` end to end: real failing runs make the events, a real HTTP receiver on
 * 127.0.0.1 and real hook commands get them, the command that made them never waits, a hook
 * past its timeout is ended, failures are `hook.failed` events, and a config file someone
 * else could have written fires nothing.
 */
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { alive, BIN, cleanEnv, dbGet, parseJson, runCli, useTempState, waitFor } from '../helpers.js';
import { NEEDS_ROOT, shAsUser, testUser } from '../users.js';

const t = useTempState();
const isRoot = process.getuid?.() === 0;
if (!isRoot) console.log(`hooks.test.ts: skipping the test with a second user: ${NEEDS_ROOT}`);

interface Received {
  readonly method: string | undefined;
  readonly url: string | undefined;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

/**
 * An HTTP server on 127.0.0.1 (a random port) that answers `status` and keeps what it got;
 * with `redirectTo`, /hook answers `status` with that Location and every other path 204.
 */
async function receiver(status = 204, redirectTo?: string): Promise<{ url: string; got: Received[] }> {
  const got: Received[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (d: string) => (body += d));
    req.on('end', () => {
      got.push({ method: req.method, url: req.url, headers: req.headers, body });
      if (redirectTo === undefined) res.writeHead(status).end();
      else if (req.url === '/hook') res.writeHead(status, { location: redirectTo }).end();
      else res.writeHead(204).end();
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, got };
}

/** A port on 127.0.0.1 nothing listens on: one the kernel gave and that was closed again. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** The project folder with its agentctl.toml: one failure opens a breaker, then the hooks. */
function project(hooks: string, dir = join(t.dir, 'project')): string {
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  writeFileSync(join(dir, 'agentctl.toml'), `[spawn]\nbreaker_failures = 1\n\n${hooks}`, { mode: 0o644 });
  return dir;
}

const env = () => cleanEnv({ HOME: join(t.dir, 'home'), AGENTCTL_DISABLE_THROTTLE: '1' });
const cli = (args: string[], cwd: string) => runCli(['--state-dir', t.sd, ...args], { env: env(), cwd, timeoutMs: 30_000 });
/** A run that fails at once with exit 3: run.failed, breaker.open and dlq.add. */
const failingRun = (cwd: string, name = 'w') => cli(['spawn', '--name', name, '--', 'sh', '-c', 'exit 3'], cwd);

interface HookFailed {
  subject: string;
  reason: string;
  data: string;
}
const hookFailures = (): HookFailed[] => {
  if (!existsSync(join(t.sd, 'state.db'))) return [];
  const rows: HookFailed[] = [];
  for (let id = 0; ;) {
    const r = dbGet<HookFailed & { id: number }>(t.sd, "SELECT id, subject, reason, data FROM events WHERE kind = 'hook.failed' AND id > ? ORDER BY id LIMIT 1", id);
    if (!r) return rows;
    rows.push(r);
    id = r.id;
  }
};
const eventId = (kind: string) => dbGet<{ id: number }>(t.sd, 'SELECT id FROM events WHERE kind = ? ORDER BY id DESC LIMIT 1', kind)?.id;
const countEvents = (where: string) => dbGet<{ n: number }>(t.sd, `SELECT COUNT(*) AS n FROM events WHERE ${where}`)!.n;

/** PIDs of the hook runners (`agentctl --state-dir <this test's> ... _hook`) running now. */
function runners(): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
      if (argv.includes('_hook') && argv.includes(t.sd) && alive(Number(name))) out.push(Number(name));
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

/** Lines of a file a hook appends to; [] while there is none. */
const lines = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);

describe('hooks fire after the command commits', () => {
  it('a URL hook on breaker.open gets the event JSON POSTed to a real receiver on 127.0.0.1', async () => {
    const rx = await receiver();
    const cwd = project(`[[hooks]]\nname = "chat"\non = ["breaker.open"]\nurl = "${rx.url}"\n`);
    const r = await failingRun(cwd);
    expect(r.code).toBe(3);
    await waitFor(() => rx.got.length >= 1, 15_000, { what: 'the POST' });
    const [req] = rx.got;
    expect(req!.method).toBe('POST');
    expect(req!.url).toBe('/hook');
    expect(req!.headers['content-type']).toBe('application/json');
    const body = parseJson<{ id: number; time: string; command: string; kind: string; subject: string; reason: string; data: { until: number } }>(req!.body);
    expect(body).toMatchObject({ id: eventId('breaker.open'), command: 'spawn', kind: 'breaker.open', subject: 'w' });
    expect(body.reason).toContain('paused until');
    expect(body.data.until).toBeGreaterThan(Date.parse(body.time));
    expect(rx.got.length).toBe(1); // only the kind it listens for
    expect(hookFailures()).toEqual([]);
  });

  it("a command hook gets the event as JSON on stdin and AGENTCTL_EVENT_* variables, in the config file's folder", async () => {
    const cwd = project(`[[hooks]]\nname = "rec"\non = ["dlq.*"]\ncommand = ["sh", "-c", "cat > got.tmp && env > got.env && mv got.tmp got.json"]\n`);
    const r = await failingRun(cwd);
    expect(r.code).toBe(3);
    const got = join(cwd, 'got.json');
    await waitFor(() => existsSync(got), 15_000, { what: 'the hook to write got.json' });
    const e = parseJson<{ id: number; kind: string; subject: string; reason: string; data: { run_id: string; failure: string } }>(readFileSync(got, 'utf8'));
    expect(e).toMatchObject({ id: eventId('dlq.add'), kind: 'dlq.add', subject: 'w', data: { failure: 'startup_error' } });
    const vars = Object.fromEntries(
      readFileSync(join(cwd, 'got.env'), 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('AGENTCTL_'))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    expect(vars).toMatchObject({
      AGENTCTL_EVENT_ID: String(e.id),
      AGENTCTL_EVENT_KIND: 'dlq.add',
      AGENTCTL_EVENT_SUBJECT: 'w',
      AGENTCTL_EVENT_REASON: e.reason,
      AGENTCTL_EVENT_COMMAND: 'spawn',
      AGENTCTL_HOOK_NAME: 'rec',
    });
    expect(JSON.parse(vars.AGENTCTL_EVENT_DATA!)).toEqual(e.data);
    expect(Number(vars.AGENTCTL_EVENT_TS)).toBeGreaterThan(0);
    // the runner's job and a run id are not passed on
    expect(Object.keys(vars)).not.toContain('AGENTCTL_HOOK_JOB');
    expect(Object.keys(vars)).not.toContain('AGENTCTL_RUN_ID');
  });
});

describe('hooks never delay the command and are time-limited', () => {
  it('a hook that sleeps 30 s: the command has exited while the hook still runs', async () => {
    const cwd = project(`[[hooks]]\non = ["run.failed"]\ncommand = ["sh", "-c", "echo $$ > hook.pid.tmp && mv hook.pid.tmp hook.pid && exec sleep 30"]\ntimeout = "60s"\n`);
    const r = await failingRun(cwd);
    expect(r.code).toBe(3); // the command is over
    const pidFile = join(cwd, 'hook.pid');
    await waitFor(() => existsSync(pidFile), 15_000, { what: 'the hook to start' });
    const pid = Number(readFileSync(pidFile, 'utf8'));
    const runner = Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);
    t.procs.adopt(pid, runner); // ended by PID after the test
    expect(alive(pid)).toBe(true);
    expect(readFileSync(`/proc/${runner}/cmdline`, 'utf8').split('\0')).toContain('_hook');
  });

  it('a hook past its timeout is ended and recorded as hook.failed; the exit code is unchanged', async () => {
    const cwd = project(`[[hooks]]\nname = "slow"\non = ["run.failed"]\ncommand = ["sh", "-c", "echo $$ > hook.pid.tmp && mv hook.pid.tmp hook.pid && exec sleep 30"]\ntimeout = "1s"\n`);
    const r = await failingRun(cwd);
    expect(r.code).toBe(3);
    const pidFile = join(cwd, 'hook.pid');
    await waitFor(() => existsSync(pidFile), 15_000, { what: 'the hook to start' });
    const pid = Number(readFileSync(pidFile, 'utf8'));
    t.procs.adopt(pid);
    await waitFor(() => !alive(pid), 15_000, { what: 'the hook to be ended at its timeout' });
    const [f] = await waitFor(() => (hookFailures().length ? hookFailures() : undefined), 15_000, { what: 'hook.failed' });
    expect(f).toMatchObject({ subject: 'slow', reason: `run.failed event ${eventId('run.failed')}: timed out after 1s: ended` });
    expect(JSON.parse(f!.data)).toEqual({ event_id: eventId('run.failed'), event_kind: 'run.failed' });
  });
});

describe('a failing hook is an event and changes no exit code', () => {
  it('exit 1, HTTP 500 and nothing listening: three hook.failed events, the command exits as it would without hooks', async () => {
    const rx = await receiver(500);
    const port = await closedPort();
    const cwd = project(
      [
        `[[hooks]]\nname = "exits"\non = ["run.failed"]\ncommand = ["sh", "-c", "exit 1"]\n`,
        `[[hooks]]\nname = "http500"\non = ["run.failed"]\nurl = "${rx.url}"\n`,
        `[[hooks]]\nname = "nobody"\non = ["run.failed"]\nurl = "http://127.0.0.1:${port}/x"\n`,
      ].join('\n'),
    );
    const r = await failingRun(cwd);
    expect(r.code).toBe(3);
    const ps = await cli(['ps', '--json'], cwd);
    expect(ps.code).toBe(0);
    const failures = await waitFor(() => (hookFailures().length >= 3 ? hookFailures() : undefined), 15_000, { what: 'three hook.failed events' });
    const id = eventId('run.failed')!;
    expect(Object.fromEntries(failures.map((f) => [f.subject, f.reason]))).toEqual({
      exits: `run.failed event ${id}: exit 1`,
      http500: `run.failed event ${id}: HTTP 500`,
      nobody: `run.failed event ${id}: POST failed: ECONNREFUSED`,
    });
    expect(rx.got.length).toBe(1);
  });

  it('hook.failed fires no hook, not even one on "*"', async () => {
    const rx = await receiver();
    const cwd = project(`[[hooks]]\nname = "all"\non = ["*"]\nurl = "${rx.url}"\n\n[[hooks]]\nname = "exits"\non = ["run.failed"]\ncommand = ["false"]\n`);
    expect((await failingRun(cwd)).code).toBe(3);
    await waitFor(() => hookFailures().length >= 1, 15_000, { what: 'hook.failed' });
    // a later event arrives; the hook.failed recorded before it never does
    expect((await cli(['breaker', 'reset', 'w'], cwd)).code).toBe(0);
    const kinds = () => rx.got.map((g) => parseJson<{ kind: string }>(g.body).kind);
    await waitFor(() => kinds().includes('breaker.reset'), 15_000, { what: 'the breaker.reset POST' });
    expect(kinds()).toEqual(expect.arrayContaining(['spawn.admitted', 'run.failed', 'breaker.open', 'dlq.add', 'breaker.reset']));
    expect(kinds()).not.toContain('hook.failed');
  });
});

describe('hooks come only from a config file agentctl trusts', () => {
  const marker = 'fired.log';
  const recorder = `[[hooks]]\non = ["run.failed"]\ncommand = ["sh", "-c", "echo $AGENTCTL_EVENT_ID >> ${marker}"]\n`;

  it('a group-writable agentctl.toml is ignored with a warning and fires nothing; once fixed it fires', async () => {
    const cwd = project(recorder);
    const file = join(cwd, 'agentctl.toml');
    chmodSync(file, 0o664);
    const r = await failingRun(cwd);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`agentctl: ignoring config file ${file}:`);
    const ignoredId = eventId('run.failed')!;
    chmodSync(file, 0o644);
    const ok = await failingRun(cwd, 'second');
    expect(ok.code).toBe(3);
    const firedId = eventId('run.failed')!;
    const log = join(cwd, marker);
    await waitFor(() => existsSync(log) && readFileSync(log, 'utf8').includes(`${firedId}\n`), 15_000, { what: 'the trusted hook' });
    expect(readFileSync(log, 'utf8')).toBe(`${firedId}\n`); // the ignored file's run fired nothing
    expect(ignoredId).toBeLessThan(firedId);
  });

  it.runIf(isRoot)('an agentctl.toml another user owns is ignored and fires nothing; named with --config it is trusted', async () => {
    const user = testUser();
    const shared = join(t.dir, 'shared');
    mkdirSync(shared);
    chmodSync(t.dir, 0o755);
    chmodSync(shared, 0o1777);
    const cwd = join(shared, 'project');
    await shAsUser(user, `mkdir -m 755 ${cwd} && chmod 755 ${cwd} && printf '%s' '${recorder.replace(/'/g, "'\\''")}' > ${cwd}/agentctl.toml`);
    const file = join(cwd, 'agentctl.toml');
    const r = await failingRun(cwd);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`agentctl: ignoring config file ${file}: owned by ${user.name}`);
    const ignoredId = eventId('run.failed')!;
    const named = await cli(['--config', file, 'spawn', '--name', 'second', '--', 'sh', '-c', 'exit 3'], cwd);
    expect(named.code).toBe(3);
    const firedId = eventId('run.failed')!;
    const log = join(cwd, marker);
    await waitFor(() => existsSync(log) && readFileSync(log, 'utf8').includes(`${firedId}\n`), 15_000, { what: 'the hook of the named file' });
    expect(readFileSync(log, 'utf8')).toBe(`${firedId}\n`);
    expect(ignoredId).toBeLessThan(firedId);
  });
});

describe('[[hooks]] errors name file, line and key (exit 78)', () => {
  it.each([
    ['an unknown kind', `[[hooks]]\non = ["breaker.opened"]\nurl = "http://127.0.0.1:1/x"\n`, 'hooks[0].on', 2, '"breaker.opened" is not an event kind'],
    ['both command and url', `[[hooks]]\non = ["run.failed"]\ncommand = ["true"]\nurl = "http://127.0.0.1:1/x"\n`, 'hooks[0].url', 4, 'give command or url, not both'],
    ['neither', `[[hooks]]\nname = "x"\non = ["run.failed"]\n`, 'hooks[0]', 1, 'needs command = [argv] or url = "https://..."'],
    ['a URL that is not http(s)', `[[hooks]]\non = ["run.failed"]\nurl = "file:///etc/passwd"\n`, 'hooks[0].url', 3, 'expected an http:// or https:// URL, got a file: URL'],
  ])('%s', async (_what, toml, key, line, message) => {
    const dir = join(t.dir, 'bad');
    mkdirSync(dir, { mode: 0o755 });
    const file = join(dir, 'agentctl.toml');
    writeFileSync(file, toml, { mode: 0o644 });
    const r = await runCli(['config', '--json'], { env: env(), cwd: dir });
    expect(r.code).toBe(78);
    const doc = parseJson<{ error: { code: number; message: string; details: { file: string; key: string; line: number } } }>(r.stdout);
    expect(doc.error.details).toEqual({ file, key, line });
    expect(doc.error.message).toContain(`config file ${file} line ${line}: ${key}: ${message}`);
    expect(r.stderr).toContain(`line ${line}: ${key}:`);
  });
});

describe('hooks cannot multiply', () => {
  it('agentctl run by a hook fires no hooks: a "*" hook that runs `agentctl doctor` runs once per event of the first command only', async () => {
    const cwd = join(t.dir, 'project');
    mkdirSync(cwd, { recursive: true });
    // bounded, so that without the guard the test ends instead of forking for ever
    const script = `echo "$AGENTCTL_EVENT_COMMAND $AGENTCTL_EVENT_ID" >> fired.log
[ "$(wc -l < fired.log)" -le 12 ] || exit 0
'${process.execPath}' '${BIN}' --state-dir '${t.sd}' doctor --json > /dev/null 2>&1 || true
`;
    writeFileSync(join(cwd, 'hook.sh'), script, { mode: 0o755 });
    project(`[[hooks]]\nname = "all"\non = ["*"]\ncommand = ["./hook.sh"]\ntimeout = "60s"\n`, cwd);
    expect((await cli(['spawn', '--name', 'once', '--', 'true'], cwd)).code).toBe(0);
    const fired = join(cwd, 'fired.log');
    const first = countEvents("command = 'spawn'");
    expect(first).toBeGreaterThanOrEqual(2); // spawn.admitted, run.exited
    // every generation's runner is started before the one that made it exits: none left, none to come
    await waitFor(() => lines(fired).length >= first && runners().length === 0, 60_000, { what: 'the hooks to run and their runners to exit' });
    expect(countEvents("command = 'doctor' AND kind = 'doctor.run'")).toBe(first); // each hook ran doctor, which wrote events
    expect(lines(fired).map((l) => l.split(' ')[0])).toEqual(Array.from({ length: first }, () => 'spawn'));
  });

  it('a long command starts far fewer runners than it has turns with events, and every event is delivered', async () => {
    const cwd = project(`[[hooks]]\nname = "exits"\non = ["run.exited"]\ncommand = ["sh", "-c", "echo \\"$PPID $AGENTCTL_EVENT_ID\\" >> ppids.log"]\n`);
    const jobs = 40;
    const list = join(cwd, 'jobs.txt');
    writeFileSync(list, 'true\n'.repeat(jobs));
    const started = Date.now();
    // one at a time: the runs end on many turns of the command's event loop (one runner each, unthrottled)
    const r = await cli(['spawn', '--each', list, '--name', 'j', '--max', '1'], cwd);
    const elapsed = Date.now() - started;
    expect(r.code).toBe(0);
    expect(countEvents("kind = 'run.exited'")).toBe(jobs);
    const log = join(cwd, 'ppids.log');
    await waitFor(() => lines(log).length >= jobs && runners().length === 0, 60_000, { what: 'all run.exited hooks' });
    const got = lines(log).map((l) => l.split(' ').map(Number) as [number, number]);
    expect(new Set(got.map(([, id]) => id)).size).toBe(jobs); // each event once
    const pids = new Set(got.map(([ppid]) => ppid)).size;
    expect(pids).toBeLessThan(jobs);
    // the first at once, then at most one a second, the last one after the command's end
    expect(pids).toBeLessThanOrEqual(2 + Math.ceil(elapsed / 1000));
  });
});

describe('what a URL hook will not do', () => {
  it('a redirect is not followed: the POST goes to the configured URL only and is a hook.failed', async () => {
    const rx = await receiver(302, '/landed');
    const cwd = project(`[[hooks]]\nname = "moved"\non = ["run.failed"]\nurl = "${rx.url}"\n`);
    expect((await failingRun(cwd)).code).toBe(3);
    const [f] = await waitFor(() => (hookFailures().length ? hookFailures() : undefined), 15_000, { what: 'hook.failed' });
    expect(f).toMatchObject({ subject: 'moved', reason: `run.failed event ${eventId('run.failed')}: HTTP 302: redirect not followed` });
    await waitFor(() => runners().length === 0, 15_000, { what: 'the runner to exit' });
    expect(rx.got.map((g) => g.url)).toEqual(['/hook']);
  });

  it('`config` shows a hook URL as scheme://host:port/… in text and --json: no path, query or credentials', async () => {
    const url = 'https://bot:pa55word@hooks.example.com:8443/services/T0001/B0002/XXXXsecretXXXX?token=tok3n';
    const cwd = project(`[[hooks]]\nname = "slack"\non = ["breaker.open"]\nurl = "${url}"\n\n[[hooks]]\nname = "bare"\non = ["breaker.open"]\nurl = "http://127.0.0.1:9/"\n`);
    const json = await cli(['config', '--json'], cwd);
    expect(json.code).toBe(0);
    const doc = parseJson<{ values: { hooks: Array<{ name: string; url: string }> } }>(json.stdout);
    expect(doc.values.hooks.map((h) => [h.name, h.url])).toEqual([
      ['slack', 'https://hooks.example.com:8443/…'],
      ['bare', 'http://127.0.0.1:9/'],
    ]);
    const text = await cli(['config'], cwd);
    expect(text.code).toBe(0);
    const unwrapped = text.stdout.replace(/\n {4}/g, ''); // long lines wrap, indented by 4
    expect(unwrapped).toContain('"url":"https://hooks.example.com:8443/…"');
    for (const secret of ['XXXXsecretXXXX', 'T0001', 'tok3n', 'pa55word', 'bot:']) {
      expect(json.stdout).not.toContain(secret);
      expect(unwrapped).not.toContain(secret);
    }
  });
});

describe('the runner sends only the event it was told of', () => {
  it('an event id whose row now has another kind or time is not sent', async () => {
    const cwd = project('');
    expect((await failingRun(cwd)).code).toBe(3);
    const row = dbGet<{ id: number; ts: number }>(t.sd, "SELECT id, ts FROM events WHERE kind = 'run.failed'")!;
    const log = join(cwd, 'direct.log');
    const hook = { name: 'direct', command: ['sh', '-c', `echo $AGENTCTL_EVENT_ID >> ${log}`], timeout_ms: 5000, cwd };
    const runner = (firing: { kind: string; ts: number }) =>
      runCli(['--state-dir', t.sd, '--json', '_hook'], {
        env: { ...env(), AGENTCTL_HOOK_JOB: JSON.stringify({ hooks: [hook], firings: [{ hook: 0, event: row.id, ...firing }], dropped: 0 }) },
        cwd,
        timeoutMs: 30_000,
      });
    for (const firing of [
      { kind: 'run.failed', ts: row.ts + 1 },
      { kind: 'run.exited', ts: row.ts },
    ]) {
      const r = await runner(firing);
      expect(r.code).toBe(0);
      expect(parseJson<{ ran: number }>(r.stdout)).toMatchObject({ ran: 0 });
    }
    expect(existsSync(log)).toBe(false);
    const ok = await runner({ kind: 'run.failed', ts: row.ts });
    expect(parseJson<{ ran: number; failed: number }>(ok.stdout)).toEqual({ ran: 1, failed: 0 });
    expect(lines(log)).toEqual([String(row.id)]);
  });
});
