/** agentctl config: every effective value and where it came from. */
import type { Ctx, Outcome, Ui } from '../core/ctx.js';
import type { IgnoredConfig, Source } from '../core/config/types.js';
import type { CommandDecl, OptionValues } from '../core/declaration.js';
import { displayHook } from '../core/config/hooks.js';
import type { HookSpec } from '../core/config/types.js';
import { shownHookUrl } from '../core/hooks/url.js';

export const declaration: CommandDecl = {
  name: 'config',
  description: 'print every effective configuration value and where it came from; exit 78 when invalid',
  examples: ['agentctl config', 'agentctl config --json | jq .values.throttle.memory_pct', 'AGENTCTL_THROTTLE_CPU_PCT=50,70,85 agentctl config', 'agentctl --config ./ci.toml config'],
};

export interface ConfigResult {
  readonly valid: true;
  readonly files: readonly string[];
  /** default config files not read because another user could have written them */
  readonly ignored: readonly IgnoredConfig[];
  readonly hash: string;
  readonly state_dir: { readonly path: string; readonly source: string };
  /** effective values nested by section, as they would be written in TOML; `hooks` the [[hooks]] entries */
  readonly values: Record<string, unknown>;
  /** one entry per key with its source */
  readonly entries: ReadonlyArray<{ key: string; value: unknown; source: Source }>;
}

export async function run(_opts: OptionValues, _args: readonly string[], ctx: Ctx): Promise<Outcome<ConfigResult>> {
  const loaded = ctx.config();
  const values: Record<string, unknown> = {};
  for (const e of loaded.entries) {
    if (e.key === 'services') {
      values.services = e.value;
      continue;
    }
    const [section, key] = e.key.split('.') as [string, string];
    ((values[section] ??= {}) as Record<string, unknown>)[key] = e.value;
  }
  values.hooks = loaded.config.hooks.map(shownHook);
  const sd = ctx.stateDir();
  return {
    data: {
      valid: true,
      files: loaded.files,
      ignored: loaded.ignored,
      hash: loaded.hash,
      state_dir: { path: sd.dir, source: sd.source },
      values,
      entries: loaded.entries,
    },
    alwaysPrint: true, // a listing is data: --quiet does not hide it
  };
}

/** A hook as shown: its URL as scheme://host[:port]/… (a webhook's secret is often its path or query). */
const shownHook = (h: HookSpec) => ({ ...displayHook(h), ...(h.url !== undefined ? { url: shownHookUrl(h.url) } : {}) });

const show = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v));

export function render(r: ConfigResult, ui: Ui): string {
  const rows = r.entries.filter((e) => e.key !== 'services').map((e) => [e.key, show(e.value), e.source.kind === 'default' ? ui.c.dim('default') : `${e.source.kind}: ${e.source.detail}`]);
  const services = r.entries.find((e) => e.key === 'services');
  const list = (services?.value as Array<Record<string, unknown>> | undefined) ?? [];
  const out = [
    ui.table(['key', 'value', 'source'], rows, { value: 'wrap', source: 'wrap' }),
    // one service a line, the first beside the key; a long one wraps under itself
    ...(list.length ? list.map((s) => show(s)) : ['none configured'])
      .map((s, i, all) => `${i ? '  ' : 'services: '}${s}${i === all.length - 1 && services && services.source.kind !== 'default' ? ` (${services.source.detail})` : ''}`)
      .map((line) => ui.wrap(line, 4)),
    ...((r.values.hooks as unknown[] | undefined)?.length ? (r.values.hooks as unknown[]).map((h, i) => ui.wrap(`${i ? '  ' : 'hooks: '}${show(h)}`, 4)) : []),
    ui.wrap(`state dir: ${r.state_dir.path} (${r.state_dir.source})`, 2),
    ui.wrap(`config files read: ${r.files.length ? r.files.join(', ') : 'none (built-in defaults)'}`, 2),
    ...r.ignored.map((i) => ui.wrap(`config file ignored: ${i.path}: ${i.reason}`, 2)),
    `config hash: ${r.hash}`,
  ];
  return out.join('\n');
}
