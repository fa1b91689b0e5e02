/**
 * An out-of-memory message is looked for at the end of the run's output, which may be in
 * `<log>.prev` once the supervisor capped the log at the run's end.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { logSaysOom } from '../../src/core/runs/usage.js';
import { State } from '../../src/core/state.js';
import { tempDir } from '../helpers.js';
import { runRow } from '../rows.js';

let t: ReturnType<typeof tempDir>;
beforeEach(() => (t = tempDir()));
afterEach(() => t.cleanup());

describe('logSaysOom', () => {
  it('reads the end of the log, reaching into .prev when the log was emptied by a cap', () => {
    const s = State.open(join(t.dir, 'state'));
    mkdirSync(s.paths.logs, { recursive: true });
    const run = runRow({ id: 'roomlog001', name: 'py' });
    const log = join(s.paths.logs, 'py.roomlog001.log');
    writeFileSync(log, 'working\n');
    expect(logSaysOom(s, run)).toBe(false);
    writeFileSync(`${log}.prev`, `${'x'.repeat(100)}\nTraceback (most recent call last):\nMemoryError\n`);
    writeFileSync(log, '');
    expect(logSaysOom(s, run)).toBe(true);
    // the message long before the last 4 KiB says nothing of how the run ended
    writeFileSync(log, 'y'.repeat(5000));
    expect(logSaysOom(s, run)).toBe(false);
    expect(logSaysOom(s, runRow({ id: 'roomlog001', name: 'py', mode: 'foreground' }))).toBe(false);
    s.close();
  });
});
