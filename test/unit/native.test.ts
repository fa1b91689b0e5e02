import { chmodSync, chownSync, copyFileSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { nativeSupervisor, supervisorInUse } from '../../src/core/native.js';

describe('nativeSupervisor: which supervisor program is trusted', () => {
  let dir = '';
  let bin = '';
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'agentctl-native-'));
    bin = join(dir, 'agentctl-supervise');
    copyFileSync('/bin/true', bin); // an ELF program of this machine
    chmodSync(bin, 0o755);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('an executable ELF file of this machine, ours, in a folder of ours, that no one else can change', () => {
    expect(nativeSupervisor({}, bin)).toBe(bin);
  });

  it('not with AGENTCTL_SUPERVISOR=sh, nor when missing, not executable, or group- or world-writable', () => {
    expect(nativeSupervisor({ AGENTCTL_SUPERVISOR: 'sh' }, bin)).toBeUndefined();
    expect(nativeSupervisor({}, join(dir, 'missing'))).toBeUndefined();
    chmodSync(bin, 0o644);
    expect(nativeSupervisor({}, bin)).toBeUndefined();
    chmodSync(bin, 0o775);
    expect(nativeSupervisor({}, bin)).toBeUndefined();
    chmodSync(bin, 0o757);
    expect(nativeSupervisor({}, bin)).toBeUndefined();
    expect(nativeSupervisor({}, dir)).toBeUndefined();
  });

  it('not in a folder others can write to, and not through a link', () => {
    chmodSync(dir, 0o777);
    expect(nativeSupervisor({}, bin)).toBeUndefined();
    chmodSync(dir, 0o700);
    const link = join(dir, 'link');
    symlinkSync(bin, link);
    expect(nativeSupervisor({}, link)).toBeUndefined();
  });

  it('not a script, nor an ELF program built for another machine (the exec would hand it to /bin/sh)', () => {
    writeFileSync(bin, '#!/bin/sh\nexit 0\n');
    expect(nativeSupervisor({}, bin)).toBeUndefined();
    const elf = readFileSync('/bin/true');
    elf.writeUInt16LE(elf.readUInt16LE(18) === 62 ? 183 : 62, 18); // x86-64 <-> aarch64
    writeFileSync(bin, elf);
    expect(nativeSupervisor({}, bin)).toBeUndefined();
  });

  it("says which is in use, and why not the compiled one (doctor's config.supervisor)", () => {
    expect(supervisorInUse({}, bin)).toEqual({ compiled: true, value: `compiled: ${bin}` });
    expect(supervisorInUse({ AGENTCTL_SUPERVISOR: 'sh' }, bin)).toEqual({ compiled: false, value: '/bin/sh script (AGENTCTL_SUPERVISOR=sh)' });
    expect(supervisorInUse({}, join(dir, 'missing')).value).toMatch(/^\/bin\/sh script: .*missing is not there \(built by npm ci/);
    chmodSync(bin, 0o644);
    expect(supervisorInUse({}, bin).value).toMatch(/ is not executable$/);
    chmodSync(bin, 0o775);
    expect(supervisorInUse({}, bin).value).toMatch(/ can be changed by another user$/);
  });

  it.runIf(process.getuid?.() === 0)('as root, not a file another user owns', () => {
    chownSync(bin, 65534, 65534);
    expect(nativeSupervisor({}, bin)).toBeUndefined();
  });
});
