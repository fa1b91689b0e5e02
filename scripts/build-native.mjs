#!/usr/bin/env node
// Compile the detached runs' supervisor, native/supervise.c, to dist/agentctl-supervise: linked
// statically where the toolchain has a static libc (nothing to resolve at each start), else
// dynamically. Where no compiler builds it (none installed, not Linux), detached runs keep the
// /bin/sh supervisor (launch.ts): this says so in one line and exits 0, so an install never fails.
// The binary is written under a temporary name, checked to run, and renamed into place.
// Usage: node scripts/build-native.mjs   (after scripts/clean.mjs, which empties dist/)
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const src = join(root, 'native', 'supervise.c');
const out = join(root, 'dist', 'agentctl-supervise');
const tmp = `${out}.${process.pid}.tmp`;

/** Compile with `cc`, check the result starts (no arguments: it exits 2), and put it in place. */
const build = (cc, link) => {
  const r = spawnSync(cc, ['-O2', '-Wall', '-Wextra', '-std=gnu11', ...link, '-o', tmp, src], { stdio: 'ignore' });
  if (r.status !== 0 || spawnSync(tmp, [], { stdio: 'ignore', env: {} }).status !== 2) return false;
  chmodSync(tmp, 0o755);
  renameSync(tmp, out);
  return true;
};

mkdirSync(join(root, 'dist'), { recursive: true });
const built = process.platform === 'linux' && ['cc', 'gcc'].some((cc) => build(cc, ['-static']) || build(cc, []));
rmSync(tmp, { force: true });
if (!built) console.error('build-native: could not compile native/supervise.c; detached runs use the /bin/sh supervisor');
