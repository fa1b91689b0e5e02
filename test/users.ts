/**
 * A real second user for tests about trust: files and processes owned by someone else.
 * Only root can create one or act as one; tests that need it run with
 * `it.runIf(process.getuid?.() === 0)`.
 */
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';

export interface TestUser {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
}

export const TEST_USER = 'agentctl-test';

/** The reason printed when a test that needs a second user is skipped. */
export const NEEDS_ROOT = 'needs root: creates the system user agentctl-test and acts as it';

const isRoot = () => process.getuid?.() === 0;

function lookup(name: string): TestUser | undefined {
  try {
    const id = (flag: string) => Number(execFileSync('id', [flag, name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    return { name, uid: id('-u'), gid: id('-g') };
  } catch {
    return undefined;
  }
}

let cached: TestUser | undefined;

/**
 * The system user agentctl-test (no home, no login shell), created when missing. Safe when
 * several test files ask at once: useradd holds a lock on /etc/passwd, so a loser fails with
 * "already in use" (9) or "cannot lock" (10) and we look again until the user is there.
 */
export function testUser(): TestUser {
  if (cached) return cached;
  if (!isRoot()) throw new Error(NEEDS_ROOT);
  const deadline = Date.now() + 20_000;
  for (;;) {
    const found = lookup(TEST_USER);
    if (found) return (cached = found);
    try {
      execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', TEST_USER], { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (err) {
      const status = (err as { status?: number }).status;
      if ((status !== 9 && status !== 10) || Date.now() > deadline) throw err;
      // another file's useradd holds the lock: wait a moment for it, then look again
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
    }
  }
}

export interface AsUserResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Run `argv` as `user` (real and effective uid and gid, no supplementary groups) and wait for
 * it to end. The environment is a bare PATH unless `env` is given; cwd defaults to / (root's
 * own folders may be closed to the user).
 */
export async function asUser(user: TestUser, argv: readonly string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<AsUserResult> {
  const child = spawn('setpriv', [`--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups', '--', ...argv], {
    cwd: opts.cwd ?? '/',
    env: opts.env ?? { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 15_000); // by PID
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  clearTimeout(timer);
  return { code, signal, stdout, stderr };
}

/** Run a shell script as `user`; throws with its stderr when it fails. */
export async function shAsUser(user: TestUser, script: string, opts: { cwd?: string } = {}): Promise<string> {
  const r = await asUser(user, ['/bin/sh', '-ec', script], opts);
  if (r.code !== 0) throw new Error(`as ${user.name}: sh -c ${JSON.stringify(script)} exited ${r.code ?? r.signal}: ${r.stderr.trim()}`);
  return r.stdout;
}
