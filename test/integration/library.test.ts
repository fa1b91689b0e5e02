import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { getMetrics, isUnderPressure, recommendedAgentCount, State, waitForLevel } from '../../src/index.js';
import { tempDir } from '../helpers.js';

let t: ReturnType<typeof tempDir>;
beforeEach(() => (t = tempDir()));
afterEach(() => t.cleanup());

describe('library API', () => {
  it('reads the same state and config as the CLI', async () => {
    const configPath = join(t.dir, 'c.toml');
    writeFileSync(configPath, '[throttle]\nmemory_pct = [0.1, 0.2, 0.3]\n');
    const opts = { stateDir: join(t.dir, 's'), configPath, env: {} };
    const m = await getMetrics(opts);
    expect(m.throttle_level).toBe(3);
    expect(await isUnderPressure(opts)).toBe(true);
    expect(await recommendedAgentCount(opts)).toBe(1);
    const w = await waitForLevel({ ...opts, level: 1, timeoutMs: 300, pollMs: 100 });
    expect(w.ok).toBe(false);
    expect(w.waitedMs).toBeGreaterThanOrEqual(300);
    const s = State.open(join(t.dir, 's'));
    expect(s.events({ kind: 'throttle.level' })[0]!.command).toBe('library');
    s.close();
  });

  it('AGENTCTL_DISABLE_THROTTLE in the given env disables it', async () => {
    const configPath = join(t.dir, 'c.toml');
    writeFileSync(configPath, '[throttle]\nmemory_pct = [0.1, 0.2, 0.3]\n');
    const w = await waitForLevel({ stateDir: join(t.dir, 's'), configPath, env: { AGENTCTL_DISABLE_THROTTLE: '1' }, level: 0, timeoutMs: 100 });
    expect(w.ok).toBe(true);
    expect(w.report.disabled).toBe(true);
  });
});
