/**
 * A fake host for tests of throttle readings: CPU counters that advance with a fake clock,
 * `busyPct` of all CPUs busy, memory, load, swap and PSI as set. Its sampler and clock feed
 * measure() (deps()) or a whole command (createCtx's sampler, now and sleep), so what a
 * reading decides never depends on the load of the machine the tests run on.
 */
import type { MeasureDeps } from '../src/core/measure.js';
import type { CpuCounters, OwnCpu, PsiReading, Sampler, Snapshot } from '../src/core/resources.js';

const CPUS = 2;
const TICKS_PER_S = 100; // /proc/stat counts clock ticks of 10 ms, per CPU

/** A host whose counters advance as the fake clock does, `busyPct` of all CPUs busy. */
export class FakeHost {
  now = 1_800_000_000_000;
  busyPct = 0;
  total = 1_000_000;
  idle = 900_000;
  swapIn = 5_000;
  psi: PsiReading | null = null;
  load1 = 0.1;
  memoryUsedPct = 10;
  /** the measuring process: started at, and CPU ticks used so far */
  own: OwnCpu | undefined = undefined;
  sleeps: number[] = [];

  /** Let `ms` pass: the host busy at busyPct, plus `ownTicks` of the measuring process's time. */
  advance(ms: number, ownTicks = 0): void {
    const ticks = (ms / 1000) * TICKS_PER_S * CPUS;
    this.now += ms;
    this.total += ticks;
    const othersBusy = (ticks - ownTicks) * (this.busyPct / 100);
    this.idle += ticks - ownTicks - othersBusy;
    if (this.own) this.own = { ...this.own, used: this.own.used + ownTicks };
  }

  counters(): CpuCounters {
    return { total: this.total, idle: this.idle };
  }

  sampler(): Sampler {
    return {
      snapshot: async (now): Promise<Snapshot> => ({
        ts: now,
        cpu: this.counters(),
        cpus: CPUS,
        memory: { totalBytes: 100, availableBytes: 100 - this.memoryUsedPct, usedPct: this.memoryUsedPct, swapTotalBytes: 0, swapFreeBytes: 0 },
        load: [this.load1, 0, 0],
        swapIn: this.swapIn,
        swapOut: 0,
        psi: this.psi,
      }),
      counters: () => ({ cpu: this.counters(), swapIn: this.swapIn, swapOut: 0 }),
      ownCpu: () => this.own,
    };
  }

  deps(): MeasureDeps {
    return {
      now: () => this.now,
      sleep: async (ms) => {
        this.sleeps.push(ms);
        this.advance(ms);
      },
      env: {},
      sampler: this.sampler(),
      listProcesses: async () => [],
    };
  }
}
