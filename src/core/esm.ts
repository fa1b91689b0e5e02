/**
 * import() of a package loaded only off Linux (ps-list, which ships only ES modules, and
 * systeminformation).
 * The command line runs from a bundle that bin/agentctl compiles through node:vm (to use a
 * code cache), and such code has no loader for import(): Node 20's option that lends it the
 * main one is experimental, and is lost when the code comes from a cache. The launcher
 * therefore puts a loader on globalThis; elsewhere (dist/ as a library, tests) the ordinary
 * import() is used. scripts/bundle.mjs checks the bundle calls import() nowhere else.
 */
export const IMPORT_HOOK = Symbol.for('agentctl.import');

export function importEsm<T>(specifier: string): Promise<T> {
  const hook = (globalThis as Record<symbol, unknown>)[IMPORT_HOOK] as ((s: string) => Promise<unknown>) | undefined;
  return (hook ? hook(specifier) : import(specifier)) as Promise<T>;
}
