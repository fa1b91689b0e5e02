/**
 * Running one hook for one event, bounded in time: a command gets the event as JSON on stdin
 * and in AGENTCTL_EVENT_* variables, runs in its own process group and is ended (identity
 * checked, core/kill.ts) when its timeout passes; a URL gets the JSON POSTed and is abandoned
 * at its timeout. Each returns undefined on success, or what failed (the `hook.failed` reason).
 */
import { spawn } from 'node:child_process';
import { getIdentity } from '../identity.js';
import { endTree } from '../kill.js';
import { formatDuration } from '../units.js';
import type { HookJob } from './fire.js';
import { JOB_VAR } from './fire.js';

export type JobHook = HookJob['hooks'][number];

/** An event as a hook gets it: the fields of an `events --json` entry. */
export interface HookEvent {
  readonly id: number;
  readonly time: string;
  readonly command: string;
  readonly kind: string;
  readonly subject: string | null;
  readonly reason: string;
  readonly data: Record<string, unknown> | null;
}

/** TERM, then this long, then KILL, for a hook past its timeout. */
const HOOK_GRACE_MS = 1_000;

/** Text fit for an environment variable: no NUL. */
const envText = (s: string) => s.replace(/\0/g, '');

/** The variables a command hook gets on top of the environment it inherits. */
export function eventEnv(e: HookEvent, hookName: string): Record<string, string> {
  return {
    AGENTCTL_EVENT_ID: String(e.id),
    AGENTCTL_EVENT_KIND: e.kind,
    AGENTCTL_EVENT_SUBJECT: envText(e.subject ?? ''),
    AGENTCTL_EVENT_REASON: envText(e.reason),
    AGENTCTL_EVENT_TS: String(Date.parse(e.time)),
    AGENTCTL_EVENT_TIME: e.time,
    AGENTCTL_EVENT_COMMAND: e.command,
    AGENTCTL_EVENT_DATA: envText(JSON.stringify(e.data)),
    AGENTCTL_HOOK_NAME: hookName,
  };
}

export function runHook(h: JobHook, e: HookEvent, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  return h.command ? runCommand(h, h.command, e, env) : postEvent(h, h.url!, e);
}

function runCommand(h: JobHook, argv: readonly string[], e: HookEvent, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  const childEnv: NodeJS.ProcessEnv = { ...env, ...eventEnv(e, h.name) };
  delete childEnv[JOB_VAR];
  delete childEnv.AGENTCTL_RUN_ID;
  return new Promise((resolve) => {
    let timedOut = false;
    const timer: { t?: NodeJS.Timeout } = {};
    const child = spawn(argv[0]!, argv.slice(1), { cwd: h.cwd, detached: true, stdio: ['pipe', 'ignore', 'ignore'], env: childEnv });
    child.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer.t);
      resolve(`cannot run ${argv[0]!}: ${err.code ?? err.message}`);
    });
    if (child.pid === undefined) return; // the error event says why
    // our own child, not yet waited for: its PID cannot name another process before 'exit'
    const id = getIdentity(child.pid);
    child.stdin.on('error', () => undefined); // a hook that does not read its stdin
    child.stdin.end(`${JSON.stringify(e)}\n`);
    timer.t = setTimeout(() => {
      timedOut = true;
      if (id) void endTree(id, { graceMs: HOOK_GRACE_MS });
    }, h.timeout_ms);
    child.on('exit', (code, signal) => {
      clearTimeout(timer.t);
      if (timedOut) resolve(`timed out after ${formatDuration(h.timeout_ms)}: ended`);
      else if (signal) resolve(`ended by ${signal}`);
      else if (code !== 0) resolve(`exit ${code}`);
      else resolve(undefined);
    });
  });
}

/** fetch refuses a URL with user:password: they go in an Authorization header instead. */
export function splitCredentials(url: string): { url: string; authorization?: string } {
  const u = new URL(url);
  if (u.username === '' && u.password === '') return { url };
  const basic = Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64');
  u.username = '';
  u.password = '';
  return { url: u.toString(), authorization: `Basic ${basic}` };
}

async function postEvent(h: JobHook, raw: string, e: HookEvent): Promise<string | undefined> {
  try {
    const { url, authorization } = splitCredentials(raw);
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'agentctl-hook', ...(authorization ? { authorization } : {}) },
      body: JSON.stringify(e),
      signal: AbortSignal.timeout(h.timeout_ms),
    });
    await res.body?.cancel().catch(() => undefined);
    return res.status >= 400 ? `HTTP ${res.status}` : undefined;
  } catch (err) {
    const name = (err as Error).name;
    if (name === 'TimeoutError' || name === 'AbortError') return `no answer within ${formatDuration(h.timeout_ms)}`;
    // the URL is not repeated: it may hold a token
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const said = cause?.message && !cause.message.includes('://') ? cause.message : undefined;
    return `POST failed: ${cause?.code ?? said ?? name}`;
  }
}
