/**
 * Other processes' text is data (docs/security.md): a real process whose command line holds
 * escape sequences, BEL and a newline, and real runs whose command holds a secret, seen
 * through the real binary.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { cleanEnv, parseJson, runCli, type RunResult, useTempState, waitFor } from '../helpers.js';

const HOSTILE = 'claude \u001b]0;PWNED\u0007\u001b[2J\nFORGED';
/** HOSTILE as people see it */
const SHOWN = 'claude \\x1b]0;PWNED\\x07\\x1b[2J\\nFORGED';
const REDACTED = '<redacted>';

/** a fresh temp folder and state dir per test; processes in procs ended by PID after it */
const t = useTempState();
const procs = t.procs;

const env = () => cleanEnv({ AGENTCTL_DISABLE_THROTTLE: '1', AGENTCTL_SPAWN_COUNT_UNMANAGED: '0' });
const cli = (args: string[]) => runCli(['--state-dir', t.sd, ...args], { env: env(), cwd: t.dir });
const cmdline = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8');

/** Nothing a terminal would act on: no ESC, BEL or other control but newline, and no forged line. */
function expectInert(r: RunResult, what: string): void {
  for (const [stream, text] of [
    ['stdout', r.stdout],
    ['stderr', r.stderr],
  ] as const) {
    expect(text, `${what} ${stream}`).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
    expect(
      text.split('\n').filter((l) => l.startsWith('FORGED')),
      `${what} ${stream}`,
    ).toEqual([]);
  }
}

/** Start a process through bash and return the PID it wrote, adopted so the test ends it. */
async function start(script: string, vars: Record<string, string>): Promise<number> {
  const pidFile = join(t.dir, `pid.${Object.keys(vars).join('')}.${Date.now()}`);
  const sh = spawn('bash', ['-c', script], { env: { ...process.env, ...vars, PIDFILE: pidFile }, stdio: 'ignore' });
  await waitFor(() => existsSync(pidFile) && readFileSync(pidFile, 'utf8').endsWith('\n'), 5_000);
  const pid = Number(readFileSync(pidFile, 'utf8'));
  procs.adopt(pid);
  await waitFor(() => sh.exitCode !== null, 5_000);
  return pid;
}

describe('control characters in other processes command lines are escaped', () => {
  it('ps, reap --orphans, dedupe-workers and doctor print ESC, BEL and newlines visibly, and --json stays exact', async () => {
    // an orphaned agent: argv[0] is HOSTILE (exec -a); the subshell exits, so init adopts it
    const orphan = await start('(exec -a "$H" sh -c "sleep 60; :" x --api-key sk-orphan-secret1 & echo $! > "$PIDFILE")', { H: HOSTILE });
    await waitFor(() => cmdline(orphan).startsWith(`${HOSTILE}\0-c\0`), 5_000);
    expect(cmdline(orphan)).toContain('sk-orphan-secret1'); // the process really has it
    expect(readFileSync(`/proc/${orphan}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]).toBe('1');

    // two copies of one worker script whose argument is HOSTILE: duplicates for dedupe and doctor
    const script = join(t.dir, 'idle_worker.mjs');
    writeFileSync(script, 'setInterval(() => {}, 60_000);\n');
    const dups: number[] = [];
    for (let i = 0; i < 2; i++) {
      dups.push(await start(`"${process.execPath}" "$S" "$H" --api-key sk-dup-secret1 & echo $! > "$PIDFILE"`, { H: HOSTILE, S: script }));
    }
    for (const pid of dups) await waitFor(() => cmdline(pid).includes(HOSTILE), 5_000);

    const ps = await cli(['--wide', 'ps']); // whole lines: the command column is not cut
    expect(ps.code).toBe(0);
    expectInert(ps, 'ps');
    expect(ps.stdout).toContain(SHOWN);
    expect(ps.stdout).not.toContain('sk-orphan-secret1');

    const psJson = parseJson<{ unmanaged: Array<{ pid: number; program: string; command: string }> }>((await cli(['ps', '--json'])).stdout);
    const mine = psJson.unmanaged.find((a) => a.pid === orphan)!;
    expect(mine.program).toBe(HOSTILE); // JSON keeps the exact text, escaped by JSON itself
    expect(mine.command).toBe(`${HOSTILE} -c sleep 60; : x --api-key ${REDACTED}`);

    const reap = await cli(['reap', '--orphans', '--dry-run']);
    expect(reap.code).toBe(0);
    expectInert(reap, 'reap');
    expect(reap.stdout).toContain(`agent ${SHOWN} (PID ${orphan}) lost its parent`);

    const dedupe = await cli(['dedupe-workers', '--dry-run', '--match', t.dir]);
    expect(dedupe.code).toBe(0);
    expectInert(dedupe, 'dedupe-workers');
    expect(dedupe.stdout).toContain(`idle_worker.mjs ${SHOWN} --api-key ${REDACTED}`);
    expect(dedupe.stdout).not.toContain('sk-dup-secret1');
    const plan = parseJson<{ groups: Array<{ identity: string; keep: { pid: number; command: string } }> }>((await cli(['dedupe-workers', '--dry-run', '--json', '--match', t.dir])).stdout);
    expect(plan.groups.map((g) => g.identity)).toEqual([`${realpathSync(t.dir)}: idle_worker.mjs ${HOSTILE} --api-key ${REDACTED}`]);
    expect(dups).toContain(plan.groups[0]!.keep.pid);

    const doctor = await cli(['doctor']);
    expectInert(doctor, 'doctor');
    expect(doctor.stdout).not.toContain('sk-dup-secret1');
    const doc = parseJson<{ checks: Array<{ id: string; value: string }> }>((await cli(['doctor', '--json', '--check', 'agents.duplicates'])).stdout);
    const dupValue = doc.checks.find((c) => c.id === 'agents.duplicates')!.value;
    expect(dupValue).toContain(`idle_worker.mjs ${HOSTILE} --api-key ${REDACTED} x2`);
    expect(dupValue).not.toContain('sk-dup-secret1');
  });
});

describe('secrets in a command are not stored or shown', () => {
  it('the child gets the secret; ps, events and runs.command do not keep it', async () => {
    const r = await cli(['spawn', '--name', 's', '-d', '--json', '--', 'sh', '-c', 'sleep 30; :', 'x', '--api-key', 'sk-secret123']);
    expect(r.code).toBe(0);
    const started = parseJson<{ outcome: string; pid: number; run_id: string }>(r.stdout);
    procs.adopt(started.pid);
    expect(started.outcome).toBe('started');
    await waitFor(() => cmdline(started.pid).includes('sk-secret123'), 5_000);
    expect(cmdline(started.pid).split('\0')).toEqual(['sh', '-c', 'sleep 30; :', 'x', '--api-key', 'sk-secret123', '']);

    const psJson = await cli(['ps', '--json']);
    const run = parseJson<{ runs: Array<{ run_id: string; command: string[] }> }>(psJson.stdout).runs.find((x) => x.run_id === started.run_id)!;
    expect(run.command).toEqual(['sh', '-c', 'sleep 30; :', 'x', '--api-key', REDACTED]);
    expect(psJson.stdout).not.toContain('sk-secret123');
    const ps = await cli(['ps']);
    expect(ps.stdout).toContain(started.run_id);
    expect(ps.stdout).not.toContain('sk-secret123');
    const events = await cli(['events', '--json']);
    expect(parseJson<{ count: number }>(events.stdout).count).toBeGreaterThan(0);
    expect(events.stdout).not.toContain('sk-secret123');

    const db = new Database(join(t.sd, 'state.db'), { readonly: true, fileMustExist: true });
    try {
      const row = db.prepare('SELECT command FROM runs WHERE id = ?').get(started.run_id) as { command: string };
      expect(JSON.parse(row.command)).toEqual(['sh', '-c', 'sleep 30; :', 'x', '--api-key', REDACTED]);
      const leaks = db
        .prepare("SELECT (SELECT COUNT(*) FROM runs WHERE command LIKE '%sk-secret123%') + (SELECT COUNT(*) FROM events WHERE reason LIKE '%sk-secret123%' OR data LIKE '%sk-secret123%') AS n")
        .get() as { n: number };
      expect(leaks.n).toBe(0);
    } finally {
      db.close();
    }
  });

  it('a failed redacted run lands in the dead-letter queue redacted, and dlq retry refuses to replay it', async () => {
    const cfg = join(t.dir, 'agentctl.toml');
    writeFileSync(cfg, '[spawn]\nbackoff_startup = "0s"\nbreaker_failures = 1\n');
    const failed = await cli(['--config', cfg, 'spawn', '--name', 'f', '--', 'sh', '-c', 'exit 3', 'x', '--token=ghp_secret456']);
    expect(failed.code).toBe(3);

    const q = await cli(['--config', cfg, 'dlq', '--json']);
    const entries = parseJson<{ entries: Array<{ id: number; name: string; context: { command: string[] } }> }>(q.stdout).entries;
    expect(entries).toEqual([expect.objectContaining({ name: 'f', context: expect.objectContaining({ command: ['sh', '-c', 'exit 3', 'x', `--token=${REDACTED}`] }) })]);
    expect(q.stdout).not.toContain('ghp_secret456');
    const human = await cli(['--config', cfg, '--wide', 'dlq']); // whole lines: the command column is not cut
    expect(human.stdout).toContain(REDACTED);
    expect(human.stdout).not.toContain('ghp_secret456');

    const retry = await cli(['--config', cfg, 'dlq', 'retry', String(entries[0]!.id)]);
    expect(retry.code).toBe(2);
    expect(retry.stdout).toBe('');
    const lines = retry.stderr.trim().split('\n');
    expect(lines.length).toBe(1);
    expect(lines[0]).toMatch(/^agentctl: dlq retry: entry \d+ cannot be replayed: its command held a secret/);
    expect(lines[0]).toContain(`agentctl spawn --name f -- sh -c 'exit 3' x '--token=${REDACTED}'`);

    // nothing changed: the entry is still queued and the breaker still open
    expect(parseJson<{ entries: unknown[] }>((await cli(['--config', cfg, 'dlq', '--json'])).stdout).entries.length).toBe(1);
    const br = parseJson<{ breakers: Array<{ name: string; mode: string }> }>((await cli(['--config', cfg, 'breaker', '--json'])).stdout);
    expect(br.breakers).toEqual([expect.objectContaining({ name: 'f', mode: 'open' })]);
  });
});
