/**
 * node_exporter textfile collector format. The file is written to a temp name and renamed,
 * so the collector never reads half of it.
 */
import { writeFileAtomic } from './fsutil.js';

export interface Metric {
  readonly name: string;
  readonly help: string;
  readonly type: 'gauge' | 'counter';
  readonly samples: ReadonlyArray<{ readonly labels?: Record<string, string>; readonly value: number | null }>;
}

const escapeLabel = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
const escapeHelp = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');

export function formatMetrics(metrics: readonly Metric[]): string {
  const lines: string[] = [];
  for (const m of metrics) {
    const samples = m.samples.filter((s) => s.value !== null && Number.isFinite(s.value));
    if (samples.length === 0) continue;
    lines.push(`# HELP ${m.name} ${escapeHelp(m.help)}`, `# TYPE ${m.name} ${m.type}`);
    for (const s of samples) {
      const labels =
        s.labels && Object.keys(s.labels).length
          ? `{${Object.entries(s.labels)
              .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
              .join(',')}}`
          : '';
      lines.push(`${m.name}${labels} ${s.value}`);
    }
  }
  return lines.join('\n') + '\n';
}

export function writeMetricsFile(path: string, metrics: readonly Metric[]): void {
  writeFileAtomic(path, formatMetrics(metrics));
}
