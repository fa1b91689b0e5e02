/**
 * The one signal-escalation routine: TERM the process group, wait the grace, KILL, then sweep
 * descendants that escaped the group (found by AGENTCTL_RUN_ID in their environment), and
 * verify. Every signal is preceded by an identity check, and never reaches PID 1, agentctl
 * itself or its ancestors.
 */
import { readdirSync } from 'node:fs';
import { getIdentity, readProcStat, sameIdentity, type ProcessIdentity } from './identity.js';
import { readProcFile } from './proc.js';

export interface EndResult {
  /** ended by TERM within the grace period */
  readonly graceful: boolean;
  /** had to be KILLed */
  readonly forced: boolean;
  /** escaped descendants signalled by the sweep */
  readonly swept: readonly number[];
  /** processes still alive afterwards (should be empty) */
  readonly survivors: readonly number[];
  readonly durationMs: number;
}

/** PIDs that must never be signalled: PID 1, ourselves and our ancestors. */
export function protectedPids(self = process.pid): Set<number> {
  const out = new Set<number>([0, 1, self]);
  let pid = self;
  for (let i = 0; i < 64; i++) {
    const st = readProcStat(pid);
    if (!st || st.ppid <= 1) break;
    out.add(st.ppid);
    pid = st.ppid;
  }
  return out;
}

/** Live processes whose environment carries AGENTCTL_RUN_ID=runId (Linux; readable ones only). */
export function findByRunId(runId: string): number[] {
  if (process.platform !== 'linux') return [];
  const needle = `\0AGENTCTL_RUN_ID=${runId}\0`;
  const out: number[] = [];
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const n of names) {
    const c = n.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    const env = readProcFile(`/proc/${n}/environ`);
    if (env && `\0${env}`.includes(needle)) out.push(Number(n));
  }
  return out;
}

/** Members of a process group (Linux). */
export function groupMembers(pgid: number): number[] {
  const out: number[] = [];
  for (const n of readdirSync('/proc')) {
    const c = n.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    const st = readProcStat(Number(n));
    if (st && st.pgid === pgid && st.state !== 'Z') out.push(st.pid);
  }
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function signal(pid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

/** Is `pid` alive and not a zombie? */
export function alive(pid: number): boolean {
  const st = readProcStat(pid);
  return st !== undefined && st.state !== 'Z' && st.state !== 'X';
}

/**
 * End a run's process tree. `id` is the run's main process identity (its group leader); it is
 * re-checked right before each signal to the group. Escaped descendants are found by run id,
 * and each is identity-checked (pid + start time read just before) before its signal.
 */
export async function endTree(
  id: ProcessIdentity,
  opts: { runId?: string; graceMs: number; pollMs?: number; self?: number },
): Promise<EndResult> {
  const started = Date.now();
  const guard = protectedPids(opts.self);
  const poll = opts.pollMs ?? 50;
  // a zombie leader keeps its identity until reaped, but it is no longer running
  const same = () => {
    const now = getIdentity(id.pid);
    return now !== undefined && sameIdentity(id, now) && alive(id.pid);
  };
  const escaped = () => (opts.runId ? findByRunId(opts.runId).filter((p) => !guard.has(p)) : []);
  const groupAlive = () => same() || (process.platform === 'linux' && groupMembers(id.pid).length > 0);

  let graceful = false;
  let forced = false;
  // snapshot the escaped set with identities now, so the sweep signals exactly these processes
  const snapshot = (pids: number[]) => pids.map((p) => getIdentity(p)).filter((x): x is ProcessIdentity => x !== undefined);
  const termEscaped = snapshot(escaped());

  if (!guard.has(id.pid) && same()) signal(-id.pid, 'SIGTERM');
  for (const e of termEscaped) if (isStill(e)) signal(e.pid, 'SIGTERM');

  const until = Date.now() + opts.graceMs;
  while (Date.now() < until && (groupAlive() || termEscaped.some(isStill))) await sleep(poll);
  if (!groupAlive() && !termEscaped.some(isStill)) graceful = true;

  if (!graceful) {
    forced = true;
    // The group leader may be gone while members remain: the group id stays valid while any member lives.
    if (!guard.has(id.pid) && (same() || groupMembers(id.pid).length > 0)) signal(-id.pid, 'SIGKILL');
    for (const e of termEscaped) if (isStill(e)) signal(e.pid, 'SIGKILL');
  }
  // sweep: anything carrying the run id that appeared meanwhile
  const late = snapshot(escaped());
  for (const e of late) if (isStill(e)) signal(e.pid, 'SIGKILL');
  const verifyUntil = Date.now() + 2_000;
  const all = [...termEscaped, ...late];
  while (Date.now() < verifyUntil && (groupAlive() || all.some(isStill))) await sleep(poll);
  const survivors = [...(same() ? [id.pid] : []), ...all.filter(isStill).map((e) => e.pid)];
  return { graceful, forced, swept: [...new Set(all.map((e) => e.pid))], survivors, durationMs: Date.now() - started };
}

function isStill(e: ProcessIdentity): boolean {
  const now = getIdentity(e.pid);
  return now !== undefined && sameIdentity(e, now) && alive(e.pid);
}
