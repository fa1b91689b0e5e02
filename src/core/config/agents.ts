/**
 * `[[agents]]`: the fleet `agentctl up` keeps running. Every entry's keys and values are
 * checked like any other key (file, line, key, exit 78), and so are the names its `requires`
 * gives: each must be another entry, and no chain of them may come back to where it began.
 */
import { dirname, isAbsolute, resolve } from 'node:path';
import { NAME_RE } from '../names.js';
import { MAX_TIMER_MS, SIZE_HINT, tryParseSize } from '../units.js';
import { configFail, type FileLayer, locateKey } from './locate.js';
import { AGENT_KEYS, duration } from './keys.js';
import type { AgentSpec, RestartPolicy } from './types.js';

const RESTARTS: readonly RestartPolicy[] = ['on-failure', 'always', 'never'];
const ENV_VAR_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** instances above this are a typo, not a fleet */
export const MAX_INSTANCES = 100;

const okName = (v: unknown): v is string => typeof v === 'string' && NAME_RE.test(v) && !v.includes('..');

export function validateAgents(layer: FileLayer, raw: unknown[]): AgentSpec[] {
  const specs = raw.map((entry, i) => validateAgent(layer, entry, i));
  const seen = new Map<string, number>();
  specs.forEach((s, i) => {
    // instance names (name-1..N) may not meet another entry's name either
    const names = s.instances > 1 ? Array.from({ length: s.instances }, (_, k) => `${s.name}-${k + 1}`) : [s.name];
    for (const n of [s.name, ...names]) {
      const other = seen.get(n);
      if (other !== undefined && other !== i) configFail(layer, 'agents', 'name', `the run name ${JSON.stringify(n)} is taken by agents[${other}]`, i);
      seen.set(n, i);
    }
    if (names.some((n) => n.length > 64)) configFail(layer, 'agents', 'instances', `instance names like ${names.at(-1)} are longer than 64 characters`, i);
  });
  checkRequires(layer, specs);
  return specs;
}

function validateAgent(layer: FileLayer, entry: unknown, i: number): AgentSpec {
  const fail = (key: string | undefined, msg: string): never => configFail(layer, 'agents', key, msg, i);
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) fail(undefined, 'expected a table');
  const e = entry as Record<string, unknown>;
  for (const k of Object.keys(e)) if (!(AGENT_KEYS as readonly string[]).includes(k)) fail(k, `unknown key; accepted: ${AGENT_KEYS.join(', ')}`);
  const name = e.name;
  if (name === undefined) fail('name', 'every agent needs a name');
  if (!okName(name)) fail('name', 'expected 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit');
  const command = e.command;
  if (!Array.isArray(command) || command.length === 0 || !command.every((c) => typeof c === 'string') || command[0] === '') {
    fail('command', 'expected a non-empty list of strings, e.g. ["python3", "worker.py", "--daemon"]');
  }
  const str = (k: string) => (e[k] === undefined ? undefined : typeof e[k] === 'string' && e[k] !== '' ? e[k] : fail(k, 'expected a non-empty string'));
  const cwdRaw = str('cwd');
  const cwd = cwdRaw === undefined ? dirname(layer.path) : isAbsolute(cwdRaw) ? cwdRaw : resolve(dirname(layer.path), cwdRaw);
  const group = e.group === undefined ? 'default' : okName(e.group) ? e.group : fail('group', 'expected 1-64 letters, digits, ".", "_" or "-"');
  const int = (k: string, min: number, max: number, dflt?: number) => {
    const v = e[k];
    if (v === undefined) return dflt;
    if (!Number.isInteger(v) || (v as number) < min || (v as number) > max) fail(k, `expected a whole number from ${min} to ${max}`);
    return v as number;
  };
  const dur = (k: string, min: number, max: number) => {
    if (e[k] === undefined) return undefined;
    try {
      return duration(min, max)(e[k]) as number;
    } catch (err) {
      return fail(k, (err as Error).message);
    }
  };
  let memoryMax: number | undefined;
  if (e.memory_max !== undefined) {
    memoryMax = typeof e.memory_max === 'string' ? tryParseSize(e.memory_max) : Number.isInteger(e.memory_max) ? (e.memory_max as number) : undefined;
    if (memoryMax === undefined || memoryMax < 1024 * 1024) fail('memory_max', `expected ${SIZE_HINT}, at least 1M`);
  }
  const restart = e.restart === undefined ? 'on-failure' : RESTARTS.includes(e.restart as RestartPolicy) ? (e.restart as RestartPolicy) : fail('restart', `expected one of ${RESTARTS.join(', ')}`);
  const requires = e.requires === undefined ? [] : Array.isArray(e.requires) && e.requires.every(okName) ? e.requires : fail('requires', 'expected a list of agent names');
  const timeoutMs = dur('timeout', 1000, MAX_TIMER_MS);
  const cpuTimeMs = dur('cpu_time', 1000, 365 * 86_400_000);
  const nice = int('nice', 0, 19);
  const env = agentEnv(e.env, (msg) => fail('env', msg));
  return {
    name: name as string,
    command: command as string[],
    cwd,
    group: group,
    priority: int('priority', 1, 3, 3)!,
    instances: int('instances', 1, MAX_INSTANCES, 1)!,
    ...(env ? { env } : {}),
    requires,
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    ...(memoryMax !== undefined ? { memoryMax } : {}),
    ...(cpuTimeMs !== undefined ? { cpuTimeMs } : {}),
    ...(nice !== undefined ? { nice } : {}),
    restart,
    envVars: envVars(e.env_vars, (msg) => fail('env_vars', msg)),
    file: layer.path,
    line: locateKey(layer.text, 'agents', undefined, i),
  };
}

/** `env = "name"` or `env = { name = "name", ports = 2 }` (ports default 1). */
function agentEnv(raw: unknown, fail: (msg: string) => never): AgentSpec['env'] {
  if (raw === undefined) return undefined;
  if (okName(raw)) return { name: raw, ports: 1 };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return fail('expected an environment name, or a table { name = "...", ports = N }');
  const t = raw as Record<string, unknown>;
  for (const k of Object.keys(t)) if (k !== 'name' && k !== 'ports') fail(`unknown key ${JSON.stringify(k)}; accepted: name, ports`);
  if (!okName(t.name)) fail('expected name = an environment name (letters, digits, ".", "_" or "-")');
  const ports = t.ports === undefined ? 1 : t.ports;
  if (!Number.isInteger(ports) || (ports as number) < 0 || (ports as number) > 100) fail('expected ports = a whole number from 0 to 100');
  return { name: t.name, ports: ports as number };
}

/** A table of strings; AGENTCTL_* is agentctl's own (a run id given here would let the child pose as another run). */
function envVars(raw: unknown, fail: (msg: string) => never): Record<string, string> {
  if (raw === undefined) return {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return fail('expected a table of NAME = "value"');
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
    if (!ENV_VAR_RE.test(k)) fail(`${JSON.stringify(k)} is not a variable name (letters, digits, "_")`);
    if (/^AGENTCTL_/i.test(k)) fail(`${k}: AGENTCTL_* variables are agentctl's own`);
    if (typeof v !== 'string') fail(`${k}: expected a string value`);
    out[k] = v;
  }
  return out;
}

/** Every name `requires` gives is another entry, and no chain of them comes back to its start. */
function checkRequires(layer: FileLayer, specs: readonly AgentSpec[]): void {
  const index = new Map(specs.map((s, i) => [s.name, i]));
  specs.forEach((s, i) => {
    for (const r of s.requires) {
      if (!index.has(r)) configFail(layer, 'agents', 'requires', `${JSON.stringify(r)} is not an [[agents]] entry; accepted: ${[...index.keys()].join(', ')}`, i);
    }
  });
  const cycle = findCycle(specs);
  if (cycle) configFail(layer, 'agents', 'requires', `requires cycle: ${cycle.join(' -> ')}`, index.get(cycle[0]!));
}

/** The first cycle among the entries' requires, as names (first = last), or undefined. */
export function findCycle(specs: ReadonlyArray<Pick<AgentSpec, 'name' | 'requires'>>): string[] | undefined {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const done = new Set<string>();
  const path: string[] = [];
  const visit = (name: string): string[] | undefined => {
    const at = path.indexOf(name);
    if (at >= 0) return [...path.slice(at), name];
    if (done.has(name)) return undefined;
    path.push(name);
    for (const r of byName.get(name)?.requires ?? []) {
      const c = visit(r);
      if (c) return c;
    }
    path.pop();
    done.add(name);
    return undefined;
  };
  for (const s of specs) {
    const c = visit(s.name);
    if (c) return c;
  }
  return undefined;
}
