import { afterEach, describe, expect, it } from 'vitest';
import { bootId, getIdentity, isSameProcess, parseProcStat, type ProcessIdentity, sameIdentity } from '../../src/core/identity.js';
import { Procs, waitFor } from '../helpers.js';

const procs = new Procs();
afterEach(() => procs.endAll());

describe('parseProcStat', () => {
  it('counts fields from the last parenthesis, so odd command names parse', () => {
    const line = '4242 (evil) (name) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 987654 1000 10 ...';
    const s = parseProcStat(line)!;
    expect(s.pid).toBe(4242);
    expect(s.comm).toBe('evil) (name) x');
    expect(s.state).toBe('S');
    expect(s.ppid).toBe(1);
    expect(s.pgid).toBe(4242);
    expect(s.cpuTicks).toBe(300);
    expect(s.startTicks).toBe('987654');
  });

  it('rejects junk', () => {
    expect(parseProcStat('nonsense')).toBeUndefined();
  });
});

describe.runIf(process.platform === 'linux')('identity of real processes', () => {
  it('is (pid, start time, boot id) and stays equal for the same process', async () => {
    const child = await procs.node('setInterval(() => {}, 60_000)');
    const a = getIdentity(child.pid!)!;
    expect(a.pid).toBe(child.pid);
    expect(a.startTime).toMatch(/^\d+$/);
    expect(a.bootId).toBe(bootId());
    expect(bootId()).toMatch(/^[0-9a-f-]{36}$/);
    expect(isSameProcess(a)).toBe(true);
    expect(sameIdentity(a, getIdentity(child.pid!)!)).toBe(true);
    // a later process has a different start time
    const other = await procs.node('setInterval(() => {}, 60_000)');
    expect(getIdentity(other.pid!)!.startTime >= a.startTime).toBe(true);
  });

  it('is gone once the process has exited', async () => {
    const child = await procs.node('setInterval(() => {}, 60_000)');
    const id = getIdentity(child.pid!)!;
    await procs.end(child);
    expect(getIdentity(child.pid!)).toBeUndefined();
    expect(isSameProcess(id)).toBe(false);
  });

  it('a reused PID (same pid, other start time) is not the same process', () => {
    const stored: ProcessIdentity = { pid: 4242, startTime: '100', bootId: 'b' };
    const reused = (pid: number): ProcessIdentity => ({ pid, startTime: '999', bootId: 'b' });
    const afterReboot = (pid: number): ProcessIdentity => ({ pid, startTime: '100', bootId: 'other-boot' });
    expect(isSameProcess(stored, reused)).toBe(false);
    expect(isSameProcess(stored, afterReboot)).toBe(false);
    expect(isSameProcess(stored, (pid) => ({ pid, startTime: '100', bootId: 'b' }))).toBe(true);
  });

  it('rejects impossible pids', () => {
    expect(getIdentity(0)).toBeUndefined();
    expect(getIdentity(-1)).toBeUndefined();
    expect(getIdentity(1.5)).toBeUndefined();
  });
});

describe.runIf(process.platform === 'linux')('a zombie has no identity', () => {
  it('an exited child its parent has not waited for is not a running process', async () => {
    const { spawn } = await import('node:child_process');
    const { existsSync, readFileSync, mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'agentctl-zombie-'));
    const ready = join(dir, 'pid');
    const parent = spawn('python3', ['-c', `import os, time\npid = os.fork()\nif pid == 0:\n    os._exit(0)\nopen(${JSON.stringify(ready)}, 'w').write(str(pid))\ntime.sleep(30)\n`], {
      stdio: 'ignore',
    });
    try {
      const kid = Number(await waitFor(() => existsSync(ready) && readFileSync(ready, 'utf8'), 5_000, { what: 'the child PID written' }));
      await waitFor(() => readFileSync(`/proc/${kid}/stat`, 'utf8').split(') ')[1]![0] === 'Z', 5_000, { what: `${kid} a zombie` });
      expect(readFileSync(`/proc/${kid}/stat`, 'utf8').split(') ')[1]![0]).toBe('Z');
      expect(getIdentity(kid)).toBeUndefined();
    } finally {
      parent.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
