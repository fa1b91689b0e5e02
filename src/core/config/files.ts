/**
 * Config files: where they are looked for, which may be read (the trust rule), reading and
 * parsing one, and checking its structure and values. Errors name the file, the line and the key.
 */
import { readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { ConfigError, UsageError } from '../errors.js';
import { trustFix, untrusted } from '../fsutil.js';
import { capProblem } from './fleet-keys.js';
import { duration, KEYS, SERVICE_KEYS } from './keys.js';
import { validateAgents } from './agents.js';
import { validateHooks } from './hooks.js';
import { configFail, type FileLayer } from './locate.js';

export { configFail, locateKey } from './locate.js';
import type { AgentSpec, HookSpec, IgnoredConfig, LoadOptions, ServiceSpec, SourceKind } from './types.js';
import { requireDependency } from '../modules.js';

/** The warning printed for an ignored file (on stderr, unless --quiet). */
export const ignoredWarning = (i: IgnoredConfig) => `agentctl: ignoring config file ${i.path}: ${i.reason}; or name it with --config to use it anyway`;

/**
 * Why a default config file is not to be read, or undefined when it may be: the file (links
 * followed) and the folder it is in must belong to the invoking user or root and be writable
 * by no one else (a sticky folder such as /tmp excepted), like git's safe.directory. A file
 * that is not there is for readLayer to handle.
 */
export function configDistrust(path: string): string | undefined {
  const stat = (p: string) => {
    try {
      return statSync(p);
    } catch {
      return undefined;
    }
  };
  const st = stat(path);
  if (!st) return undefined;
  const u = untrusted(st);
  if (u) return `${u.what}: ${u.why}; fix: ${trustFix(path, u, 'go-w')}`;
  const dir = dirname(path);
  const dst = stat(dir);
  const d = dst && untrusted(dst, undefined, true);
  if (d) return `its folder ${dir} is ${d.what}: ${d.why}; fix: ${trustFix(dir, d, 'go-w')}`;
  return undefined;
}

export type { FileLayer } from './locate.js';

/** Where config files are looked for, in precedence order lowest first. */
export function configCandidates(opts: LoadOptions): Array<{ kind: SourceKind; path: string; required: boolean; via?: string }> {
  const env = opts.env ?? process.env;
  const explicit = opts.configPath ?? env.AGENTCTL_CONFIG;
  const via = opts.configPath !== undefined ? '--config' : 'AGENTCTL_CONFIG';
  if (explicit) return [{ kind: 'file', path: resolve(opts.cwd ?? process.cwd(), explicit), required: true, via }];
  const configHome = env.XDG_CONFIG_HOME || join(opts.home ?? homedir(), '.config');
  return [
    { kind: 'user', path: join(configHome, 'agentctl', 'config.toml'), required: false },
    { kind: 'project', path: join(opts.cwd ?? process.cwd(), 'agentctl.toml'), required: false },
  ];
}

export function readLayer(kind: SourceKind, path: string, required: boolean, via = '--config'): FileLayer | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (!required && code === 'ENOENT') return undefined;
    if (required && (code === 'ENOENT' || code === 'EISDIR' || code === 'ENOTDIR')) {
      throw new UsageError(`${via}: cannot read ${path}: ${code === 'ENOENT' ? 'no such file' : 'not a regular file'}`);
    }
    throw new ConfigError(`config file ${path} cannot be read: ${(err as Error).message}`, { file: path });
  }
  // The parser loads only when there is a file to parse: most runs have none.
  const toml = requireDependency<typeof import('smol-toml')>('smol-toml', 'dist/index.cjs', 'smol-toml');
  let data: Record<string, unknown>;
  try {
    data = toml.parse(text);
  } catch (err) {
    if (err instanceof toml.TomlError) {
      const first = err.message.split('\n')[0]!.replace(/^Invalid TOML document:\s*/i, '');
      throw new ConfigError(`config file ${path} line ${err.line}: invalid TOML: ${first}`, { file: path, line: err.line });
    }
    throw new ConfigError(`config file ${path}: invalid TOML: ${(err as Error).message}`, { file: path });
  }
  return { kind, path, text, data };
}

const SECTIONS = new Set([...KEYS.map((k) => k.section), 'services', 'hooks']);

function validateServices(layer: FileLayer, raw: unknown): ServiceSpec[] {
  if (!Array.isArray(raw)) configFail(layer, 'services', undefined, 'expected [[services]] tables');
  const names = new Set<string>();
  return (raw as unknown[]).map((entry, i) => {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) configFail(layer, 'services', undefined, 'expected a table', i);
    const e = entry as Record<string, unknown>;
    for (const k of Object.keys(e)) {
      if (!(SERVICE_KEYS as readonly string[]).includes(k)) configFail(layer, 'services', k, `unknown key; accepted: ${SERVICE_KEYS.join(', ')}`, i);
    }
    const str = (k: string) => {
      if (e[k] !== undefined && (typeof e[k] !== 'string' || e[k] === '')) configFail(layer, 'services', k, 'expected a non-empty string', i);
      return e[k];
    };
    const name = str('name');
    if (!name) configFail(layer, 'services', 'name', 'every service needs a name', i);
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(name)) configFail(layer, 'services', 'name', 'expected letters, digits, ".", "_" or "-" (at most 64)', i);
    if (names.has(name)) configFail(layer, 'services', 'name', `duplicate service name ${JSON.stringify(name)}`, i);
    names.add(name);
    const pidfile = str('pidfile');
    const match = str('match');
    if (match !== undefined) {
      try {
        new RegExp(match);
      } catch (err) {
        configFail(layer, 'services', 'match', `invalid regular expression: ${(err as Error).message}`, i);
      }
    }
    const url = str('url');
    if (url !== undefined && !/^https?:\/\/[^\s]+$/.test(url)) configFail(layer, 'services', 'url', 'expected an http:// or https:// URL', i);
    if (e.port !== undefined && (!Number.isInteger(e.port) || (e.port as number) < 1 || (e.port as number) > 65535)) {
      configFail(layer, 'services', 'port', 'expected a port from 1 to 65535', i);
    }
    if (e.expect_status !== undefined && (!Number.isInteger(e.expect_status) || (e.expect_status as number) < 100 || (e.expect_status as number) > 599)) {
      configFail(layer, 'services', 'expect_status', 'expected an HTTP status from 100 to 599', i);
    }
    let timeoutMs = 2000;
    if (e.timeout !== undefined) {
      try {
        timeoutMs = duration(50, 60_000)(e.timeout) as number;
      } catch (err) {
        configFail(layer, 'services', 'timeout', (err as Error).message, i);
      }
    }
    if (pidfile === undefined && match === undefined && e.port === undefined && url === undefined) {
      configFail(layer, 'services', undefined, `service ${JSON.stringify(name)} needs at least one of pidfile, match, port, url`, i);
    }
    return {
      name: name,
      ...(pidfile !== undefined ? { pidfile } : {}),
      ...(match !== undefined ? { match } : {}),
      ...(e.port !== undefined ? { port: e.port as number } : {}),
      ...(url !== undefined ? { url } : {}),
      expect_status: (e.expect_status as number | undefined) ?? 200,
      timeoutMs,
    };
  });
}

/** Check one file's structure and values; returns its validated flat values and services. */
export function validateLayer(layer: FileLayer): { values: Map<string, unknown>; services?: ServiceSpec[]; fleetAgents?: AgentSpec[]; hooks?: HookSpec[] } {
  const values = new Map<string, unknown>();
  let services: ServiceSpec[] | undefined;
  let fleetAgents: AgentSpec[] | undefined;
  let hooks: HookSpec[] | undefined;
  for (const [section, body] of Object.entries(layer.data)) {
    if (!SECTIONS.has(section)) {
      configFail(layer, section, undefined, `unknown section; accepted: ${[...SECTIONS].join(', ')}`);
    }
    if (section === 'services') {
      services = validateServices(layer, body);
      continue;
    }
    if (section === 'hooks') {
      if (!Array.isArray(body)) configFail(layer, 'hooks', undefined, 'expected [[hooks]] tables');
      hooks = validateHooks(layer, body as unknown[]);
      continue;
    }
    // [[agents]] (the fleet) and [agents] (patterns) share a name: TOML allows one per file
    if (section === 'agents' && Array.isArray(body)) {
      fleetAgents = validateAgents(layer, body);
      continue;
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) configFail(layer, section, undefined, `expected a [${section}] table`);
    for (const [key, raw] of Object.entries(body as Record<string, unknown>)) {
      const spec = KEYS.find((k) => k.section === section && k.key === key);
      if (!spec) {
        const accepted = KEYS.filter((k) => k.section === section).map((k) => k.key);
        configFail(layer, section, key, `unknown key; accepted in [${section}]: ${accepted.join(', ')}`);
      }
      if (section === 'fleet' && key === 'caps') checkCaps(layer, raw);
      try {
        values.set(`${section}.${key}`, spec.validate(raw));
      } catch (err) {
        configFail(layer, section, key, (err as Error).message);
      }
    }
  }
  return { values, ...(services ? { services } : {}), ...(fleetAgents ? { fleetAgents } : {}), ...(hooks ? { hooks } : {}) };
}

/** [fleet.caps] entry by entry, so an error names the line of the group it is about. */
function checkCaps(layer: FileLayer, raw: unknown): void {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return; // the key's validator says what is expected
  for (const [group, value] of Object.entries(raw as Record<string, unknown>)) {
    const problem = capProblem(group, value);
    if (problem) configFail(layer, 'fleet.caps', group, problem);
  }
}
