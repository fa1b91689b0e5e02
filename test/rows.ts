/** Rows as the state holds them, for the pure plans' unit tests: a live detached run by default. */
import type { RunRow } from '../src/core/runs/registry.js';

export function runRow(over: Partial<RunRow> = {}): RunRow {
  return {
    id: 'r000001',
    name: 'w',
    grp: 'default',
    priority: 0,
    mode: 'detached',
    state: 'running',
    pid: 4000,
    start_time: '100',
    boot_id: 'b',
    pgid: 4000,
    sup_pid: null,
    sup_start_time: null,
    command: '["node","w.js"]',
    cwd: '/srv',
    ports: null,
    config_hash: null,
    limits: null,
    limit_mechanism: null,
    timeout_ms: null,
    log_path: null,
    exit_code: null,
    signal: null,
    failure: null,
    started_at: 0,
    ended_at: null,
    cpu_ms: null,
    peak_rss_bytes: null,
    ...over,
  };
}
