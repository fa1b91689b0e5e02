/**
 * import() of a package that ships only ES modules (chalk, ps-list, systeminformation).
 * The command line runs from a bundle compiled with a V8 code cache (bin/agentctl), and V8
 * gives code restored from a cache no module loader: a plain import() there fails. The
 * launcher therefore puts a loader on globalThis; elsewhere (dist/ as a library, tests) the
 * ordinary import() is used. scripts/bundle.mjs checks the bundle calls import() nowhere else.
 */
export const IMPORT_HOOK = Symbol.for('agentctl.import');

export function importEsm<T>(specifier: string): Promise<T> {
  const hook = (globalThis as Record<symbol, unknown>)[IMPORT_HOOK] as ((s: string) => Promise<unknown>) | undefined;
  return (hook ? hook(specifier) : import(specifier)) as Promise<T>;
}
