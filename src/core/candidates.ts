/**
 * Values the shell completion scripts offer from the state (`agentctl __complete KIND`): live
 * run names for stop, their groups for `stop --group`, names with a health row for `breaker
 * reset`, entry ids for `dlq retry`. A completion runs on every TAB, so this is one read-only
 * query: no migration, no reconcile, no config, nothing written. A state that is missing,
 * untrusted (a link, someone else's, writable by others: the rules State.open applies) or
 * unreadable gives no candidates. Every value is checked against the rule it was written under
 * (NAME_RE, an entry id's digits) before it is returned, so a row someone else put there cannot
 * carry shell syntax or escape codes into the shell's completion.
 */
import Database from 'better-sqlite3';
import { lstatSync } from 'node:fs';
import { untrusted } from './fsutil.js';
import { NAME_RE } from './names.js';
import { nativeBinding, statePaths } from './state.js';

/** What can be completed from the state, and the one query that reads it (value, then an optional description). */
const QUERIES = {
  /** names of live runs (stop NAME...) */
  names: 'SELECT DISTINCT name AS value, NULL AS info FROM runs WHERE ended_at IS NULL ORDER BY name',
  /** groups of live runs (stop --group) */
  groups: 'SELECT DISTINCT grp AS value, NULL AS info FROM runs WHERE ended_at IS NULL ORDER BY grp',
  /** names with a health row, that is backing off or with a breaker not closed (breaker reset NAME) */
  breakers: "SELECT name AS value, json_extract(value, '$.mode') AS info FROM health ORDER BY name",
  /** dead-letter entries (dlq retry ID), with their names */
  dlq: 'SELECT id AS value, name AS info FROM dlq ORDER BY id',
} as const;

export type CandidateKind = keyof typeof QUERIES;
export const CANDIDATE_KINDS = Object.keys(QUERIES) as readonly CandidateKind[];

export interface Candidate {
  readonly value: string;
  /** a short word shells that show one can show beside it (zsh, fish) */
  readonly info?: string;
}

const isName = (s: unknown): s is string => typeof s === 'string' && NAME_RE.test(s) && !s.includes('..');
const VALID: Record<CandidateKind, (v: unknown) => boolean> = {
  names: isName,
  groups: isName,
  breakers: isName,
  dlq: (v) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0,
};
/** descriptions: a name, or a breaker mode */
const validInfo = (s: unknown): s is string => isName(s);

/** Is this file or folder one State.open would use? (a link or someone else's is refused there, so skipped here) */
function trusted(path: string): boolean {
  try {
    const st = lstatSync(path);
    return !st.isSymbolicLink() && !untrusted(st);
  } catch {
    return false;
  }
}

/**
 * The candidates of `kind` in the state folder `dir` that start with `prefix`; none when the
 * state cannot be read. Never throws.
 */
export function stateCandidates(dir: string, kind: CandidateKind, prefix = ''): Candidate[] {
  const paths = statePaths(dir);
  if (!trusted(dir) || !trusted(paths.db)) return [];
  let db: Database.Database | undefined;
  try {
    const binding = nativeBinding();
    db = new Database(paths.db, { readonly: true, fileMustExist: true, timeout: 200, ...(binding ? { nativeBinding: binding } : {}) });
    const rows = db.prepare(QUERIES[kind]).all() as Array<{ value: unknown; info: unknown }>;
    return rows
      .filter((r) => VALID[kind](r.value))
      .map((r) => ({ value: String(r.value as string | number), ...(validInfo(r.info) ? { info: r.info } : {}) }))
      .filter((c) => c.value.startsWith(prefix));
  } catch {
    return [];
  } finally {
    try {
      db?.close();
    } catch {
      /* closing a broken handle */
    }
  }
}
