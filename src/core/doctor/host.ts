/** doctor's checks of the host itself: load, CPU, memory, swap and memory pressure, from the throttle reading. */
import { type CheckEntry, grade, skip, type Status } from './check.js';
import { formatBytes, formatPct } from '../units.js';

export const hostChecks: readonly CheckEntry[] = [
  {
    id: 'host.load',
    group: 'host',
    title: 'load per core',
    run: (f, t) => {
      if (!f.report) return skip('no reading');
      const v = f.report.load_per_core;
      const s = grade(v, t.loadWarn, t.loadFail);
      return {
        status: s,
        value: `${v.toFixed(2)} per core (load ${f.report.load_1m.toFixed(2)}, ${f.report.cpus} cores)`,
        threshold: `warn >= ${t.loadWarn}, fail >= ${t.loadFail}`,
        remedy: s === 'ok' ? '' : 'agentctl ps; agentctl reap --shed',
        metric: v,
      };
    },
  },
  {
    id: 'host.cpu_idle',
    group: 'host',
    title: 'CPU idle',
    run: (f, t) => {
      if (!f.report) return skip('no reading');
      const idle = 100 - f.report.cpu_used_pct;
      const s: Status = idle < t.cpuIdleWarn ? 'warn' : 'ok';
      return { status: s, value: formatPct(idle), threshold: `warn < ${t.cpuIdleWarn}%`, remedy: s === 'ok' ? '' : 'agentctl throttle-status; agentctl ps', metric: idle };
    },
  },
  {
    id: 'host.memory',
    group: 'host',
    title: 'memory available',
    run: (f, t) => {
      if (!f.report) return skip('no reading');
      const avail = (f.report.memory_available_bytes / f.report.memory_total_bytes) * 100;
      const s = grade(avail, t.memWarn, t.memFail, false);
      return {
        status: s,
        value: `${formatPct(avail)} (${formatBytes(f.report.memory_available_bytes)} of ${formatBytes(f.report.memory_total_bytes)})`,
        threshold: `warn < ${t.memWarn}%, fail < ${t.memFail}%`,
        remedy: s === 'ok' ? '' : 'agentctl reap --shed; agentctl ps',
        metric: avail,
      };
    },
  },
  {
    id: 'host.pressure',
    group: 'host',
    title: 'swap activity and memory pressure (PSI)',
    run: (f, t) => {
      if (!f.report) return skip('no reading');
      const swapping = (f.report.swap_in_per_s ?? 0) + (f.report.swap_out_per_s ?? 0);
      const psi = f.report.psi?.memory_some_avg10 ?? null;
      const s: Status = swapping > 0 || (psi !== null && psi >= t.psiWarn) ? 'warn' : 'ok';
      return {
        status: s,
        value: `swap ${swapping} pages/s, memory pressure ${psi === null ? 'n/a' : `${psi.toFixed(2)}%`}`,
        threshold: `warn when swapping or memory PSI >= ${t.psiWarn}%`,
        remedy: s === 'ok' ? '' : 'agentctl reap --shed',
        metric: psi,
      };
    },
  },
];
