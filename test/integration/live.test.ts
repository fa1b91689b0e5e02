/**
 * The live view (`agentctl top`, `agentctl ps --watch`) on a real pseudo-terminal: tmux, each
 * test its own server (`tmux -L <socket>`), the screen read back with capture-pane. Checks that
 * frames are drawn and redrawn, that q and Ctrl-C leave with exit 0 and give the terminal back
 * (alternate screen left, cursor shown, the keyboard in canonical mode again), that a resize
 * refits the view, and that piped it prints plain snapshots without a single escape code.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BIN, cleanEnv, parseJson, ROOT, runCli, useTempState, waitFor } from '../helpers.js';

const t = useTempState();

// the shared test host is often busy: a throttled level could refuse the test's own spawns
const env = () => cleanEnv({ AGENTCTL_DISABLE_THROTTLE: '1' });
const cli = (args: string[]) => runCli(['--state-dir', t.sd, ...args], { env: env(), cwd: t.dir });

const sockets: string[] = [];
let children: ChildProcess[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) {
    try {
      execFileSync('tmux', ['-S', s, 'kill-server'], { stdio: 'ignore' });
    } catch {
      /* already gone */
    }
  }
  for (const c of children.splice(0)) {
    if (c.exitCode === null && c.signalCode === null) {
      const exited = once(c, 'exit');
      c.kill('SIGKILL'); // by its PID
      await exited;
    }
  }
  children = [];
  await cli(['stop', '--all', '--grace', '1s']); // the runs the test spawned; useTempState ends their PIDs too
});

/** A detached `sleep 300` named `name`; its PID is ended after the test even if stop is not reached. */
async function sleeper(name: string): Promise<{ run_id: string; pid: number }> {
  const r = await cli(['spawn', '--json', '-d', '--name', name, '--', 'sleep', '300']);
  expect(r.code, r.stderr).toBe(0);
  const doc = parseJson<{ run_id: string; pid: number }>(r.stdout);
  t.procs.adopt(doc.pid);
  return doc;
}

/** A tmux server of this test's own, running `args` under sh in an 80x24 pane. */
function tmux(args: string): { screen: () => string; keys: (...k: string[]) => void; flags: () => string; resize: (x: number, y: number) => void } {
  const sock = join(t.dir, `tmux-${sockets.length}`);
  sockets.push(sock);
  const sh = `echo BEFORE-MARK; ${args}; echo "LIVE-EXIT=$?"; echo "MODE=$(stty -a | grep -o -- '-\\?icanon')"; sleep 300`;
  execFileSync('tmux', ['-S', sock, '-f', '/dev/null', 'new-session', '-d', '-x', '80', '-y', '24', 'sh', '-c', sh], { env: { ...env(), TERM: 'xterm-256color' }, cwd: ROOT });
  const run = (...a: string[]) => execFileSync('tmux', ['-S', sock, ...a], { encoding: 'utf8' });
  return {
    screen: () => run('capture-pane', '-p'),
    keys: (...k) => void run('send-keys', ...k),
    // is the pane on the alternate screen, is the cursor shown
    flags: () => run('display-message', '-p', 'alt=#{alternate_on} cursor=#{cursor_flag}').trim(),
    resize: (x, y) => void run('resize-window', '-x', String(x), '-y', String(y)),
  };
}

const node = JSON.stringify(process.execPath);
const bin = JSON.stringify(BIN);

/** The screen once the view has left and the shell printed the terminal's mode after it. */
const leftView = (term: { screen(): string }) => waitFor(() => (/MODE=/.test(term.screen()) ? term.screen() : undefined), 15_000, { what: 'the view left' });

describe('on a terminal', () => {
  it('draws the header and the runs, redraws (a new run appears), fits a resize, and q leaves a clean terminal with exit 0', async () => {
    await sleeper('alpha');
    await sleeper('beta');
    const term = tmux(`${node} ${bin} --state-dir ${JSON.stringify(t.sd)} top 300ms`);
    const first = await waitFor(
      () => {
        const s = term.screen();
        return /agentctl top .* q quits/.test(s) && /\balpha\b/.test(s) && /\bbeta\b/.test(s) ? s : undefined;
      },
      15_000,
      { what: 'the first frame' },
    );
    expect(first).toMatch(/^throttle\s+disabled/m);
    expect(first).toMatch(/^agents\s+2, no cap \(2 started by agentctl/m);
    expect(first).toMatch(/RUN\s+NAME\s+STATE\s+PID\s+CPU%\s+RSS\s+UPTIME\s+↺\s+PORTS/);
    expect(first).not.toContain('BEFORE-MARK'); // the alternate screen hides the shell's
    expect(term.flags()).toBe('alt=1 cursor=0');

    // a redraw: a run spawned now shows up without a key pressed
    await sleeper('gamma');
    await waitFor(() => /\bgamma\b/.test(term.screen()), 15_000, { what: 'the new run drawn' });

    // a narrower, shorter terminal: every line fits, the rows that do not fit are counted
    term.resize(40, 8);
    const narrow = await waitFor(
      () => {
        const s = term.screen();
        return /… \d+ more/.test(s) ? s : undefined;
      },
      15_000,
      { what: 'the view refitted to 40x8' },
    );
    for (const line of narrow.split('\n')) expect([...line].length).toBeLessThanOrEqual(40);
    term.resize(80, 24);

    term.keys('q');
    const after = await leftView(term);
    expect(after).toContain('BEFORE-MARK');
    expect(after).toContain('LIVE-EXIT=0');
    expect(after).toContain('MODE=icanon'); // raw mode undone
    expect(after).not.toMatch(/RUN\s+NAME|agentctl top/);
    expect(term.flags()).toBe('alt=0 cursor=1');
  });

  it('Ctrl-C leaves too, with exit 0 and the terminal restored; ps --watch is the same view', async () => {
    await sleeper('alpha');
    const term = tmux(`${node} ${bin} --state-dir ${JSON.stringify(t.sd)} ps --watch 200ms`);
    await waitFor(() => /agentctl ps --watch .* q quits/.test(term.screen()) && /\balpha\b/.test(term.screen()), 15_000, { what: 'the first frame' });
    expect(term.flags()).toBe('alt=1 cursor=0');
    term.keys('C-c');
    const after = await leftView(term);
    expect(after).toContain('LIVE-EXIT=0');
    expect(after).toContain('MODE=icanon');
    expect(after).toContain('BEFORE-MARK');
    expect(after).not.toContain('agentctl ps --watch');
    expect(term.flags()).toBe('alt=0 cursor=1');
  });
});

describe('piped', () => {
  const start = (args: string[]) => {
    const c = spawn(process.execPath, [BIN, '--state-dir', t.sd, ...args], { env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(c);
    let out = '';
    c.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    return { c, out: () => out };
  };

  it('prints one plain snapshot per interval, a blank line between them, and no escape code at all (even with colour forced off by the pipe)', async () => {
    await sleeper('alpha');
    const { c, out } = start(['top', '200ms']);
    await waitFor(() => (out().match(/^agentctl top /gm) ?? []).length >= 2, 15_000, { what: 'two snapshots' });
    const exited = once(c, 'exit');
    c.kill('SIGINT');
    expect((await exited)[0]).toBe(0);
    const text = out();
    expect(text).not.toMatch(/[\u001b\u009b]/);
    const snapshots = text.split(/\n\n(?=agentctl top )/);
    expect(snapshots.length).toBeGreaterThanOrEqual(2);
    for (const s of snapshots) {
      expect(s).toMatch(/^agentctl top {2}\d\d:\d\d:\d\d {2}every 200ms\n/);
      expect(s).not.toContain('q quits');
      expect(s).toMatch(/\balpha\s+running\b/);
      for (const line of s.split('\n')) expect([...line].length).toBeLessThanOrEqual(80);
    }
  });

  it('--json: one JSON document per line', async () => {
    const a = await sleeper('alpha');
    const { c, out } = start(['ps', '--watch', '200ms', '--json']);
    await waitFor(() => out().split('\n').filter(Boolean).length >= 2, 15_000, { what: 'two documents' });
    const exited = once(c, 'exit');
    c.kill('SIGTERM');
    expect((await exited)[0]).toBe(0);
    const docs = out()
      .trim()
      .split('\n')
      .map((l) => parseJson<{ runs: Array<{ run_id: string; cpu_pct: number | null; restarts: number }>; throttle: { disabled: boolean }; queue: { waiting: number } }>(l));
    expect(docs[0]!.runs.map((r) => r.run_id)).toEqual([a.run_id]);
    expect(docs[0]!.throttle.disabled).toBe(true);
    expect(docs[1]!.runs[0]!.cpu_pct).not.toBeNull(); // measured between the first two frames
    expect(docs[0]!.queue.waiting).toBe(0);
  });

  it('bad intervals: exit 2, one line naming the flag', async () => {
    const r1 = await cli(['top', '50ms']);
    expect(r1).toMatchObject({ code: 2, stdout: '', stderr: 'agentctl: interval: 50ms is too short; expected an interval of at least 100ms\n' });
    const r2 = await cli(['ps', '--watch', 'soon']);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toMatch(/^agentctl: --watch: invalid duration "soon"; expected a duration like .*\n$/);
  });
});
