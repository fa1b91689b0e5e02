import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { dependencyFile, requireDependency } from '../../src/core/modules.js';

describe('dependencyFile: a dependency without package resolution where it can', () => {
  it("gives the file resolution would give, from agentctl's own node_modules", () => {
    const resolved = createRequire(import.meta.url).resolve('smol-toml');
    expect(dependencyFile('smol-toml', 'dist/index.cjs', 'smol-toml')).toBe(resolved);
    expect(existsSync(dependencyFile('better-sqlite3', 'package.json', 'better-sqlite3/package.json'))).toBe(true);
    expect(typeof requireDependency<{ parse: unknown }>('smol-toml', 'dist/index.cjs', 'smol-toml').parse).toBe('function');
  });

  it('falls back to resolution where the file is not there, and fails as it does', () => {
    const viaResolve = dependencyFile('smol-toml', 'no/such/file.cjs', 'smol-toml');
    expect(viaResolve).toBe(createRequire(import.meta.url).resolve('smol-toml'));
    expect(() => dependencyFile('agentctl-no-such-package', 'index.js', 'agentctl-no-such-package')).toThrow(/Cannot find module/);
  });
});
