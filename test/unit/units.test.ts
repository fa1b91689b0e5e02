import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/core/errors.js';
import { thrown } from '../helpers.js';
import { formatBytes, formatDuration, MAX_TIMER_MS, parseDuration, parseIntInRange, parseSize, tryParseDuration, tryParseSize } from '../../src/core/units.js';

describe('durations', () => {
  it.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['5m', 300_000],
    ['2h', 7_200_000],
    ['1d', 86_400_000],
    ['1.5s', 1_500],
    ['1h30m', 5_400_000],
    ['0', 0],
    ['0s', 0],
    [' 10s ', 10_000],
  ])('%s = %d ms', (text, ms) => {
    expect(tryParseDuration(text)).toBe(ms);
  });

  it.each(['', '10', '-5s', '5x', 's', '1.s', '10 s', '5m5', 'NaN', '1e3s', '366d', '9999999999999d'])('rejects %j', (text) => {
    expect(tryParseDuration(text)).toBeUndefined();
  });

  it('names the flag and what is accepted', () => {
    expect(() => parseDuration('5x', '--timeout')).toThrow(UsageError);
    expect(() => parseDuration('5x', '--timeout')).toThrow(/--timeout: invalid duration "5x"; expected a duration like 500ms/);
  });

  it('a duration that feeds a timer is bounded below what setTimeout honours (2^31-1 ms)', () => {
    expect(MAX_TIMER_MS).toBeLessThan(2 ** 31 - 1);
    expect(parseDuration('24d', '--timeout', MAX_TIMER_MS)).toBe(MAX_TIMER_MS);
    expect(parseDuration('23d23h59m', '--watch', MAX_TIMER_MS)).toBe(MAX_TIMER_MS - 60_000);
    const e = thrown(UsageError, () => parseDuration('25d', '--timeout', MAX_TIMER_MS));
    expect(e.message).toBe('--timeout: 25d is out of range; expected a duration from 0 to 24d: the longest a timer can wait');
    expect(() => parseDuration('24d1ms', '--watch', MAX_TIMER_MS)).toThrow(/--watch: 24d1ms is out of range/);
    // durations compared with timestamps keep the longer bound
    expect(parseDuration('30d', '--ttl')).toBe(30 * 86_400_000);
    expect(() => parseDuration('366d', '--ttl')).toThrow('--ttl: 366d is out of range; expected a duration from 0 to 365d');
    expect(() => parseDuration('x', '--watch', MAX_TIMER_MS)).toThrow('(at most 24d)');
  });

  it('formats for people', () => {
    expect(formatDuration(850)).toBe('850ms');
    expect(formatDuration(12_000)).toBe('12s');
    expect(formatDuration(300_000)).toBe('5m');
    expect(formatDuration(7_500_000)).toBe('2h 5m');
    expect(formatDuration(3 * 86_400_000 + 4 * 3_600_000)).toBe('3d 4h');
  });
});

describe('sizes', () => {
  it.each([
    ['512M', 512 * 1024 ** 2],
    ['2G', 2 * 1024 ** 3],
    ['2g', 2 * 1024 ** 3],
    ['1.5G', 1.5 * 1024 ** 3],
    ['64k', 65_536],
    ['500MB', 500 * 1024 ** 2],
    ['1048576', 1_048_576],
  ])('%s = %d bytes', (text, bytes) => {
    expect(tryParseSize(text)).toBe(bytes);
  });

  it.each(['', 'M', '-1G', '2X', '1 G', '99999999999T'])('rejects %j', (text) => {
    expect(tryParseSize(text)).toBeUndefined();
  });

  it('names the flag', () => {
    expect(() => parseSize('lots', '--memory-max')).toThrow(/--memory-max: invalid size "lots"/);
  });

  it('formats for people', () => {
    expect(formatBytes(163 * 1024 ** 2)).toBe('163M');
    expect(formatBytes(23.1 * 1024 ** 3)).toBe('23.1G');
    expect(formatBytes(512)).toBe('512B');
  });
});

describe('whole numbers in a range', () => {
  it('accepts the range and rejects the rest, naming the flag', () => {
    expect(parseIntInRange('3', '--max-level', 0, 3)).toBe(3);
    expect(() => parseIntInRange('4', '--max-level', 0, 3)).toThrow(/--max-level: 4 is out of range; expected a whole number from 0 to 3/);
    expect(() => parseIntInRange('1.5', '--max-level', 0, 3)).toThrow(/invalid value "1.5"/);
    expect(() => parseIntInRange('', '--max-level', 0, 3)).toThrow(UsageError);
    expect(() => parseIntInRange('99999999999999999999', '--max-level', 0, 3)).toThrow(/out of range/);
  });
});
