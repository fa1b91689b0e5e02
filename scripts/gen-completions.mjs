#!/usr/bin/env node
// Regenerate completions/ from the commands' declarations as built in dist/ (run `npm run build` first).
// `--check` exits 1 when the checked-in files differ, without writing.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { COMPLETION_FILES, SHELLS, completionScript } from '../dist/cli/completion.js';
import { programSpec } from '../dist/cli/completion-spec.js';

const dir = join(fileURLToPath(new URL('..', import.meta.url)), 'completions');
const check = process.argv.includes('--check');
let stale = 0;
for (const shell of SHELLS) {
  const path = join(dir, COMPLETION_FILES[shell]);
  const want = completionScript(shell, programSpec());
  let have = '';
  try {
    have = readFileSync(path, 'utf8');
  } catch {}
  if (have === want) continue;
  if (check) {
    console.error(`stale: ${path} (run npm run completions)`);
    stale++;
  } else {
    writeFileSync(path, want);
    console.error(`wrote ${path}`);
  }
}
process.exitCode = stale ? 1 : 0;
