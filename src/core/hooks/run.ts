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

/** Why a hook still running was ended when the runner's own deadline passed (commands/hook.ts). */
export const DEADLINE_REASON = "ended: the hook runner's deadline passed";
const NOT_RUN_REASON = "not run: the hook runner's deadline passed";

/**
 * Run hook `h` for event `e`. `deadline`, when it aborts, ends the hook as its timeout would
 * (the runner's overall deadline).
 */
export function runHook(h: JobHook, e: HookEvent, env: NodeJS.ProcessEnv, deadline?: AbortSignal): Promise<string | undefined> {
  return h.command ? runCommand(h, h.command, e, env, deadline) : postEvent(h, h.url!, e, deadline);
}

function runCommand(h: JobHook, argv: readonly string[], e: HookEvent, env: NodeJS.ProcessEnv, deadline: AbortSignal | undefined): Promise<string | undefined> {
  const childEnv: NodeJS.ProcessEnv = { ...env, ...eventEnv(e, h.name) };
  delete childEnv[JOB_VAR];
  delete childEnv.AGENTCTL_RUN_ID;
  if (deadline?.aborted) return Promise.resolve(NOT_RUN_REASON);
  return new Promise((resolve) => {
    let ended: string | undefined;
    const timer: { t?: NodeJS.Timeout } = {};
    const child = spawn(argv[0]!, argv.slice(1), { cwd: h.cwd, detached: true, stdio: ['pipe', 'ignore', 'ignore'], env: childEnv });
    child.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer.t);
      resolve(`cannot run ${argv[0]!}: ${err.code ?? err.message}`);
    });
    if (child.pid === undefined) return; // the error event says why
    // our own child, not yet waited for: its PID cannot name another process before 'exit'
    const id = getIdentity(child.pid);
    const end = (why: string) => {
      if (ended !== undefined) return;
      ended = why;
      if (id) void endTree(id, { graceMs: HOOK_GRACE_MS });
    };
    const onDeadline = () => {
      end(DEADLINE_REASON);
      // a hook that outlives even KILL (or whose identity could not be proven) is let go, so the runner can exit
      setTimeout(() => {
        child.stdin.destroy();
        child.unref();
        resolve(DEADLINE_REASON);
      }, HOOK_GRACE_MS + 1_000).unref();
    };
    deadline?.addEventListener('abort', onDeadline, { once: true });
    child.stdin.on('error', () => undefined); // a hook that does not read its stdin
    child.stdin.end(`${JSON.stringify(e)}\n`);
    timer.t = setTimeout(() => end(`timed out after ${formatDuration(h.timeout_ms)}: ended`), h.timeout_ms);
    child.on('exit', (code, signal) => {
      clearTimeout(timer.t);
      deadline?.removeEventListener('abort', onDeadline);
      if (ended !== undefined) resolve(ended);
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

async function postEvent(h: JobHook, raw: string, e: HookEvent, deadline: AbortSignal | undefined): Promise<string | undefined> {
  if (deadline?.aborted) return NOT_RUN_REASON;
  try {
    const { url, authorization } = splitCredentials(raw);
    const timeout = AbortSignal.timeout(h.timeout_ms);
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'agentctl-hook', ...(authorization ? { authorization } : {}) },
      body: JSON.stringify(e),
      // never followed: an https URL redirected to http would send the event in clear
      redirect: 'manual',
      signal: deadline ? AbortSignal.any([timeout, deadline]) : timeout,
    });
    await res.body?.cancel().catch(() => undefined);
    if (res.status >= 300 && res.status < 400) return `HTTP ${res.status}: redirect not followed`;
    return res.status >= 400 ? `HTTP ${res.status}` : undefined;
  } catch (err) {
    if (deadline?.aborted) return DEADLINE_REASON;
    const name = (err as Error).name;
    if (name === 'TimeoutError' || name === 'AbortError') return `no answer within ${formatDuration(h.timeout_ms)}`;
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    return `POST failed: ${cause?.code ?? (cause?.message && !revealsUrl(cause.message, raw) ? cause.message : undefined) ?? name}`;
  }
}

/** Does `text` repeat any part of the URL that may hold a secret (user info, path, query)? */
export function revealsUrl(text: string, url: string): boolean {
  if (text.includes('://')) return true;
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return true;
  }
  const decoded = (p: string) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p;
    }
  };
  // the whole path and query, and each part of them long enough to be a token
  const parts = [u.pathname, u.search, u.hash, ...u.pathname.split('/'), ...u.search.slice(1).split(/[&=]/)];
  const secrets = [u.username, u.password, ...parts.filter((p) => p.length >= 4)].filter((p) => p.length > 0);
  return secrets.some((p) => text.includes(p) || text.includes(decoded(p)));
}
