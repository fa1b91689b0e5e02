/**
 * bin/agentctl compiles the bundle (dist/agentctl.cjs) with the code cache the build wrote.
 * These check the cache is the one V8 accepts, and that a bad or missing cache only costs
 * time: the launcher falls back to compiling and the command still works, colour included
 * (chalk, bundled and imported plainly, so it runs from the cached compile like the rest).
 * The launcher's import hook, which importEsm (src/core/esm.ts) uses for ps-list and
 * systeminformation off Linux, is not exercised here: on Linux neither is loaded.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cleanEnv, ROOT, tempDir } from '../helpers.js';

const ESC = '\u001b[';

function run(bin: string, args: string[], stateDir: string, extra: Record<string, string> = {}) {
  return spawnSync(process.execPath, [bin, ...args], { env: cleanEnv({ AGENTCTL_STATE_DIR: stateDir, AGENTCTL_DEBUG: '1', ...extra }), cwd: stateDir, encoding: 'utf8', timeout: 30_000 });
}

function buildId(): string {
  const first = readFileSync(join(ROOT, 'dist', 'agentctl.cjs'), 'utf8').split('\n', 1)[0]!;
  const m = /^\/\/ agentctl build (\w+)$/.exec(first);
  if (!m) throw new Error(`dist/agentctl.cjs has no build id line: ${first}`);
  return m[1]!;
}

describe('launcher and code cache', () => {
  let t: ReturnType<typeof tempDir>;
  beforeEach(() => {
    t = tempDir();
  });
  afterEach(() => t.cleanup());

  it('the build wrote one cache, named after the bundle it belongs to, and V8 uses it', () => {
    const caches = readdirSync(join(ROOT, 'dist')).filter((f) => f.endsWith('.cache'));
    expect(caches).toEqual([`agentctl.cjs.${buildId()}.cache`]);
    const r = run(join(ROOT, 'bin', 'agentctl'), ['throttle-status', '--json'], t.dir);
    expect(r.status).toBe(0);
    expect(r.stderr).toContain('code cache used');
    expect(JSON.parse(r.stdout)).toHaveProperty('throttle_level');
  });

  describe('in a copy of the package', () => {
    let bin: string;
    let cache: string;
    beforeEach(() => {
      const pkg = join(t.dir, 'pkg');
      mkdirSync(join(pkg, 'bin'), { recursive: true });
      mkdirSync(join(pkg, 'dist'));
      for (const f of ['bin/agentctl', 'bin/package.json', 'dist/agentctl.cjs', 'package.json']) copyFileSync(join(ROOT, f), join(pkg, f));
      symlinkSync(join(ROOT, 'node_modules'), join(pkg, 'node_modules'));
      bin = join(pkg, 'bin', 'agentctl');
      cache = join(pkg, 'dist', `agentctl.cjs.${buildId()}.cache`);
    });

    it('works without a cache', () => {
      const r = run(bin, ['throttle-status', '--json'], t.dir);
      expect(r.status).toBe(0);
      expect(r.stderr).toContain('code cache absent');
      expect(JSON.parse(r.stdout).throttle_params).toHaveProperty('max_agents');
    });

    it('a corrupt cache is rejected and the command still runs, colour included', () => {
      writeFileSync(cache, Buffer.alloc(4096, 0x5a));
      const r = run(bin, ['--color', 'throttle-status'], t.dir);
      expect(r.status).toBe(0);
      expect(r.stderr).toContain('code cache rejected');
      expect(r.stdout).toContain(ESC);
      expect(r.stdout).toContain('Throttle');
    });

    it('the real cache is used from the copy too, colour included', () => {
      copyFileSync(join(ROOT, 'dist', `agentctl.cjs.${buildId()}.cache`), cache);
      const r = run(bin, ['--color', 'throttle-status'], t.dir);
      expect(r.status).toBe(0);
      expect(r.stderr).toContain('code cache used');
      expect(r.stdout).toContain(ESC);
    });

    it("a cache named for another build is not read, even when the bundle's length matches", () => {
      // V8 checks a cache against the source's length, not its content: the build id in the
      // file name is what keeps an old cache away from a new bundle
      const src = readFileSync(join(ROOT, 'dist', 'agentctl.cjs'), 'utf8');
      const otherId = buildId().replace(/^./, (c) => (c === 'a' ? 'b' : 'a'));
      writeFileSync(join(t.dir, 'pkg', 'dist', 'agentctl.cjs'), src.replace(buildId(), otherId));
      copyFileSync(join(ROOT, 'dist', `agentctl.cjs.${buildId()}.cache`), cache);
      const r = run(bin, ['--version'], t.dir);
      expect(r.status).toBe(0);
      expect(r.stderr).toContain('code cache absent');
      expect(r.stdout.trim()).toBe(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version);
    });
  });
});
