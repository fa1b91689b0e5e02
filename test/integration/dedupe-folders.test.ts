import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { alive, cleanEnv, parseJson, ROOT, runCli, useTempState, waitFor } from '../helpers.js';

// Real python workers in two temp folders: the same script name in two projects is two workers.
/** a fresh temp folder and state dir per test; every worker is a child we start, ended by its PID after it */
const t = useTempState();
const procs = t.procs;
// a name nobody else's processes have, so --match sees only this test's workers
const tag = `srv${process.pid}x${Date.now().toString(36)}`;

const cli = (args: string[]) => runCli(['--state-dir', t.sd, ...args], { env: cleanEnv({ AGENTCTL_DISABLE_THROTTLE: '1' }), cwd: t.dir });

function project(name: string, ...scripts: string[]): string {
  const dir = join(t.dir, name);
  mkdirSync(dir, { recursive: true });
  const body = readFileSync(join(ROOT, 'test', 'fixtures', 'auto_confirm_worker.py'), 'utf8');
  for (const s of scripts) writeFileSync(join(dir, s), body);
  return dir;
}

/** `python3 SCRIPT --daemon` started in `cwd` (the script path relative to it); its PID once it runs. */
async function worker(cwd: string, script: string): Promise<number> {
  const ready = join(t.dir, `ready.${procs.count}`);
  const c = spawn('python3', [script, '--daemon'], { cwd, env: { ...process.env, READY: ready }, stdio: 'ignore' });
  procs.track(c);
  await waitFor(() => existsSync(ready), 10_000);
  expect(Number(readFileSync(ready, 'utf8'))).toBe(c.pid);
  return c.pid!;
}

interface Plan {
  across_folders: boolean;
  groups: Array<{ identity: string; folder: string | null; keep: { pid: number }; duplicates: Array<{ pid: number; action: string }> }>;
}
const pidsOf = (g: Plan['groups'][number]) => [g.keep.pid, ...g.duplicates.map((d) => d.pid)].sort((a, b) => a - b);

describe('dedupe-workers keeps each folder its own worker', () => {
  it('lists only the duplicate inside one folder; --across-folders joins both folders', async () => {
    const a = project('projA', `${tag}.py`);
    const b = project('projB', `${tag}.py`);
    const a1 = await worker(a, `${tag}.py`);
    const a2 = await worker(a, `./${tag}.py`); // written differently, same file
    const b1 = await worker(b, `${tag}.py`);

    const dry = await cli(['dedupe-workers', '--dry-run', '--json', '--match', tag]);
    expect(dry.code, dry.stderr).toBe(0);
    const plan = parseJson<Plan>(dry.stdout);
    expect(plan.across_folders).toBe(false);
    expect(plan.groups.length).toBe(1);
    expect(plan.groups[0]!.folder).toBe(realpathSync(a));
    expect(plan.groups[0]!.identity).toBe(`${realpathSync(a)}: ${tag}.py`);
    expect(pidsOf(plan.groups[0]!)).toEqual([a1, a2].sort((x, y) => x - y));
    expect(JSON.stringify(plan)).not.toContain(String(b1));

    const across = parseJson<Plan>((await cli(['dedupe-workers', '--dry-run', '--json', '--across-folders', '--match', tag])).stdout);
    expect(across.across_folders).toBe(true);
    expect(across.groups.length).toBe(1);
    expect(across.groups[0]!.folder).toBeNull();
    expect(pidsOf(across.groups[0]!)).toEqual([a1, a2, b1].sort((x, y) => x - y));
    expect([a1, a2, b1].every(alive)).toBe(true); // dry runs changed nothing

    // for real: the older copy in projA ends, projB's worker is left alone
    const r = await cli(['dedupe-workers', '--json', '--grace', '2s', '--match', tag]);
    expect(r.code, r.stderr).toBe(0);
    await waitFor(() => !alive(a1), 5000);
    expect(alive(a2)).toBe(true);
    expect(alive(b1)).toBe(true);
  });

  it('app.py and app2.py in one folder are two workers; name_v2.py is the same worker', async () => {
    const dir = project('proj', `${tag}.py`, `${tag}2.py`, `${tag}_v2.py`);
    const plain = await worker(dir, `${tag}.py`);
    const digit = await worker(dir, `${tag}2.py`);
    const v2 = await worker(dir, join(dir, `${tag}_v2.py`));
    const plan = parseJson<Plan>((await cli(['dedupe-workers', '--dry-run', '--json', '--match', tag])).stdout);
    expect(plan.groups.length).toBe(1);
    expect(plan.groups[0]!.keep.pid).toBe(v2); // highest version
    expect(plan.groups[0]!.duplicates.map((d) => d.pid)).toEqual([plain]);
    expect(JSON.stringify(plan)).not.toContain(String(digit));
  });
});
