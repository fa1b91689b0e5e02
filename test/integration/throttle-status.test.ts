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
    // the first run has no stored sample: it measured over the configured window
    expect(j.cpu_from_stored_sample).toBe(false);
    expect(j.cpu_window_ms).toBeGreaterThanOrEqual(250);
    expect(statSync(stateDir).mode & 0o777).toBe(0o700);
  });

  it('reuses a recent stored sample for CPU instead of waiting', async () => {
    await status(['--state-dir', stateDir]);
    await new Promise((r) => setTimeout(r, 300));
    const j = (await status(['--state-dir', stateDir])).report!;
    expect(j.cpu_from_stored_sample).toBe(true);
    expect(j.cpu_window_ms).toBeGreaterThanOrEqual(250);
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
    const flags = withConfig('[throttle]\nmemory_pct = [97, 98, 99]\ncpu_pct = [30, 50, 70]\ncpu_window = "1s"\n');
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
    const flags = withConfig('[throttle]\nmemory_pct = [97, 98, 99]\ncpu_pct = [30, 50, 70]\ncpu_window = "500ms"\nrecovery_interval = "1m"\n');
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
    const flags = withConfig('[throttle]\nmemory_pct = [97, 98, 99]\ncpu_pct = [40, 60, 80]\ncpu_window = "300ms"\nrecovery_interval = "300ms"\n');
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
