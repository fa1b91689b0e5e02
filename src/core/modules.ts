/**
 * Files of agentctl's own dependencies, found without Node's package resolution where they are
 * where a checkout or an unhoisted install puts them: `<agentctl>/node_modules/<pkg>/<file>`,
 * where resolution finds them too (it looks in dist/'s own node_modules folders first, which
 * agentctl never has). Resolving a package (its "exports" map, the
 * folders up the tree) costs 1-5 ms a time, on the path of every command that reads a config
 * file or opens the state. Elsewhere (a hoisted install) the usual resolution answers.
 * This module sits one folder under dist/, as the bundle's entry (dist/cli/main.js) does, so
 * `../../node_modules` names the same folder from either.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const NODE_MODULES = fileURLToPath(new URL('../../node_modules/', import.meta.url));

/** `<agentctl>/node_modules/<pkg>/<file>` if it is there, else what resolving `specifier` gives (which may throw). */
export function dependencyFile(pkg: string, file: string, specifier: string): string {
  const p = join(NODE_MODULES, pkg, file);
  return existsSync(p) ? p : createRequire(import.meta.url).resolve(specifier);
}

/** require() of a dependency's file (see dependencyFile). */
export function requireDependency<T>(pkg: string, file: string, specifier: string): T {
  return createRequire(import.meta.url)(dependencyFile(pkg, file, specifier)) as T;
}
