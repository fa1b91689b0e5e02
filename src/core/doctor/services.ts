/** doctor's checks of configured services: one per service, from its PID file, process match, TCP port and HTTP status. */
import { readFileSync } from 'node:fs';
import { getIdentity } from '../identity.js';
import type { Check, CheckResult, Facts } from './check.js';
import { httpStatus, tcpAccepts } from './probes.js';

/** One check per configured service: PID file alive, process match, TCP port, HTTP status. */
export function serviceChecks(f: Facts): Check[] {
  return (f.config?.config.services ?? []).map((svc) => ({
    id: `services.${svc.name}`,
    group: 'services' as const,
    title: `service ${svc.name}`,
    run: async (): Promise<CheckResult> => {
      const parts: string[] = [];
      let bad = false;
      if (svc.pidfile) {
        const pid = readPid(svc.pidfile);
        const up = pid !== undefined && getIdentity(pid) !== undefined;
        parts.push(`pidfile ${up ? `PID ${pid} alive` : pid === undefined ? 'missing' : `PID ${pid} gone`}`);
        bad ||= !up;
      }
      if (svc.match) {
        const re = new RegExp(svc.match);
        const n = f.procs.filter((p) => p.argv.length && re.test(p.cmdline)).length;
        parts.push(`${n} process${n === 1 ? '' : 'es'} match`);
        bad ||= n === 0;
      }
      if (svc.port !== undefined) {
        const r = await tcpAccepts(svc.port, '127.0.0.1', svc.timeoutMs);
        parts.push(`port ${svc.port} ${r.ok ? 'accepting' : r.detail}`);
        bad ||= !r.ok;
      }
      if (svc.url) {
        const r = await httpStatus(svc.url, svc.timeoutMs);
        const good = r.status === svc.expect_status;
        parts.push(`${svc.url}: ${r.detail}${good ? '' : ` (expected ${svc.expect_status})`}`);
        bad ||= !good;
      }
      return { status: bad ? 'fail' : 'ok', value: parts.join('; '), threshold: 'every probe passes', remedy: bad ? `agentctl ps; agentctl events --since 1h` : '', metric: bad ? 0 : 1 };
    },
  }));
}

function readPid(path: string): number | undefined {
  try {
    const n = Number.parseInt(readFileSync(path, 'utf8').trim().split('\n')[0] ?? '', 10);
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}
