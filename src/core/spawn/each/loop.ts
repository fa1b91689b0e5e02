/**
 * The batch's one admission loop (`spawn --each`): each job asks through the same attempt()
 * transaction as every spawn (breaker, backoff, caps, the host's queue), so concurrency is
 * whatever slots admission gives, and other commands see the batch's runs and count them.
 * Between starts it keeps the throttle level's `delay_ms`, and at most the level's
 * `batch_size` of its jobs run at once; the host is sampled again (in the background) at most
 * once a second, so a level change holds for the next start. With no slot it waits for the
 * slot bell, one of its own jobs ending, or the same poll as `--wait`.
 */
import { BellListener, bellPath } from '../../bell.js';
import { getIdentity } from '../../identity.js';
import { attempt } from '../attempt.js';
import type { SpawnDeps, SpawnRequest } from '../deps.js';
import type { LimitMechanism } from '../launch.js';
import { leaveQueue } from '../record.js';
import { type HostSample, pollDelay, sampleHost } from '../wait.js';
import { jobArgv } from './argv.js';
import type { Joblog } from './joblog.js';
import { type JobEnd, type LiveJob, flushOutput, startJob, stopJob } from './job.js';
import type { JobLine } from './input.js';
import { signalNumber } from '../../runs/end.js';

/** A batch asks again at least this often, whatever it waits for. */
const LONGEST_PAUSE_MS = 1000;
const HOST_RESAMPLE_MS = 1000;
const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
export type StopSignal = (typeof STOP_SIGNALS)[number];

export interface EachRequest {
  /** what every job's run is asked with; name and command are the job's */
  readonly base: Omit<SpawnRequest, 'name' | 'command'>;
  /** job k is named `${prefix}-${k}` */
  readonly prefix: string;
  readonly lines: readonly JobLine[];
  readonly retries: number;
  readonly haltOnFailure: number | undefined;
  readonly argvPrefix: readonly string[];
  readonly mechanism: LimitMechanism;
  /** a private folder for the jobs' output until they end */
  readonly outDir: string;
  readonly joblog: Joblog | undefined;
  readonly out: NodeJS.WritableStream;
  readonly err: NodeJS.WritableStream;
  /** a diagnostic line (a retry, a refusal) */
  readonly note: (line: string) => void;
}

export type JobOutcome = 'succeeded' | 'failed' | 'refused' | 'stopped' | 'not_started';

export interface JobResult {
  readonly seq: number;
  readonly line: number;
  readonly name: string;
  readonly command: string;
  outcome: JobOutcome;
  attempts: number;
  runIds: string[];
  last: JobEnd | undefined;
  message: string | undefined;
  notBefore: number;
  /** what it runs as (argv.ts), settled at its first attempt */
  argv?: string[] | undefined;
}

export interface BatchRun {
  readonly jobs: readonly JobResult[];
  readonly startedAt: number;
  readonly endedAt: number;
  readonly halted: boolean;
  readonly stoppedBy: StopSignal | undefined;
}

export class Batch {
  private readonly jobs: JobResult[];
  private pending: JobResult[];
  private readonly live = new Map<string, { job: JobResult; live: LiveJob }>();
  private host!: HostSample;
  private sampling = false;
  private queueId: number | undefined;
  private lastStart = Number.NEGATIVE_INFINITY;
  private failures = 0;
  private halted = false;
  private stoppedBy: StopSignal | undefined;
  private wakeNow: (() => void) | undefined;
  private readonly self = getIdentity(process.pid) ?? { pid: process.pid, startTime: '0', bootId: 'unknown' };
  private bell: BellListener | undefined;

  constructor(
    private readonly deps: SpawnDeps,
    private readonly req: EachRequest,
  ) {
    this.jobs = req.lines.map((l, i) => ({
      seq: i + 1,
      line: l.line,
      name: `${req.prefix}-${i + 1}`,
      command: l.command,
      outcome: 'not_started',
      attempts: 0,
      runIds: [],
      last: undefined,
      message: undefined,
      notBefore: 0,
    }));
    this.pending = [...this.jobs];
  }

  async run(): Promise<BatchRun> {
    const startedAt = this.deps.now();
    const handlers = STOP_SIGNALS.map((s) => [s, () => this.stop(s)] as const);
    for (const [s, h] of handlers) process.on(s, h);
    this.bell = new BellListener(bellPath(this.deps.state));
    try {
      this.host = await sampleHost(this.deps);
      while (this.stoppedBy === undefined && ((this.pending.length && !this.halted) || this.live.size)) {
        const ms = this.pending.length && !this.halted ? this.tryStart() : LONGEST_PAUSE_MS;
        if (ms > 0) await this.pause(ms);
      }
      if (this.stoppedBy !== undefined) await this.stopAll();
    } finally {
      leaveQueue(this.deps.state, this.queueId);
      // a job that failed and waited for its retry when the batch ended failed
      for (const j of this.pending) if (j.attempts > 0) j.outcome = 'failed';
      this.bell.close();
      for (const [s, h] of handlers) process.removeListener(s, h);
    }
    return { jobs: this.jobs, startedAt, endedAt: this.deps.now(), halted: this.halted, stoppedBy: this.stoppedBy };
  }

  private stop(sig: StopSignal): void {
    this.stoppedBy ??= sig;
    this.wakeNow?.();
  }

  /** Ask for the next job's slot and start it; the pause before asking again (0: at once). */
  private tryStart(): number {
    const { deps } = this;
    this.resample();
    const now = deps.now();
    const t = deps.config.config.throttle;
    const level = this.host.throttle.level;
    if (this.live.size >= (t.batchSize[level] ?? Number.POSITIVE_INFINITY)) return LONGEST_PAUSE_MS; // a job's end wakes us
    const delay = t.delayMs[level] ?? 0;
    if (now - this.lastStart < delay) return delay - (now - this.lastStart);
    const job = this.pending.find((j) => j.notBefore <= now);
    if (!job) return Math.min(LONGEST_PAUSE_MS, Math.max(5, Math.min(...this.pending.map((j) => j.notBefore)) - now));
    const argv = (job.argv ??= jobArgv(job.command, this.deps.env.PATH));
    const req: SpawnRequest = { ...this.req.base, name: job.name, command: argv };
    const a = attempt(deps, {
      req,
      throttle: this.host.throttle,
      agents: this.host.agents,
      self: this.self,
      queueId: this.queueId,
      waiting: true,
      listening: new Set(),
      mechanism: this.req.mechanism,
      command: deps.command,
    });
    const d = a.decision;
    this.queueId = d.admit ? undefined : a.queueId;
    if (d.admit) {
      this.launch(job, a.runId!, argv);
      return 0;
    }
    if (d.reason === 'no_slot') return pollDelay(a.ahead, d.slot?.limit, Math.random, this.bell?.watching === true);
    if (d.retryAt !== undefined && d.exitCode === 75) {
      // its name's backoff or cooldown, or the host's rate limit: other jobs go first meanwhile
      job.notBefore = d.retryAt;
      return 0;
    }
    // refused for good (breaker open, a dependency, its name already running): the job fails
    this.req.note(`agentctl: ${job.name} not started: ${d.message}`);
    this.pending = this.pending.filter((j) => j !== job);
    job.outcome = 'refused';
    job.message = d.message;
    this.failed();
    return 0;
  }

  private launch(job: JobResult, runId: string, argv: readonly string[]): void {
    const { base } = this.req;
    this.pending = this.pending.filter((j) => j !== job);
    job.attempts++;
    job.runIds.push(runId);
    this.lastStart = this.deps.now();
    const spec = {
      seq: job.seq,
      attempt: job.attempts,
      name: job.name,
      group: base.group,
      command: job.command,
      argv: [...this.req.argvPrefix, ...argv],
      cwd: base.cwd,
      runId,
      timeoutMs: base.timeoutMs,
      killGraceMs: base.killGraceMs,
    };
    const live = startJob(this.deps, this.req.outDir, spec, (e) => this.ended(job, e));
    if (live) this.live.set(runId, { job, live });
    else this.live.set(runId, { job, live: { runId, pid: 0, id: undefined, startedAt: this.lastStart, timer: undefined, recordRunning: () => undefined } });
  }

  /** A job's attempt ended (recorded): print its output, retry it, or settle it. */
  private ended(job: JobResult, e: JobEnd): void {
    this.live.delete(e.runId);
    job.last = e;
    flushOutput(this.req.outDir, { seq: job.seq, attempt: job.attempts }, this.req.out, this.req.err);
    const ok = e.exitCode === 0 && e.signal === null && e.state === 'exited';
    if (ok) job.outcome = 'succeeded';
    else if (e.state === 'stopped' || this.stoppedBy !== undefined) job.outcome = 'stopped';
    else if (job.attempts <= this.req.retries && !this.halted) {
      this.req.note(`agentctl: ${job.name} failed (${how(e)}); retry ${job.attempts} of ${this.req.retries}, through admission (its name's backoff applies)`);
      this.pending.unshift(job);
      this.wakeNow?.();
      return;
    } else job.outcome = 'failed';
    if (job.outcome !== 'succeeded' && job.outcome !== 'stopped') this.failed();
    this.req.joblog?.add({
      seq: job.seq,
      startedAt: e.startedAt,
      runtimeMs: e.endedAt - e.startedAt,
      exitCode: e.exitCode,
      signal: e.signal ? (signalNumber(e.signal) ?? 0) : 0,
      command: job.command,
    });
    this.wakeNow?.();
  }

  private failed(): void {
    this.failures++;
    if (this.req.haltOnFailure !== undefined && this.failures >= this.req.haltOnFailure && !this.halted) {
      this.halted = true;
      this.req.note(`agentctl: ${this.failures} failed job${this.failures === 1 ? '' : 's'} (--halt-on-failure ${this.req.haltOnFailure}): starting no more; ${this.live.size} running to finish`);
    }
  }

  /** Sample the host again when the last sample is old, without holding up a start. */
  private resample(): void {
    if (this.sampling || this.deps.now() - this.host.at <= HOST_RESAMPLE_MS) return;
    this.sampling = true;
    sampleHost(this.deps)
      .then((h) => (this.host = h))
      .catch(() => undefined) // keep the last sample
      .finally(() => (this.sampling = false));
  }

  /** Wait `ms`, or less: the slot bell, one of our jobs ending, or a stop signal. */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        if (this.wakeNow !== done) return;
        this.wakeNow = undefined;
        this.bell?.poke(); // ends the bell's own wait (and its timer, which would hold the process up)
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakeNow = done;
      void this.bell?.wait(ms).then(done);
    });
  }

  /** Ctrl-C or TERM: start no more, end the running jobs by the stop routine, wait for their records. */
  private async stopAll(): Promise<void> {
    const why = `the batch was stopped (${this.stoppedBy})`;
    for (const { live } of this.live.values()) live.recordRunning();
    await Promise.all([...this.live.values()].map(({ live }) => stopJob(this.deps, live.runId, this.req.base.killGraceMs, { timedOut: false, why })));
    const until = this.deps.now() + 5_000;
    while (this.live.size && this.deps.now() < until) await this.pause(50);
  }
}

export const how = (e: Pick<JobEnd, 'exitCode' | 'signal'>) => (e.signal ? `ended by ${e.signal}` : `exit ${e.exitCode}`);
