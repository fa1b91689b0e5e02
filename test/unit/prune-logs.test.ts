/**
 * History pruning takes the logs with the rows (#13): once State.prune drops an ended run, its
 * log and `.prev` go too; a live run's log, a starting run's, files agentctl did not name and
 * links stay, and the newest events_max_rows runs are kept (not one more).
 */
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { pruneHistory } from '../../src/core/runs/files.js';
import { State } from '../../src/core/state.js';
import { tempDir } from '../helpers.js';
import { runRow } from '../rows.js';

let t: ReturnType<typeof tempDir>;
beforeEach(() => (t = tempDir()));
afterEach(() => t.cleanup());

const DAY = 86_400_000;
const limits = { eventsMaxAgeMs: DAY, eventsMaxRows: 1000, samplesMaxAgeMs: 3_600_000, samplesMaxRows: 100 };

function insertRun(s: State, over: Parameters<typeof runRow>[0]): void {
  const r = runRow(over);
  const cols = Object.keys(r);
  s.db.prepare(`INSERT INTO runs (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`).run(...Object.values(r));
}

describe('pruneHistory', () => {
  it('removes the logs of the runs it pruned and keeps every other file in logs/', () => {
    const s = State.open(join(t.dir, 'state'));
    const now = 100 * DAY;
    mkdirSync(s.paths.logs, { recursive: true });
    const log = (name: string, id: string) => join(s.paths.logs, `${name}.${id}.log`);
    insertRun(s, { id: 'rold0001', name: 'worker', state: 'exited', exit_code: 0, started_at: now - 3 * DAY, ended_at: now - 2 * DAY });
    insertRun(s, { id: 'rlive001', name: 'worker', state: 'running', started_at: now - 3 * DAY });
    insertRun(s, { id: 'rnew0001', name: 'worker.v2', state: 'exited', exit_code: 1, started_at: now - 1000, ended_at: now - 500 });
    for (const f of [log('worker', 'rold0001'), `${log('worker', 'rold0001')}.prev`, log('worker', 'rlive001'), log('worker.v2', 'rnew0001')]) writeFileSync(f, 'line\n');
    // a log whose row was pruned by an older agentctl, a file of someone's own, and a link named as a log
    writeFileSync(log('gone', 'rgone001'), 'old\n');
    writeFileSync(join(s.paths.logs, 'notes.txt'), 'mine\n');
    const target = join(t.dir, 'precious');
    writeFileSync(target, 'keep\n');
    symlinkSync(target, log('link', 'rlink001'));

    const r = pruneHistory(s, limits, now)!;
    expect(r.logs).toBe(3);
    expect(existsSync(log('worker', 'rold0001'))).toBe(false);
    expect(existsSync(`${log('worker', 'rold0001')}.prev`)).toBe(false);
    expect(existsSync(log('gone', 'rgone001'))).toBe(false);
    expect(existsSync(log('worker', 'rlive001'))).toBe(true);
    expect(existsSync(log('worker.v2', 'rnew0001'))).toBe(true);
    expect(existsSync(join(s.paths.logs, 'notes.txt'))).toBe(true);
    expect(readFileSync(target, 'utf8')).toBe('keep\n');
    // not due again for a while: nothing is read or removed
    writeFileSync(log('gone', 'rgone002'), 'old\n');
    expect(pruneHistory(s, limits, now + 1000)).toBeUndefined();
    expect(existsSync(log('gone', 'rgone002'))).toBe(true);
    s.close();
  });

  it('keeps exactly the newest events_max_rows ended runs', () => {
    const s = State.open(join(t.dir, 'state'));
    const now = 100 * DAY;
    s.db.transaction(() => {
      for (let i = 0; i < 1005; i++) insertRun(s, { id: `r${String(i).padStart(6, '0')}`, state: 'exited', exit_code: 0, started_at: now - 10_000 + i, ended_at: now - 5000 + i });
    })();
    pruneHistory(s, limits, now);
    expect((s.db.prepare('SELECT COUNT(*) n FROM runs').get() as { n: number }).n).toBe(1000);
    expect((s.db.prepare('SELECT MIN(started_at) m FROM runs').get() as { m: number }).m).toBe(now - 10_000 + 5);
    s.close();
  });
});
