// throttle-status as a whole command (options, readings, hysteresis, --wait-level polling,
// exit codes) on a fake host: the CPU readings are injected through the context's sampler and
// clock, so what each reading decides is set by the test, never by the machine's own load.
// (These replace integration tests that started one busy loop per core and needed the rest of
// the host to be calm for the reading to come out as expected.)
import { type OptionValues, optionDefaults } from '../../src/core/declaration.js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createCtx } from '../../src/cli/context.js';
import { makeUi } from '../../src/cli/output.js';
import { declaration, render, renderLine, run } from '../../src/commands/throttle-status.js';
import { FakeHost } from '../fake-host.js';
import { tempDir } from '../helpers.js';

let t: ReturnType<typeof tempDir>;
let host: FakeHost;
beforeEach(() => {
  t = tempDir();
  host = new FakeHost();
});
afterEach(() => t.cleanup());

/** Run `throttle-status --json` with `opts` under `toml` on the fake host; `onSleep` runs at each wait. */
async function status(toml: string, opts: OptionValues = {}, onSleep: (ms: number) => void = () => {}) {
  const configPath = join(t.dir, 'agentctl.toml');
  writeFileSync(configPath, toml);
  const ctx = createCtx({
    globals: { json: true, quiet: false, stateDir: join(t.dir, 'state'), config: configPath },
    env: {},
    cwd: t.dir,
    stdout: { write: () => true },
    stderr: { write: () => true },
    colorOut: false,
    colorErr: false,
    now: () => host.now,
    sleep: async (ms) => {
      host.advance(ms);
      onSleep(ms);
    },
    sampler: host.sampler(),
    listProcesses: async () => [],
  });
  try {
    const out = await run({ ...optionDefaults(declaration), ...opts }, [], ctx);
    return { code: out.exitCode ?? 0, report: out.data! };
  } finally {
    ctx.close();
  }
}

/** A reading stored, then the CPU `busyPct` busy for 300 ms and read again: level 3 under `toml`. */
async function pressure(toml: string, busyPct: number): Promise<void> {
  await status(toml);
  host.busyPct = busyPct;
  host.advance(300);
  expect((await status(toml)).report.throttle_level).toBe(3);
}

describe('throttle-status on injected readings', () => {
  it('rises to heavy when the CPU is busy over the whole window', async () => {
    const toml = '[throttle]\nmemory_pct = [97, 98, 99]\ncpu_pct = [30, 50, 70]\ncpu_window = "250ms"\n';
    host.busyPct = 20;
    expect((await status(toml)).report.throttle_level).toBe(0);
    host.busyPct = 90;
    host.advance(300);
    const j = (await status(toml)).report;
    expect(j.cpu_from_stored_sample).toBe(true);
    expect(j.cpu_short_window).toBe(false);
    expect(j.cpu_used_pct).toBe(90);
    expect(j.raw_level).toBe(3);
    expect(j.throttle_level).toBe(3);
    expect(j.throttle_params.name).toBe('heavy');
    expect(j.reasons).toEqual(['cpu 90% >= 70%']);
  });

  it('recovers gradually: holds the level for the recovery interval after pressure ends', async () => {
    const toml = '[throttle]\nmemory_pct = [97, 98, 99]\ncpu_pct = [30, 50, 70]\ncpu_window = "250ms"\nrecovery_interval = "1m"\n';
    await pressure(toml, 90);
    host.busyPct = 5;
    host.advance(1_500);
    const j = (await status(toml)).report;
    expect(j.raw_level).toBe(0);
    expect(j.throttle_level).toBe(3);
    expect(j.reasons.join(' ')).toMatch(/recovering: one level down per 60s/);
    // and one recovery interval of calm later, one level down
    host.advance(60_000);
    expect((await status(toml)).report.throttle_level).toBe(2);
  });

  it('--wait-level returns 0 once pressure ends and the level recovers', async () => {
    const toml = '[throttle]\nmemory_pct = [97, 98, 99]\ncpu_pct = [40, 60, 80]\ncpu_window = "250ms"\nrecovery_interval = "300ms"\n';
    await pressure(toml, 100);
    // the pressure ends after the waiter's second poll
    let polls = 0;
    const r = await status(toml, { waitLevel: '1', timeout: '25s' }, () => {
      if (++polls === 2) host.busyPct = 10;
    });
    expect(r.code).toBe(0);
    expect(r.report.wait).toMatchObject({ level: 1, ok: true });
    expect(r.report.throttle_level).toBeLessThanOrEqual(1);
    expect(r.report.wait!.waited_ms).toBeGreaterThanOrEqual(2_000);
    expect(r.report.wait!.waited_ms).toBeLessThan(25_000);
  });

  it('memory thresholds from a config file set the level', async () => {
    host.memoryUsedPct = 93;
    const low = (await status('[throttle]\nmemory_pct = [97, 98, 99]\ncpu_pct = [97, 98, 99]\n')).report;
    expect([low.raw_level, low.reasons]).toEqual([0, []]);
    const mid = (await status('[throttle]\nmemory_pct = [90, 95, 99]\ncpu_pct = [97, 98, 99]\n')).report;
    expect([mid.raw_level, mid.reasons]).toEqual([1, ['memory 93% >= 90%']]);
  });

  it('a memory PSI threshold of 0 is reached, and named in reasons and the why: line', async () => {
    host.psi = { cpu_some_avg10: 0, memory_some_avg10: 0.25, memory_full_avg10: 0, io_some_avg10: 0, io_full_avg10: 0 };
    host.busyPct = 10;
    const toml = '[throttle]\nmemory_pct = [97, 98, 99]\ncpu_pct = [97, 98, 99]\npsi_memory_some = 0\npsi_memory_full = 100\nswap_in_rate = 1000000000\n';
    const j = (await status(toml)).report;
    expect(j.raw_level).toBe(1);
    expect(j.reasons).toEqual(['memory pressure some 0.25% >= 0%']);
    expect(render(j, makeUi(false))).toMatch(/^why: memory pressure some 0\.25% >= 0%$/m);
  });

  it('--wait-level exits 75 when the pressure outlasts the timeout', async () => {
    const toml = '[throttle]\nmemory_pct = [97, 98, 99]\ncpu_pct = [40, 60, 80]\ncpu_window = "250ms"\n';
    await pressure(toml, 100);
    const r = await status(toml, { waitLevel: '1', timeout: '5s' });
    expect(r.code).toBe(75);
    expect(r.report.wait).toMatchObject({ level: 1, ok: false, waited_ms: 5_000 });
  });
});

describe('throttle-status --watch lines', () => {
  it('fit the width: parts moved to indented lines, never split; one line when there is room', async () => {
    const { report } = await status('');
    const whole = renderLine(report, makeUi(false));
    expect(whole.split('\n')).toHaveLength(1);
    expect(whole.length).toBeGreaterThan(80);
    const fitted = renderLine(report, makeUi(false, undefined, 80));
    const lines = fitted.split('\n');
    expect(lines.length).toBeGreaterThan(1);
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(80);
    for (const l of lines.slice(1)) expect(l.startsWith(' '.repeat(10))).toBe(true);
    // the same parts, in the same order
    expect(lines.map((l) => l.trim()).join('  ')).toBe(whole);
  });
});
