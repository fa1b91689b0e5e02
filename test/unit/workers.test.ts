import { describe, expect, it } from 'vitest';
import { firstCommandWords, groupInstances, identityOf, mayRunScript, pickKeeper, type ProcLite, scriptFolder, splitVersion, workerId } from '../../src/core/workers.js';

describe('workerId', () => {
  it("a detached run's supervisor is no worker", () => {
    expect(workerId(['agentctl-supervise', '-s', 'r0mwuv7mm4fo101'])).toBeUndefined();
    expect(workerId(['agentctl-supervise', '-s', 'not-a-run'])).toBeDefined();
  });

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
    expect(splitVersion('worker-v3.py')).toEqual({ base: 'worker.py', version: 3 });
    expect(splitVersion('worker.py')).toEqual({ base: 'worker.py', version: 1 });
  });

  it.each(['worker2.py', 'app2.py', 'p10.sh', 'shard_1.py', 'worker-2.py', 'devv2.py', 'workerv2.py', 'v2.py', 'worker_v.py', 'worker_V2.py'])('%s has no version suffix', (name) => {
    expect(splitVersion(name)).toEqual({ base: name, version: 1 });
  });

  it('parses the first command of a shell string', () => {
    expect(firstCommandWords(`A=1 exec python3 'my worker.py' --daemon && echo x`)).toEqual(['python3', 'my worker.py', '--daemon']);
  });
});

describe('the folder is part of the identity', () => {
  const at = (cwd: string, ...argv: string[]) => workerId(argv, { cwd })!;
  const same = (a: ReturnType<typeof at>, b: ReturnType<typeof at>) => identityOf(a) !== undefined && identityOf(a) === identityOf(b);

  it('projA/server.py and projB/server.py are two workers, one across folders', () => {
    const a = at('/srv', 'python3', 'projA/server.py');
    const b = at('/srv', 'python3', 'projB/server.py');
    expect(a.folder).toBe('/srv/projA');
    expect(b.folder).toBe('/srv/projB');
    expect(same(a, b)).toBe(false);
    expect(identityOf(a, true)).toBe(identityOf(b, true));
    // the same name started from each project's own folder
    expect(same(at('/srv/projA', 'python3', 'server.py'), at('/srv/projB', 'python3', 'server.py'))).toBe(false);
  });

  it('app.py and app2.py are two; p.sh and p10.sh are two', () => {
    expect(same(at('/a', 'python3', 'app.py'), at('/a', 'python3', 'app2.py'))).toBe(false);
    expect(same(at('/a', 'sh', 'p.sh'), at('/a', 'sh', 'p10.sh'))).toBe(false);
    expect(same(at('/a', './p.sh'), at('/a', './p10.sh'))).toBe(false);
  });

  it('worker.py, worker_v2.py and worker-v3.py in one folder are one identity', () => {
    const ids = [at('/w', 'python3', 'worker.py'), at('/w', 'python3', '/w/worker_v2.py'), at('/elsewhere', 'python3', '../w/worker-v3.py')];
    expect(new Set(ids.map((i) => identityOf(i))).size).toBe(1);
    expect(identityOf(ids[0]!)).toBe('/w: worker.py');
    expect(ids.map((i) => i.version)).toEqual([1, 2, 3]);
  });

  it('./x.py run from /a and /a/x.py are one', () => {
    expect(same(at('/a', 'python3', './x.py'), at('/b', 'python3', '/a/x.py'))).toBe(true);
    expect(same(at('/a', './x.py'), at('/', '/a/x.py'))).toBe(true);
    expect(same(at('/a', 'sh', '-c', 'exec python3 ./x.py --daemon'), at('/', 'python3', '/a/x.py'))).toBe(true);
  });

  it('symlinks are resolved where the caller can: the real folder counts', () => {
    const links: Record<string, string> = { '/home/u/current/x.py': '/opt/w/x.py', '/home/u/link': '/opt/w' };
    const realpath = (p: string) => links[p] ?? (p.startsWith('/opt/') ? p : undefined);
    expect(workerId(['python3', 'current/x.py'], { cwd: '/home/u', realpath })!.folder).toBe('/opt/w');
    expect(workerId(['python3', 'x.py'], { cwd: '/opt/w', realpath })!.folder).toBe('/opt/w');
    // the file cannot be resolved (gone), its folder can
    expect(workerId(['python3', 'link/gone.py'], { cwd: '/home/u', realpath })!.folder).toBe('/opt/w');
    // nothing resolves: the path as written, made absolute
    expect(scriptFolder('../u/./x.py', { cwd: '/home/u' })).toBe('/home/u');
  });

  it('a relative script without a cwd has no folder and is compared with nothing; PATH programs need none', () => {
    expect(workerId(['python3', 'x.py'])!.folder).toBeUndefined();
    expect(identityOf(workerId(['python3', 'x.py'])!)).toBeUndefined();
    expect(workerId(['python3', '/a/x.py'])!.folder).toBe('/a');
    expect(workerId(['claude', '--print'])!.folder).toBe('');
    expect(identityOf(workerId(['claude', '--print'])!)).toBe('claude --print');
    expect(workerId(['python3', '-m', 'assigner_v2'], { cwd: '/srv/a' })!.folder).toBe('/srv/a');
  });

  it('groups: two folders stay apart, across folders they compete; unknown folders never group', () => {
    const procs: ProcLite[] = [
      { pid: 10, ppid: 1, start: 1, argv: ['python3', 'server.py'], cwd: '/srv/projA' },
      { pid: 11, ppid: 1, start: 2, argv: ['python3', 'server.py'], cwd: '/srv/projB' },
      { pid: 12, ppid: 1, start: 3, argv: ['python3', 'server.py'] },
      { pid: 13, ppid: 1, start: 4, argv: ['python3', 'server.py'] },
    ];
    const split = groupInstances(procs, (_p, id) => id.script);
    expect([...split.values()].every((g) => g.length === 1)).toBe(true);
    expect([...split.keys()]).toContain('/srv/projA: server.py');
    const across = groupInstances(procs, (_p, id) => id.script, { acrossFolders: true });
    expect(across.get('server.py')!.map((i) => i.pid)).toEqual([10, 11, 12, 13]);
  });

  it('asks for the cwd only of processes in scope', () => {
    const asked: number[] = [];
    const procs: ProcLite[] = [
      { pid: 20, ppid: 1, start: 1, argv: ['python3', 'w.py'] },
      { pid: 21, ppid: 1, start: 2, argv: ['python3', 'w_v2.py'] },
      { pid: 22, ppid: 1, start: 3, argv: ['sleep', '60'] },
    ];
    const g = groupInstances(procs, (_p, id) => id.script, { cwdOf: (pid) => (asked.push(pid), '/w') });
    expect(asked.sort()).toEqual([20, 21]);
    expect(g.get('/w: w.py')!.length).toBe(2);
  });
});

describe('grouping and keeping (incident 2)', () => {
  // the seed's case: all in one folder, workers/
  const p = (pid: number, ppid: number, start: number, ...argv: string[]): ProcLite => ({ pid, ppid, start, argv, cwd: '/srv/fleet' });
  const procs = [
    p(100, 1, 10, 'python3', 'workers/auto_confirm_worker.py', '--daemon'),
    p(200, 1, 20, 'python3', '/srv/fleet/workers/auto_confirm_worker_v2.py', '--daemon'),
    p(300, 1, 30, 'sh', '-c', 'python3 workers/auto_confirm_worker.py --daemon; echo'),
    p(301, 300, 31, 'python3', 'workers/auto_confirm_worker.py', '--daemon'),
    p(400, 1, 40, 'python3', 'workers/other_worker.py'),
  ];
  const groups = groupInstances(procs, (_p, id) => id.script);

  it('a wrapper shell and its child are one instance', () => {
    const g = groups.get('/srv/fleet/workers: auto_confirm_worker.py')!;
    expect(g.map((i) => i.pid).sort()).toEqual([100, 200, 300]);
    expect(g.find((i) => i.pid === 300)!.pids).toEqual([300, 301]);
    expect(groups.get('/srv/fleet/workers: other_worker.py')!.length).toBe(1);
  });

  it('keeps the highest version by default, else the newest or oldest', () => {
    const g = groups.get('/srv/fleet/workers: auto_confirm_worker.py')!;
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
