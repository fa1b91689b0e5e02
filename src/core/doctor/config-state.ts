/**
 * doctor's checks of the configuration and the state: the config loads, live runs use it,
 * which supervisor detached runs get, the state database is sound, and its folder has disk
 * to spare.
 */
import { existsSync, statfsSync } from 'node:fs';
import { type CheckEntry, live, ok, skip, type Status } from './check.js';
import { supervisorInUse } from '../native.js';
import { shellWord } from '../text.js';
import { formatBytes } from '../units.js';

export const configStateChecks: readonly CheckEntry[] = [
  {
    id: 'config.valid',
    group: 'config',
    title: 'configuration',
    run: (f) =>
      f.configError
        ? { status: 'fail', value: f.configError, threshold: 'valid', remedy: 'agentctl config', metric: 0 }
        : ok(`valid (${f.config!.files.length ? f.config!.files.join(', ') : 'built-in defaults'})`, 'valid', 1),
  },
  {
    id: 'config.drift',
    group: 'config',
    title: 'runs started under an older config',
    run: (f) => {
      if (!f.state || !f.config) return skip(f.stateError ?? f.configError ?? 'no state');
      const old = live(f).filter((r) => r.config_hash !== null && r.config_hash !== f.config!.hash);
      const s: Status = old.length ? 'warn' : 'ok';
      return {
        status: s,
        value: old.length ? `${old.length}: ${old.map((r) => r.name).join(', ')}` : 'none',
        threshold: 'every live run on the current config',
        remedy: s === 'ok' ? '' : `agentctl stop ${shellWord(old[0]!.name)} (and start it again)`,
        metric: old.length,
      };
    },
  },
  {
    id: 'config.supervisor',
    group: 'config',
    title: "detached runs' supervisor",
    // the shell is a working fallback, not a fault: about 8 ms of CPU a start instead of 1, and
    // 1.7 MB instead of 0.75 while it waits
    run: (f) => {
      const s = supervisorInUse(f.env);
      return ok(s.value, 'compiled, else the /bin/sh script', s.compiled ? 1 : 0);
    },
  },
  {
    id: 'state.integrity',
    group: 'state',
    title: 'state database',
    run: (f) => {
      if (!f.state) return { status: 'fail', value: f.stateError ?? 'cannot open', threshold: 'quick_check ok', remedy: 'move the state file aside (see the message) and run again', metric: 0 };
      const res = f.state.quickCheck();
      const good = res.length === 1 && res[0] === 'ok';
      return good
        ? ok('quick_check ok', 'quick_check ok', 1)
        : { status: 'fail', value: res.slice(0, 3).join('; '), threshold: 'quick_check ok', remedy: `mv ${shellWord(f.state.paths.db)} ${shellWord(`${f.state.paths.db}.bad`)}`, metric: 0 };
    },
  },
  {
    id: 'state.disk',
    group: 'state',
    title: 'free disk in the state folder',
    run: (f, t) => {
      try {
        const st = statfsSync(existsSync(f.stateDir) ? f.stateDir : '/');
        const free = st.bavail * st.bsize;
        const s: Status = free < t.diskFailBytes ? 'fail' : free < t.diskWarnBytes ? 'warn' : 'ok';
        return {
          status: s,
          value: formatBytes(free),
          threshold: `warn < ${formatBytes(t.diskWarnBytes)}, fail < ${formatBytes(t.diskFailBytes)}`,
          remedy: s === 'ok' ? '' : `du -sh ${shellWord(`${f.stateDir}/logs`)}`,
          metric: free,
        };
      } catch (err) {
        return { status: 'warn', value: (err as Error).message, threshold: '-', remedy: '', metric: null };
      }
    },
  },
];
