/** Small probes doctor's service checks use: a TCP connect and an HTTP GET, each with a timeout. */
import { request } from 'node:http';
import { request as requestHttps } from 'node:https';
import { connect } from 'node:net';

export function tcpAccepts(port: number, host = '127.0.0.1', timeoutMs = 2000): Promise<{ ok: boolean; detail: string }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const sock = connect({ port, host });
    const done = (ok: boolean, detail: string) => {
      sock.destroy();
      resolve({ ok, detail });
    };
    sock.setTimeout(timeoutMs, () => done(false, `no answer within ${timeoutMs} ms`));
    sock.once('connect', () => done(true, `accepted in ${Date.now() - started} ms`));
    sock.once('error', (err: NodeJS.ErrnoException) => done(false, err.code ?? err.message));
  });
}

export function httpStatus(url: string, timeoutMs = 2000): Promise<{ status: number | null; detail: string }> {
  return new Promise((resolve) => {
    const started = Date.now();
    let settled = false;
    const finish = (status: number | null, detail: string) => {
      if (settled) return;
      settled = true;
      resolve({ status, detail });
    };
    try {
      const req = (url.startsWith('https:') ? requestHttps : request)(url, { method: 'GET', timeout: timeoutMs }, (res) => {
        res.resume();
        finish(res.statusCode ?? null, `HTTP ${res.statusCode} in ${Date.now() - started} ms`);
      });
      req.once('timeout', () => {
        req.destroy();
        finish(null, `no answer within ${timeoutMs} ms`);
      });
      req.once('error', (err: NodeJS.ErrnoException) => finish(null, err.code ?? err.message));
      req.end();
    } catch (err) {
      finish(null, (err as Error).message);
    }
  });
}
