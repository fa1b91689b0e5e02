/**
 * `spawn -d --restart`: the detached supervisor restarts its run by itself, with no other
 * agentctl command running, after the backoff the policy engine gives, through admission
 * (caps, breaker) and into the DLQ when it gives up; `stop` ends it. Real processes, real
 * supervisors, short backoffs from a test config.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { alive, cleanEnv, dbGet, parseJson, runCli, useTempState, waitFor } from '../helpers.js';

const t = useTempState();
const cfgPath = () => join(t.dir, 'agentctl.toml');
/** min uptime 1 s, the given backoffs; a host cap that no CPU reading changes */
function config(o: { backoff?: string; breakerFailures?: number } = {}): void {
  const backoff = o.backoff ?? '1s';
  writeFileSync(
    cfgPath(),
    `[spawn]\nmin_uptime = "1s"\nbackoff_startup = "${backoff}"\nbackoff_failure = "${backoff}"\nbreaker_failures = ${o.breakerFailures ?? 10}\n[throttle]\nmax_agents = [5, 5, 5, 5]\n`,
  );
}
/** only processes of this test's folder count as agents */
const env = () => cleanEnv({ AGENTCTL_CONFIG: cfgPath(), AGENTCTL_AGENTS_PATTERNS: `^${t.dir}/nothing-matches ` });
const cli = (args: string[]) => runCli(['--state-dir', t.sd, ...args], { env: env(), cwd: t.dir });

interface Row {
  id: string;
  name: string;
  grp: string;
  pid: number | null;
  sup_pid: number | null;
  state: string;
  ended_at: number | null;
  restart_status: string | null;
  restart_at: number | null;
  restart_attempt: number | null;
  restart_policy: string | null;
  restart_retries: number | null;
}
function rows(name?: string): Row[] {
  const db = new Database(join(t.sd, 'state.db'), { readonly: true });
  try {
    const all = db.prepare('SELECT * FROM runs ORDER BY started_at').all() as Row[];
    return name === undefined ? all : all.filter((r) => r.name === name);
  } finally {
    db.close();
  }
}
function dlq(): Array<{ name: string; error: string; run_id: string }> {
  const db = new Database(join(t.sd, 'state.db'), { readonly: true });
  try {
    return db.prepare('SELECT * FROM dlq ORDER BY id').all() as Array<{ name: string; error: string; run_id: string }>;
  } finally {
    db.close();
  }
}

function events(kind: string): Array<{ subject: string; reason: string }> {
  const db = new Database(join(t.sd, 'state.db'), { readonly: true });
  try {
    return db.prepare('SELECT subject, reason FROM events WHERE kind = ? ORDER BY id').all(kind) as Array<{ subject: string; reason: string }>;
  } finally {
    db.close();
  }
}

/** The processes in a process group (a supervisor's: the shell, its sleep, an ask in flight). */
function groupOf(pgid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = readFileSync(`/proc/${d}/stat`, 'utf8');
      if (Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[2]) === pgid) out.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return out;
}

/** Every process a run of this test's state holds: its child, its supervisor and the supervisor's group. */
function adoptAll(): void {
  for (const r of rows()) {
    if (r.pid !== null) t.procs.adopt(r.pid);
    if (r.sup_pid !== null) t.procs.adopt(r.sup_pid, ...groupOf(r.sup_pid));
  }
}

afterEach(async () => {
  // before useTempState's own afterEach ends what is left by PID
  try {
    adoptAll();
    await cli(['stop', '--all', '--grace', '1s']);
    adoptAll();
  } catch {
    /* no state: nothing started */
  }
});

async function spawnRestart(name: string, flags: string[], command: string[]): Promise<Row> {
  const r = await cli(['spawn', '-d', '--json', '--name', name, ...flags, '--', ...command]);
  expect(r.code, r.stderr).toBe(0);
  adoptAll();
  return rows(name)[0]!;
}
const supervisorsGone = (name: string) => rows(name).every((r) => r.sup_pid === null || !alive(r.sup_pid));
const liveRun = (name: string, attempt: number) => rows(name).find((r) => r.ended_at === null && r.pid !== null && r.restart_attempt === attempt);

describe('spawn -d --restart on-failure', () => {
  it('a failed run is restarted by its supervisor alone; while it waits, ps says restarting in …', async () => {
    config({ backoff: '3s' });
    const first = await spawnRestart('w', ['--restart', 'on-failure'], ['sh', '-c', 'sleep 1.3; exit 1']);
    const waiting = await waitFor(() => rows('w').find((r) => r.restart_status === 'waiting'), 15_000, { what: 'the restart waiting' });
    expect(waiting.id).toBe(first.id);
    const ps = await cli(['ps']);
    expect(ps.stdout).toMatch(/restarting in \d/);
    // no process, so no uptime: the row's pid and uptime columns are both '-'
    expect(ps.stdout.split('\n').find((l) => l.includes(first.id))).toMatch(/restarting in \S+\s*│ - +│ - +│/);
    const json = parseJson<{ runs: Array<{ run_id: string; state: string; restart_at: number; restart_attempt: number; restart_policy: string }> }>((await cli(['ps', '--json'])).stdout);
    expect(json.runs).toEqual([expect.objectContaining({ run_id: first.id, state: 'restarting', restart_policy: 'on-failure', restart_attempt: 0, restart_at: waiting.restart_at })]);
    // no agentctl command from here: the supervisor restarts it by itself
    const second = await waitFor(() => liveRun('w', 1), 20_000, { what: 'the restarted run' });
    adoptAll();
    expect(second.id).not.toBe(first.id);
    expect(rows('w').find((r) => r.id === first.id)).toMatchObject({ state: 'failed', restart_status: 'restarted' });
    // each admission names the command that asked for it
    const admitted = (run: string) => dbGet<{ command: string }>(t.sd, "SELECT command FROM events WHERE kind = 'spawn.admitted' AND data LIKE ?", `%${run}%`)?.command;
    expect([admitted(first.id), admitted(second.id)]).toEqual(['spawn', '_restart']);
    const after = parseJson<{ runs: Array<{ run_id: string; state: string; restart_attempt: number }> }>((await cli(['ps', '--json'])).stdout);
    expect(after.runs.map((r) => r.run_id)).toContain(second.id);
    // the first supervisor handed over to the new run's and ended
    await waitFor(() => first.sup_pid !== null && !alive(first.sup_pid), 10_000, { what: 'the first supervisor ending' });
  });

  it('--retries 2: after two failed restarts the run lands in the DLQ with the reason, and nothing restarts it', async () => {
    config();
    await spawnRestart('r', ['--restart', 'on-failure', '--retries', '2'], ['sh', '-c', 'sleep 1.2; exit 3']);
    await waitFor(() => dlq().length > 0, 40_000, { what: 'a DLQ entry' });
    await waitFor(() => supervisorsGone('r'), 10_000, { what: 'every supervisor ending' });
    adoptAll();
    const list = parseJson<{ entries: Array<{ name: string; error: string; context: { restart?: unknown } }> }>((await cli(['dlq', '--json'])).stdout);
    expect(list.entries).toEqual([expect.objectContaining({ name: 'r', error: expect.stringMatching(/gave up after 2 retries \(--retries 2\), last crash, exit 3/) })]);
    expect(list.entries[0]!.context.restart).toEqual({ policy: 'on-failure', retries: 2 });
    expect(rows('r').map((r) => [r.state, r.restart_attempt])).toEqual([
      ['failed', 0],
      ['failed', 1],
      ['failed', 2],
    ]);
    expect(rows('r').at(-1)!.restart_status).toBe('gave_up');
    // dlq retry starts it again under the same policy, a fresh chain
    const retry = await cli(['dlq', 'retry', String((list.entries[0] as unknown as { id: number }).id), '--json']);
    expect(retry.code, retry.stderr).toBe(0);
    adoptAll();
    expect(rows('r')).toHaveLength(4);
    expect(rows('r').at(-1)).toMatchObject({ restart_policy: 'on-failure', restart_retries: 2, restart_attempt: 0 });
  });

  it('the breaker opening ends the restarts: the run is in the DLQ and not started again', async () => {
    config({ breakerFailures: 2 });
    await spawnRestart('b', ['--restart', 'on-failure'], ['sh', '-c', 'sleep 1.2; exit 1']);
    await waitFor(() => rows('b').at(-1)?.restart_status === 'gave_up', 30_000, { what: 'the restart giving up' });
    await waitFor(() => supervisorsGone('b'), 10_000, { what: 'every supervisor ending' });
    adoptAll();
    expect(rows('b')).toHaveLength(2);
    expect(dlq()).toEqual([expect.objectContaining({ name: 'b', error: expect.stringMatching(/2 consecutive failures/) })]);
  });

  it('a full cap at restart time: the restart waits, never above the cap, and starts once the slot frees', async () => {
    config({ backoff: '3s' });
    await spawnRestart('c', ['--group', 'g', '--max', '1', '--restart', 'on-failure'], ['sh', '-c', 'sleep 1.2; exit 1']);
    const due = (await waitFor(() => rows('c').find((r) => r.restart_status === 'waiting'), 15_000, { what: 'the restart waiting' })).restart_at!;
    const holder = await cli(['spawn', '-d', '--json', '--name', 'holder', '--group', 'g', '--max', '1', '--', 'sleep', '60']);
    expect(holder.code, holder.stderr).toBe(0);
    adoptAll();
    // past its backoff the restart asks admission, the group's cap refuses it, and it is put
    // off to its next poll; a held restart's asks write no events (one every few seconds
    // for as long as the cap is full would fill the history)
    await waitFor(() => (rows('c')[0]!.restart_at ?? 0) > due, 20_000, { what: 'the cap refusing the restart' });
    expect(events('spawn.refused').filter((e) => e.subject === 'c')).toEqual([]);
    const liveInG = () => rows().filter((r) => r.grp === 'g' && r.ended_at === null).length;
    expect(liveInG()).toBe(1);
    expect(rows('c')).toHaveLength(1);
    expect(rows('c')[0]!.restart_status).toBe('waiting');
    expect((await cli(['ps'])).stdout).toMatch(/restarting/);
    expect((await cli(['stop', 'holder', '--grace', '1s'])).code).toBe(0);
    await waitFor(() => liveRun('c', 1), 20_000, { what: 'the restart once the slot freed' });
    adoptAll();
    expect(liveInG()).toBe(1);
  });
});

describe('a restart that can no longer come', () => {
  it('its supervisor killed while it waits: the next command gives it up into the DLQ, with an event', async () => {
    config({ backoff: '30s' });
    await spawnRestart('k', ['--restart', 'on-failure'], ['sh', '-c', 'sleep 1.2; exit 1']);
    const waiting = await waitFor(() => rows('k').find((r) => r.restart_status === 'waiting'), 15_000, { what: 'the restart waiting' });
    adoptAll();
    // the shell and its sleep, by PID: as the host's OOM killer would
    for (const pid of groupOf(waiting.sup_pid!)) process.kill(pid, 'SIGKILL');
    await waitFor(() => !alive(waiting.sup_pid!), 5000, { what: 'the supervisor gone' });
    expect((await cli(['ps'])).code).toBe(0);
    expect(rows('k')[0]!.restart_status).toBe('gave_up');
    expect(dlq().find((d) => d.run_id === waiting.id)?.error).toMatch(/restart abandoned: its supervisor ended before restarting it/);
    expect(events('restart.gave_up').some((e) => e.subject === 'k')).toBe(true);
  });
});

describe('a row someone else changed', () => {
  it('limits that are not what spawn records: the restart gives up into the DLQ and runs nothing', async () => {
    config({ backoff: '2s' });
    await spawnRestart('w', ['--restart', 'on-failure'], ['sh', '-c', 'sleep 1.2; exit 1']);
    const waiting = await waitFor(() => rows('w').find((r) => r.restart_status === 'waiting'), 15_000, { what: 'the restart waiting' });
    const planted = join(t.dir, 'planted');
    // the ulimit prefix puts cpuTimeSec into a shell's words: a string there must never get that far
    const db = new Database(join(t.sd, 'state.db'));
    db.prepare('UPDATE runs SET limits = ? WHERE id = ?').run(JSON.stringify({ cpuTimeSec: `1; touch ${planted}` }), waiting.id);
    db.close();
    await waitFor(() => rows('w')[0]!.restart_status === 'gave_up', 15_000, { what: 'the restart giving up' });
    expect(dlq().find((d) => d.run_id === waiting.id)?.error).toMatch(/cannot restart: its row holds limits out of range/);
    expect(rows('w')).toHaveLength(1);
    expect(existsSync(planted)).toBe(false);
  });
});

describe('stop before the restart is decided', () => {
  it("stop in the moment between the run's end and its supervisor's first ask ends the policy: nothing restarts", async () => {
    config({ backoff: '1s' });
    // every _restart the supervisor runs waits 3 s before it starts: the moment, made wide
    const slow = join(t.dir, 'slow-restart.cjs');
    writeFileSync(slow, "if (process.argv.includes('_restart')) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 3000);\n");
    const r = await runCli(['--state-dir', t.sd, 'spawn', '-d', '--json', '--name', 'u', '--restart', 'on-failure', '--', 'sh', '-c', 'sleep 1.2; exit 1'], {
      env: { ...env(), NODE_OPTIONS: `--require ${slow}` },
      cwd: t.dir,
    });
    expect(r.code, r.stderr).toBe(0);
    adoptAll();
    const first = rows('u')[0]!;
    await waitFor(() => readdirSync(join(t.sd, 'runs')).includes(`${first.id}.exit`), 15_000, { what: 'the exit recorded by the supervisor' });
    adoptAll();
    const stop = await cli(['stop', 'u', '--json']);
    expect(stop.code, stop.stderr).toBe(0);
    expect(rows('u')[0]!.restart_status).toBe('stopped');
    await waitFor(() => supervisorsGone('u'), 10_000, { what: 'the supervisor ended' });
    // past the delay and the backoff, still the one run
    await waitFor(() => events('restart.ended').some((e) => e.subject === 'u'), 5000, { what: 'the stop said it ended the restart' });
    expect(rows('u')).toHaveLength(1);
    expect((await cli(['ps'])).code).toBe(0);
    expect(rows('u')).toHaveLength(1);
  });
});

describe('spawn -d --restart always', () => {
  it('always: a clean exit restarts; on-failure: a clean exit ends the policy', async () => {
    config();
    await spawnRestart('a', ['--restart', 'always'], ['sh', '-c', 'sleep 1.2']);
    await spawnRestart('o', ['--restart', 'on-failure'], ['sh', '-c', 'sleep 1.2']);
    await waitFor(() => liveRun('a', 1), 20_000, { what: 'the clean exit restarted' });
    adoptAll();
    expect(rows('a')[0]).toMatchObject({ state: 'exited', restart_status: 'restarted' });
    await waitFor(() => rows('o')[0]!.restart_status === 'done', 10_000, { what: 'on-failure ending after a clean exit' });
    await waitFor(() => supervisorsGone('o'), 10_000, { what: 'its supervisor ending' });
    expect(rows('o')).toHaveLength(1);
    expect(rows('o')[0]!.state).toBe('exited');
  });
});

describe('stop ends the restart policy', () => {
  it('stop NAME while the supervisor waits: the supervisor ends and nothing restarts, even past a short backoff', async () => {
    config({ backoff: '2s' });
    const first = await spawnRestart('s', ['--restart', 'on-failure'], ['sh', '-c', 'sleep 1.2; exit 1']);
    const waiting = await waitFor(() => rows('s').find((r) => r.restart_status === 'waiting'), 15_000, { what: 'the restart waiting' });
    const sup = first.sup_pid!;
    expect(alive(sup)).toBe(true);
    const stop = await cli(['stop', 's', '--json']);
    expect(stop.code, stop.stderr).toBe(0);
    expect(parseJson<{ restarts_ended: unknown; not_running: unknown }>(stop.stdout)).toMatchObject({ restarts_ended: [{ run_id: first.id, name: 's', supervisor_pid: sup }], not_running: [] });
    await waitFor(() => !alive(sup), 10_000, { what: 'the waiting supervisor ending' });
    // the backoff's time comes and goes: nothing may start
    await waitFor(() => Date.now() > waiting.restart_at! + 3_000, 20_000);
    expect(rows('s')).toHaveLength(1);
    expect(rows('s')[0]!.restart_status).toBe('stopped');
    expect((await cli(['ps'])).stdout).not.toMatch(/restarting/);
  });

  it('a waiting supervisor that outlives the TERM (here: stopped with SIGSTOP) is KILLed after the grace', async () => {
    config({ backoff: '30s' });
    const first = await spawnRestart('h', ['--restart', 'on-failure'], ['sh', '-c', 'sleep 1.2; exit 1']);
    await waitFor(() => rows('h').find((r) => r.restart_status === 'waiting'), 15_000, { what: 'the restart waiting' });
    adoptAll();
    const sup = first.sup_pid!;
    // a stopped process keeps a TERM pending; only a KILL ends it
    process.kill(sup, 'SIGSTOP');
    const stop = await cli(['stop', 'h', '--grace', '1s', '--json']);
    expect(stop.code, stop.stderr).toBe(0);
    await waitFor(() => !alive(sup), 3000, { what: 'the supervisor ended by the stop' });
    expect(rows('h')[0]!.restart_status).toBe('stopped');
  });

  it('stop NAME while it runs: it is recorded stopped and not restarted', async () => {
    config();
    const first = await spawnRestart('l', ['--restart', 'always'], ['sleep', '60']);
    const stop = await cli(['stop', 'l', '--grace', '1s']);
    expect(stop.code, stop.stderr).toBe(0);
    await waitFor(() => first.sup_pid !== null && !alive(first.sup_pid), 10_000, { what: 'its supervisor ending' });
    expect(rows('l')).toHaveLength(1);
    expect(rows('l')[0]).toMatchObject({ state: 'stopped', restart_status: 'stopped' });
  });
});

describe('bad flags', () => {
  it.each([
    [['--restart', 'on-failure', '--', 'true'], /^agentctl: --restart: only with -d/],
    [['-d', '--restart', 'sometimes', '--', 'true'], /^agentctl: --restart: expected on-failure or always, got "sometimes"/],
    [['-d', '--restart', 'always', '--retries', '-1', '--', 'true'], /^agentctl: --retries: /],
    [['-d', '--restart', 'always', '--retries', 'x', '--', 'true'], /^agentctl: --retries: /],
    [['-d', '--retries', '2', '--', 'true'], /^agentctl: --retries: only with --each FILE or with -d --restart/],
    [['-d', '--restart', 'always', '--', 'curl', '--token', 'abc123secret', 'x'], /^agentctl: --restart: the command holds a secret/],
    [['--each', '-', '--restart', 'always'], /^agentctl: --restart: not with --each/],
  ])('spawn %j: exit 2, one line, nothing started', async (args, re) => {
    config();
    const r = await cli(['spawn', ...args]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(re);
    expect(r.stdout).toBe('');
  });
});
