/**
 * Interactive shells for the completion tests: zsh and fish are installed when missing, as
 * test/users.ts creates a second user. Installing needs root; without it a missing shell is a
 * skipped test with its reason. Safe when several test files ask at once: the install runs
 * under flock(1) on one lock file, and the shells are looked for again once the lock is held,
 * so a second file waits for the first one's apt-get and then finds them installed.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

export type TestShell = 'bash' | 'zsh' | 'fish';
/** What a test may need installed: a shell, or bash-completion (the functions bash users load, _command_offset among them). */
export type TestPackage = TestShell | 'bash-completion';

const LOCK = '/tmp/agentctl-test-apt.lock';

/** bash-completion's main script, where Debian and Ubuntu put it. */
export const BASH_COMPLETION = '/usr/share/bash-completion/bash_completion';

/** The shell command that succeeds when the package is there. */
const presentCheck = (p: TestPackage) => (p === 'bash-completion' ? `[ -e ${BASH_COMPLETION} ]` : `command -v ${p} >/dev/null 2>&1`);

function present(p: TestPackage): boolean {
  try {
    execFileSync('sh', ['-c', presentCheck(p)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const found = new Set<TestPackage>();

/**
 * The packages that are there, installing the missing ones (`apt-get update`, then `apt-get
 * install -y`) when running as root. Returns the reason for each one still missing, to skip
 * its tests with; an empty map when all are there.
 */
export function ensurePackages(pkgs: readonly TestPackage[]): Map<TestPackage, string> {
  const missing = () => pkgs.filter((p) => !found.has(p) && !present(p));
  const want = missing();
  if (want.length && process.getuid?.() === 0) {
    // looked for again under the lock: another test file may have installed them meanwhile
    const checks = want.map((p) => `${presentCheck(p)} || need="$need ${p}"`);
    const script = ['set -e', 'need=""', ...checks, '[ -z "$need" ] && exit 0', 'apt-get update -qq', 'apt-get install -y -qq $need'].join('\n');
    try {
      execFileSync('flock', ['-w', '900', LOCK, 'sh', '-c', script], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, timeout: 900_000 });
    } catch (err) {
      const why = String((err as { stderr?: Buffer }).stderr ?? (err as Error).message)
        .trim()
        .split('\n')
        .pop();
      return new Map(missing().map((p) => [p, `${p} is not installed and apt-get install failed: ${why}`]));
    }
  }
  for (const p of pkgs) if (present(p)) found.add(p);
  return new Map(missing().map((p) => [p, `${p} is not installed, and installing it needs root (apt-get install ${p})`]));
}

/**
 * An interactive shell in a tmux pane of its own (a private server socket in `dir`), to drive
 * completion as a person does: type, press Tab, read the screen. close() ends the server by
 * its PID.
 */
export class TmuxShell {
  private readonly sock: string;
  private pid: number | undefined;

  private constructor(dir: string) {
    this.sock = join(dir, 'tmux.sock');
  }

  /** Start `argv` (with exactly `env`) in a 200x60 pane. */
  static start(dir: string, argv: readonly string[], env: Record<string, string>): TmuxShell {
    const t = new TmuxShell(dir);
    t.tmux(['-f', '/dev/null', 'new-session', '-d', '-x', '200', '-y', '60', '-s', 'c', '--', 'env', '-i', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...argv]);
    t.pid = Number(t.tmux(['display-message', '-p', '-t', 'c', '#{pid}']).trim());
    return t;
  }

  private tmux(args: readonly string[]): string {
    return execFileSync('tmux', ['-S', this.sock, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  }

  /** Keys as tmux send-keys takes them: text, or names such as Tab, Enter, C-u. */
  keys(...keys: string[]): void {
    this.tmux(['send-keys', '-t', 'c', ...keys]);
  }

  /** Text typed as it is (no key names). */
  type(text: string): void {
    this.tmux(['send-keys', '-t', 'c', '-l', text]);
  }

  /** What the pane shows now. */
  screen(): string {
    return this.tmux(['capture-pane', '-p', '-t', 'c']);
  }

  /** Empty the pane and its history. */
  clear(): void {
    this.keys('C-u', 'C-l');
    this.tmux(['clear-history', '-t', 'c']);
  }

  close(): void {
    if (this.pid === undefined) return;
    try {
      process.kill(this.pid, 'SIGKILL'); // the server we started, by its PID; its pane's shell gets SIGHUP
    } catch {
      /* gone already */
    }
    this.pid = undefined;
  }
}
