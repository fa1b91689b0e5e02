import { chmodSync, chownSync, copyFileSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { nativeSupervisor } from '../../src/core/native.js';

describe('nativeSupervisor: which supervisor program is trusted', () => {
  let dir = '';
  let bin = '';
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'agentctl-native-'));
    bin = join(dir, 'agentctl-supervise');
    copyFileSync('/bin/true', bin);
    chmodSync(bin, 0o755);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('an executable file of ours that no one else can change', () => {
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

  it.runIf(process.getuid?.() === 0)('as root, not a file another user owns, also through a link', () => {
    chownSync(bin, 65534, 65534);
    expect(nativeSupervisor({}, bin)).toBeUndefined();
    const link = join(dir, 'link');
    symlinkSync(bin, link);
    expect(nativeSupervisor({}, link)).toBeUndefined();
  });
});
