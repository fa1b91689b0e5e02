/**
 * The state db opened by several real processes at once, through the built library
 * (dist/core/state.js): so it lives here, after `npm run build`, not in the unit tier.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { State } from '../../src/core/state.js';
import { ROOT, tempDir } from '../helpers.js';

let t: ReturnType<typeof tempDir>;
beforeEach(() => (t = tempDir()));
afterEach(() => t.cleanup());

describe('state db', () => {
  it('concurrent openers migrate once and all succeed', async () => {
    const dir = join(t.dir, 'race');
    mkdirSync(dir);
    // run 6 processes that open the same fresh state at once through the built library
    const children = Array.from({ length: 6 }, () =>
      spawn(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          `import { State } from '${join(ROOT, 'dist/core/state.js')}'; const s = State.open(process.argv[1]); s.event({command:'t',kind:'k',reason:'r'}); s.close();`,
          dir,
        ],
        {
          stdio: ['ignore', 'ignore', 'pipe'],
        },
      ),
    );
    const results = await Promise.all(
      children.map(async (c) => {
        let err = '';
        c.stderr!.on('data', (d) => (err += d));
        const [code] = await once(c, 'exit');
        return { code, err };
      }),
    );
    expect(results).toEqual(results.map(() => ({ code: 0, err: '' })));
    const s = State.open(dir);
    expect(s.events().length).toBe(6);
    s.close();
  });
});
