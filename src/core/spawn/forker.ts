/**
 * One small Perl process that forks the /bin/sh supervisors of many detached runs, for a
 * command that starts several at once (`up`). Node's spawn forks the whole agentctl process
 * (about 60 MB) and blocks until the exec: 2-4 ms a supervisor, on the main thread. Perl forks
 * itself (a few MB) and can name the program it execs (`exec {'/bin/sh'} 'agentctl-supervise'`),
 * which /bin/sh cannot: a supervisor's command line must stay `agentctl-supervise -s RUN_ID`
 * (proc.ts). Perl ships with every Debian and Ubuntu (perl-base is essential); where it is not
 * found, each supervisor is spawned from Node as before (launch.ts).
 *
 * What it does for each request, in the forked child before the exec: its own session and
 * group (setsid), the run's folder, the run's environment (and nothing of the forker's), the
 * script on stdin through a pipe, the log as stdout and stderr, and the report pipe as fd 3.
 * - The log is opened by agentctl (openLogForAppend: no link, a plain file of ours) and held
 *   open until the child's PID is known; the forker opens that same file through
 *   /proc/<agentctl's pid>/fd/<n>, which names the open file, not a path someone could swap,
 *   and checks its device and inode against agentctl's.
 * - The report pipe goes back to agentctl; lines are shorter than PIPE_BUF, so they never
 *   interleave. The supervisor's own line (`RUN_ID CHILD_PID SUPERVISOR_PID`, launch.ts)
 *   settles the start; the forker's lines (FORKER) name the supervisor earlier, or say why
 *   there is none.
 *
 * Between the fork and agentctl reading the forker's line, the run's row still names the
 * spawner as its starter. A spawner killed in those milliseconds leaves the run `starting`;
 * reconcile waits while a supervisor whose command line names the run is alive, then adopts
 * the child from it (runs/reconcile.ts).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, fstatSync } from 'node:fs';

export interface DetachedStart {
  readonly pid: number;
  readonly supervisorPid: number;
}

/**
 * The forker, run as `perl -e FORKER <agentctl's pid> <setsid syscall number> <supervisor
 * program>`. Its first message is the supervisor script (empty for the compiled supervisor);
 * each next one a request: run id, folder, agentctl's fd of the log, the log's dev:ino, then
 * the environment as K=V, NUL-separated. Each message is its byte length on a line, then the
 * bytes.
 * - Fds: it starts with 0 (requests), 1 (the report pipe) and 2 (errors, to agentctl) only,
 *   so a request's pipe and log take 3, 4 and 5, and in the child, once the pipe's ends are
 *   closed, the duplicate of the report pipe takes 3: `dup` gives the lowest free number.
 *   `$^F = 3` keeps that fd open across the exec (perl marks higher fds close-on-exec).
 * - The child calls setsid(2) through `syscall` (POSIX.pm would cost 10 ms to load): it leads
 *   its own session and group, as a supervisor spawned from Node does.
 * - It reaps its children and reports a supervisor that ends (`RUN_ID exited STATUS`): one
 *   that dies before it reports its child must fail that start at once, not when the pipe ends
 *   (which needs this process to end, which needs agentctl to be done asking).
 * - SIGPIPE is ignored (the child takes the default back): a child that failed holds the only
 *   read end of its script pipe, and writing the script must not end the forker.
 * - Lines: `ready` once it runs; `RUN_ID supervisor PID` after a fork; `RUN_ID - why` when it
 *   did not fork, and `RUN_ID ! why` from a child that failed before the exec: in both cases
 *   nothing of the run's runs, and the caller may start the supervisor another way. Error
 *   text has its control characters replaced: a folder named with a newline must not forge
 *   another run's line.
 */
export const FORKER = String.raw`$0 = 'agentctl-forker';
$| = 1;
my ($node, $setsid, $prog) = @ARGV;
binmode STDIN;
binmode STDOUT;
$SIG{PIPE} = 'IGNORE';
my (%sup, %exited);
$SIG{CHLD} = sub {
  local ($!, $?);
  while ((my $p = waitpid(-1, 1)) > 0) {
    my $id = delete $sup{$p};
    if (defined $id) { print "$id exited $?\n"; } else { $exited{$p} = $?; }
  }
};
sub clean { my $s = shift; $s =~ s/[\x00-\x1f\x7f]/?/g; return $s; }
sub msg {
  my $len = <STDIN>;
  return undef unless defined $len && $len =~ /^(\d+)\n\z/;
  my ($want, $buf) = ($1, '');
  while (length($buf) < $want) { read(STDIN, $buf, $want - length($buf), length($buf)) or return undef; }
  return $buf;
}
my $script = msg();
exit 0 unless defined $script;
print "ready\n";
while (defined(my $m = msg())) {
  my ($id, $cwd, $logfd, $logid, @env) = split /\0/, $m, -1;
  next unless defined $logid && $id =~ /^r[0-9a-z]+\z/ && $logfd =~ /^\d+\z/;
  my ($r, $w, $log);
  unless (pipe($r, $w)) { print "$id - pipe: " . clean("$!") . "\n"; next; }
  unless (open($log, '>>', "/proc/$node/fd/$logfd")) { print "$id - log: " . clean("$!") . "\n"; close $r; close $w; next; }
  my @st = stat($log);
  unless (@st && "$st[0]:$st[1]" eq $logid) { print "$id - log: not the file agentctl opened\n"; close $r; close $w; close $log; next; }
  my $pid = fork();
  unless (defined $pid) { print "$id - fork: " . clean("$!") . "\n"; close $r; close $w; close $log; next; }
  if ($pid == 0) {
    $SIG{CHLD} = 'DEFAULT';
    $SIG{PIPE} = 'DEFAULT';
    my $out = \*STDOUT;
    my $fail = sub { syswrite($out, "$id ! " . clean($_[0]) . "\n"); CORE::exit(127); };
    $^F = 3;
    syscall($setsid) == $$ or $fail->("setsid: $!");
    chdir($cwd) or $fail->("cd $cwd: $!");
    close $w;
    open(STDIN, '<&', $r) or $fail->("stdin: $!");
    close $r;
    open(my $rep, '>&', \*STDOUT) or $fail->("dup: $!");
    fileno($rep) == 3 or $fail->('the report pipe is not fd 3');
    $out = $rep;
    open(STDOUT, '>&', $log) or $fail->("log: $!");
    open(STDERR, '>&', $log) or $fail->("log: $!");
    close $log;
    %ENV = ();
    for (@env) { my ($k, $v) = split /=/, $_, 2; $ENV{$k} = $v; }
    exec { $prog } 'agentctl-supervise', '-s', $id;
    $fail->("exec $prog: " . clean("$!"));
  }
  $sup{$pid} = $id;
  if (exists $exited{$pid}) { print "$id exited " . delete($exited{$pid}) . "\n"; delete $sup{$pid}; }
  close $r;
  close $log;
  print {$w} $script;
  close $w;
  print "$id supervisor $pid\n";
}
`;

/** setsid(2)'s number per Node architecture (Linux); elsewhere there is no forker. */
const SETSID: Readonly<Record<string, number>> = { x64: 112, arm64: 157, riscv64: 157, loong64: 157, ia32: 66, arm: 66, ppc64: 66, s390x: 66 };

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

/** The forker did not start this run's supervisor: nothing of it runs, and it may be started another way. */
export class NotForked extends Error {}

/**
 * The supervisor ended, or stopped answering, before it reported its child: it may have
 * started it (it starts the child, writes runs/RUN_ID.child, then reports). The run is left to
 * reconcile, which adopts a child it finds and closes the run as lost otherwise.
 */
export class UnsureStart extends Error {}

interface Pending {
  readonly req: LaunchRequest;
  supervisorPid?: number;
  resolve(v: DetachedStart): void;
  reject(err: Error): void;
}

const frame = (s: string): Buffer => {
  const body = Buffer.from(s);
  return Buffer.concat([Buffer.from(`${body.length}\n`), body]);
};

/** A forker for this process's burst of starts. `close()` once the last is asked for. */
export class Forker {
  private child: ChildProcess | undefined;
  private readonly pending = new Map<string, Pending>();
  private ended = false;
  private closed = false;
  /** it said it runs: a forker that never did (a perl that does not run) started nothing */
  private ready = false;
  private buffered = '';
  private errors = '';
  /** starts it has carried out (their supervisors reported a child) */
  count = 0;

  private constructor(
    readonly perl: string,
    private readonly setsid: number,
    private readonly script: string,
    private readonly program: string,
  ) {}

  /**
   * A forker, or undefined where there is no Perl or no known setsid(2) (the caller spawns each
   * supervisor itself). It execs `program` as the supervisor, with `script` on its stdin: /bin/sh
   * and the script, or the compiled supervisor (native.ts) and nothing.
   */
  static find(script: string, candidates: readonly string[] = PERL, program = '/bin/sh'): Forker | undefined {
    const perl = candidates.find((p) => existsSync(p));
    const setsid = SETSID[process.arch];
    return perl && setsid !== undefined && process.platform === 'linux' ? new Forker(perl, setsid, script, program) : undefined;
  }

  /** Start one supervisor; resolves once its child's PID is known. Rejects with NotForked when nothing was started. */
  start(req: LaunchRequest): Promise<DetachedStart> {
    if (this.ended || this.closed) return Promise.reject(new NotForked('the forker has ended'));
    let logId: string;
    try {
      // bigint: an inode number past 2^53 (hashed by some file systems) must compare exactly with Perl's
      const st = fstatSync(req.logFd, { bigint: true });
      logId = `${st.dev}:${st.ino}`;
    } catch (err) {
      return Promise.reject(new NotForked(`log: ${(err as Error).message}`));
    }
    const child = this.open();
    return new Promise((resolve, reject) => {
      this.pending.set(req.runId, { req, resolve, reject });
      const env = Object.entries(req.env)
        .filter((e): e is [string, string] => e[1] !== undefined && !e[0].includes('=') && !e[0].includes('\0') && !e[1].includes('\0'))
        .map(([k, v]) => `${k}=${v}`);
      child.stdin!.write(frame([req.runId, req.cwd, String(req.logFd), logId, ...env].join('\0')));
    });
  }

  /** No more requests: the forker ends once it has forked the ones it has. */
  close(): void {
    this.closed = true;
    this.child?.stdin?.end();
  }

  private open(): ChildProcess {
    if (this.child) return this.child;
    // an empty environment: PERL5OPT or PERL5LIB in the caller's would load code into it, and
    // each supervisor is given its whole environment in its request
    const child = spawn(this.perl, ['-e', FORKER, String(process.pid), String(this.setsid), this.program], { detached: true, env: {}, stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
    child.once('error', (err) => this.end(err));
    child.stdin.on('error', () => {}); // a forker that died: its pending runs fail when the pipe ends
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => (this.errors = (this.errors + d).slice(0, 2000)));
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

  /**
   * The lines of a run come in any order: the supervisor can read its script and report its
   * child before the forker, descheduled, prints its own line, or it can end first. The
   * supervisor's own line (`RUN_ID CHILD_PID SUPERVISOR_PID`) settles the start by itself, so a
   * forker that dies after the fork loses nothing that runs.
   */
  private line(line: string): void {
    if (line === 'ready') {
      this.ready = true;
      return;
    }
    const m = /^(r[0-9a-z]+) (?:supervisor (\d+)|(\d+) (\d+)|exited (\d+)|([-!]) (.*))$/.exec(line);
    const id = m?.[1];
    const p = id !== undefined ? this.pending.get(id) : undefined;
    if (!m || !p) return;
    if (m[2] !== undefined) return this.supervisor(p, Number(m[2]));
    if (m[3] !== undefined) {
      this.supervisor(p, Number(m[4]));
      if (!this.pending.delete(id!)) return;
      this.count++;
      p.resolve({ pid: Number(m[3]), supervisorPid: Number(m[4]) });
      return;
    }
    this.pending.delete(id!);
    if (m[5] !== undefined) p.reject(new UnsureStart(`its supervisor ended (wait status ${m[5]}) before it reported the child`));
    else p.reject(new NotForked(m[7]));
  }

  /**
   * The supervisor's PID, known: recorded once. A failure to record it (the state locked past
   * its busy timeout) does not fail the start: the supervisor runs and starts the child either
   * way, and the running row, written once the child is known, records it too.
   */
  private supervisor(p: Pending, pid: number): void {
    if (p.supervisorPid !== undefined) return;
    p.supervisorPid = pid;
    try {
      p.req.onSupervisor?.(pid);
    } catch {
      /* recorded with the child */
    }
  }

  private end(err?: Error): void {
    this.ended = true;
    const why = this.errors.trim().split('\n')[0];
    for (const [id, p] of this.pending) {
      // a forker that never ran (a perl that does not run) started nothing: the caller may start it another way
      if (!this.ready) p.reject(new NotForked(`the forker ended${err ? `: ${err.message}` : why ? `: ${why}` : ''}`));
      else p.reject(new UnsureStart(`supervisor of ${id} did not report its child's PID`));
    }
    this.pending.clear();
  }
}
