// measure(): which window CPU is judged over, our own CPU left out, PSI and swap fed to the
// level, the seed document's exact shape. A fake sampler and clock; a real state db in a temp dir.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/core/config/load.js';
import type { Config } from '../../src/core/config/types.js';
import { CPU_PROBE_MS, measure, type MeasureDeps, seedMetrics } from '../../src/core/measure.js';
import { State } from '../../src/core/state.js';
import { FakeHost } from '../fake-host.js';
import { tempDir } from '../helpers.js';

let t: ReturnType<typeof tempDir>;
let state: State;
let host: FakeHost;
beforeEach(() => {
  t = tempDir();
  state = State.open(t.dir);
  host = new FakeHost();
});
afterEach(() => {
  state.close();
  t.cleanup();
});

const config = (throttle: Partial<Config['throttle']> = {}): Config => {
  const c = loadConfig({ defaultsOnly: true }).config;
  return { ...c, throttle: { ...c.throttle, ...throttle } };
};
const read = (c = config()) => measure(host.deps(), c, state);

describe('measure: the CPU window', () => {
  it('defaults: judged over at least 10 s, stored samples up to 2 min old', () => {
    expect(config().throttle.cpuWindowMs).toBe(10_000);
    expect(config().throttle.sampleMaxAgeMs).toBe(120_000);
  });

  it('on a fresh state probes briefly instead of waiting out the window, and judges it as short', async () => {
    host.busyPct = 80; // over 75 %: level 2 over a full window
    const r = await read();
    expect(host.sleeps).toEqual([CPU_PROBE_MS]);
    expect(r.cpu_from_stored_sample).toBe(false);
    expect(r.cpu_short_window).toBe(true);
    expect(r.cpu_used_pct).toBe(80);
    expect(r.raw_level).toBe(0);
    expect(r.reasons).toEqual([]);
  });

  it('a saturated host counts even over the short probe', async () => {
    host.busyPct = 100;
    const r = await read();
    expect(r.raw_level).toBe(3);
    expect(r.reasons).toEqual(['cpu 100% >= 95% over a short window']);
  });

  it('with only young samples stored, measures from the oldest of them without waiting', async () => {
    await read(); // probe: a sample at t0
    host.advance(3_000);
    await read(); // a sample at t0 + 3.25 s
    host.busyPct = 80;
    host.advance(2_000);
    host.sleeps = [];
    const r = await read();
    expect(host.sleeps).toEqual([]);
    expect(r.cpu_from_stored_sample).toBe(true);
    expect(r.cpu_short_window).toBe(true);
    expect(r.cpu_window_ms).toBe(5_000); // from the first sample, not the newest
    expect(r.raw_level).toBe(0);
  });

  it('judges over the newest stored sample at least cpu_window old', async () => {
    await read(); // t0
    host.advance(4_000);
    await read(); // t0 + 4.25 s
    host.busyPct = 80;
    host.advance(7_000);
    await read(); // t0 + 11.25 s: against the first sample (11 s old)
    host.advance(5_000);
    host.sleeps = [];
    const r = await read(); // t0 + 16.25 s: the second (12 s old) is the newest >= 10 s
    expect(host.sleeps).toEqual([]);
    expect(r.cpu_from_stored_sample).toBe(true);
    expect(r.cpu_short_window).toBe(false);
    expect(r.cpu_window_ms).toBe(12_000);
    expect(r.cpu_used_pct).toBe(80);
    expect(r.raw_level).toBe(2);
    expect(r.reasons).toEqual(['cpu 80% >= 75%']);
  });

  it('does not measure against a sample older than sample_max_age', async () => {
    await read();
    host.advance(121_000);
    host.sleeps = [];
    const r = await read();
    expect(host.sleeps).toEqual([CPU_PROBE_MS]);
    expect(r.cpu_from_stored_sample).toBe(false);
  });

  it('a cpu_window at or below the probe makes the probe a full window', async () => {
    host.busyPct = 80;
    const r = await read(config({ cpuWindowMs: 200 }));
    expect(host.sleeps).toEqual([200]);
    expect(r.cpu_short_window).toBe(false);
    expect(r.raw_level).toBe(2);
  });
});

describe('measure: agentctl leaves its own CPU time out', () => {
  it('a process started inside the window: all its CPU time is left out of busy and total', async () => {
    await read(); // t0, before "this process" started
    host.busyPct = 10;
    host.own = { used: 0, startedAt: host.now + 50 };
    // 300 ms: this process used 50 ticks of the 60 the 2 CPUs had; others 10 % of the rest
    host.advance(300, 50);
    const r = await read();
    expect(r.cpu_used_pct).toBe(10); // 100 % busy counting ourselves
  });

  it('a saturated host stays saturated: our time displaced others, it did not add to it', async () => {
    await read();
    host.busyPct = 100;
    host.own = { used: 0, startedAt: host.now + 50 };
    host.advance(300, 50);
    expect((await read()).cpu_used_pct).toBe(100);
  });

  it('a process older than the window (--watch, a library user) is not subtracted', async () => {
    host.own = { used: 500, startedAt: host.now - 60_000 };
    await read();
    host.busyPct = 0;
    host.advance(1_000, 100);
    const r = await read();
    expect(r.cpu_used_pct).toBe(50); // 100 of the 200 ticks: it cannot tell its share in the window
  });

  it('the probe leaves out what this process used during the probe only', async () => {
    host.own = { used: 40, startedAt: host.now - 100 }; // its start-up, before the probe
    const deps: MeasureDeps = { ...host.deps(), sleep: async (ms) => host.advance(ms, 10) };
    host.busyPct = 20;
    const r = await measure(deps, config(), state);
    expect(r.cpu_used_pct).toBe(20);
  });
});

describe('measure: PSI, swap and load reach the level', () => {
  it('memory PSI full and swap-in raise the level at once, even on a short window', async () => {
    host.psi = { cpu_some_avg10: 0, memory_some_avg10: 30, memory_full_avg10: 8, io_some_avg10: 0, io_full_avg10: 0 };
    const r = await read();
    expect(r.cpu_short_window).toBe(true);
    expect(r.raw_level).toBe(2);
    expect(r.reasons).toEqual(['memory pressure full 8% >= 5%']);
  });

  it('swap-in is a rate over the measuring window', async () => {
    await read();
    host.advance(10_000);
    host.swapIn += 10 * 150; // 150 pages/s
    const r = await read();
    expect(r.swap_in_per_s).toBe(150);
    expect(r.raw_level).toBe(2);
    expect(r.reasons).toEqual(['swap-in 150 pages/s >= 100 pages/s']);
  });

  it('without PSI nothing is assumed', async () => {
    host.psi = null;
    const r = await read(config({ psiMemorySomePct: 0, psiMemoryFullPct: 0 }));
    expect(r.raw_level).toBe(0);
  });

  it('load per core only when configured', async () => {
    host.load1 = 5; // 2.5 per core
    expect((await read()).raw_level).toBe(0);
    const r = await read(config({ loadPerCore: 2 }));
    expect(r.raw_level).toBe(1);
    expect(r.reasons).toEqual(['load 2.5 per core >= 2']);
  });
});

describe('seedMetrics: the resource_metrics.json shape', () => {
  it('has exactly the seed keys, in the seed order', async () => {
    const seed = seedMetrics(await read());
    expect(Object.keys(seed)).toEqual(['timestamp', 'memory_used_pct', 'cpu_used_pct', 'claude_processes', 'node_processes', 'throttle_level', 'throttle_params']);
    expect(Object.keys(seed.throttle_params as object)).toEqual(['level', 'name', 'max_agents', 'batch_size', 'delay_ms', 'max_concurrent', 'reasoning_effort']);
  });
});
