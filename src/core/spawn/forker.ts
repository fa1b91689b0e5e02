/**
 * One small Perl process that forks the /bin/sh supervisors of many detached runs, for a
 * command that starts several at once (`up`). Node's spawn forks the whole agentctl process
 * (about 60 MB) and blocks until the exec: 2-4 ms a supervisor, on the main thread. Perl forks
 * itself (a few MB) and can name the program it execs (`exec {'/bin/sh'} 'agentctl-supervise'`),
 * which /bin/sh cannot: a supervisor's command line must stay `agentctl-supervise -s RUN_ID`
 * (proc.ts). Perl ships with every Debian and Ubuntu (perl-base is essential); where it is not
 * found, each supervisor is spawned from Node as before (launch.ts).
 *
 * What it does for each request, in the forked child before the exec: its own process group
 * (the forker itself was started in a new session, so no terminal owns any of them), the
 * run's folder, the run's environment (and nothing of the forker's), the script on stdin
 * through a pipe, the log as stdout and stderr, and the report pipe as fd 3.
 * - The log is opened by agentctl (openLogForAppend: no link, a plain file of ours) and held
 *   open until the child's PID is known; the forker opens that same file through
 *   /proc/<agentctl's pid>/fd/<n>, which names the open file, not a path someone could swap.
 * - The report pipe goes back to agentctl. The forker writes `RUN_ID supervisor PID` once it
 *   has forked, the supervisor `RUN_ID PID` once its child runs (launch.ts), and the
 *   forker `RUN_ID ! why` when it could not start one. Lines are shorter than PIPE_BUF, so
 *   they never interleave.
 * - A supervisor that dies before it reports is known when the pipe ends: every writer (the
 *   forker and each supervisor, which closes fd 3 after its line) has then closed it.
 *
 * Between the fork and agentctl reading the forker's line, the run's row still names the
 * spawner as its starter. A spawner killed in those milliseconds leaves the run `starting`;
 * reconcile waits while a supervisor whose command line names the run is alive, then adopts
 * the child from it (runs/reconcile.ts).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';

export interface DetachedStart {
  readonly pid: number;
  readonly supervisorPid: number;
}

/**
 * The forker, run as `perl -e FORKER <agentctl's pid>`. Its first message is the
 * supervisor script; each next one a request: run id, folder, agentctl's fd of the log, then
 * the environment as K=V, NUL-separated. Each message is its byte length on a line, then the
 * bytes. Fds: it starts with 0 (requests), 1 (the report pipe) and 2 (/dev/null) only, so a
 * request's pipe and log take 3, 4 and 5, and in the child, once the pipe's ends are closed,
 * the duplicate of the report pipe takes 3: `dup` gives the lowest free number. `$^F = 3`
 * keeps that fd open across the exec (perl marks higher fds close-on-exec).
 */
export const FORKER = String.raw`$0 = 'agentctl-forker';
$| = 1;
my $node = shift @ARGV;
binmode STDIN;
sub msg {
  my $len = <STDIN>;
  return undef unless defined $len && $len =~ /^(\d+)\n\z/;
  my ($want, $buf) = ($1, '');
  while (length($buf) < $want) { read(STDIN, $buf, $want - length($buf), length($buf)) or return undef; }
  return $buf;
}
my $script = msg();
exit 0 unless defined $script;
while (defined(my $m = msg())) {
  my ($id, $cwd, $logfd, @env) = split /\0/, $m, -1;
  next unless defined $logfd && $id =~ /^r[0-9a-z]+\z/ && $logfd =~ /^\d+\z/;
  my ($r, $w, $log);
  unless (pipe($r, $w)) { print "$id ! pipe: $!\n"; next; }
  unless (open($log, '>>', "/proc/$node/fd/$logfd")) { print "$id ! log: $!\n"; close $r; close $w; next; }
  my $pid = fork();
  unless (defined $pid) { print "$id ! fork: $!\n"; close $r; close $w; close $log; next; }
  if ($pid == 0) {
    my $fail = sub { syswrite(STDOUT, "$id ! $_[0]\n"); CORE::exit(127); };
    $^F = 3;
    setpgrp(0, 0) or $fail->("setpgid: $!");
    chdir($cwd) or $fail->("cd $cwd: $!");
    close $w;
    open(STDIN, '<&', $r) or $fail->("stdin: $!");
    close $r;
    open(my $rep, '>&', \*STDOUT) or $fail->("dup: $!");
    fileno($rep) == 3 or $fail->('the report pipe is not fd 3');
    open(STDOUT, '>&', $log) or $fail->("log: $!");
    open(STDERR, '>&', $log) or $fail->("log: $!");
    close $log;
    %ENV = ();
    for (@env) { my ($k, $v) = split /=/, $_, 2; $ENV{$k} = $v; }
    exec { '/bin/sh' } 'agentctl-supervise', '-s', $id;
    syswrite($rep, "$id ! exec /bin/sh: $!\n");
    CORE::exit(127);
  }
  close $r;
  close $log;
  print {$w} $script;
  close $w;
  print "$id supervisor $pid\n";
}
`;

/** Where the forker's interpreter is looked for: system paths only, never the caller's PATH (agentctl runs as root from cron). */
const PERL = ['/usr/bin/perl', '/bin/perl'];

export interface LaunchRequest {
  readonly runId: string;
  readonly cwd: string;
  /** the supervisor's whole environment (its AGENTCTL_SUP_* parameters included) */
  readonly env: NodeJS.ProcessEnv;
  /** agentctl's open fd of the run's log */
  readonly logFd: number;
  readonly onSupervisor?: ((pid: number) => void) | undefined;
}

interface Pending {
  readonly req: LaunchRequest;
  supervisorPid?: number;
  childPid?: number;
  resolve(v: DetachedStart): void;
  reject(err: Error): void;
}

const frame = (s: string | Buffer): Buffer => {
  const body = typeof s === 'string' ? Buffer.from(s) : s;
  return Buffer.concat([Buffer.from(`${body.length}\n`), body]);
};

/** A forker for this process's burst of starts. `close()` once the last is asked for. */
export class Forker {
  private child: ChildProcess | undefined;
  private readonly pending = new Map<string, Pending>();
  private ended = false;
  private buffered = '';

  private constructor(
    private readonly perl: string,
    private readonly script: string,
  ) {}

  /** A forker, or undefined where there is no Perl (the caller spawns each supervisor itself). */
  static find(script: string, candidates: readonly string[] = PERL): Forker | undefined {
    const perl = candidates.find((p) => existsSync(p));
    return perl ? new Forker(perl, script) : undefined;
  }

  /** Start one supervisor; resolves once its child's PID is known. */
  start(req: LaunchRequest): Promise<DetachedStart> {
    if (this.ended) return Promise.reject(new Error('the forker has ended'));
    const child = this.open();
    return new Promise((resolve, reject) => {
      this.pending.set(req.runId, { req, resolve, reject });
      const env = Object.entries(req.env)
        .filter((e): e is [string, string] => e[1] !== undefined && !e[0].includes('=') && !e[0].includes('\0') && !e[1].includes('\0'))
        .map(([k, v]) => `${k}=${v}`);
      child.stdin!.write(frame([req.runId, req.cwd, String(req.logFd), ...env].join('\0')));
    });
  }

  /** No more requests: the forker ends once it has forked the ones it has. */
  close(): void {
    this.child?.stdin?.end();
  }

  private open(): ChildProcess {
    if (this.child) return this.child;
    // an empty environment: PERL5OPT or PERL5LIB in the caller's would load code into it, and
    // each supervisor is given its whole environment in its request
    const child = spawn(this.perl, ['-e', FORKER, String(process.pid)], { detached: true, env: {}, stdio: ['pipe', 'pipe', 'ignore'] });
    this.child = child;
    child.once('error', (err) => this.end(err));
    child.stdin.on('error', () => {}); // a forker that died: its pending runs fail when the pipe ends
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => this.read(d));
    child.stdout.once('end', () => this.end());
    // the report pipe stays referenced: it ends once the forker and every supervisor it
    // forked have closed it, and until then a run is waiting on it
    child.unref();
    child.stdin.write(frame(this.script));
    return child;
  }

  private read(d: string): void {
    this.buffered += d;
    let nl: number;
    while ((nl = this.buffered.indexOf('\n')) >= 0) {
      const line = this.buffered.slice(0, nl);
      this.buffered = this.buffered.slice(nl + 1);
      this.line(line);
    }
  }

  private line(line: string): void {
    // the two lines of a run come in either order: the supervisor can read its script and
    // start the child before the forker, descheduled, prints its own
    const m = /^(r[0-9a-z]+) (?:(supervisor )?(\d+)|! (.*))$/.exec(line);
    const p = m ? this.pending.get(m[1]!) : undefined;
    if (!m || !p) return;
    if (m[4] !== undefined) {
      this.pending.delete(m[1]!);
      p.reject(new Error(m[4]));
      return;
    }
    const pid = Number(m[3]);
    if (m[2]) {
      p.supervisorPid = pid;
      p.req.onSupervisor?.(pid);
    } else p.childPid = pid;
    if (p.supervisorPid !== undefined && p.childPid !== undefined) {
      this.pending.delete(m[1]!);
      p.resolve({ pid: p.childPid, supervisorPid: p.supervisorPid });
    }
  }

  private end(err?: Error): void {
    this.ended = true;
    for (const [id, p] of this.pending) p.reject(err ?? new Error(`supervisor of ${id} did not report its child's PID`));
    this.pending.clear();
  }
}
