/**
 * Where in a config file a key is, for errors that name file, line and key (exit 78). TOML
 * parsers do not report key positions, so the text is scanned. Used by files.ts and by the
 * validators of tables of tables (agents.ts).
 */
import { ConfigError } from '../errors.js';
import type { SourceKind } from './types.js';

export interface FileLayer {
  readonly kind: SourceKind;
  readonly path: string;
  readonly text: string;
  readonly data: Record<string, unknown>;
}

/**
 * Find the line of `key` inside `[section]` (or the n-th `[[section]]`), or of the section header
 * when key is undefined. TOML parsers do not report key positions, so we scan the text.
 */
export function locateKey(text: string, section: string, key?: string, index = 0): number | undefined {
  const lines = text.split(/\r?\n/);
  let current: string | undefined;
  let seen = -1;
  let headerLine: number | undefined;
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const keyRe = key === undefined ? undefined : new RegExp(`^\\s*(["']?)${esc(key)}\\1\\s*=`);
  const dottedRe = key === undefined ? undefined : new RegExp(`^\\s*${esc(section)}\\.${esc(key)}\\s*=`);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const header = /^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$/.exec(line);
    if (header) {
      current = header[1];
      if (current === section) {
        seen++;
        if (seen === index) headerLine = i + 1;
      }
      continue;
    }
    if (keyRe && current === section && seen === index && keyRe.test(line)) return i + 1;
    if (dottedRe && current === undefined && dottedRe.test(line)) return i + 1;
    if (key === undefined && current === undefined && new RegExp(`^\\s*${esc(section)}(\\.|\\s*=)`).test(line)) return i + 1;
  }
  return headerLine;
}

function where(layer: FileLayer, section: string, key?: string, index?: number) {
  const line = locateKey(layer.text, section, key, index);
  return { file: layer.path, line, key: key === undefined ? section : `${section}.${key}` };
}

export function configFail(layer: FileLayer, section: string, key: string | undefined, message: string, index?: number): never {
  const w = where(layer, section, key, index);
  const keyName = index !== undefined ? `${section}[${index}]${key ? `.${key}` : ''}` : w.key;
  const at = w.line !== undefined ? ` line ${w.line}` : '';
  throw new ConfigError(`config file ${layer.path}${at}: ${keyName}: ${message}`, { file: w.file, key: keyName, ...(w.line !== undefined ? { line: w.line } : {}) });
}
