#!/usr/bin/env node
// Empty dist/ before a build. tsc writes what src/ has today but never removes what it wrote
// before: when a module moves (src/state.ts to src/core/state.ts, say), its old output stays,
// still importable from the library (dist/) and still picked up by anything that globs dist/.
// A build from an empty dist/ holds exactly today's modules.
// Usage: node scripts/clean.mjs   (`npm run build` and `prepare` run it first)
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

rmSync(fileURLToPath(new URL('../dist', import.meta.url)), { recursive: true, force: true });
