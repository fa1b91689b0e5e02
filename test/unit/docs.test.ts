import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { KEYS } from '../../src/core/config/keys.js';
import { declarations, programSpec } from '../../src/cli/completion-spec.js';
import { COMMANDS } from '../../src/cli/program.js';
import { ROOT } from '../helpers.js';

// docs/ is kept in step with the code in the same commit that changes a command or a key
describe('docs', () => {
  const spec = programSpec();

  it.each(spec.subcommands.map((c) => c.name))('docs/%s.md exists and names every flag', (name) => {
    const path = join(ROOT, 'docs', `${name}.md`);
    expect(existsSync(path)).toBe(true);
    const text = readFileSync(path, 'utf8');
    const cmd = spec.subcommands.find((c) => c.name === name)!;
    for (const o of cmd.options) expect(text, `${name}.md should mention ${o.long}`).toContain(o.long);
  });

  it('each command module declares the command program.ts loads it for', () => {
    expect(declarations().map((d) => d.name)).toEqual(Object.keys(COMMANDS));
  });

  // a default is written once, in the command's declaration: its docs table says the same
  it.each(
    declarations()
      .filter((d) => !d.hidden)
      .map((d) => d.name),
  )("docs/%s.md's flags table gives each declared default", (name) => {
    const text = readFileSync(join(ROOT, 'docs', `${name}.md`), 'utf8');
    const decl = declarations().find((d) => d.name === name)!;
    for (const o of decl.options ?? []) {
      const given = o.default ?? o.preset ?? o.configKey; // a config key: the table names it
      if (given === undefined) continue;
      const long = /--[\w-]+/.exec(o.flags)![0];
      const row = text.split('\n').find((l) => new RegExp(`^\\| \`${long}[\` ]`).test(l));
      expect(row, `${name}.md should have a row for ${long}`).toBeDefined();
      const defaultColumn = row!.split(/(?<!\\)\|/)[2]!;
      expect(defaultColumn, `${name}.md ${long}: default`).toContain(`\`${given}\``);
    }
  });

  it.each(spec.subcommands.map((c) => c.name))('docs/%s.md says what it signals, deletes and trusts, and links the threat model', (name) => {
    const text = readFileSync(join(ROOT, 'docs', `${name}.md`), 'utf8');
    expect(text).toMatch(/\n## What it signals, deletes and trusts\n\n- \*\*Acts:\*\* .+\n- \*\*Trusts:\*\* .+/);
    expect(text).toContain('](security.md)');
  });

  it('docs/configuration.md lists every key', () => {
    const text = readFileSync(join(ROOT, 'docs', 'configuration.md'), 'utf8');
    for (const k of KEYS) expect(text, `${k.section}.${k.key}`).toContain(`\`${k.section}.${k.key}\``);
  });

  it('the README links a page for every command', () => {
    const text = readFileSync(join(ROOT, 'README.md'), 'utf8');
    for (const c of spec.subcommands) expect(text).toContain(`docs/${c.name}.md`);
  });
});

describe('paths the docs name', () => {
  // a moved or split module leaves docs pointing at nothing: every source path a page names must exist
  const pages = ['README.md', 'CONTRIBUTING.md', ...readdirSync(join(ROOT, 'docs')).map((f) => join('docs', f))].filter((f) => f.endsWith('.md'));
  it.each(pages)('%s names only files that exist', (page) => {
    const named = [...readFileSync(join(ROOT, page), 'utf8').matchAll(/\b((?:src|test|bench|scripts)\/[\w./-]+\.(?:ts|mjs|cjs))\b/g)].map((m) => m[1]!);
    expect(named.filter((p) => !existsSync(join(ROOT, p)))).toEqual([]);
  });
});
