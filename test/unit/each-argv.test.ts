import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
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

describe('jobArgv: what is on PATH decides', () => {
  let dir = '';
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'agentctl-argv-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const program = (name: string, body: Buffer | string) => {
    writeFileSync(join(dir, name), body, { mode: 0o755 });
    return name;
  };

  it('a #! script or an ELF program of this machine runs directly; a script without #! or a foreign program goes to the shell', () => {
    expect(jobArgv(`${program('tool', '#!/bin/sh\nexit 0\n')} x`, dir)).toEqual(['tool', 'x']);
    expect(jobArgv(program('native', readFileSync('/bin/true')), dir)).toEqual(['native']);
    expect(jobArgv(program('bare', 'exit 0\n'), dir)).toEqual(['/bin/sh', '-c', 'bare']);
    const elf = readFileSync('/bin/true');
    elf.writeUInt16LE(elf.readUInt16LE(18) === 62 ? 183 : 62, 18);
    expect(jobArgv(program('foreign', elf), dir)).toEqual(['/bin/sh', '-c', 'foreign']);
  });

  it('only spaces and tabs around the line are blanks, as the shell splits', () => {
    program('tool', '#!/bin/sh\n');
    expect(jobArgv(' \ttool ', dir)).toEqual(['tool']);
    expect(jobArgv('tool\f', dir)).toEqual(['/bin/sh', '-c', 'tool\f']);
    expect(jobArgv('\ufefftool', dir)).toEqual(['/bin/sh', '-c', '\ufefftool']);
  });
});
