import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestCharger } from './helpers/charger.js';
import { api_put, start_test_stack } from './helpers/stack.js';

type Stack = Awaited<ReturnType<typeof start_test_stack>>;

describe('security profile 2: TLS terminated by the OCPP server, HTTP Basic inside', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'evrate-tls-'));
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  let stack: Stack;
  beforeAll(async () => {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '2',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        key,
        '-out',
        cert,
      ],
      { stdio: 'ignore' },
    );
    stack = await start_test_stack({
      OCPP_ALLOW_UNKNOWN: 'false',
      OCPP_TLS_CERT_FILE: cert,
      OCPP_TLS_KEY_FILE: key,
    });
  });
  afterAll(async () => {
    await stack?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves wss:// to a registered charge point and refuses a wrong password', async () => {
    expect(stack.ocpp_url.startsWith('wss://')).toBe(true);
    const password = '00112233445566778899aabb';
    await api_put(stack, '/v1/charge-points/CP-TLS-1', JSON.stringify({ password }));
    const url = stack.ocpp_url.replace('{chargePointId}', 'CP-TLS-1');
    const ca = readFileSync(cert, 'utf8');
    await expect(
      TestCharger.connect(url, 'ocpp1.6', { username: 'CP-TLS-1', password: 'wrong-password-0000' }, ca),
    ).rejects.toThrow(/401/);
    const charger = await TestCharger.connect(url, 'ocpp1.6', { username: 'CP-TLS-1', password }, ca);
    expect((await charger.call('Heartbeat', {})).currentTime).toEqual(expect.any(String));
    charger.close();
  });
});
