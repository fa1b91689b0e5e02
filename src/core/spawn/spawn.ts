/**
 * spawn: admit, then start. Admission asks in one IMMEDIATE transaction per attempt
 * (attempt.ts: reconcile, gather facts, decide, record), waiting with --wait (wait.ts); an
 * admitted run's leased ports are proven free, then it is launched detached (detached.ts)
 * or supervised in the foreground (foreground.ts).
 */
import { finishRun } from '../runs/end.js';
import { leaseVerified } from '../ports/leases.js';
import { getRun, registryFor } from '../runs/registry.js';
import { portsTakenRefusal } from './admission.js';
import type { SpawnDeps, SpawnRequest } from './deps.js';
import { launchDetached } from './detached.js';
import { releaseFleetLease } from './fleet.js';
import { superviseForeground } from './foreground.js';
import { limitPrefix } from './launch.js';
import type { SpawnResult } from './result.js';
import { admitOrWait, type Admitted, sampleHost } from './wait.js';

export async function spawnRun(deps: SpawnDeps, req: SpawnRequest, childStdoutToStderr = false): Promise<SpawnResult> {
  const started = deps.now();
  const host = await sampleHost(deps);
  // how limits are enforced is known before admission, so the run row records it from the start
  const { prefix, mechanism } = limitPrefix(req.limits, deps.env);
  const admitted = await admitOrWait(deps, req, { started, host, mechanism });
  if ('outcome' in admitted) return admitted;
  const waitedMs = deps.now() - started;
  const ports = await provePorts(deps, req, admitted);
  if (!ports) {
    await releaseFleetLease(deps, req, admitted.runId);
    return { outcome: 'refused', decision: portsTakenRefusal(req.name), waitedMs };
  }
  const run = { runId: admitted.runId, trial: admitted.trial, waitedMs, mechanism, argv: [...prefix, ...req.command], ports, portEnv: portEnv(req, ports) };
  let result: SpawnResult | undefined;
  try {
    result = req.detach ? await launchDetached(deps, req, run) : await superviseForeground(deps, req, run, childStdoutToStderr);
    return result;
  } finally {
    // a run that ended here (foreground, or one that could not start) gives its fleet lease back;
    // a detached run's end is released by the reconcile that records it (fleetSync)
    if (result?.outcome !== 'started') await releaseFleetLease(deps, req, admitted.runId);
  }
}

/**
 * The lease excluded listening ports; now prove the run's own free by binding them (a port
 * taken meanwhile is swapped). Undefined when the pool ran out: the run is closed as lost.
 */
async function provePorts(deps: SpawnDeps, req: SpawnRequest, admitted: Admitted): Promise<readonly number[] | undefined> {
  const { state } = deps;
  const { runId, ports } = admitted;
  if (!req.ports) return ports;
  const envCount = ports.length - req.ports;
  const own = ports.slice(envCount);
  let first = true;
  const verified = await leaseVerified(state, deps.config.config.ports, { kind: 'run', id: runId }, req.ports, () => (first ? ((first = false), own) : undefined));
  if (!verified) {
    state.write(() =>
      finishRun(
        state,
        getRun(state, runId)!,
        { exitCode: null, signal: null, endedAt: deps.now(), lost: true, why: 'its ports were taken before it started' },
        registryFor(deps.config, deps.now(), 'spawn'),
      ),
    );
    return undefined;
  }
  const proven = [...ports.slice(0, envCount), ...verified];
  state.write(() => state.db.prepare('UPDATE runs SET ports = ? WHERE id = ?').run(JSON.stringify(proven), runId));
  return proven;
}

/** The run's ports (and environment) as the child sees them: PORT, PORT_<n>, AGENTCTL_PORTS, AGENTCTL_ENV. */
function portEnv(req: SpawnRequest, ports: readonly number[]): Record<string, string> {
  const env: Record<string, string> = {};
  if (ports.length) {
    env.PORT = String(ports[0]);
    env.AGENTCTL_PORTS = ports.join(',');
    ports.forEach((p, i) => (env[`PORT_${i + 1}`] = String(p)));
  }
  if (req.env !== undefined) env.AGENTCTL_ENV = req.env;
  return env;
}
