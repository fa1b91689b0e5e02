/**
 * Trust, end to end with a real second user: agentctl run as root refuses state another user
 * planted and ignores config files another user could have written.
 */
import { chmodSync, chownSync, mkdirSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cleanEnv, runCli, tempDir } from '../helpers.js';
import { NEEDS_ROOT, shAsUser, testUser, type TestUser } from '../users.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.log(`trust.test.ts: skipping the tests with a second user: ${NEEDS_ROOT}`);

let t: ReturnType<typeof tempDir>;
let user: TestUser;
/** a /tmp-like folder inside the test's own: sticky and world-writable, so the second user can create in it */
let shared: string;
beforeEach(() => {
  t = tempDir();
  shared = join(t.dir, 'shared');
  mkdirSync(shared);
  chmodSync(t.dir, 0o755);
  chmodSync(shared, 0o1777);
  if (isRoot) user = testUser();
});
afterEach(() => t.cleanup());

const cli = (args: string[], opts: { cwd?: string } = {}) => runCli(args, { env: cleanEnv({ HOME: join(t.dir, 'home') }), ...opts, timeoutMs: 20_000 });

interface ErrorDoc {
  error: { code: number; reason: string; message: string; details: { file: string } };
}

describe('state another user could change is refused', () => {
  it.runIf(isRoot)('a state dir the second user created first: root refuses it, exit 1, one clear line, nothing written', async () => {
    const dir = join(shared, 'state');
    await shAsUser(user, `mkdir -m 700 ${dir}`);
    const r = await cli(['ps', '--state-dir', dir]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      `agentctl: state folder ${dir} is owned by ${user.name} (uid ${user.uid}), mode 0700: not yours or root's; fix: chown root ${dir} && chmod 700 ${dir}, or pass --state-dir with a folder of your own\n`,
    );
    const j = await cli(['--json', 'ps', '--state-dir', dir]);
    expect(j.code).toBe(1);
    const doc = JSON.parse(j.stdout) as ErrorDoc; // one document, and only that
    expect(doc.error).toMatchObject({ code: 1, reason: 'state_untrusted', details: { file: dir } });
    expect(doc.error.message).toContain(`owned by ${user.name} (uid ${user.uid}), mode 0700`);
    expect(readdirSync(dir)).toEqual([]);
    expect(statSync(dir).uid).toBe(user.uid);
  });

  it.runIf(isRoot)('a world-writable state dir with a state.db the second user planted is refused on both counts', async () => {
    const dir = join(shared, 'open');
    await shAsUser(user, `mkdir -m 777 ${dir} && chmod 777 ${dir} && : > ${dir}/state.db`);
    const r = await cli(['ps', '--state-dir', dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`state folder ${dir} is owned by ${user.name} (uid ${user.uid}), mode 0777: not yours or root's, and writable by group or others`);
    expect(readdirSync(dir)).toEqual(['state.db']);
    expect(statSync(join(dir, 'state.db')).size).toBe(0);
    // root's own folder but their state.db: refused for the file
    const mine = join(t.dir, 'mine');
    mkdirSync(mine, { mode: 0o700 });
    writeFileSync(join(mine, 'state.db'), '', { mode: 0o600 });
    chownSync(join(mine, 'state.db'), user.uid, user.gid);
    const f = await cli(['--json', 'ps', '--state-dir', mine]);
    expect(f.code).toBe(1);
    expect((JSON.parse(f.stdout) as ErrorDoc).error).toMatchObject({ reason: 'state_untrusted', details: { file: join(mine, 'state.db') } });
    expect(statSync(join(mine, 'state.db')).size).toBe(0);
  });

  it('a fresh state dir is created 0700 with state.db 0600, and a symlinked one is refused', async () => {
    const dir = join(t.dir, 'fresh', 'state');
    expect((await cli(['ps', '--state-dir', dir])).code).toBe(0);
    expect(statSync(dir).mode & 0o7777).toBe(0o700);
    expect(statSync(join(dir, 'state.db')).mode & 0o7777).toBe(0o600);
    symlinkSync(dir, join(t.dir, 'link'));
    const r = await cli(['ps', '--state-dir', join(t.dir, 'link')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('is a symbolic link');
  });
});

interface ConfigDoc {
  files: string[];
  ignored: Array<{ path: string; reason: string }>;
  entries: Array<{ key: string; value: unknown; source: { kind: string; detail: string } }>;
  values: { agents: { patterns: string[] } };
}
const patterns = (doc: ConfigDoc) => doc.entries.find((e) => e.key === 'agents.patterns')!;

describe('config files another user could have written are ignored', () => {
  it.runIf(isRoot)("a project agentctl.toml in the second user's world-writable folder: not used, a warning naming it; --config uses it", async () => {
    const project = join(shared, 'project');
    const file = join(project, 'agentctl.toml');
    await shAsUser(user, `mkdir -m 777 ${project} && chmod 777 ${project} && printf '[agents]\\npatterns = ["rootdaemon"]\\n' > ${file}`);
    const r = await cli(['config', '--json'], { cwd: project });
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as ConfigDoc;
    expect(patterns(doc).source).toEqual({ kind: 'default', detail: 'built-in' });
    expect(doc.values.agents.patterns).not.toContain('rootdaemon');
    expect(doc.files).toEqual([]);
    expect(doc.ignored).toEqual([{ path: file, reason: expect.stringContaining(`owned by ${user.name} (uid ${user.uid}), mode 0644: not yours or root's`) }]);
    expect(r.stderr).toBe(`agentctl: ignoring config file ${file}: ${doc.ignored[0]!.reason}; or name it with --config to use it anyway\n`);
    // --quiet: the listing still shows it, stderr stays quiet
    const q = await cli(['config', '--json', '--quiet'], { cwd: project });
    expect(q.stderr).toBe('');
    expect((JSON.parse(q.stdout) as ConfigDoc).ignored.length).toBe(1);
    // the human view names it too (--wide: on one line, however long the temp path)
    expect((await cli(['config', '--wide'], { cwd: project })).stdout).toContain(`config file ignored: ${file}: owned by ${user.name}`);
    // named explicitly, it is trusted
    const named = await cli(['config', '--json', '--config', file], { cwd: project });
    expect(named.code).toBe(0);
    expect(named.stderr).toBe('');
    const used = JSON.parse(named.stdout) as ConfigDoc;
    expect(patterns(used)).toMatchObject({ value: ['rootdaemon'], source: { kind: 'file', detail: file } });
    expect(used.ignored).toEqual([]);
  });

  it('a group-writable agentctl.toml of the invoking user (664) is ignored, and other commands warn once', async () => {
    const project = join(t.dir, 'project');
    mkdirSync(project, { mode: 0o755 });
    const file = join(project, 'agentctl.toml');
    writeFileSync(file, '[agents]\npatterns = ["rootdaemon"]\n');
    chmodSync(file, 0o664);
    const r = await cli(['config', '--json'], { cwd: project });
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as ConfigDoc;
    expect(patterns(doc).source.kind).toBe('default');
    expect(doc.ignored).toEqual([{ path: file, reason: expect.stringContaining(`mode 0664: writable by group or others; fix: chmod go-w ${file}`) }]);
    expect(r.stderr).toContain(`agentctl: ignoring config file ${file}: owned by `);
    const ps = await cli(['ps', '--state-dir', join(t.dir, 'state')], { cwd: project });
    expect(ps.code).toBe(0);
    expect(ps.stderr.match(/ignoring config file/g)?.length).toBe(1); // once per command
    chmodSync(file, 0o644);
    const ok = JSON.parse((await cli(['config', '--json'], { cwd: project })).stdout) as ConfigDoc;
    expect(patterns(ok).source).toEqual({ kind: 'project', detail: file });
  });
});
