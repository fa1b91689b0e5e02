/**
 * agentctl events --follow on a real state: events other commands commit while it follows are
 * printed in order as they come (text lines, or JSON lines under --json), --kind filters them,
 * --limit 0 prints no backlog, Ctrl-C ends it with 130, and secrets stored by older builds in
 * a reason or in data are redacted on the way out.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BIN, cleanEnv, runCli, useTempState, waitFor, watchesInotify } from '../helpers.js';

const t = useTempState();
const env = () => cleanEnv({ AGENTCTL_DISABLE_THROTTLE: '1' });
const cli = (args: string[]) => runCli(['--state-dir', t.sd, ...args], { env: env(), cwd: t.dir, timeoutMs: 60_000 });

function follow(args: string[]) {
  const child = t.procs.track(spawn(process.execPath, [BIN, '--state-dir', t.sd, 'events', '-f', ...args], { cwd: t.dir, env: env(), stdio: ['ignore', 'pipe', 'pipe'] }));
  let stdout = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  const done = once(child, 'close').then(([code]) => code as number | null);
  return { child, out: () => stdout, done };
}

interface Ev {
  id: number;
  kind: string;
  subject: string | null;
  reason: string;
  data: Record<string, unknown> | null;
}
const jsonLines = (text: string) =>
  text
    .trimEnd()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Ev);

describe('agentctl events --follow', () => {
  it('prints the backlog, then each event as it is committed, in order; Ctrl-C exits 130', async () => {
    expect((await cli(['spawn', '--name', 'before', '--', 'true'])).code).toBe(0);
    const f = follow(['--json']);
    await waitFor(() => jsonLines(f.out()).some((e) => e.kind === 'run.exited' && e.subject === 'before'), 15_000, { what: 'the backlog' });
    await waitFor(() => watchesInotify(f.child.pid!), 15_000, { what: 'the follower listening' });
    expect((await cli(['spawn', '--name', 'after', '--', 'sh', '-c', 'exit 3'])).code).toBe(3);
    await waitFor(() => jsonLines(f.out()).some((e) => e.kind === 'run.failed' && e.subject === 'after'), 15_000, { what: 'the new events' });
    f.child.kill('SIGINT');
    expect(await f.done).toBe(130);
    const got = jsonLines(f.out());
    expect(got.map((e) => `${e.kind} ${e.subject}`)).toEqual(['spawn.admitted before', 'run.exited before', 'spawn.admitted after', 'run.failed after']);
    expect(got.map((e) => e.id)).toEqual([...got.map((e) => e.id)].sort((a, b) => a - b));
  });

  it('--kind filters what it follows, --limit 0 skips the backlog, and the text view is a line an event', async () => {
    expect((await cli(['spawn', '--name', 'old', '--', 'sh', '-c', 'exit 1'])).code).toBe(1);
    const f = follow(['--kind', 'run.failed', '--limit', '0']);
    await waitFor(() => watchesInotify(f.child.pid!), 15_000, { what: 'the follower listening' });
    expect((await cli(['spawn', '--name', 'ok', '--', 'true'])).code).toBe(0);
    expect((await cli(['spawn', '--name', 'bad', '--', 'sh', '-c', 'exit 2'])).code).toBe(2);
    await waitFor(() => f.out().includes('run.failed bad:'), 15_000, { what: 'the failure' });
    f.child.kill('SIGINT');
    expect(await f.done).toBe(130);
    const lines = f.out().trimEnd().split('\n');
    expect(lines[0]).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d {2}run\.failed bad: r[0-9a-z]+ exit 2/);
    expect(f.out()).not.toContain('old');
    expect(f.out()).not.toContain('spawn.admitted');
  });

  it('redacts secrets that rows written by older builds hold, in the reason and in data', async () => {
    expect((await cli(['spawn', '--name', 'seed', '--', 'true'])).code).toBe(0); // creates the state
    const db = new Database(join(t.sd, 'state.db'));
    db.prepare("INSERT INTO events (ts, command, kind, subject, reason, data) VALUES (?, 'spawn', 'spawn.admitted', 'x', ?, ?)").run(
      Date.now(),
      'started with --token hunter2 and postgres://u:pw1@db/x',
      JSON.stringify({ command: ['claude', '--api-key', 'sk-secret-1'], env: { url: 'https://a:pw2@h/' }, n: 3 }),
    );
    db.close();
    for (const args of [
      ['events', '--json'],
      ['events', '-f', '--json', '--limit', '1'],
    ]) {
      const f = args.includes('-f') ? follow(args.slice(2)) : undefined;
      const text = f ? await waitFor(() => (f.out().includes('"x"') ? f.out() : undefined), 15_000) : (await cli(args)).stdout;
      if (f) {
        f.child.kill('SIGINT');
        await f.done;
      }
      for (const secret of ['hunter2', 'pw1', 'sk-secret-1', 'pw2']) expect(text).not.toContain(secret);
      expect(text).toContain('"n":3');
    }
  });

  it('bad --limit exits 2 with one line', async () => {
    const r = await cli(['events', '-f', '--limit', '-1']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain('--limit');
  });
});
