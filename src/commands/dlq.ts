/** agentctl dlq [retry ID]: runs that exhausted their retries, and replaying one. */
import { isAbsolute } from 'node:path';
import type { Ctx, Outcome, Ui } from '../core/ctx.js';
import { EXIT, ExitError, StateError, UsageError } from '../core/errors.js';
import { NAME_RE } from '../core/names.js';
import { HEALTHY } from '../core/policy.js';
import { setHealth } from '../core/runs/health.js';
import { reconcileAll } from '../core/runs/reconcile.js';
import { type RestartTerms, spawnDeps } from '../core/spawn/deps.js';
import { storedRestart } from '../core/restart.js';
import { spawnJson, type SpawnOutput } from '../core/spawn/result.js';
import { storedTerms } from '../core/spawn/restart.js';
import { spawnRun } from '../core/spawn/spawn.js';
import { isRedacted, printable, redactArgv, REDACTED, shellWord, showArgv } from '../core/text.js';
import type { CommandDecl, OptionValues } from '../core/declaration.js';

export const declaration: CommandDecl = {
  name: 'dlq',
  description: 'list runs that exhausted their retries; "dlq retry ID" resets the breaker and starts it again, detached',
  args: [
    { name: '[action]', help: 'retry' },
    { name: '[id]', help: 'entry id for retry' },
  ],
  examples: ['agentctl dlq', 'agentctl dlq retry 3', "agentctl dlq --json | jq '.entries | length'"],
};

export interface DlqEntry {
  readonly id: number;
  readonly time: string;
  readonly name: string;
  readonly run_id: string | null;
  readonly failure: string | null;
  readonly error: string;
  readonly restarts: number;
  readonly context: { command: string[]; cwd: string; group: string; priority: number; exit_code: number | null; signal: string | null; restart?: unknown };
}

export interface DlqResult {
  readonly entries: readonly DlqEntry[];
  readonly retried?: { readonly id: number; readonly result: SpawnOutput };
}

interface Row {
  id: number;
  name: string;
  run_id: string | null;
  failure: string | null;
  error: string;
  restarts: number;
  context: string;
  created_at: number;
}

const restartTerms = (stored: unknown): RestartTerms | undefined => {
  const r = storedRestart(stored);
  return r ? { ...r, attempt: 0, failures: 0 } : undefined;
};

const context = (r: Row) => JSON.parse(r.context) as DlqEntry['context'];

/** An entry as shown; its command redacted (entries stored before redaction may hold secrets). */
const toEntry = (r: Row): DlqEntry => {
  const c = context(r);
  return {
    id: r.id,
    time: new Date(r.created_at).toISOString(),
    name: r.name,
    run_id: r.run_id,
    failure: r.failure,
    error: r.error,
    restarts: r.restarts,
    context: { ...c, command: redactArgv(c.command) },
  };
};

export async function run(_opts: OptionValues, args: readonly string[], ctx: Ctx): Promise<Outcome<DlqResult>> {
  const state = ctx.state();
  reconcileAll(state, ctx.config(), ctx.now(), 'dlq'); // record runs that ended since anyone looked
  if (args[0] === 'retry') {
    const raw = args[1] ?? '';
    if (!/^\d{1,12}$/.test(raw)) throw new UsageError(`dlq retry: invalid ID ${JSON.stringify(raw)}; expected an entry id from agentctl dlq`);
    const row = state.guard(() => state.db.prepare('SELECT * FROM dlq WHERE id = ?').get(Number(raw)) as Row | undefined);
    if (!row) throw new ExitError(EXIT.failed, `dlq retry: no entry ${raw}; see agentctl dlq`, 'not_found');
    // the entry names files (PID file, log) and a folder to run in: check it like input first
    if (!NAME_RE.test(row.name) || row.name.includes('..')) {
      throw new StateError(
        `dlq retry: entry ${row.id} has a name agentctl never accepts (${JSON.stringify(row.name.slice(0, 40))}); the state file is damaged or was written by someone else`,
        state.paths.db,
        EXIT.failed,
        'state_corrupt',
      );
    }
    const e = toEntry(row);
    if (!NAME_RE.test(e.context.group) || !isAbsolute(e.context.cwd)) {
      throw new StateError(
        `dlq retry: entry ${row.id} has a group or folder agentctl never records; the state file is damaged or was written by someone else`,
        state.paths.db,
        EXIT.failed,
        'state_corrupt',
      );
    }
    // the stored command, not the shown one: an entry from before redaction replays as it was
    const command = context(row).command;
    if (isRedacted(command)) {
      const again = `agentctl spawn --name ${shellWord(e.name)} -- ${command.map(shellWord).join(' ')}`;
      throw new ExitError(
        EXIT.usage,
        `dlq retry: entry ${e.id} cannot be replayed: its command held a secret, which agentctl never stores; run it again with the secret in place of ${REDACTED}: ${again}`,
        'redacted',
        { id: e.id, name: e.name },
      );
    }
    const loaded = ctx.config();
    // the run's limits, timeout and caps, as stored with the entry (checked: who else wrote it?)
    const stored = context(row) as DlqEntry['context'] & { limits?: unknown; timeout_ms?: unknown; spec?: unknown };
    const terms = storedTerms(stored.spec, stored.limits, stored.timeout_ms, loaded.config.spawn.killGraceMs);
    if (typeof terms === 'string') {
      throw new StateError(
        `dlq retry: entry ${row.id} holds ${terms}, which agentctl never records; the state file is damaged or was written by someone else`,
        state.paths.db,
        EXIT.failed,
        'state_corrupt',
      );
    }
    // a human asked for this retry: give the name a clean slate first
    state.write(() => {
      setHealth(state, e.name, HEALTHY, ctx.now());
      state.event({ command: 'dlq', kind: 'dlq.retry', subject: e.name, reason: `retrying dead-letter entry ${e.id} (${e.error}); breaker reset` });
    });
    const result = await spawnRun(spawnDeps(ctx, loaded, 'dlq'), {
      name: e.name,
      group: e.context.group,
      priority: e.context.priority,
      ...terms,
      ifNotRunning: false,
      detach: true,
      command,
      cwd: e.context.cwd,
      // a run that gave up under spawn -d --restart starts again under its policy, a fresh chain
      restart: restartTerms(context(row).restart),
    });
    if (result.outcome === 'started') state.write(() => state.db.prepare('DELETE FROM dlq WHERE id = ?').run(e.id));
    const entries = (state.db.prepare('SELECT * FROM dlq ORDER BY id').all() as Row[]).map(toEntry);
    const retried = { id: e.id, result: spawnJson(result) };
    if (result.outcome === 'refused') return { data: { entries, retried }, exitCode: result.decision.exitCode, message: result.decision.message };
    return { data: { entries, retried } };
  }
  if (args.length) throw new UsageError(`dlq: unknown action ${JSON.stringify(args[0])}; expected: agentctl dlq, or agentctl dlq retry ID`);
  const entries = state.guard(() => (state.db.prepare('SELECT * FROM dlq ORDER BY id').all() as Row[]).map(toEntry));
  return { data: { entries }, alwaysPrint: true };
}

export function render(r: DlqResult, ui: Ui): string {
  const lines: string[] = [];
  if (r.retried) {
    const x = r.retried.result;
    lines.push(x.outcome === 'started' ? `retried entry ${r.retried.id}: started ${printable(x.name)}, run ${x.run_id}, PID ${x.pid}` : `retry of entry ${r.retried.id}: ${x.outcome}`);
    return lines.join('\n');
  }
  if (r.entries.length === 0) return 'dead-letter queue is empty';
  return ui.table(
    ['id', 'time', 'name', 'failure', 'restarts', 'error', 'command'],
    r.entries.map((e) => [e.id, e.time.replace('T', ' ').slice(0, 19), e.name, e.failure ?? '-', e.restarts, e.error, showArgv(e.context.command, 50)]),
    { name: 'cut-last', error: 'wrap', command: 'cut' },
  );
}
