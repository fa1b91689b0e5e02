import { describe, expect, it } from 'vitest';
import { findCycle } from '../../src/core/config/agents.js';
import { loadConfig } from '../../src/core/config/load.js';
import { ConfigError } from '../../src/core/errors.js';
import { entryHash, instanceNames, orderFleet, planInstance, refusalStatus, withRequired } from '../../src/core/agents/plan.js';
import { tempDir, thrown } from '../helpers.js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const load = (toml: string) => {
  const t = tempDir();
  try {
    writeFileSync(join(t.dir, 'agentctl.toml'), toml);
    return loadConfig({ cwd: t.dir, env: {}, home: t.dir });
  } finally {
    t.cleanup();
  }
};

describe('[[agents]] parsing', () => {
  it('fills the defaults and resolves cwd from the file', () => {
    const c = load('[[agents]]\nname = "w"\ncommand = ["python3", "w.py"]\ncwd = "sub"\nenv = "e1"\nenv_vars = { A = "1" }\n');
    const [w] = c.config.fleetAgents;
    expect(w).toMatchObject({ name: 'w', group: 'default', priority: 3, instances: 1, restart: 'on-failure', requires: [], env: { name: 'e1', ports: 1 }, envVars: { A: '1' } });
    expect(w!.cwd.endsWith('/sub')).toBe(true);
    expect(w!.line).toBe(1);
  });
  it('keeps the fleet out of the config hash', () => {
    expect(load('[[agents]]\nname = "w"\ncommand = ["a"]\n').hash).toBe(load('[[agents]]\nname = "w"\ncommand = ["b"]\n').hash);
  });
  it.each([
    ['[[agents]]\nname = "w"\ncommand = []\n', 'agents[0].command', 3],
    ['[[agents]]\nname = "w"\ncommand = ["x"]\ninstances = 0\n', 'agents[0].instances', 4],
    ['[[agents]]\nname = "w"\ncommand = ["x"]\ntimeout = "soon"\n', 'agents[0].timeout', 4],
    ['[[agents]]\nname = "w"\ncommand = ["x"]\nenv_vars = { AGENTCTL_RUN_ID = "r1" }\n', 'agents[0].env_vars', 4],
    ['[[agents]]\nname = "w"\ncommand = ["x"]\nrequires = ["nope"]\n', 'agents[0].requires', 4],
    ['[[agents]]\nname = "w"\ncommand = ["x"]\n[[agents]]\nname = "w"\ncommand = ["y"]\n', 'agents[1].name', 5],
    ['[[agents]]\nname = "w"\ncommand = ["x"]\ninstances = 2\n[[agents]]\nname = "w-2"\ncommand = ["y"]\n', 'agents[1].name', 6],
  ])('refuses %j at %s', (toml, key, line) => {
    const e = thrown(ConfigError, () => load(toml));
    expect(e.message).toContain(`line ${line}: ${key}:`);
    expect(e.exitCode).toBe(78);
  });
  it('finds requires cycles', () => {
    expect(
      findCycle([
        { name: 'a', requires: ['b'] },
        { name: 'b', requires: ['c'] },
        { name: 'c', requires: ['a'] },
      ]),
    ).toEqual(['a', 'b', 'c', 'a']);
    expect(findCycle([{ name: 'a', requires: ['a'] }])).toEqual(['a', 'a']);
    expect(
      findCycle([
        { name: 'a', requires: [] },
        { name: 'b', requires: ['a'] },
      ]),
    ).toBeUndefined();
  });
});

describe('the plan', () => {
  const specs = [
    { name: 'web', requires: ['db', 'cache'] },
    { name: 'cache', requires: [] },
    { name: 'db', requires: ['cache'] },
    { name: 'lone', requires: [] },
  ];
  it('orders by dependency, else file order', () => {
    expect(orderFleet(specs).map((s) => s.name)).toEqual(['cache', 'db', 'web', 'lone']);
  });
  it('brings along what a named entry requires', () => {
    expect(withRequired(specs, ['db']).map((s) => s.name)).toEqual(['cache', 'db']);
  });
  it('names instances', () => {
    expect(instanceNames({ name: 'w', instances: 1 })).toEqual(['w']);
    expect(instanceNames({ name: 'w', instances: 3 })).toEqual(['w-1', 'w-2', 'w-3']);
  });
  it('hashes what shapes the process, not the restart policy', () => {
    const base = load('[[agents]]\nname = "w"\ncommand = ["a"]\n').config.fleetAgents[0]!;
    expect(entryHash({ ...base, restart: 'never', priority: 1 })).toBe(entryHash(base));
    expect(entryHash({ ...base, command: ['b'] })).not.toBe(entryHash(base));
    expect(entryHash({ ...base, envVars: { A: '1' } })).not.toBe(entryHash(base));
  });

  const f = { hash: 'h1', restart: 'on-failure' as const, downed: false, restartChanged: false };
  const live = { runId: 'r1', pid: 10, state: 'running', fleetHash: 'h1' };
  const last = (state: string, fleetHash = 'h1') => ({ runId: 'r0', state, failure: state === 'failed' ? 'crash' : null, exitCode: state === 'failed' ? 1 : 0, fleetHash });
  it('leaves a live run alone, reports drift, restarts it only when asked', () => {
    expect(planInstance({ ...f, live })).toMatchObject({ action: 'none', status: 'running' });
    expect(planInstance({ ...f, live: { ...live, fleetHash: null } })).toMatchObject({ action: 'none', status: 'running' });
    expect(planInstance({ ...f, live: { ...live, fleetHash: 'old' } })).toMatchObject({ action: 'none', status: 'drift' });
    expect(planInstance({ ...f, live: { ...live, fleetHash: 'old' }, restartChanged: true })).toMatchObject({ action: 'restart', runId: 'r1' });
  });
  it('follows the restart policy', () => {
    expect(planInstance(f).action).toBe('start');
    expect(planInstance({ ...f, last: last('failed') }).action).toBe('start');
    expect(planInstance({ ...f, last: last('exited') })).toMatchObject({ action: 'none', status: 'exited' });
    expect(planInstance({ ...f, restart: 'always', last: last('exited') }).action).toBe('start');
    expect(planInstance({ ...f, restart: 'never', last: last('failed') })).toMatchObject({ action: 'none', status: 'failed' });
    expect(planInstance({ ...f, restart: 'never', last: last('stopped') }).action).toBe('start');
    expect(planInstance({ ...f, restart: 'never', last: last('failed', 'old') }).action).toBe('start');
    expect(planInstance({ ...f, downed: true })).toMatchObject({ action: 'none', status: 'down' });
  });
  it('reads refusals as waits or refusals', () => {
    expect(refusalStatus('backoff', 1)).toBe('waiting');
    expect(refusalStatus('already_running', undefined)).toBe('running');
    expect(refusalStatus('breaker_open', 1)).toBe('refused');
    expect(refusalStatus('no_slot', undefined)).toBe('refused');
  });
});
