import { describe, expect, it } from 'vitest';
import { firstCommandWords, groupInstances, mayRunScript, pickKeeper, splitVersion, workerId, type ProcLite } from '../../src/core/workers.js';

describe('workerId', () => {
  it.each([
    [['python3', '/opt/w/auto_confirm_worker_v2.py', '--daemon'], 'auto_confirm_worker.py', 2, true],
    [['/usr/bin/python3', '-u', 'auto_confirm_worker.py', '--daemon'], 'auto_confirm_worker.py', 1, true],
    [['sh', '-c', 'python3 auto_confirm_worker.py --daemon; echo done'], 'auto_confirm_worker.py', 1, true],
    [['/bin/bash', '-c', 'exec FOO=1 ./auto-confirm-worker-v3.sh -d'], 'auto-confirm-worker.sh', 3, true],
    [['node', 'dist/worker.js', '--queue', 'a'], 'worker.js --queue a', 1, true],
    [['python3', '-m', 'assigner_v2', '--daemon'], '-m assigner', 2, true],
    [['claude', '--print', 'x'], 'claude --print x', 1, false],
    [['bash'], 'bash', 1, false],
    [['/usr/bin/env', 'python3', 'x_v2.py'], 'x.py', 2, true],
    [['uv', 'run', 'assigner.py'], 'assigner.py', 1, true],
    [['python3', 'shard_1.py'], 'shard_1.py', 1, true],
    [['bash', '/dev/fd/3'], 'bash /dev/fd/3', 1, false],
  ])('%j -> %s v%d', (argv, key, version, script) => {
    const id = workerId(argv)!;
    expect(id.key).toBe(key);
    expect(id.version).toBe(version);
    expect(id.script).toBe(script);
  });

  it('keeps arguments that tell workers apart', () => {
    expect(workerId(['python3', 'w.py', '--queue', 'a'])!.key).not.toBe(workerId(['python3', 'w.py', '--queue', 'b'])!.key);
  });

  it('splits version suffixes', () => {
    expect(splitVersion('auto_confirm_worker_v2.py')).toEqual({ base: 'auto_confirm_worker.py', version: 2 });
    expect(splitVersion('worker-v10')).toEqual({ base: 'worker', version: 10 });
    expect(splitVersion('worker.v2.js')).toEqual({ base: 'worker.js', version: 2 });
    expect(splitVersion('worker2.py')).toEqual({ base: 'worker.py', version: 2 });
    expect(splitVersion('worker.py')).toEqual({ base: 'worker.py', version: 1 });
  });

  it('parses the first command of a shell string', () => {
    expect(firstCommandWords(`A=1 exec python3 'my worker.py' --daemon && echo x`)).toEqual(['python3', 'my worker.py', '--daemon']);
  });
});

describe('grouping and keeping (incident 2)', () => {
  const p = (pid: number, ppid: number, start: number, ...argv: string[]): ProcLite => ({ pid, ppid, start, argv });
  const procs = [
    p(100, 1, 10, 'python3', 'auto_confirm_worker.py', '--daemon'),
    p(200, 1, 20, 'python3', 'auto_confirm_worker_v2.py', '--daemon'),
    p(300, 1, 30, 'sh', '-c', 'python3 auto_confirm_worker.py --daemon; echo'),
    p(301, 300, 31, 'python3', 'auto_confirm_worker.py', '--daemon'),
    p(400, 1, 40, 'python3', 'other_worker.py'),
  ];
  const groups = groupInstances(procs, (_p, id) => id.script);

  it('a wrapper shell and its child are one instance', () => {
    const g = groups.get('auto_confirm_worker.py')!;
    expect(g.map((i) => i.pid).sort()).toEqual([100, 200, 300]);
    expect(g.find((i) => i.pid === 300)!.pids).toEqual([300, 301]);
    expect(groups.get('other_worker.py')!.length).toBe(1);
  });

  it('keeps the highest version by default, else the newest or oldest', () => {
    const g = groups.get('auto_confirm_worker.py')!;
    expect(pickKeeper(g, 'highest-version').pid).toBe(200);
    expect(pickKeeper(g, 'newest').pid).toBe(300);
    expect(pickKeeper(g, 'oldest').pid).toBe(100);
  });
});

describe('mayRunScript', () => {
  it('reads command lines only where a script can hide', () => {
    for (const comm of ['python3', 'python3.11', 'node', 'sh', 'bash', 'worker.py', 'auto_confirm_wo']) expect(mayRunScript(comm), comm).toBe(true);
    for (const comm of ['sleep', 'claude', 'systemd', 'kworker/0:1']) expect(mayRunScript(comm), comm).toBe(false);
  });
});
