import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OcpiClientError, ocpi_call } from '../api/ocpi/client.js';

/** The OCPI client's bounds against a small partner server on loopback (allowed explicitly). */
describe('OCPI client', () => {
  let server: http.Server;
  let base = '';
  const seen: { url: string; authorization: string; body: string }[] = [];
  const options = { timeout_ms: 300, response_bytes_max: 1024, allow_private_addresses: true };

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        seen.push({
          url: req.url ?? '',
          authorization: req.headers.authorization ?? '',
          body: Buffer.concat(chunks).toString('utf8'),
        });
        if (req.url === '/big') return res.end(JSON.stringify({ status_code: 1000, data: 'x'.repeat(2000) }));
        if (req.url === '/slow') return; // never answers
        if (req.url === '/moved') {
          res.writeHead(302, { location: `${base}/ok` });
          return res.end('{}');
        }
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ status_code: 1000, data: { echoed: seen.length }, timestamp: '' }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('sends the token and the body, and reads the envelope', async () => {
    const result = await ocpi_call<{ echoed: number }>('POST', `${base}/ok`, 'tok', { a: 1 }, options);
    expect(result.http_status).toBe(200);
    expect(result.body.data).toEqual({ echoed: 1 });
    expect(result.headers.get('content-type')).toBe('application/json');
    expect(seen[0]).toEqual({
      url: '/ok',
      authorization: `Token ${Buffer.from('tok').toString('base64')}`,
      body: '{"a":1}',
    });
  });

  it('refuses an answer over its size bound, one too slow, and a redirect it does not follow', async () => {
    await expect(ocpi_call('GET', `${base}/big`, 'tok', undefined, options)).rejects.toThrow(
      /response over 1024 bytes/,
    );
    const slow = ocpi_call('GET', `${base}/slow`, 'tok', undefined, options);
    await expect(slow).rejects.toBeInstanceOf(OcpiClientError);
    await expect(slow).rejects.toThrow(/GET http:\/\/127\.0\.0\.1:\d+\/slow: .*(abort|timeout)/i);
    const before = seen.length;
    await expect(ocpi_call('GET', `${base}/moved`, 'tok', undefined, options)).rejects.toThrow(/HTTP 302/);
    expect(seen.slice(before).map((s) => s.url)).toEqual(['/moved']);
  });
});
