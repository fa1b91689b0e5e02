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
// It runs the CLI ten times, so `npm run build` runs it and `prepare` (every install) does not:
// without a cache bin/agentctl compiles as usual, which costs start-up time and nothing else.
// Usage: node scripts/code-cache.cjs   (`npm run build` runs it after scripts/bundle.mjs)
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

// The warm-up's own output is of no use to a build log: stdout is dropped, stderr kept and
// shown only when writing the cache fails.
const stdoutWrite = process.stdout.write;
const stderrWrite = process.stderr.write;
let stderrText = '';
function quiet(on) {
  const swallow = (keep) => (chunk, encoding, cb) => {
    if (keep) stderrText += String(chunk);
    const done = typeof encoding === 'function' ? encoding : cb;
    if (typeof done === 'function') done();
    return true;
  };
  process.stdout.write = on ? swallow(false) : stdoutWrite;
  process.stderr.write = on ? swallow(true) : stderrWrite;
}

async function main() {
  const work = mkdtempSync(join(tmpdir(), 'agentctl-code-cache-'));
  try {
    for (const k of Object.keys(process.env)) if (k.startsWith('AGENTCTL_')) delete process.env[k];
    Object.assign(process.env, { AGENTCTL_STATE_DIR: join(work, 'state'), AGENTCTL_DISABLE_THROTTLE: '1', XDG_CONFIG_HOME: join(work, 'config'), NO_COLOR: '1' });
    process.chdir(work);

    const { script, cachePath, exports } = load({ useCache: false });
    if (!cachePath) throw new Error('dist/agentctl.cjs has no build id on its first line; run node scripts/bundle.mjs');
    quiet(true);
    try {
      for (const argv of WARM_UP) await exports.main(argv);
    } finally {
      quiet(false);
    }
    writeFileSync(cachePath, script.createCachedData());
  } finally {
    process.chdir(tmpdir());
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`${stderrText}code-cache: writing the code cache failed: ${err && err.stack}\n`);
  process.exitCode = 1;
});
