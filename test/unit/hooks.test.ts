import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { runnerDeadlineMs } from '../../src/commands/hook.js';
import { DEFAULT_HOOK_TIMEOUT_MS, displayHook } from '../../src/core/config/hooks.js';
import { loadConfig } from '../../src/core/config/load.js';
import type { HookSpec } from '../../src/core/config/types.js';
import { ConfigError } from '../../src/core/errors.js';
import { hookJob } from '../../src/core/hooks/fire.js';
import { EVENT_KINDS, hookMatches, onProblem } from '../../src/core/event-kinds.js';
import { DEADLINE_REASON, eventEnv, revealsUrl, runHook, splitCredentials } from '../../src/core/hooks/run.js';
import { type Firing, firingsFor, hookSink, LAUNCH_EVERY_MS, MAX_FIRINGS } from '../../src/core/hooks/sink.js';
import { shownHookUrl } from '../../src/core/hooks/url.js';
import type { EventRow } from '../../src/core/state.js';
import { alive, ROOT, tempDir, thrown, waitFor } from '../helpers.js';

describe('which kinds a hook listens for', () => {
  it('an exact kind, AREA.* and * are accepted; unknown kinds, unknown areas and hook.* are not', () => {
    expect(onProblem('breaker.open')).toBeUndefined();
    expect(onProblem('reap.*')).toBeUndefined();
    expect(onProblem('*')).toBeUndefined();
    expect(onProblem('breaker.opened')).toMatch(/^"breaker.opened" is not an event kind; accepted: throttle.level, /);
    expect(onProblem('breaker.opened')).not.toContain('hook.failed');
    expect(onProblem('nope.*')).toMatch(/^"nope.\*" names no area; accepted areas: throttle.\*, spawn.\*/);
    expect(onProblem('hook.failed')).toMatch(/never fire hooks/);
    expect(onProblem('hook.*')).toMatch(/never fire hooks/);
  });

  it('matches exact kinds, areas and everything, never hook.* kinds', () => {
    expect(hookMatches(['breaker.open'], 'breaker.open')).toBe(true);
    expect(hookMatches(['breaker.open'], 'breaker.closed')).toBe(false);
    expect(hookMatches(['run.*'], 'run.failed')).toBe(true);
    expect(hookMatches(['run.*'], 'runs.x')).toBe(false);
    expect(hookMatches(['*'], 'throttle.level')).toBe(true);
    expect(hookMatches(['*'], 'hook.failed')).toBe(false);
  });

  it('firings: each event against each hook, in event order, with its kind and time', () => {
    const hooks = [{ on: ['run.failed'] }, { on: ['*'] }] as unknown as HookSpec[];
    expect(
      firingsFor(hooks, [
        { id: 7, kind: 'run.failed', ts: 70 },
        { id: 8, kind: 'breaker.open', ts: 80 },
        { id: 9, kind: 'hook.failed', ts: 90 },
      ]),
    ).toEqual([
      { hook: 0, event: 7, kind: 'run.failed', ts: 70 },
      { hook: 1, event: 7, kind: 'run.failed', ts: 70 },
      { hook: 1, event: 8, kind: 'breaker.open', ts: 80 },
    ]);
  });

  it("the runner's job holds only the hooks that fire, renumbered, and what was dropped", () => {
    const hooks: HookSpec[] = [
      { name: 'a', on: ['run.failed'], command: ['true'], timeoutMs: 5000, cwd: '/x', file: '/x/agentctl.toml' },
      { name: 'b', on: ['*'], url: 'http://127.0.0.1:1/', timeoutMs: 2000, cwd: '/x', file: '/x/agentctl.toml' },
    ];
    expect(hookJob(hooks, [{ hook: 1, event: 3, kind: 'run.failed', ts: 30 }], 5)).toEqual({
      hooks: [{ name: 'b', url: 'http://127.0.0.1:1/', timeout_ms: 2000, cwd: '/x' }],
      firings: [{ hook: 0, event: 3, kind: 'run.failed', ts: 30 }],
      dropped: 5,
    });
  });
});

describe("a command's hook sink", () => {
  const hooks = [{ name: 'h', on: ['run.*'], command: ['true'], timeoutMs: 5000, cwd: '/x', file: '/x/agentctl.toml' }] as HookSpec[];
  let id = 0;
  const ev = (kind = 'run.exited'): EventRow => ({ id: ++id, ts: 1000 + id, command: 'spawn', kind, subject: null, reason: '', data: null });
  const sink = (env: NodeJS.ProcessEnv = {}) => {
    const launches: Array<{ firings: readonly Firing[]; dropped: number }> = [];
    const fn = hookSink({ hooks: () => hooks, stateDir: () => '/sd', env, now: Date.now, launch: (_sd, _h, firings, dropped) => launches.push({ firings, dropped }) });
    return { fn, launches };
  };
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('a command run by a hook (AGENTCTL_HOOK_NAME set) fires nothing', () => {
    expect(sink({ AGENTCTL_HOOK_NAME: 'all' }).fn).toBeUndefined();
    expect(sink({ AGENTCTL_HOOK_NAME: '' }).fn).toBeUndefined();
    expect(sink({}).fn).toBeTypeOf('function');
  });

  it('the first batch goes on the next turn; later ones at most one a second, none lost', () => {
    const { fn, launches } = sink();
    fn!(ev());
    fn!(ev('spawn.admitted')); // no hook on it
    fn!(ev());
    expect(launches).toEqual([]);
    vi.advanceTimersByTime(0); // setImmediate
    expect(launches.map((l) => l.firings.length)).toEqual([2]);
    // 30 events on 30 turns within the next second: one launch, when the second is up
    for (let i = 0; i < 30; i++) {
      fn!(ev());
      vi.advanceTimersByTime(10);
    }
    expect(launches.length).toBe(1);
    vi.advanceTimersByTime(LAUNCH_EVERY_MS);
    expect(launches.map((l) => l.firings.length)).toEqual([2, 30]);
    // the timer keeps the process up (ref'd): the last events are sent when the command ends
    fn!(ev());
    expect(vi.getTimerCount()).toBe(1);
    vi.runAllTimers();
    expect(launches.map((l) => l.firings.length)).toEqual([2, 30, 1]);
    expect(launches.flatMap((l) => l.firings.map((f) => f.kind))).not.toContain('spawn.admitted');
  });

  it(`at most ${MAX_FIRINGS} firings per command; the batch past it says how many were dropped, then nothing fires`, () => {
    const { fn, launches } = sink();
    for (let i = 0; i < MAX_FIRINGS - 2; i++) fn!(ev());
    vi.advanceTimersByTime(0);
    for (let i = 0; i < 5; i++) fn!(ev());
    vi.advanceTimersByTime(LAUNCH_EVERY_MS);
    for (let i = 0; i < 5; i++) fn!(ev());
    vi.runAllTimers();
    expect(launches.map((l) => [l.firings.length, l.dropped])).toEqual([
      [MAX_FIRINGS - 2, 0],
      [2, 3],
    ]);
  });

  it('exactly the cap, then more: one launch with nothing to run records the drop', () => {
    const { fn, launches } = sink();
    for (let i = 0; i < MAX_FIRINGS; i++) fn!(ev());
    vi.advanceTimersByTime(0);
    fn!(ev());
    vi.runAllTimers();
    fn!(ev());
    vi.runAllTimers();
    expect(launches.map((l) => [l.firings.length, l.dropped])).toEqual([
      [MAX_FIRINGS, 0],
      [0, 1],
    ]);
  });
});

describe('what a hook gets', () => {
  const e = { id: 4, time: '2026-11-22T05:36:38.473Z', command: 'spawn', kind: 'run.failed', subject: 'w', reason: 'exit 3\0', data: { exit_code: 3 } };

  it('AGENTCTL_EVENT_* variables (no NUL in them)', () => {
    expect(eventEnv(e, 'rec')).toEqual({
      AGENTCTL_EVENT_ID: '4',
      AGENTCTL_EVENT_KIND: 'run.failed',
      AGENTCTL_EVENT_SUBJECT: 'w',
      AGENTCTL_EVENT_REASON: 'exit 3',
      AGENTCTL_EVENT_TS: String(Date.parse(e.time)),
      AGENTCTL_EVENT_TIME: e.time,
      AGENTCTL_EVENT_COMMAND: 'spawn',
      AGENTCTL_EVENT_DATA: '{"exit_code":3}',
      AGENTCTL_HOOK_NAME: 'rec',
    });
    expect(eventEnv({ ...e, subject: null, data: null }, 'x')).toMatchObject({ AGENTCTL_EVENT_SUBJECT: '', AGENTCTL_EVENT_DATA: 'null' });
  });

  it('a URL with user:password is posted with an Authorization header instead (fetch refuses credentials in URLs)', () => {
    expect(splitCredentials('https://hooks.example.com/x?y=1')).toEqual({ url: 'https://hooks.example.com/x?y=1' });
    expect(splitCredentials('https://bot:s%40cret@hooks.example.com/x')).toEqual({ url: 'https://hooks.example.com/x', authorization: `Basic ${Buffer.from('bot:s@cret').toString('base64')}` });
  });
});

describe('secrets in a hook URL', () => {
  it('config shows scheme://host[:port]/… only', () => {
    expect(shownHookUrl('https://hooks.slack.com/services/T0/B0/XXXX')).toBe('https://hooks.slack.com/…');
    expect(shownHookUrl('https://u:pw@discord.com:8443/api/webhooks/1/tok?wait=true')).toBe('https://discord.com:8443/…');
    expect(shownHookUrl('http://127.0.0.1:9/')).toBe('http://127.0.0.1:9/');
    expect(shownHookUrl('http://example.com?token=x')).toBe('http://example.com/…');
    expect(shownHookUrl('not a url')).toBe('(not shown)');
  });

  it('a failure reason that repeats the path, query or credentials is not used', () => {
    const url = 'https://bot:pw1234@hooks.example.com/services/T0001/B0002/XXXXsecret?token=tok3n';
    expect(revealsUrl('connect ECONNREFUSED 10.0.0.1:443', url)).toBe(false);
    expect(revealsUrl('getaddrinfo ENOTFOUND hooks.example.com', url)).toBe(false);
    for (const leak of ['bad path /services/T0001/B0002/XXXXsecret', 'XXXXsecret', '?token=tok3n', 'tok3n', 'pw1234', 'see https://x/']) expect(revealsUrl(leak, url)).toBe(true);
  });
});

describe("the runner's deadline", () => {
  const hook = (timeout_ms: number) => ({ name: 'h', command: ['true'], timeout_ms, cwd: '/' });
  const firings = (n: number) => Array.from({ length: n }, (_, i) => ({ hook: 0, event: i, kind: 'run.failed', ts: i }));

  it('its slowest timeout per round of 8 firings, plus a margin, capped', () => {
    expect(runnerDeadlineMs({ hooks: [hook(5000)], firings: firings(1) })).toBe(15_000);
    expect(runnerDeadlineMs({ hooks: [hook(5000), hook(60_000)], firings: firings(9) })).toBe(130_000);
    expect(runnerDeadlineMs({ hooks: [hook(60_000)], firings: firings(1000) })).toBe(15 * 60_000);
  });

  it('ends a command hook still running when it passes, and says so', async () => {
    const t0 = tempDir();
    try {
      const pidFile = join(t0.dir, 'pid');
      const h = { name: 'slow', command: ['sh', '-c', `echo $$ > ${pidFile}; exec sleep 30`], timeout_ms: 60_000, cwd: t0.dir };
      const e = { id: 1, time: new Date().toISOString(), command: 'spawn', kind: 'run.failed', subject: null, reason: 'x', data: null };
      const deadline = new AbortController();
      const done = runHook(h, e, {}, deadline.signal);
      await waitFor(() => existsSync(pidFile) && readFileSync(pidFile, 'utf8').endsWith('\n'), 10_000, { what: 'the hook to start' });
      deadline.abort();
      expect(await done).toBe(DEADLINE_REASON); // resolved on the child's exit
      expect(alive(Number(readFileSync(pidFile, 'utf8')))).toBe(false);
      expect(await runHook(h, e, {}, deadline.signal)).toMatch(/^not run: /);
    } finally {
      const pid = existsSync(join(t0.dir, 'pid')) ? Number(readFileSync(join(t0.dir, 'pid'), 'utf8')) : 0;
      if (pid > 0 && alive(pid)) process.kill(pid, 'SIGKILL'); // our own hook's sleep, when the test failed
      t0.cleanup();
    }
  });
});

describe('[[hooks]] in a config file', () => {
  let t: ReturnType<typeof tempDir>;
  let cwd: string;
  beforeEach(() => {
    t = tempDir();
    cwd = join(t.dir, 'project');
    mkdirSync(cwd);
  });
  afterEach(() => t.cleanup());
  const file = () => join(cwd, 'agentctl.toml');
  const load = (text: string) => {
    writeFileSync(file(), text);
    return loadConfig({ env: {}, cwd, home: join(t.dir, 'home') });
  };
  const fails = (text: string, key: string, line: number, msg: string | RegExp) => {
    const e = thrown(ConfigError, () => load(text));
    expect({ key: e.key, line: e.line }).toEqual({ key, line });
    expect(e.message).toContain(`${file()} line ${line}: ${key}: `);
    expect(e.message).toMatch(msg);
  };

  it("defaults: name hooks[i], timeout 5s, run in the file's folder; none without the table", () => {
    expect(load('[spawn]\ncooldown = "1s"\n').config.hooks).toEqual([]);
    const l = load(
      '[[hooks]]\non = ["breaker.open", "reap.*"]\nurl = "https://u:pw@chat.example.com/hook"\n\n[[hooks]]\nname = "page"\non = ["*"]\ncommand = ["./notify.sh", "--loud"]\ntimeout = "30s"\n',
    );
    expect(l.config.hooks).toEqual([
      { name: 'hooks[0]', on: ['breaker.open', 'reap.*'], url: 'https://u:pw@chat.example.com/hook', timeoutMs: DEFAULT_HOOK_TIMEOUT_MS, cwd, file: file(), line: 1 },
      { name: 'page', on: ['*'], command: ['./notify.sh', '--loud'], timeoutMs: 30_000, cwd, file: file(), line: 5 },
    ]);
    // shown without the password; hooks change no run, so they are not in the config hash
    expect(displayHook(l.config.hooks[0]!)).toMatchObject({ url: 'https://u:REDACTED@chat.example.com/hook', timeout: '5s' });
    expect(load('[spawn]\ncooldown = "1s"\n').hash).toBe(load('[spawn]\ncooldown = "1s"\n[[hooks]]\non = ["*"]\ncommand = ["true"]\n').hash);
  });

  it('bad entries name file, line and key', () => {
    fails('[[hooks]]\nurl = "http://x/"\n', 'hooks[0].on', 1, /every hook needs on/);
    fails('[[hooks]]\non = []\nurl = "http://x/"\n', 'hooks[0].on', 2, /expected a non-empty list of event kinds/);
    fails('[[hooks]]\non = ["run.failed", "run.faild"]\nurl = "http://x/"\n', 'hooks[0].on', 2, /"run.faild" is not an event kind/);
    fails('[[hooks]]\non = ["hook.failed"]\nurl = "http://x/"\n', 'hooks[0].on', 2, /never fire hooks/);
    fails('[[hooks]]\non = ["*"]\nurl = "ftp://x/"\n', 'hooks[0].url', 3, /got a ftp: URL/);
    fails('[[hooks]]\non = ["*"]\nurl = "not a url"\n', 'hooks[0].url', 3, /the value is not shown/);
    fails('[[hooks]]\non = ["*"]\ncommand = "notify.sh"\n', 'hooks[0].command', 3, /non-empty list of strings/);
    fails('[[hooks]]\non = ["*"]\ncommand = ["true"]\ntimeout = "2m"\n', 'hooks[0].timeout', 4, /out of range \(100ms to 1m\)/);
    fails('[[hooks]]\non = ["*"]\ncommand = ["true"]\nretries = 3\n', 'hooks[0].retries', 4, /unknown key; accepted: name, on, command, url, timeout/);
    fails('[[hooks]]\nname = "a"\non = ["*"]\ncommand = ["true"]\n[[hooks]]\nname = "a"\non = ["*"]\ncommand = ["true"]\n', 'hooks[1].name', 6, /duplicate hook name "a"/);
    fails('[hooks]\non = ["*"]\n', 'hooks', 1, /expected \[\[hooks\]\] tables/);
  });
});

describe('the kinds list is true', () => {
  it('docs/events.md lists exactly the kinds agentctl knows', () => {
    const text = readFileSync(join(ROOT, 'docs', 'events.md'), 'utf8');
    const documented = [...text.matchAll(/^\| `([a-z_]+\.[a-z_]+)` \|/gm)].map((m) => m[1]);
    expect([...documented].sort()).toEqual([...EVENT_KINDS].sort());
  });

  it('every kind written in src/ is a known kind', () => {
    const files = (dir: string): string[] => readdirSync(dir).flatMap((f) => (statSync(join(dir, f)).isDirectory() ? files(join(dir, f)) : f.endsWith('.ts') ? [join(dir, f)] : []));
    const written = new Set<string>();
    for (const f of files(join(ROOT, 'src'))) {
      const text = readFileSync(f, 'utf8');
      for (const m of text.matchAll(/\bkind: (?:[^,}]*\? )?'([a-z_]+\.[a-z_]+)'/g)) written.add(m[1]!);
      // ternaries: every quoted area.what in a `kind:` expression
      for (const m of text.matchAll(/\bkind: ([^,}\n]*)/g)) for (const q of m[1]!.matchAll(/'([a-z_]+\.[a-z_]+)'/g)) written.add(q[1]!);
    }
    // reap writes reap.<finding kind>
    for (const k of ['gone', 'pid_reused', 'timeout', 'hung', 'orphan', 'shed']) written.add(`reap.${k}`);
    expect(written.size).toBeGreaterThan(30);
    expect([...written].filter((k) => !(EVENT_KINDS as readonly string[]).includes(k))).toEqual([]);
  });
});
