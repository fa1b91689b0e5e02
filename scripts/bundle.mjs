#!/usr/bin/env node
// The command line runs from one CommonJS file, dist/agentctl.cjs, made here from tsc's output
// (dist/cli/main.js and everything it imports, commander and better-sqlite3's JavaScript included),
// then compiled by bin/agentctl with a V8 code cache that scripts/code-cache.cjs writes
// (`npm run build` runs it next; `prepare`, on install, does not: bin/agentctl runs without one).
// Why: Node's ES module loader resolves, reads and links some forty files on every start, and
// V8 compiles each function as it first runs; together that cost more than the work
// throttle-status does. Measured (docs/architecture.md, "Start-up"): against the ES modules,
// the bundle and its cache save throttle-status --json 57 ms of CPU, the cache 18 ms of it.
// tsc still type-checks and emits dist/ as ES modules for the library API (dist/index.js).
//
// chalk is inside too: bundled, it costs a run without colour nothing measurable, and a run
// with colour is spared the ES module loader. Packages loaded only on some paths stay outside
// the bundle (smol-toml when a config file exists, pg only for a
// configured [fleet], systeminformation and ps-list off Linux) and load when used. `bindings` stays outside too: src/core/state.ts passes the addon's path to
// better-sqlite3, so the bundle never calls it. better-sqlite3's JavaScript is inside but its
// compiled addon is found in node_modules at run time, so package.json pins it exactly: the
// two always come from the same release.
//
// Usage: node scripts/bundle.mjs   (`npm run build` and `prepare` run tsc first, then this)
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const inside = new Set(['commander', 'better-sqlite3', 'chalk']);
const external = [...Object.keys(pkg.dependencies).filter((d) => !inside.has(d)), 'bindings'];
const out = join(root, 'dist', 'agentctl.cjs');

const result = await build({
  absWorkingDir: root,
  entryPoints: ['dist/cli/main.js'],
  outfile: out,
  write: false,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  external,
  // createRequire(import.meta.url) and new URL('../../package.json', import.meta.url) need a
  // file's own URL: the bundle answers with the entry's (dist/cli/main.js, one folder below it),
  // so relative paths hold as they do in the ES modules.
  // "use strict" leads: ES modules are strict, and a directive after a statement is ignored
  banner: { js: "'use strict';\nconst __agentctlUrl = require('node:url').pathToFileURL(require('node:path').join(__dirname, 'cli', 'main.js')).href;" },
  define: { 'import.meta.url': '__agentctlUrl' },
  // not minified: a stack trace under AGENTCTL_DEBUG should name readable code
  legalComments: 'none',
  logLevel: 'warning',
});
const code = result.outputFiles[0].text;

// Code compiled through node:vm (bin/agentctl) has no loader for import(); src/core/esm.ts
// routes the ES-module-only packages through the launcher's. Any other import() would fail.
// (esbuild notes the command modules' glob import in a // comment line: not a call)
const calls = code.split('\n').filter((line) => !line.trimStart().startsWith('//'));
const imports = calls.join('\n').match(/\bimport\(/g) ?? [];
if (imports.length !== 1) {
  console.error(`bundle: expected one import() (src/core/esm.ts), found ${imports.length}; load ES-module-only packages with importEsm()`);
  process.exit(1);
}

// The build's id, from its content, names its code cache: a cache never meets another build.
// Caches of earlier bundles are removed here, so one made before this bundle never lingers.
const id = createHash('sha256').update(code).digest('hex').slice(0, 16);
for (const f of readdirSync(join(root, 'dist'))) if (/^agentctl\.cjs\.\w+\.cache$/.test(f)) rmSync(join(root, 'dist', f));
writeFileSync(out, `// agentctl build ${id}\n${code}`);
