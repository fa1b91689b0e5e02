/**
 * The pure decision of `agentctl wait` (src/core/runs/wait.ts): given the runs' rows in
 * argument order, are we done, and with which exit code.
 */
import { describe, expect, it } from 'vitest';
import { signalNumber } from '../../src/core/runs/end.js';
import type { RunRow } from '../../src/core/runs/registry.js';
import { runStatus, waitDecision } from '../../src/core/runs/wait.js';

type Row = Pick<RunRow, 'state' | 'exit_code' | 'signal' | 'ended_at'>;
const running: Row = { state: 'running', exit_code: null, signal: null, ended_at: null };
const exited = (code: number): Row => ({ state: code === 0 ? 'exited' : 'failed', exit_code: code, signal: null, ended_at: 1 });
const killed = (signal: string, state: RunRow['state'] = 'failed'): Row => ({ state, exit_code: null, signal, ended_at: 1 });
const lost: Row = { state: 'lost', exit_code: null, signal: null, ended_at: 1 };

describe('runStatus', () => {
  it('is the exit code, 128 + n for signal n, 1 when lost', () => {
    expect(runStatus(exited(0))).toBe(0);
    expect(runStatus(exited(3))).toBe(3);
    expect(runStatus(killed('SIGKILL'))).toBe(137);
    expect(runStatus(killed('SIGTERM', 'stopped'))).toBe(143);
    expect(runStatus(killed('SIG34'))).toBe(162);
    expect(runStatus(lost)).toBe(1);
    // a signal name agentctl never writes: no code to derive, so a failure
    expect(runStatus(killed('SIGNOPE'))).toBe(1);
  });

  it('signalNumber reads what signalName writes, and nothing else', () => {
    expect(signalNumber('SIGINT')).toBe(2);
    expect(signalNumber('SIG40')).toBe(40);
    expect(signalNumber('SIG0')).toBeUndefined();
    expect(signalNumber('KILL')).toBeUndefined();
  });
});

describe('waitDecision', () => {
  it('waits while any run is still running', () => {
    expect(waitDecision([running], false)).toEqual({ done: false });
    expect(waitDecision([exited(3), running], false)).toEqual({ done: false });
  });

  it('one run: done with its own code', () => {
    expect(waitDecision([exited(3)], false)).toEqual({ done: true, exitCode: 3, decidedBy: 0 });
    expect(waitDecision([exited(0)], false)).toEqual({ done: true, exitCode: 0, decidedBy: undefined });
    expect(waitDecision([killed('SIGKILL')], false)).toEqual({ done: true, exitCode: 137, decidedBy: 0 });
  });

  it('several runs: the first non-zero in argument order, else 0', () => {
    expect(waitDecision([exited(0), exited(4), exited(3)], false)).toEqual({ done: true, exitCode: 4, decidedBy: 1 });
    expect(waitDecision([exited(0), exited(0)], false)).toEqual({ done: true, exitCode: 0, decidedBy: undefined });
    expect(waitDecision([exited(0), lost], false)).toEqual({ done: true, exitCode: 1, decidedBy: 1 });
  });

  it('--any: done when one has ended, with the code of the first ended one in argument order', () => {
    expect(waitDecision([running, running], true)).toEqual({ done: false });
    expect(waitDecision([running, exited(5)], true)).toEqual({ done: true, exitCode: 5, decidedBy: 1 });
    expect(waitDecision([exited(0), exited(5)], true)).toEqual({ done: true, exitCode: 0, decidedBy: 0 });
  });
});
