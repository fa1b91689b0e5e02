import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { envName, fmtMs, KEYS } from '../../src/core/config/keys.js';
import { ignoredWarning, locateKey } from '../../src/core/config/files.js';
import { loadConfig } from '../../src/core/config/load.js';
import { ConfigError, UsageError } from '../../src/core/errors.js';
import { parseDuration } from '../../src/core/units.js';
import { tempDir, thrown } from '../helpers.js';

let t: ReturnType<typeof tempDir>;
let home: string;
let cwd: string;
beforeEach(() => {
  t = tempDir();
  home = join(t.dir, 'home');
  cwd = join(t.dir, 'project');
  mkdirSync(join(home, '.config', 'agentctl'), { recursive: true });
  mkdirSync(cwd, { recursive: true });
});
afterEach(() => t.cleanup());

const userFile = () => join(home, '.config', 'agentctl', 'config.toml');
const projectFile = () => join(cwd, 'agentctl.toml');
const load = (env: NodeJS.ProcessEnv = {}, extra: Parameters<typeof loadConfig>[0] = {}) => loadConfig({ env, cwd, home, ...extra });
const source = (l: ReturnType<typeof loadConfig>, key: string) => l.entries.find((e) => e.key === key)!.source;

const configErr = (fn: () => unknown): ConfigError => thrown(ConfigError, fn);

/** `text` as the project file fails to load, naming `key` and `line`, with a message like `msg`. */
function expectConfigError(text: string, key: string, line: number, msg: RegExp): void {
  writeFileSync(projectFile(), text);
  const e = configErr(() => load());
  expect(e.key).toBe(key);
  expect(e.line).toBe(line);
  expect(e.message).toMatch(msg);
  expect(e.message).toContain(`${projectFile()} line ${line}: ${key}: `);
}

describe('precedence: flag > env > ./agentctl.toml > user config > defaults', () => {
  it('uses built-in defaults with no files', () => {
    const l = load();
    expect(l.config.throttle.memoryPct).toEqual([70, 80, 90]);
    expect(l.config.spawn.minUptimeMs).toBe(10_000);
    expect(l.config.ports).toEqual({ from: 20000, to: 20999 });
    expect(l.files).toEqual([]);
    expect(source(l, 'throttle.cpu_pct').kind).toBe('default');
  });

  it('layers each source over the one below, key by key', () => {
    writeFileSync(userFile(), '[throttle]\ncpu_pct = [50, 60, 70]\nmemory_pct = [60, 70, 80]\n[spawn]\ncooldown = "5s"\n');
    writeFileSync(projectFile(), '[throttle]\nmemory_pct = [65, 75, 85]\n[spawn]\ncooldown = "30s"\nmin_interval = "10s"\n');
    const env = { AGENTCTL_SPAWN_COOLDOWN: '45s', AGENTCTL_SPAWN_MIN_INTERVAL: '20s' };
    const l = load(env, { flags: { 'spawn.min_interval': { value: '1m', flag: '--min-interval' } } });
    expect(l.config.throttle.cpuPct).toEqual([50, 60, 70]);
    expect(source(l, 'throttle.cpu_pct')).toEqual({ kind: 'user', detail: userFile() });
    expect(l.config.throttle.memoryPct).toEqual([65, 75, 85]);
    expect(source(l, 'throttle.memory_pct')).toEqual({ kind: 'project', detail: projectFile() });
    expect(l.config.spawn.cooldownMs).toBe(45_000);
    expect(source(l, 'spawn.cooldown')).toEqual({ kind: 'env', detail: 'AGENTCTL_SPAWN_COOLDOWN' });
    expect(l.config.spawn.minIntervalMs).toBe(60_000);
    expect(source(l, 'spawn.min_interval')).toEqual({ kind: 'flag', detail: '--min-interval' });
    expect(l.files).toEqual([userFile(), projectFile()]);
  });

  it('--config reads only the named file', () => {
    writeFileSync(projectFile(), '[throttle]\nmemory_pct = [65, 75, 85]\n');
    const other = join(t.dir, 'ci.toml');
    writeFileSync(other, '[throttle]\ncpu_pct = [10, 20, 30]\n');
    const l = load({}, { configPath: other });
    expect(l.config.throttle.memoryPct).toEqual([70, 80, 90]);
    expect(l.config.throttle.cpuPct).toEqual([10, 20, 30]);
    expect(l.files).toEqual([other]);
  });

  it('AGENTCTL_CONFIG acts like --config, and a missing explicit file is bad input', () => {
    expect(() => load({ AGENTCTL_CONFIG: join(t.dir, 'nope.toml') })).toThrow(/^AGENTCTL_CONFIG: cannot read .*nope\.toml: no such file/);
    expect(() => load({}, { configPath: join(t.dir, 'nope.toml') })).toThrow(/--config: cannot read .*nope\.toml: no such file/);
  });

  it('env lists are comma separated', () => {
    const l = load({ AGENTCTL_THROTTLE_CPU_PCT: '50, 70,85', AGENTCTL_AGENTS_PATTERNS: 'claude,codex' });
    expect(l.config.throttle.cpuPct).toEqual([50, 70, 85]);
    expect(l.config.agents.patterns).toEqual(['claude', 'codex']);
  });

  it('XDG_CONFIG_HOME moves the user file', () => {
    const xdg = join(t.dir, 'xdg');
    mkdirSync(join(xdg, 'agentctl'), { recursive: true });
    writeFileSync(join(xdg, 'agentctl', 'config.toml'), '[ports]\nrange = "30000-30099"\n');
    expect(load({ XDG_CONFIG_HOME: xdg }).config.ports).toEqual({ from: 30000, to: 30099 });
  });

  it('the hash changes with the effective values', () => {
    const a = load().hash;
    expect(load().hash).toBe(a);
    expect(load({ AGENTCTL_SPAWN_COOLDOWN: '1s' }).hash).not.toBe(a);
  });

  it('keys that feed a timer refuse what a timer cannot wait (25d)', () => {
    for (const key of ['spawn.kill_grace', 'reap.grace', 'throttle.cpu_window']) {
      const spec = KEYS.find((k) => `${k.section}.${k.key}` === key)!;
      expect(() => spec.validate('25d'), key).toThrow(/out of range/);
    }
  });

  it('[throttle] pressure keys: defaults, a file, the environment', () => {
    const d = load().config.throttle;
    expect([d.cpuWindowMs, d.psiMemoryFullPct, d.psiMemorySomePct, d.swapInRate, d.loadPerCore]).toEqual([10_000, 5, 20, 100, 0]);
    writeFileSync(projectFile(), '[throttle]\ncpu_window = "30s"\npsi_memory_full = 2.5\npsi_memory_some = 0\nswap_in_rate = 250\nload_per_core = 1.5\n');
    const f = load().config.throttle;
    expect([f.cpuWindowMs, f.psiMemoryFullPct, f.psiMemorySomePct, f.swapInRate, f.loadPerCore]).toEqual([30_000, 2.5, 0, 250, 1.5]);
    const e = load({ AGENTCTL_THROTTLE_SWAP_IN_RATE: '40', AGENTCTL_THROTTLE_LOAD_PER_CORE: '0.75' }).config.throttle;
    expect([e.swapInRate, e.loadPerCore]).toEqual([40, 0.75]);
    expect(() => load({ AGENTCTL_THROTTLE_PSI_MEMORY_FULL: 'lots' })).toThrow(/AGENTCTL_THROTTLE_PSI_MEMORY_FULL: throttle\.psi_memory_full: expected a number/);
  });

  it('every key has an env name and a default that validates', () => {
    for (const k of KEYS) {
      expect(envName(k.section, k.key)).toMatch(/^AGENTCTL_[A-Z_]+$/);
      expect(() => k.validate(k.default)).not.toThrow();
    }
  });
});

describe('trust: default config files are read only from their owner', () => {
  const me = process.geteuid!();

  it('a group-writable project file is ignored with the reason and the fix; the user file still counts', () => {
    writeFileSync(userFile(), '[spawn]\ncooldown = "5s"\n');
    writeFileSync(projectFile(), '[agents]\npatterns = ["rootdaemon"]\n');
    chmodSync(projectFile(), 0o664);
    const l = load();
    expect(l.files).toEqual([userFile()]);
    expect(source(l, 'agents.patterns').kind).toBe('default');
    expect(l.config.spawn.cooldownMs).toBe(5000);
    expect(l.ignored).toEqual([{ path: projectFile(), reason: expect.stringContaining(`(uid ${me}), mode 0664: writable by group or others; fix: chmod go-w ${projectFile()}`) }]);
    expect(ignoredWarning(l.ignored[0]!)).toMatch(/^agentctl: ignoring config file .*agentctl\.toml: .*; or name it with --config to use it anyway$/);
  });

  it('a file in a folder others can write is ignored; a sticky folder (like /tmp) is not a reason', () => {
    writeFileSync(projectFile(), '[spawn]\ncooldown = "7s"\n');
    chmodSync(cwd, 0o777);
    expect(load().ignored).toEqual([{ path: projectFile(), reason: expect.stringContaining(`its folder ${cwd} is owned by`) }]);
    chmodSync(cwd, 0o1777);
    const l = load();
    expect(l.ignored).toEqual([]);
    expect(l.config.spawn.cooldownMs).toBe(7000);
  });

  it('a symlinked config file is judged by the file it points to', () => {
    const real = join(t.dir, 'dotfiles.toml');
    writeFileSync(real, '[spawn]\ncooldown = "9s"\n');
    symlinkSync(real, userFile());
    expect(load().config.spawn.cooldownMs).toBe(9000);
    chmodSync(real, 0o666);
    expect(load().ignored.map((i) => i.path)).toEqual([userFile()]);
  });

  it('a file named with --config or AGENTCTL_CONFIG is trusted: the caller chose it', () => {
    writeFileSync(projectFile(), '[spawn]\ncooldown = "3s"\n');
    chmodSync(projectFile(), 0o666);
    for (const l of [load({}, { configPath: projectFile() }), load({ AGENTCTL_CONFIG: projectFile() })]) {
      expect(l.config.spawn.cooldownMs).toBe(3000);
      expect(l.ignored).toEqual([]);
    }
  });
});

describe('validation names file, key and line', () => {
  it('TOML syntax errors', () => {
    writeFileSync(projectFile(), '[throttle]\nmemory_pct = [70, 80,\n');
    const e = configErr(() => load());
    expect(e.exitCode).toBe(78);
    expect(e.message).toContain(projectFile());
    expect(e.message).toMatch(/line \d+: invalid TOML/);
  });

  it('unknown sections', () => {
    writeFileSync(projectFile(), '# comment\n\n[throttel]\nmemory_pct = [70, 80, 90]\n');
    const e = configErr(() => load());
    expect(e.message).toBe(`config file ${projectFile()} line 3: throttel: unknown section; accepted: throttle, spawn, ports, reap, dedupe, doctor, env, agents, state, fleet, services, hooks`);
    expect(e.line).toBe(3);
  });

  it('unknown keys', () => {
    writeFileSync(projectFile(), '[throttle]\nmemory_pct = [70, 80, 90]\n\n[spawn]\nmin_uptime = "10s"\nmax_concurrent_workers = 1\n');
    const e = configErr(() => load());
    expect(e.message).toMatch(new RegExp(`line 6: spawn\\.max_concurrent_workers: unknown key; accepted in \\[spawn\\]: min_uptime, cooldown, min_interval, backoff_startup, `));
    expect(e.key).toBe('spawn.max_concurrent_workers');
    expect(e.file).toBe(projectFile());
  });

  it.each([
    ['[throttle]\nmemory_pct = [70, 80]\n', 'throttle.memory_pct', 2, /three percentages/],
    ['[throttle]\nmemory_pct = [80, 70, 90]\n', 'throttle.memory_pct', 2, /ascending/],
    ['[throttle]\ncpu_pct = [60, 75, 190]\n', 'throttle.cpu_pct', 2, /at most 100/],
    ['[throttle]\nmax_agents = [5, 3, 2]\n', 'throttle.max_agents', 2, /four whole numbers/],
    ['[throttle]\nmax_agents = [1, 3, 2, 1]\n', 'throttle.max_agents', 2, /do not grow/],
    ['[throttle]\ndelay_ms = [2000, 1000, 500, 0]\n', 'throttle.delay_ms', 2, /do not shrink/],
    ['[throttle]\nreasoning_effort = ["high", "high", "medium", "tiny"]\n', 'throttle.reasoning_effort', 2, /"tiny" is not one of low, medium, high/],
    ['[throttle]\nrecovery_interval = "soon"\n', 'throttle.recovery_interval', 2, /expected a duration like/],
    ['[throttle]\nrecovery_interval = 30\n', 'throttle.recovery_interval', 2, /as a string/],
    ['[throttle]\ncpu_window = "11m"\n', 'throttle.cpu_window', 2, /out of range \(50ms to 10m\)/],
    ['[throttle]\nmemory_pct = [70, 80, 90]\npsi_memory_full = 101\n', 'throttle.psi_memory_full', 3, /out of range \(0 to 100\)/],
    ['[throttle]\npsi_memory_some = "20%"\n', 'throttle.psi_memory_some', 2, /expected a number from 0 to 100/],
    ['[throttle]\npsi_memory_some = -1\n', 'throttle.psi_memory_some', 2, /out of range/],
    ['[throttle]\nswap_in_rate = -5\n', 'throttle.swap_in_rate', 2, /out of range/],
    ['[throttle]\nload_per_core = true\n', 'throttle.load_per_core', 2, /expected a number/],
    ['[throttle]\npsi_memory = 5\n', 'throttle.psi_memory', 2, /unknown key; accepted in \[throttle\]: .*psi_memory_full, psi_memory_some, swap_in_rate, load_per_core/],
    ['\n[spawn]\nmin_uptime = "400d"\n', 'spawn.min_uptime', 3, /expected a duration/],
    ['[spawn]\ncooldown = "2d"\n', 'spawn.cooldown', 2, /out of range/],
    ['[ports]\nrange = "80-90"\n', 'ports.range', 2, /1024 <= first/],
    ['[ports]\nrange = 20000\n', 'ports.range', 2, /port range like/],
    ['[agents]\npatterns = ["claude", "(unclosed"]\n', 'agents.patterns', 2, /invalid regular expression/],
    ['[state]\nevents_max_rows = 5\n', 'state.events_max_rows', 2, /out of range/],
  ])('%j', expectConfigError);

  it('errors in the user file name the user file', () => {
    writeFileSync(userFile(), '[ports]\nrange = "nope"\n');
    expect(configErr(() => load()).message).toContain(userFile());
  });

  it('bad env values name the variable', () => {
    const e = configErr(() => load({ AGENTCTL_THROTTLE_MEMORY_PCT: '90,80,70' }));
    expect(e.message).toMatch(/^environment variable AGENTCTL_THROTTLE_MEMORY_PCT: throttle\.memory_pct: expected three ascending/);
  });

  it('bad flag values are usage errors', () => {
    expect(() => load({}, { flags: { 'spawn.cooldown': { value: 'x', flag: '--cooldown' } } })).toThrow(UsageError);
  });
});

describe('[[services]]', () => {
  it('accepts the design example', () => {
    writeFileSync(projectFile(), '[[services]]\nname = "orchestrator"\nmatch = "orchestrator.py"\nport = 8080\nurl = "http://127.0.0.1:8080/health"\nexpect_status = 200\n');
    const l = load();
    expect(l.config.services).toEqual([{ name: 'orchestrator', match: 'orchestrator.py', port: 8080, url: 'http://127.0.0.1:8080/health', expect_status: 200, timeoutMs: 2000 }]);
  });

  it.each([
    ['[[services]]\nname = "a"\nport = 8080\n\n[[services]]\nname = "b"\nprot = 1\n', 'services[1].prot', 7, /unknown key/],
    ['[[services]]\nname = "web"\nport = 70000\n', 'services[0].port', 3, /port from 1 to 65535/],
    ['[[services]]\nname = "web"\nurl = "ftp://x"\n', 'services[0].url', 3, /http/],
    ['[[services]]\nname = "web"\n', 'services[0]', 1, /at least one of pidfile, match, port, url/],
    ['[[services]]\nname = "a"\nport = 1\n[[services]]\nname = "a"\nport = 2\n', 'services[1].name', 5, /duplicate/],
    ['[[services]]\nname = "a/b"\nport = 1\n', 'services[0].name', 2, /letters, digits/],
  ])('%j', expectConfigError);
});

describe('locateKey', () => {
  const text = '# top\n[throttle]\nmemory_pct = [1,2,3]\n"cpu_pct" = [4,5,6]\n\n[[services]]\nname = "a"\n[[services]]\nname = "b"\nspawn.cooldown = 1\n';
  it('finds keys, quoted keys, array-of-table entries and headers', () => {
    expect(locateKey(text, 'throttle', 'memory_pct')).toBe(3);
    expect(locateKey(text, 'throttle', 'cpu_pct')).toBe(4);
    expect(locateKey(text, 'throttle')).toBe(2);
    expect(locateKey(text, 'services', 'name', 1)).toBe(9);
    expect(locateKey(text, 'services', undefined, 1)).toBe(8);
    expect(locateKey(text, 'throttle', 'nope')).toBe(2);
  });
});

describe('[fleet]', () => {
  const url = 'postgres://ops:hunter2-secret@db.internal:5432/agentctl';

  it('is off without a url: no fleet settings', () => {
    expect(load().config.fleet).toBeUndefined();
  });

  it('reads url, host id, lease ttl, timeout, on_unreachable and the caps table', () => {
    writeFileSync(projectFile(), `[fleet]\nurl = "${url}"\nhost_id = "ci-3"\nlease_ttl = "30s"\non_unreachable = "admit"\n\n[fleet.caps]\nclaude = 10\nbatch = 2\n`);
    const f = load().config.fleet!;
    expect(f).toEqual({ url, hostId: 'ci-3', leaseTtlMs: 30_000, timeoutMs: 2000, onUnreachable: 'admit', caps: { claude: 10, batch: 2 } });
  });

  it('takes the caps from AGENTCTL_FLEET_CAPS as group=max pairs', () => {
    const f = load({ AGENTCTL_FLEET_URL: url, AGENTCTL_FLEET_CAPS: 'claude=4, batch=1' }).config.fleet!;
    expect(f.caps).toEqual({ claude: 4, batch: 1 });
    expect(f.hostId).toBeUndefined();
    expect(configErr(() => load({ AGENTCTL_FLEET_URL: url, AGENTCTL_FLEET_CAPS: 'claude' })).message).toMatch(/AGENTCTL_FLEET_CAPS: fleet.caps: expected a table/);
  });

  it('never shows the password: the url entry is redacted, and the hash does not depend on it', () => {
    writeFileSync(projectFile(), `[fleet]\nurl = "${url}"\n`);
    const l = load();
    expect(JSON.stringify(l.entries)).not.toContain('hunter2');
    expect(l.entries.find((e) => e.key === 'fleet.url')!.value).toBe('postgres://ops:REDACTED@db.internal:5432/agentctl');
    const other = load({ AGENTCTL_FLEET_URL: url.replace('hunter2-secret', 'other') });
    expect(other.hash).toBe(l.hash);
  });

  it('names the file, line and key of a bad value, without echoing the url', () => {
    expectConfigError('[fleet]\nurl = "mysql://u:hunter2@h/db"\n', 'fleet.url', 2, /expected a postgres:\/\/ or postgresql:\/\/ URL, got a mysql: URL/);
    expectConfigError('[fleet]\nurl = "postgres://u:hunter2@:bad:port/db"\n', 'fleet.url', 2, /value is not shown/);
    expect(configErr(() => load()).message).not.toContain('hunter2');
    expectConfigError(`[fleet]\nurl = "${url}"\nlease_ttl = "5"\n`, 'fleet.lease_ttl', 3, /expected a duration/);
    expectConfigError(`[fleet]\nurl = "${url}"\non_unreachable = "open"\n`, 'fleet.on_unreachable', 3, /expected one of "refuse", "admit"/);
    expectConfigError(`[fleet]\nurl = "${url}"\nhost_id = "a b"\n`, 'fleet.host_id', 3, /expected letters, digits/);
    expectConfigError(`[fleet]\nurl = "${url}"\nlease = "5m"\n`, 'fleet.lease', 3, /unknown key; accepted in \[fleet\]: url, host_id, lease_ttl, timeout, on_unreachable, caps/);
  });

  it('names the line of a bad cap in [fleet.caps]', () => {
    expectConfigError(`[fleet]\nurl = "${url}"\n\n[fleet.caps]\nclaude = 10\nbatch = 0\n`, 'fleet.caps.batch', 6, /expected a whole number from 1 to 100000/);
    expectConfigError(`[fleet]\nurl = "${url}"\n\n[fleet.caps]\nclaude = "ten"\n`, 'fleet.caps.claude', 5, /expected a whole number/);
  });

  it('refuses caps without a url: they would cap nothing', () => {
    writeFileSync(projectFile(), '[fleet.caps]\nclaude = 10\n');
    expect(configErr(() => load()).message).toMatch(/fleet.caps: set, but fleet.url is empty/);
  });
});

describe('durations as config shows them', () => {
  it('uses the largest unit that holds the value whole', () => {
    expect([0, 250, 1500, 30_000, 90_000, 600_000, 5_400_000, 3_600_000, 86_400_000, 2_592_000_000].map(fmtMs)).toEqual(['0s', '250ms', '1500ms', '30s', '90s', '10m', '90m', '1h', '1d', '30d']);
  });
  it('shows what the config parses back to the same value', () => {
    for (const ms of [250, 1500, 90_000, 600_000, 5_400_000, 86_400_000]) expect(parseDuration(fmtMs(ms), 'x')).toBe(ms);
  });
});
