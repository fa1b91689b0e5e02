/**
 * doctor's checks of ports and environments: the port pool, doubled listeners, and
 * environments that outlived their TTL, lost their worktree, or were created half-way.
 */
import { existsSync } from 'node:fs';
import { type CheckEntry, skip, type Status } from './check.js';
import { allEnvs, envLeaseState, gcReason, halfCreated, orphanWorktrees, worktreeParent } from '../envs.js';
import { listenerCounts } from '../ports/leases.js';
import { poolUsage } from '../ports/pool.js';
import { formatPct } from '../units.js';

export const portEnvChecks: readonly CheckEntry[] = [
  {
    id: 'ports.pool',
    group: 'ports',
    title: 'port pool use',
    run: (f, t) => {
      if (!f.state || !f.config) return skip(f.stateError ?? f.configError ?? 'no state');
      const u = poolUsage(f.state, f.config.config.ports, envLeaseState(f.state, f.now));
      const expired = u.expired + u.ownerDead;
      const use = (u.leases.length / u.size) * 100;
      const size = u.size;
      const rows = u.leases;
      const s: Status = use >= 100 ? 'fail' : use >= t.poolWarn || expired > 0 ? 'warn' : 'ok';
      return {
        status: s,
        value: `${rows.length} of ${size} leased (${formatPct(use)}), ${expired} held by expired or dead owners`,
        threshold: `warn >= ${t.poolWarn}% or any expired lease, fail at 100%`,
        remedy: s === 'ok' ? '' : expired ? 'agentctl env-gc' : 'agentctl ports',
        metric: use,
      };
    },
  },
  {
    id: 'ports.double_listeners',
    group: 'ports',
    title: 'two listeners on one port',
    run: () => {
      const doubled = [...listenerCounts().entries()]
        .filter(([, n]) => n > 1)
        .map(([p]) => p)
        .sort((a, b) => a - b);
      const s: Status = doubled.length ? 'warn' : 'ok';
      return {
        status: s,
        value: doubled.length ? `ports ${doubled.join(', ')}` : 'none',
        threshold: 'one listening socket per port and address family',
        remedy: s === 'ok' ? '' : `ss -ltnp 'sport = :${doubled[0]}'`,
        metric: doubled.length,
      };
    },
  },
  {
    id: 'envs.expired',
    group: 'ports',
    title: 'environments past TTL or orphaned',
    run: (f) => {
      if (!f.state) return skip(f.stateError ?? 'no state');
      // half-created ones have their own check
      const bad = allEnvs(f.state).filter((e) => e.status !== 'creating' && gcReason(e, f.now) !== undefined);
      const s: Status = bad.length ? 'warn' : 'ok';
      return {
        status: s,
        value: bad.length
          ? `${bad.length}: ${bad
              .slice(0, 5)
              .map((e) => e.name)
              .join(', ')}`
          : 'none',
        threshold: 'none',
        remedy: s === 'ok' ? '' : 'agentctl env-gc --dry-run',
        metric: bad.length,
      };
    },
  },
  {
    id: 'envs.worktrees',
    group: 'ports',
    title: 'stale worktrees',
    run: (f) => {
      if (!f.state) return skip(f.stateError ?? 'no state');
      const byRepo = new Map<string, Set<string>>();
      for (const e of allEnvs(f.state)) if (e.repo && e.worktree) (byRepo.get(e.repo) ?? byRepo.set(e.repo, new Set()).get(e.repo)!).add(worktreeParent(e.worktree));
      const orphans = [...byRepo].flatMap(([repo, parents]) => orphanWorktrees(repo, parents));
      // a finished environment whose worktree folder is gone (removed by hand): its row and ports linger
      const missing = allEnvs(f.state).filter((e) => e.status !== 'creating' && e.worktree !== null && !existsSync(e.worktree));
      const found = [...orphans, ...missing.map((e) => `env ${e.name}: worktree ${e.worktree} is missing`)];
      const s: Status = found.length ? 'warn' : 'ok';
      const remedy = s === 'ok' ? '' : orphans.length ? 'agentctl env-gc (then remove the folders listed)' : `agentctl env rm ${missing[0]!.name}`;
      return { status: s, value: found.length ? found.join(', ') : 'none', threshold: 'no worktree folder git does not know, no environment without its worktree', remedy, metric: found.length };
    },
  },
  {
    id: 'envs.half_created',
    group: 'ports',
    title: 'half-created environments',
    run: (f) => {
      if (!f.state) return skip(f.stateError ?? 'no state');
      // env create records its intent first; a 'creating' row whose creator is gone was killed half-way
      const half = allEnvs(f.state).filter(halfCreated);
      const s: Status = half.length ? 'warn' : 'ok';
      const what = (e: (typeof half)[number]) =>
        `${e.name} (env create PID ${e.creator_pid} ended${e.worktree ? `; worktree ${e.worktree} ${existsSync(e.worktree) ? 'exists' : 'was not made'}` : ''})`;
      return {
        status: s,
        value: half.length ? `${half.length}: ${half.slice(0, 5).map(what).join(', ')}` : 'none',
        threshold: 'none',
        remedy: s === 'ok' ? '' : 'agentctl env-gc',
        metric: half.length,
      };
    },
  },
];
