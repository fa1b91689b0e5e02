import { describe, expect, it } from 'vitest';
import { DEFAULT_AGENT_PATTERNS } from '../fixtures/patterns.js';
import { countAgents, type ProcInfo, programName } from '../../src/core/proc.js';

const p = (pid: number, ...argv: string[]): ProcInfo => ({ pid, argv, cmdline: argv.join(' ') });

describe('programName', () => {
  it.each([
    [['/usr/bin/python3', '/opt/w/auto_confirm_worker_v2.py', '--daemon'], 'auto_confirm_worker_v2.py'],
    [['python3', '-u', 'worker.py'], 'worker.py'],
    [['node', '/usr/lib/node_modules/@anthropic-ai/claude-code/cli.js'], 'cli.js'],
    [['/bin/sh', '-c', './auto_confirm_worker.py --daemon'], 'auto_confirm_worker.py'],
    [['claude', '--resume'], 'claude'],
    [['/usr/bin/env', 'python3'], 'python3'],
    [[], ''],
  ])('%j -> %s', (argv, want) => {
    expect(programName(argv)).toBe(want);
  });
});

describe('countAgents with the default patterns', () => {
  const procs = [
    p(10, 'claude', '--print', 'fix the tests'),
    p(11, '/home/u/.local/bin/claude'),
    p(12, 'node', '/usr/lib/node_modules/@anthropic-ai/claude-code/cli.js', '--resume'),
    p(13, 'node', '/srv/mcp/filesystem-mcp', '--root', '/work'),
    p(14, 'npx', '@modelcontextprotocol/server-github-mcp'),
    p(15, 'python3', 'mcp_server.py'),
    p(16, 'node', '/usr/lib/node_modules/@modelcontextprotocol/server-filesystem/dist/index.js', '/work'),
    p(17, '/root/.local/bin/uvx', 'mcp-server-fetch'),
    p(18, 'python3', '/opt/tools/jira_mcp.py'),
    p(20, 'grep', 'claude'),
    p(21, 'vim', 'claude-notes.md'),
    p(24, 'cat', 'mcp.txt'),
    p(22, 'node', 'build.js'),
    p(23, 'nodejs', 'x.js'),
    p(99, 'node', 'agentctl'),
  ];

  it('counts claude sessions, node processes and agents; never itself', () => {
    const c = countAgents(procs, DEFAULT_AGENT_PATTERNS, 99);
    expect(c.claude).toBe(3);
    expect(c.node).toBe(5); // 12, 13, 16, 22, 23 (not 99: ourselves)
    expect(c.agentPids).toEqual([10, 11, 12, 13, 14, 15, 16, 17, 18]);
    expect(c.agents).toBe(9);
  });

  it('uses configured patterns', () => {
    const c = countAgents(procs, { patterns: ['build\\.js$'], claude: '^vim ' }, 99);
    expect(c.agentPids).toEqual([22]);
    expect(c.claude).toBe(1);
  });
});
