/**
 * What counts as an orphaned agent, for `reap --orphans`. Every systemd service and every
 * daemon has PID 1 for a parent, so "parent is 1 and the command line matches" would end an MCP
 * server run as a system service. An agent is an orphan only when we can show it lost a parent
 * that was an agent's or orchestrator's:
 *
 * 1. it carries AGENTCTL_RUN_ID of a run this state recorded and that has ended: agentctl
 *    started its tree. One that carries a live run's id belongs to that run, and `stop` ends
 *    it with the run; one whose id this state does not know (another state folder's run) is
 *    judged by rule 2 like any other;
 * 2. otherwise it must still look like something a session left behind: not in a systemd
 *    service unit of its own (a unit belongs to its manager), and not the leader of its own
 *    session (daemons and services call setsid; a process whose starter died keeps the
 *    session it was started in).
 *
 * Pure: the facts come in, the verdict and its reason go out.
 */

export interface OrphanFacts {
  readonly pid: number;
  readonly ppid: number;
  /** session id (/proc/PID/stat field 6) */
  readonly sid: number | undefined;
  /** AGENTCTL_RUN_ID from its environment, when readable and present */
  readonly runId: string | undefined;
  /** /proc/PID/cgroup text, when readable */
  readonly cgroup: string | undefined;
}

export type OrphanVerdict = { readonly orphan: true; readonly why: string } | { readonly orphan: false; readonly why: string };

/** The systemd unit a cgroup file names (the last path segment ending .service), if any. */
export function serviceUnit(cgroup: string | undefined): string | undefined {
  if (!cgroup) return undefined;
  for (const line of cgroup.split('\n')) {
    // cgroup v2 "0::/path", or v1's systemd hierarchy "N:name=systemd:/path"
    const m = /^\d+:(?:name=systemd)?:(.*)$/.exec(line.trim());
    if (!m || !m[1]) continue;
    const last = m[1].split('/').filter(Boolean).pop();
    if (last?.endsWith('.service')) return last;
  }
  return undefined;
}

export function orphanVerdict(f: OrphanFacts, ctx: { readonly runState: (runId: string) => 'live' | 'ended' | 'unknown'; readonly ownCgroup: string | undefined }): OrphanVerdict {
  if (f.ppid !== 1) return { orphan: false, why: 'its parent lives' };
  const run = f.runId !== undefined ? ctx.runState(f.runId) : 'unknown';
  if (run === 'live') return { orphan: false, why: `belongs to live run ${f.runId}; stop that run to end it` };
  if (run === 'ended') return { orphan: true, why: `left behind by run ${f.runId}, which has ended` };
  const unit = serviceUnit(f.cgroup);
  if (unit !== undefined && unit !== serviceUnit(ctx.ownCgroup)) return { orphan: false, why: `runs in service unit ${unit}` };
  if (f.sid === f.pid) return { orphan: false, why: 'leads its own session, as daemons and services do' };
  if (f.sid === undefined) return { orphan: false, why: 'its session cannot be read' };
  return { orphan: true, why: `lost its parent and nothing registered it (session ${f.sid})` };
}
