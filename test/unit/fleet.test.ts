import { describe, expect, it } from 'vitest';
import { redactUrl } from '../../src/core/config/fleet-keys.js';
import { loadConfig } from '../../src/core/config/load.js';
import { fleetCap } from '../../src/core/fleet/fleet.js';
import { failureText, fleetTarget } from '../../src/core/fleet/pg.js';
import { fleetFullMessage } from '../../src/core/spawn/fleet.js';

describe('fleet helpers', () => {
  it('redactUrl keeps everything but the password (in the userinfo or a password= parameter)', () => {
    expect(redactUrl('postgres://ops:s3cret@db:5432/agentctl')).toBe('postgres://ops:REDACTED@db:5432/agentctl');
    expect(redactUrl('postgres://ops@db/agentctl?password=s3cret&sslmode=require')).toBe('postgres://ops@db/agentctl?password=REDACTED&sslmode=require');
    expect(redactUrl('postgres://ops@db/agentctl')).toBe('postgres://ops@db/agentctl');
    expect(redactUrl('')).toBe('');
  });

  it('fleetTarget names host:port/database and never the user or password', () => {
    expect(fleetTarget('postgres://ops:s3cret@db.internal/agentctl')).toBe('db.internal:5432/agentctl');
    expect(fleetTarget('postgres://ops@localhost:6543/agentctl?host=/run/postgresql')).toBe('localhost:6543/agentctl');
    expect(fleetTarget('not a url')).toBe('the fleet database');
  });

  it('failureText says what to do for a missing table or function, and for a timeout', () => {
    expect(failureText({ code: '42P01', message: 'relation "agentctl_fleet_leases" does not exist' })).toMatch(/run: agentctl fleet init/);
    expect(failureText({ code: '42883', message: 'function agentctl_fleet_take does not exist' })).toMatch(/run: agentctl fleet init/);
    expect(failureText({ code: '57014', message: 'canceling statement due to statement timeout' })).toBe('timed out (fleet.timeout)');
    expect(failureText(new Error('Query read timeout'))).toMatch(/^timed out \(fleet.timeout\)/);
    expect(failureText(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }))).toBe('connect ECONNREFUSED 127.0.0.1:5432');
  });

  it("the refusal names the fleet's count, its cap and every host's share", () => {
    expect(
      fleetFullMessage({
        group: 'claude',
        used: 10,
        cap: 10,
        hosts: [
          { host: 'host-a', n: 4 },
          { host: 'host-b', n: 6 },
        ],
      }),
    ).toBe('fleet: 10 of 10 claude sessions (host-a 4, host-b 6)');
  });

  it('fleetCap: only groups named in [fleet.caps], only with a url; not inherited names', () => {
    const c = loadConfig({ env: { AGENTCTL_FLEET_URL: 'postgres://h/db', AGENTCTL_FLEET_CAPS: 'claude=3' }, cwd: '/nonexistent', home: '/nonexistent' }).config;
    expect(fleetCap(c, 'claude')).toBe(3);
    expect(fleetCap(c, 'default')).toBeUndefined();
    expect(fleetCap(c, 'constructor')).toBeUndefined();
    expect(fleetCap(loadConfig({ env: {}, cwd: '/nonexistent', home: '/nonexistent' }).config, 'claude')).toBeUndefined();
  });
});
