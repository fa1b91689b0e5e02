import { describe, expect, it } from 'vitest';
import { jobArgv } from '../../src/core/spawn/each/argv.js';

const PATH = '/usr/bin:/bin';

describe('jobArgv: which batch lines skip the shell', () => {
  it('plain words whose first is a program on PATH run as those words', () => {
    expect(jobArgv('sleep 1', PATH)).toEqual(['sleep', '1']);
    expect(jobArgv('  ls  -la /tmp/x_y.z ', PATH)).toEqual(['ls', '-la', '/tmp/x_y.z']);
  });

  it('anything the shell would read differently runs as /bin/sh -c LINE', () => {
    for (const line of [
      'sleep 1; echo done',
      'ls > out',
      'ls $HOME',
      "ls 'a b'",
      'ls *.py',
      'FOO=1 ls',
      'ls ~',
      'ls # comment',
      'ls\tx',
      'sleep 1 &',
      'cd /tmp',
      'exit 3',
      '. ./env.sh',
      'pwd',
      'echo hi',
      'kill -9 1234',
      'if true',
      'agentctl-no-such-program-here x',
      './script.sh',
      '/usr/bin/sleep 1',
    ])
      expect(jobArgv(line, PATH), line).toEqual(['/bin/sh', '-c', line]);
  });

  it('no PATH, or one with an empty or relative entry, leaves every line to the shell', () => {
    expect(jobArgv('sleep 1', `${PATH}:`)).toEqual(['/bin/sh', '-c', 'sleep 1']);
    expect(jobArgv('sleep 1', `bin:${PATH}`)).toEqual(['/bin/sh', '-c', 'sleep 1']);
    expect(jobArgv('sleep 1', '/nonexistent')).toEqual(['/bin/sh', '-c', 'sleep 1']);
    expect(jobArgv('sleep 1', undefined)).toEqual(['/bin/sh', '-c', 'sleep 1']);
  });
});
