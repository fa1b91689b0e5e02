import Database from 'better-sqlite3';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cleanEnv, parseJson, Procs, runCli, tempDir } from '../helpers.js';

let t: ReturnType<typeof tempDir>;
let stateDir: string;
const procs = new Procs();
beforeEach(() => {
  t = tempDir();
  stateDir = join(t.dir, 'state');
});
afterEach(async () => {
  await procs.endAll();
  t.cleanup();
});

interface Report {
  timestamp: string;
  memory_used_pct: number;
  cpu_used_pct: number;
  claude_processes: number;
  node_processes: number;
  agent_processes: number;
  throttle_level: number;
  raw_level: number;
  throttle_params: Record<string, unknown>;
  reasons: string[];
  disabled: boolean;
  cpus: number;
  load_1m: number;
  load_per_core: number;
  memory_total_bytes: number;
  memory_available_bytes: number;
  cpu_window_ms: number;
  cpu_from_stored_sample: boolean;
  cpu_short_window: boolean;
  psi: Record<string, number | null> | null;
  max_level?: { limit: number; ok: boolean };
  wait?: { level: number; ok: boolean; waited_ms: number };
}

/** Write a config file and return the flags that use it and the temp state. */
function withConfig(toml: string): string[] {
  const file = join(t.dir, 'agentctl.toml');
  writeFileSync(file, toml);
  return ['--state-dir', stateDir, '--config', file];
}

const status = async (flags: string[], extra: string[] = [], env?: NodeJS.ProcessEnv) => {
  const r = await runCli(['throttle-status', '--json', ...flags, ...extra], env ? { env } : {});
  return { ...r, report: r.stdout ? parseJson<Report>(r.stdout) : undefined };
};

describe('throttle-status --json', () => {
  it('has the seed fields, and values that agree with /proc', async () => {
    const r = await status(['--state-dir', stateDir]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const j = r.report!;
    for (const k of ['timestamp', 'memory_used_pct', 'cpu_used_pct', 'claude_processes', 'node_processes', 'throttle_level', 'throttle_params']) {
      expect(j).toHaveProperty(k);
    }
    expect(Object.keys(j.throttle_params).sort()).toEqual(['batch_size', 'delay_ms', 'level', 'max_agents', 'max_concurrent', 'name', 'reasoning_effort']);
    expect(j.throttle_params.level).toBe(j.throttle_level);
    expect(Date.parse(j.timestamp)).toBeGreaterThan(Date.now() - 60_000);

    const meminfo = readFileSync('/proc/meminfo', 'utf8');
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(meminfo)![1]) * 1024;
    expect(j.memory_total_bytes).toBe(kb('MemTotal'));
    const usedNow = ((kb('MemTotal') - kb('MemAvailable')) / kb('MemTotal')) * 100;
    expect(Math.abs(j.memory_used_pct - usedNow)).toBeLessThan(3);
    const cpus = (readFileSync('/proc/stat', 'utf8').match(/^cpu\d+ /gm) ?? []).length;
    expect(j.cpus).toBe(cpus);
    const load1 = Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
    expect(Math.abs(j.load_1m - load1)).toBeLessThan(1.5);
    expect(j.load_per_core).toBeCloseTo(j.load_1m / cpus, 1);
    expect(j.cpu_used_pct).toBeGreaterThanOrEqual(0);
    expect(j.cpu_used_pct).toBeLessThanOrEqual(100);
    // the first run has no stored sample: it probed for 250 ms, shorter than the 10 s window
    expect(j.cpu_from_stored_sample).toBe(false);
    expect(j.cpu_window_ms).toBeGreaterThanOrEqual(250);
    expect(j.cpu_short_window).toBe(true);
    expect(statSync(stateDir).mode & 0o777).toBe(0o700);
  });

  it('reuses a recent stored sample for CPU instead of waiting', async () => {
    await status(['--state-dir', stateDir]);
    await new Promise((r) => setTimeout(r, 300));
    const j = (await status(['--state-dir', stateDir])).report!;
    expect(j.cpu_from_stored_sample).toBe(true);
    expect(j.cpu_window_ms).toBeGreaterThanOrEqual(250);
    expect(j.cpu_short_window).toBe(true); // younger than cpu_window (10 s)
  });

  it('counts claude sessions started by hand', async () => {
    const before = (await status(['--state-dir', stateDir])).report!;
    await procs.fakeClaude(t.dir);
    await procs.fakeClaude(t.dir);
    const after = (await status(['--state-dir', stateDir])).report!;
    expect(after.claude_processes).toBe(before.claude_processes + 2);
    expect(after.agent_processes).toBe(before.agent_processes + 2);
  });

  it('rises to heavy under real busy processes', async () => {
    const flags = withConfig('[throttle]\nmemory_pct = [97, 98, 99]\ncpu_pct = [30, 50, 70]\ncpu_window = "250ms"\n');
    const cpus = (await status(flags)).report!.cpus;
    for (let i = 0; i < cpus; i++) await procs.busy();
    await new Promise((r) => setTimeout(r, 300));
    const j = (await status(flags, [], cleanEnv())).report!;
    expect(j.cpu_used_pct).toBeGreaterThan(70);
    expect(j.raw_level).toBe(3);
    expect(j.throttle_level).toBe(3);
    expect(j.throttle_params.name).toBe('heavy');
    expect(j.reasons.join(' ')).toMatch(/cpu \d+(\.\d)?% >= 70%/);
  });

  it('recovers gradually: holds the level for the recovery interval after pressure ends', async () => {
    const flags = withConfig('[throttle]\nmemory_pct = [97, 98, 99]\ncpu_pct = [30, 50, 70]\ncpu_window = "250ms"\nrecovery_interval = "1m"\n');
    const cpus = (await status(flags)).report!.cpus;
    const busy = [];
    for (let i = 0; i < cpus; i++) busy.push(await procs.busy());
    await new Promise((r) => setTimeout(r, 300));
    expect((await status(flags)).report!.throttle_level).toBe(3);
    await procs.endAll();
    await new Promise((r) => setTimeout(r, 1500));
    const j = (await status(flags)).report!;
    expect(j.raw_level).toBeLessThan(3);
    expect(j.throttle_level).toBe(3);
    expect(j.reasons.join(' ')).toMatch(/recovering: one level down per 60s/);
  });

  it('thresholds from a config file change the level', async () => {
    const low = (await status(withConfig('[throttle]\nmemory_pct = [97, 98, 99]\ncpu_pct = [97, 98, 99]\n'))).report!;
    expect(low.memory_used_pct).toBeLessThan(97); // precondition for this host
    expect(low.raw_level).toBeLessThan(3);
    const high = (await status(withConfig('[throttle]\nmemory_pct = [0.1, 0.2, 0.3]\ncpu_pct = [97, 98, 99]\n'))).report!;
    expect(high.throttle_level).toBe(3);
    expect(high.reasons[0]).toMatch(/^memory [\d.]+% >= 0.3%$/);
    expect(high.throttle_params).toMatchObject({ max_agents: 1, batch_size: 10, delay_ms: 2000 });
  });

  it('AGENTCTL_DISABLE_THROTTLE=1 forces level 0 and says so', async () => {
    const flags = withConfig('[throttle]\nmemory_pct = [0.1, 0.2, 0.3]\n');
    const r = await status(flags, [], cleanEnv({ AGENTCTL_DISABLE_THROTTLE: '1' }));
    expect(r.report!.throttle_level).toBe(0);
    expect(r.report!.raw_level).toBe(3);
    expect(r.report!.disabled).toBe(true);
    expect(r.report!.reasons).toEqual(['throttling disabled by AGENTCTL_DISABLE_THROTTLE']);
    const human = await runCli(['throttle-status', ...flags], { env: cleanEnv({ AGENTCTL_DISABLE_THROTTLE: '1' }) });
    expect(human.stdout).toMatch(/throttling disabled by AGENTCTL_DISABLE_THROTTLE/);
  });
});

/** The aggregate cpu line of /proc/stat: busy and total clock ticks. */
function cpuTicks(): { busy: number; total: number } {
  const v = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = v.reduce((a, b) => a + b, 0);
  return { busy: total - v[3]! - v[4]!, total };
}
const pctBetween = (a: { busy: number; total: number }, b: { busy: number; total: number }) => (b.total > a.total ? ((b.busy - a.busy) / (b.total - a.total)) * 100 : 0);
const cpuCount = () => (readFileSync('/proc/stat', 'utf8').match(/^cpu\d+ /gm) ?? []).length;

describe('agentctl does not throttle itself', () => {
  it('12 back-to-back spawns leave the level at 0, though each start-up crosses level 1 over a short window', async (ctx) => {
    // The host's own CPU use first, over 2 s (this test process idles meanwhile): the CI host
    // may be running other things, and the thresholds sit just above what it does by itself.
    const a = cpuTicks();
    await new Promise((r) => setTimeout(r, 2_000)); // the span measured, not a wait for a condition
    const baseline = pctBetween(a, cpuTicks());
    // Level 1 begins a quarter of one core above the baseline: a single agentctl start-up,
    // measured over the short span it runs in, is well over that; the same start-ups averaged
    // over the 10 s window are not. Levels 2 and 3 just above, so a spike reads as level 3.
    const t1 = Math.round((baseline + (100 / cpuCount()) * 0.25) * 10) / 10;
    if (t1 + 0.2 > 90) {
      console.warn(`skipped: the host is busy by itself (${baseline.toFixed(1)}% CPU); no room for thresholds above it`);
      ctx.skip();
    }
    const flags = withConfig(`[throttle]\nmemory_pct = [97, 98, 99]\ncpu_pct = [${t1}, ${Math.round((t1 + 0.1) * 10) / 10}, ${Math.round((t1 + 0.2) * 10) / 10}]\n`);
    const env = cleanEnv({ AGENTCTL_SPAWN_COUNT_UNMANAGED: '0' });
    const spikes: number[] = [];
    for (let i = 1; i <= 12; i++) {
      const before = cpuTicks();
      const r = await runCli(['spawn', '--name', `x${i}`, ...flags, '--', 'true'], { env });
      spikes.push(pctBetween(before, cpuTicks()));
      expect(r.code, r.stderr).toBe(0);
    }
    // The test can fail: over the span of one spawn the host was above level 1 by these
    // thresholds, which is what a reading against the previous spawn's sample used to see.
    expect(Math.max(...spikes), `spikes ${spikes.map((x) => x.toFixed(0)).join(' ')} vs level 1 at ${t1}%`).toBeGreaterThanOrEqual(t1);

    const j = (await status(flags, [], env)).report!;
    expect(j.throttle_level, j.reasons.join('; ')).toBe(0);
    expect(j.raw_level).toBe(0);
    expect(j.reasons.filter((x) => /^cpu /.test(x))).toEqual([]);
    // and no spawn's admission saw another level: every stored reading decided level 0
    const db = new Database(join(stateDir, 'state.db'), { readonly: true });
    try {
      const levels = db.prepare('SELECT level, raw_level, cpu_used_pct FROM samples ORDER BY ts').all() as Array<{ level: number; raw_level: number; cpu_used_pct: number }>;
      expect(levels.length).toBeGreaterThanOrEqual(13);
      expect(levels.filter((l) => l.level !== 0 || l.raw_level !== 0), JSON.stringify(levels)).toEqual([]);
    } finally {
      db.close();
    }
  }, 60_000);

  it('two busy processes per core held for 15 s raise it to 3 over the full window', async () => {
    const flags = withConfig('[throttle]\nmemory_pct = [97, 98, 99]\ncpu_pct = [30, 50, 70]\n');
    const cpus = cpuCount();
    for (let i = 0; i < 2 * cpus; i++) await procs.busy();
    const since = Date.now();
    // readings every second until one is judged over the full 10 s window, with the load held 15 s
    let j = (await status(flags)).report!;
    while (j.cpu_short_window || Date.now() - since < 15_000) {
      if (Date.now() - since > 40_000) throw new Error(`no full-window reading after 40 s: ${JSON.stringify(j)}`);
      await new Promise((r) => setTimeout(r, 1_000));
      j = (await status(flags)).report!;
    }
    expect(j.cpu_from_stored_sample).toBe(true);
    expect(j.cpu_window_ms).toBeGreaterThanOrEqual(10_000);
    expect(j.cpu_used_pct).toBeGreaterThan(70);
    expect(j.raw_level).toBe(3);
    expect(j.throttle_level).toBe(3);
    expect(j.reasons).toEqual([expect.stringMatching(/^cpu [\d.]+% >= 70%$/)]);
  }, 60_000);
});

describe('memory pressure (PSI)', () => {
  it('a memory PSI threshold of 0 is reached, and named in reasons and why:', async (ctx) => {
    if (!existsSync('/proc/pressure/memory')) {
      console.warn('skipped: this kernel has no /proc/pressure/memory (Linux < 4.20 or psi=0)');
      ctx.skip();
    }
    const flags = withConfig('[throttle]\nmemory_pct = [97, 98, 99]\ncpu_pct = [97, 98, 99]\npsi_memory_some = 0\npsi_memory_full = 100\nswap_in_rate = 1000000000\n');
    const j = (await status(flags)).report!;
    expect(j.psi).not.toBeNull();
    expect(j.raw_level).toBeGreaterThanOrEqual(1);
    expect(j.reasons).toContainEqual(`memory pressure some ${j.psi!.memory_some_avg10}% >= 0%`);
    const human = await runCli(['throttle-status', ...flags], { env: cleanEnv() });
    expect(human.stdout).toMatch(/^why: .*memory pressure some [\d.]+% >= 0%/m);
  });

  it('the default thresholds leave an unpressured host alone', async (ctx) => {
    if (!existsSync('/proc/pressure/memory')) ctx.skip();
    const j = (await status(withConfig('[throttle]\nmemory_pct = [97, 98, 99]\ncpu_pct = [97, 98, 99]\n'))).report!;
    if ((j.psi!.memory_some_avg10 ?? 0) >= 20 || (j.psi!.memory_full_avg10 ?? 0) >= 5) {
      console.warn(`skipped: this host is under memory pressure now (${JSON.stringify(j.psi)})`);
      ctx.skip();
    }
    expect(j.reasons.filter((r) => r.startsWith('memory pressure'))).toEqual([]);
  });
});

describe('--max-level and --wait-level', () => {
  const heavy = '[throttle]\nmemory_pct = [0.1, 0.2, 0.3]\n';

  it('--max-level exits 75 above the limit and 0 at or below it', async () => {
    const flags = withConfig(heavy);
    const above = await status(flags, ['--max-level', '2']);
    expect(above.code).toBe(75);
    expect(above.report!.max_level).toEqual({ limit: 2, ok: false });
    expect(above.stderr).toMatch(/^agentctl: throttle level 3 \(heavy\) is above --max-level 2: memory/);
    const at = await status(flags, ['--max-level', '3']);
    expect(at.code).toBe(0);
    expect(at.report!.max_level).toEqual({ limit: 3, ok: true });
    // and the refusal is in the audit log
    const ev = parseJson<{ events: Array<{ kind: string }> }>((await runCli(['events', '--json', '--state-dir', stateDir])).stdout);
    expect(ev.events.map((e) => e.kind)).toContain('throttle.refused');
  });

  it('--wait-level exits 75 when the timeout runs out', async () => {
    const r = await status(withConfig(heavy), ['--wait-level', '1', '--timeout', '1500ms']);
    expect(r.code).toBe(75);
    expect(r.report!.wait!.ok).toBe(false);
    expect(r.report!.wait!.waited_ms).toBeGreaterThanOrEqual(1500);
    expect(r.stderr).toMatch(/stayed above 1 for 2s|stayed above 1 for 1500ms/);
  });

  it('--wait-level returns 0 at once when already at or below', async () => {
    const r = await status(['--state-dir', stateDir], ['--wait-level', '3', '--timeout', '10s']);
    expect(r.code).toBe(0);
    expect(r.report!.wait).toMatchObject({ level: 3, ok: true });
    expect(r.report!.wait!.waited_ms).toBeLessThan(5000);
  });

  it('--wait-level returns 0 once real pressure ends and the level recovers', async () => {
    // heavy needs >= 80 % CPU (every core busy); waiting for level 1 only needs it under 60 %,
    // which a host running nothing but this test reaches at once when the busy loops end
    const flags = withConfig('[throttle]\nmemory_pct = [97, 98, 99]\ncpu_pct = [40, 60, 80]\ncpu_window = "250ms"\nrecovery_interval = "300ms"\n');
    const cpus = (await status(flags)).report!.cpus;
    for (let i = 0; i < cpus; i++) await procs.busy();
    await new Promise((r) => setTimeout(r, 300));
    expect((await status(flags)).report!.throttle_level).toBe(3);
    const waiting = status(flags, ['--wait-level', '1', '--timeout', '25s']);
    await new Promise((r) => setTimeout(r, 1500));
    await procs.endAll();
    const r = await waiting;
    expect(r.code).toBe(0);
    expect(r.report!.wait!.ok).toBe(true);
    expect(r.report!.wait!.waited_ms).toBeGreaterThanOrEqual(1000);
  });
});

describe('--write and --prometheus', () => {
  it('write the seed JSON and node_exporter textfile atomically', async () => {
    const seed = join(t.dir, 'resource_metrics.json');
    const prom = join(t.dir, 'agentctl.prom');
    const r = await runCli(['throttle-status', '--quiet', '--state-dir', stateDir, '--write', seed, '--prometheus', prom], { env: cleanEnv() });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('');
    const j = parseJson<Record<string, unknown>>(readFileSync(seed, 'utf8'));
    expect(Object.keys(j)).toEqual(['timestamp', 'memory_used_pct', 'cpu_used_pct', 'claude_processes', 'node_processes', 'throttle_level', 'throttle_params']);
    const text = readFileSync(prom, 'utf8');
    for (const line of text.trim().split('\n')) {
      expect(line).toMatch(/^(# (HELP|TYPE) agentctl_\w+ .+|agentctl_\w+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? -?[\d.e+-]+)$/);
    }
    expect(text).toMatch(/^agentctl_throttle_level [0-3]$/m);
    expect(text).toMatch(/^agentctl_processes\{kind="claude"\} \d+$/m);
    expect(text).toMatch(/^agentctl_last_run_timestamp_seconds\{command="throttle-status"\} \d{10}$/m);
  });

  it('a path in a missing folder is bad input: exit 2 and nothing written, not even the state', async () => {
    const r = await runCli(['throttle-status', '--state-dir', stateDir, '--write', join(t.dir, 'no', 'such', 'file.json')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^agentctl: --write: folder .*no\/such does not exist; expected a file path in an existing folder\n$/);
    expect(existsSync(stateDir)).toBe(false);
  });
});

describe('--watch', () => {
  it('prints one JSON line per reading until interrupted', async () => {
    const { spawn } = await import('node:child_process');
    const { BIN } = await import('../helpers.js');
    const child = spawn(process.execPath, [BIN, 'throttle-status', '--watch', '200ms', '--json', '--state-dir', stateDir], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    try {
      const until = Date.now() + 10_000;
      while (out.split('\n').filter(Boolean).length < 3 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    } finally {
      const exited = child.exitCode !== null ? Promise.resolve(child.exitCode) : new Promise((r) => child.once('exit', (code) => r(code)));
      child.kill('SIGINT');
      expect(await exited).toBe(0);
    }
    const lines = out.trim().split('\n');
    expect(lines.length).toBeGreaterThanOrEqual(3);
    for (const l of lines) expect(parseJson<Report>(l).throttle_params).toBeDefined();
  });
});
