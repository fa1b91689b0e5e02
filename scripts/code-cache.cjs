#!/usr/bin/env node
'use strict';
// Write the V8 code cache bin/agentctl compiles dist/agentctl.cjs with. The cache is taken
// after running the commands that start most often (by hand, from cron, from Makefiles), so
// it holds the functions they compiled and not only the bundle's top level: measured, a cache
// of the top level alone saved 3 ms of throttle-status's start, this one 8 ms.
// The compile is bin/agentctl's own load(), so V8 sees the same code it will be asked to run;
// test/integration/launcher.test.ts checks that the launcher uses the cache.
// Runs in a temp state folder and working folder with throttling off; the only process it
// starts is `true`, in the foreground, through `agentctl spawn`.
// Usage: node scripts/code-cache.cjs   (scripts/bundle.mjs runs it after each bundle)
const { mkdtempSync, rmSync, writeFileSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join } = require('node:path');
const { load } = require('../bin/agentctl');

const WARM_UP = [
  ['throttle-status', '--json'],
  ['throttle-status'],
  ['spawn', '--name', 'warm-up', '--', 'true'],
  ['--json', 'ps'],
  ['ps'],
  ['reap', '--dry-run'],
  ['dedupe-workers', '--dry-run'],
  ['stats'],
  ['events'],
  ['config'],
];

async function main() {
  const work = mkdtempSync(join(tmpdir(), 'agentctl-code-cache-'));
  try {
    for (const k of Object.keys(process.env)) if (k.startsWith('AGENTCTL_')) delete process.env[k];
    Object.assign(process.env, { AGENTCTL_STATE_DIR: join(work, 'state'), AGENTCTL_DISABLE_THROTTLE: '1', XDG_CONFIG_HOME: join(work, 'config'), NO_COLOR: '1' });
    process.chdir(work);

    const { script, cachePath, exports } = load({ useCache: false });
    if (!cachePath) throw new Error('dist/agentctl.cjs has no build id on its first line; run node scripts/bundle.mjs');
    for (const argv of WARM_UP) await exports.main(argv);
    writeFileSync(cachePath, script.createCachedData());
  } finally {
    process.chdir(tmpdir());
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`code-cache: ${err && err.stack}\n`);
  process.exitCode = 1;
});
