/**
 * The one signal-escalation routine: TERM the process group, wait the grace, KILL, then sweep
 * descendants that escaped the group (found by AGENTCTL_RUN_ID in their environment), and
 * verify. Every signal is preceded by an identity check, and never reaches PID 1, agentctl
 * itself or its ancestors.
 */
import { getIdentity, readProcStat, sameIdentity, type ProcessIdentity } from './identity.js';
import { descendants, listDetailed, procPids, readProcFile } from './proc.js';

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
  return procPids()
    .filter((n) => `\0${readProcFile(`/proc/${n}/environ`) ?? ''}`.includes(needle))
    .map(Number);
}

/** Running members of a process group (Linux). */
export function groupMembers(pgid: number): number[] {
  // stat only: this runs every poll while a group winds down
  return procPids()
    .map(Number)
    .filter((pid) => {
      const st = readProcStat(pid);
      return st !== undefined && st.pgid === pgid && st.state !== 'Z';
    });
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

/**
 * End a process tree. When `id` leads its own process group (every agentctl run does), the
 * group is signalled; otherwise the process and its descendants, each identity-checked. Then
 * escaped descendants carrying the run id are swept, and everything is verified gone.
 */
export async function endTree(
  id: ProcessIdentity,
  opts: { runId?: string; graceMs: number; pollMs?: number; self?: number },
): Promise<EndResult> {
  const started = Date.now();
  const guard = protectedPids(opts.self);
  const poll = opts.pollMs ?? 50;
  const same = () => {
    const now = getIdentity(id.pid);
    return now !== undefined && sameIdentity(id, now);
  };
  const leader = readProcStat(id.pid)?.pgid === id.pid;
  const snapshot = (pids: number[]) => pids.filter((p) => !guard.has(p) && p !== id.pid).map((p) => getIdentity(p)).filter((x): x is ProcessIdentity => x !== undefined);
  const extra = () => {
    const pids = opts.runId ? findByRunId(opts.runId) : [];
    if (!leader && process.platform === 'linux') pids.push(...descendants(listDetailed(), id.pid));
    return snapshot([...new Set(pids)]);
  };
  const groupAlive = () => same() || (leader && process.platform === 'linux' && groupMembers(id.pid).length > 0);

  let graceful = false;
  let forced = false;
  const termSet = extra();
  if (guard.has(id.pid)) return { graceful: false, forced: false, swept: [], survivors: same() ? [id.pid] : [], durationMs: 0 };
  if (same()) signal(leader ? -id.pid : id.pid, 'SIGTERM');
  for (const e of termSet) if (isStill(e)) signal(e.pid, 'SIGTERM');

  const until = Date.now() + opts.graceMs;
  while (Date.now() < until && (groupAlive() || termSet.some(isStill))) await sleep(poll);
  if (!groupAlive() && !termSet.some(isStill)) graceful = true;

  if (!graceful) {
    forced = true;
    // the group id stays valid while any member lives, even after its leader exited
    if (leader && (same() || groupMembers(id.pid).length > 0)) signal(-id.pid, 'SIGKILL');
    else if (same()) signal(id.pid, 'SIGKILL');
    for (const e of termSet) if (isStill(e)) signal(e.pid, 'SIGKILL');
  }
  // sweep: anything carrying the run id (or below the process) that appeared meanwhile
  const late = extra();
  for (const e of late) if (isStill(e)) signal(e.pid, 'SIGKILL');
  const verifyUntil = Date.now() + 2_000;
  const all = [...termSet, ...late];
  while (Date.now() < verifyUntil && (groupAlive() || all.some(isStill))) await sleep(poll);
  const survivors = [...(same() ? [id.pid] : []), ...all.filter(isStill).map((e) => e.pid)];
  return { graceful, forced, swept: [...new Set(all.map((e) => e.pid))], survivors, durationMs: Date.now() - started };
}

function isStill(e: ProcessIdentity): boolean {
  const now = getIdentity(e.pid);
  return now !== undefined && sameIdentity(e, now);
}
