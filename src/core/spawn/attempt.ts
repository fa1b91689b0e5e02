/**
 * One admission attempt is one BEGIN IMMEDIATE transaction (STYLE 12): reconcile the registry
 * (a slot held by a dead process is free again before anyone counts it), gather the facts,
 * decide, record. Concurrent spawners see each other's reservations.
 */
import { reconcile } from '../runs/reconcile.js';
import { registryFor } from '../runs/registry.js';
import { decide } from './admission.js';
import type { SpawnDeps } from './deps.js';
import { type AttemptInput, gatherFacts } from './facts.js';
import { type Attempt, recordAttempt } from './record.js';
import type { State } from '../state.js';

/** When this process's attempts last reconciled, per state (see SpawnDeps.reconcileReuseMs). */
const reconciledAt = new WeakMap<State, number>();

export function attempt(deps: Pick<SpawnDeps, 'state' | 'config' | 'now' | 'reconcileReuseMs'>, input: AttemptInput): Attempt {
  const { state, config } = deps;
  return state.write(() => {
    const now = deps.now();
    if (!deps.reconcileReuseMs || now - (reconciledAt.get(state) ?? -Infinity) >= deps.reconcileReuseMs) {
      reconcile(state, registryFor(config, now, 'spawn'));
      reconciledAt.set(state, now);
    }
    const gathered = gatherFacts(state, config.config, input, now);
    return recordAttempt(state, config, input, gathered, decide(gathered.facts), now);
  });
}
