#!/usr/bin/env node
// The size rule for src/ (CONTRIBUTING.md): no file over 400 lines, no function over 80, so a
// function reads on one screen and a file holds one idea. Functions are found with the
// TypeScript parser (declarations, methods, arrows and function expressions, nested ones too).
// Usage: node scripts/check-sizes.mjs   (npm run lint runs it); exit 1 naming what is over.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const MAX_FILE_LINES = 400;
const MAX_FUNCTION_LINES = 80;
const root = fileURLToPath(new URL('..', import.meta.url));

/** @param {string} dir @returns {string[]} */
const walk = (dir) => readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));

const over = [];
for (const file of walk(join(root, 'src'))) {
  const text = readFileSync(file, 'utf8');
  const name = relative(root, file);
  const lines = text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
  if (lines > MAX_FILE_LINES) over.push(`${name}: ${lines} lines (at most ${MAX_FILE_LINES})`);
  const src = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  /** @param {ts.Node} node */
  const visit = (node) => {
    if (ts.isFunctionDeclaration(node) || ts.isMethodDeclaration(node) || ts.isArrowFunction(node) || ts.isFunctionExpression(node) || ts.isConstructorDeclaration(node)) {
      const first = src.getLineAndCharacterOfPosition(node.getStart()).line;
      const last = src.getLineAndCharacterOfPosition(node.getEnd()).line;
      if (last - first + 1 > MAX_FUNCTION_LINES) over.push(`${name}:${first + 1}: a function of ${last - first + 1} lines (at most ${MAX_FUNCTION_LINES})`);
    }
    ts.forEachChild(node, visit);
  };
  visit(src);
}
if (over.length) {
  console.error(`check-sizes: over the size rule:\n${over.map((o) => `  ${o}`).join('\n')}`);
  process.exit(1);
}
