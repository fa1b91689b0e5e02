/**
 * `[[hooks]]`: what runs, or is posted to, after a command commits an event (core/hooks/).
 * Every entry's keys and values are checked like any other key (file, line, key, exit 78):
 * `on` names known event kinds, and exactly one of `command` and `url` says what fires.
 */
import { dirname } from 'node:path';
import { NAME_RE } from '../names.js';
import { formatDuration } from '../units.js';
import { redactUrl } from './fleet-keys.js';
import { onProblem } from '../event-kinds.js';
import { configFail, type FileLayer, locateKey } from './locate.js';
import { duration } from './keys.js';
import type { HookSpec } from './types.js';

/** The keys of a `[[hooks]]` entry. */
export const HOOK_KEYS = ['name', 'on', 'command', 'url', 'timeout'] as const;

/** A hook waits this long unless `timeout` says otherwise (the 5 s for a POST). */
export const DEFAULT_HOOK_TIMEOUT_MS = 5_000;
/** The longest `timeout`: a hook is a notification, not a job. */
export const MAX_HOOK_TIMEOUT_MS = 60_000;

export function validateHooks(layer: FileLayer, raw: unknown[]): HookSpec[] {
  const specs = raw.map((entry, i) => validateHook(layer, entry, i));
  const seen = new Map<string, number>();
  specs.forEach((s, i) => {
    const other = seen.get(s.name);
    if (other !== undefined) configFail(layer, 'hooks', 'name', `duplicate hook name ${JSON.stringify(s.name)} (also hooks[${other}])`, i);
    seen.set(s.name, i);
  });
  return specs;
}

function validateHook(layer: FileLayer, entry: unknown, i: number): HookSpec {
  const fail = (key: string | undefined, msg: string): never => configFail(layer, 'hooks', key, msg, i);
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) fail(undefined, 'expected a table');
  const e = entry as Record<string, unknown>;
  for (const k of Object.keys(e)) if (!(HOOK_KEYS as readonly string[]).includes(k)) fail(k, `unknown key; accepted: ${HOOK_KEYS.join(', ')}`);
  const name =
    e.name === undefined
      ? `hooks[${i}]`
      : typeof e.name === 'string' && NAME_RE.test(e.name)
        ? e.name
        : fail('name', 'expected 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit');
  if (e.on === undefined) fail('on', 'every hook needs on = [event kinds], e.g. ["breaker.open", "run.failed"]');
  if (!Array.isArray(e.on) || e.on.length === 0 || !e.on.every((o) => typeof o === 'string')) fail('on', 'expected a non-empty list of event kinds, e.g. ["breaker.open", "run.failed"]');
  for (const o of e.on as string[]) {
    const problem = onProblem(o);
    if (problem) fail('on', problem);
  }
  if (e.command === undefined && e.url === undefined) fail(undefined, 'needs command = [argv] or url = "https://..."');
  if (e.command !== undefined && e.url !== undefined) fail('url', 'give command or url, not both');
  let command: string[] | undefined;
  if (e.command !== undefined) {
    if (!Array.isArray(e.command) || e.command.length === 0 || !e.command.every((c) => typeof c === 'string') || e.command[0] === '') {
      fail('command', 'expected a non-empty list of strings, e.g. ["/usr/local/bin/notify", "--quiet"]');
    }
    command = e.command as string[];
  }
  let url: string | undefined;
  if (e.url !== undefined) url = checkUrl(e.url, (msg) => fail('url', msg));
  let timeoutMs = DEFAULT_HOOK_TIMEOUT_MS;
  if (e.timeout !== undefined) {
    try {
      timeoutMs = duration(100, MAX_HOOK_TIMEOUT_MS)(e.timeout) as number;
    } catch (err) {
      fail('timeout', (err as Error).message);
    }
  }
  return {
    name,
    on: e.on as string[],
    ...(command ? { command } : {}),
    ...(url !== undefined ? { url } : {}),
    timeoutMs,
    cwd: dirname(layer.path),
    file: layer.path,
    line: locateKey(layer.text, 'hooks', undefined, i),
  };
}

/** An http:// or https:// URL with a host; the message never repeats it (it may hold a token). */
function checkUrl(raw: unknown, fail: (msg: string) => never): string {
  if (typeof raw !== 'string' || raw === '') return fail('expected an http:// or https:// URL as a string');
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return fail('expected an http:// or https:// URL (the value is not shown: it may hold a token)');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') fail(`expected an http:// or https:// URL, got a ${u.protocol.replace(/:$/, '')}: URL`);
  if (u.hostname === '') fail('expected a host in the URL');
  return raw;
}

/** A hook as `agentctl config` shows it: a URL's password left out, the timeout as written. */
export function displayHook(h: HookSpec): Record<string, unknown> {
  return {
    name: h.name,
    on: h.on,
    ...(h.command ? { command: h.command } : {}),
    ...(h.url !== undefined ? { url: redactUrl(h.url) } : {}),
    timeout: formatDuration(h.timeoutMs),
    file: h.file,
  };
}
