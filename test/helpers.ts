import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach } from 'vitest';
import type { RunRow } from '../src/core/runs/registry.js';

export const ROOT = resolve(import.meta.dirname, '..');
export const BIN = join(ROOT, 'bin', 'agentctl');

export interface RunResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** An environment without the caller's agentctl and colour settings, so tests see defaults. */
export function cleanEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('AGENTCTL_') || k === 'NO_COLOR' || k === 'FORCE_COLOR' || k.startsWith('XDG_')) continue;
    env[k] = v;
  }
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) env[k] = v;
  return env;
}

/** Run the real binary with stdout and stderr piped. */
export async function runCli(args: readonly string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: opts.cwd ?? ROOT,
    env: opts.env ?? cleanEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  // a run past its time is ended by its PID, and reported as killed
  const timer = opts.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs) : undefined;
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  if (timer) clearTimeout(timer);
  return { code, signal, stdout, stderr };
}

/** The error of type `type` that `fn` throws; fails the test when it throws nothing or something else. */
export function thrown<E extends Error>(type: new (...args: never[]) => E, fn: () => unknown): E {
  try {
    fn();
  } catch (err) {
    if (err instanceof type) return err;
    throw err;
  }
  throw new Error(`expected a ${type.name}`);
}

/** A fresh temp folder, removed by the returned cleanup. */
export function tempDir(prefix = 'agentctl-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => removeTree(dir) };
}

/**
 * rm -rf that tries again when files appear while it runs: a detached run's supervisor writes
 * its exit file just after a test ends the run. (rmSync's own maxRetries retries only the last
 * rmdir, not the listing, so a file created meanwhile fails it every time.)
 */
export function removeTree(dir: string): void {
  for (let attempt = 1; ; attempt++) {
    try {
      rmSync(dir, { recursive: true, force: true });
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOTEMPTY' || attempt >= 20) throw err;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
    }
  }
}

/** What useTempState gives a test file: refreshed before each test. */
export interface TempState {
  /** a fresh temp folder, removed after the test */
  readonly dir: string;
  /** the state dir inside it (not created: agentctl creates it) */
  readonly sd: string;
  /** processes the test starts or adopts, ended by PID after the test */
  readonly procs: Procs;
}

/**
 * The per-test world of an integration file (STYLE.md 15): before each test a fresh temp
 * folder with a state dir path inside; after it, every process in `procs` ended by its PID,
 * then the folder removed. Call once at the top of the file; read the fields inside tests.
 */
export function useTempState(): TempState {
  const procs = new Procs();
  let t: ReturnType<typeof tempDir> | undefined;
  beforeEach(() => {
    t = tempDir();
  });
  afterEach(async () => {
    await procs.endAll();
    t?.cleanup();
    t = undefined;
  });
  const now = () => {
    if (!t) throw new Error('useTempState: read its fields inside a test or hook');
    return t.dir;
  };
  return {
    get dir() {
      return now();
    },
    get sd() {
      return join(now(), 'state');
    },
    procs,
  };
}

/** Processes a test started; `endAll` ends each by its PID and waits for it to exit. */
export class Procs {
  private readonly children: ChildProcess[] = [];
  /** Processes a test caused but did not start itself (detached runs, their grandchildren). */
  private readonly adopted: Array<{ pid: number; startTime: string }> = [];

  /** End these too in endAll: by PID, and only while the PID still names the same process. */
  adopt(...pids: number[]): void {
    for (const pid of pids) {
      const startTime = procStartTime(pid);
      if (startTime !== undefined) this.adopted.push({ pid, startTime });
    }
  }

  /** Start `node -e code` (optionally under another argv[0] via a symlink) and wait until it runs it. */
  async node(code: string, opts: { argv0Path?: string; args?: string[] } = {}): Promise<ChildProcess> {
    const exe = opts.argv0Path ?? process.execPath;
    const child = spawn(exe, ['-e', code, ...(opts.args ?? [])], { stdio: 'ignore' });
    this.children.push(child);
    await waitFor(() => {
      try {
        return readFileSync(`/proc/${child.pid}/cmdline`, 'latin1').includes(code);
      } catch {
        return false;
      }
    }, 5_000);
    return child;
  }

  /** End this child too in endAll (one the test spawned itself); returns it. */
  track<C extends ChildProcess>(child: C): C {
    this.children.push(child);
    return child;
  }

  /** How many children were tracked so far in this test (for unique file names). */
  get count(): number {
    return this.children.length;
  }

  /** A process that keeps one core busy. */
  busy(): Promise<ChildProcess> {
    return this.node('for (;;) {}');
  }

  /** A process whose command line looks like a claude session: argv[0] is .../claude. */
  async fakeClaude(dir: string): Promise<ChildProcess> {
    const link = join(dir, 'claude');
    if (!existsSync(link)) symlinkSync(process.execPath, link);
    return this.node('setInterval(() => {}, 60_000)', { argv0Path: link, args: ['--print'] });
  }

  async end(child: ChildProcess): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGKILL'); // by PID: ChildProcess.kill signals exactly child.pid
    await exited;
  }

  async endAll(): Promise<void> {
    for (const p of this.adopted.splice(0)) {
      if (procStartTime(p.pid) !== p.startTime) continue; // gone, or the PID is someone else's now
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    await Promise.all(this.children.splice(0).map((c) => this.end(c)));
  }
}

/** Field 22 of /proc/PID/stat (start time in clock ticks), or undefined when there is no such process. */
function procStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** Is a process running under this PID (a zombie is not)? */
export function alive(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]![0] !== 'Z';
  } catch {
    return false;
  }
}

/**
 * Does the process hold an inotify watch (Linux)? agentctl's waiters (`wait`, `events --follow`)
 * set theirs up once their signal handlers are in place and their starting point is read: a
 * sign they are listening. Not SigCgt: Node catches SIGINT and SIGTERM from its first
 * instruction, before any script's handler.
 */
export function watchesInotify(pid: number): boolean {
  try {
    return readdirSync(`/proc/${pid}/fd`).some((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`) === 'anon_inode:inotify';
      } catch {
        return false;
      }
    });
  } catch {
    return false;
  }
}

/**
 * Poll `pred` every `stepMs` until it returns something truthy, and return that; after
 * `timeoutMs` fail with "`what` not met within … ms". Use it wherever a test waits for
 * something to happen, instead of sleeping for a time that is usually enough.
 */
export async function waitFor<T>(pred: () => T | Promise<T>, timeoutMs: number, opts: { stepMs?: number; what?: string } = {}): Promise<NonNullable<T>> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await pred();
    if (v) return v as NonNullable<T>;
    if (Date.now() > until) throw new Error(`${opts.what ?? 'condition'} not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, opts.stepMs ?? 20));
  }
}

/** One row from the state db at `stateDir`, read through a read-only connection of its own. */
export function dbGet<T>(stateDir: string, sql: string, ...params: unknown[]): T | undefined {
  const db = new Database(join(stateDir, 'state.db'), { readonly: true });
  try {
    return db.prepare(sql).get(...params) as T | undefined;
  } finally {
    db.close();
  }
}

/** Every row of a read-only query against the state db at `stateDir`. */
export function dbAll<T>(stateDir: string, sql: string, ...params: unknown[]): T[] {
  const db = new Database(join(stateDir, 'state.db'), { readonly: true });
  try {
    return db.prepare(sql).all(...params) as T[];
  } finally {
    db.close();
  }
}

/** A run's row as stored. */
export const runRow = (stateDir: string, id: string): RunRow => dbGet<RunRow>(stateDir, 'SELECT * FROM runs WHERE id = ?', id)!;

/**
 * Wait until a detached run's supervisor left its exit file (or the run was closed), let
 * `reconcile` (a `ps`) record it, and return the recorded row.
 */
export async function recordedEnd(stateDir: string, runId: string, reconcile: () => Promise<unknown>, timeoutMs = 60_000): Promise<RunRow> {
  await waitFor(() => existsSync(join(stateDir, 'runs', `${runId}.exit`)) || runRow(stateDir, runId).ended_at !== null, timeoutMs, { what: `${runId} ended` });
  await reconcile();
  return waitFor(() => (runRow(stateDir, runId).ended_at !== null ? runRow(stateDir, runId) : undefined), 10_000, { what: `${runId} recorded` });
}

/** Put a runs row (test/rows.ts runRow) into the state db at `stateDir`, as a spawner would have left it. */
export function insertRun(stateDir: string, row: object): void {
  const db = new Database(join(stateDir, 'state.db'));
  try {
    const cols = Object.keys(row);
    db.prepare(`INSERT INTO runs (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`).run(...Object.values(row));
  } finally {
    db.close();
  }
}

/** How many spawns wait in the host queue of the state at `stateDir`. */
export const queueLength = (stateDir: string): number => dbGet<{ n: number }>(stateDir, 'SELECT COUNT(*) AS n FROM queue')!.n;

/**
 * Wait until the environments `names` in the state at `stateDir` are past their TTL
 * (expires_at in the past by this clock, which is the one agentctl reads).
 */
export async function envsExpired(stateDir: string, names: readonly string[], timeoutMs = 10_000): Promise<void> {
  const db = new Database(join(stateDir, 'state.db'), { readonly: true });
  try {
    const row = db.prepare('SELECT expires_at FROM envs WHERE name = ?');
    await waitFor(
      () =>
        names.every((n) => {
          const r = row.get(n) as { expires_at: number } | undefined;
          return r !== undefined && r.expires_at < Date.now();
        }),
      timeoutMs,
      { what: `environments ${names.join(', ')} past their TTL` },
    );
  } finally {
    db.close();
  }
}

export function parseJson<T = Record<string, unknown>>(text: string): T {
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new Error(`not one JSON document: ${JSON.stringify(text.slice(0, 500))}`);
  }
}

/** mulberry32: a small seeded generator, so generated test inputs are reproducible. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A heavy suite's size or seed from the environment variable `name` (documented at the top of
 * its test file), `fallback` when unset. Anything but a whole number fails at once: a typo must
 * not shrink a suite to nothing that then passes.
 */
export function sizeFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw)) throw new Error(`${name}=${JSON.stringify(raw)}: expected a whole number (default ${fallback})`);
  return Number(raw);
}

/** A detached run a test started: its process and its supervisor are ended by PID after the test. */
export function adoptRun(procs: Procs, stateDir: string, run: { run_id: string; pid: number }): void {
  procs.adopt(run.pid);
  const sup = dbGet<{ sup_pid: number | null }>(stateDir, 'SELECT sup_pid FROM runs WHERE id = ?', run.run_id)?.sup_pid;
  if (sup) procs.adopt(sup);
}
