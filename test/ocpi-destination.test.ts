import { describe, expect, it } from 'vitest';
import { checked_lookup } from '../api/ocpi/client.js';
import { destination_refusal, refused_address_kind } from '../api/ocpi/destination.js';

/** Which addresses a partner URL may point to (api/ocpi/destination.ts). */
describe('partner URL destinations', () => {
  it('names the kind of every non-public address, IPv4-mapped IPv6 forms included', () => {
    const refused: [string, RegExp][] = [
      ['127.0.0.1', /loopback/],
      ['127.255.0.9', /loopback/],
      ['10.1.2.3', /private \(10/],
      ['172.16.0.1', /private \(172\.16/],
      ['172.31.255.255', /private \(172\.16/],
      ['192.168.1.1', /private \(192\.168/],
      ['169.254.169.254', /link-local/],
      ['0.0.0.0', /this network/],
      ['224.0.0.251', /multicast/],
      ['255.255.255.255', /broadcast/],
      ['::1', /loopback/],
      ['::', /unspecified/],
      ['fe80::1', /link-local/],
      ['fd12:3456::1', /unique-local/],
      ['fc00::1', /unique-local/],
      ['ff02::1', /multicast/],
      // How `new URL('http://[::ffff:127.0.0.1]/').hostname` writes it, and the dotted form.
      ['::ffff:7f00:1', /loopback/],
      ['::ffff:127.0.0.1', /loopback/],
      ['::ffff:a9fe:a9fe', /link-local/],
    ];
    for (const [address, kind] of refused) expect(refused_address_kind(address), address).toMatch(kind);
    // Public addresses, and the neighbours of the private ranges.
    for (const address of [
      '93.184.216.34',
      '172.32.0.1',
      '172.15.255.255',
      '192.169.0.1',
      '2001:db8::1',
      '::ffff:5db8:d822',
    ])
      expect(refused_address_kind(address), address).toBeUndefined();
  });

  it('refuses a URL by its literal address or by what its name resolves to, unless allowed', async () => {
    expect(await destination_refusal(new URL('http://127.0.0.1:9/ocpi/versions'), false)).toMatch(
      /^http:\/\/127\.0\.0\.1:9\/ocpi\/versions: the address 127\.0\.0\.1, loopback/,
    );
    expect(await destination_refusal(new URL('http://[::ffff:127.0.0.1]:9/'), false)).toMatch(/loopback/);
    expect(await destination_refusal(new URL('http://localhost:9/'), false)).toMatch(
      /^http:\/\/localhost:9\/: localhost resolves to (127\.0\.0\.1|::1), loopback/,
    );
    expect(await destination_refusal(new URL('http://127.0.0.1:9/'), true)).toBeUndefined();
    // A literal public address needs no lookup and passes.
    expect(await destination_refusal(new URL('https://93.184.216.34/ocpi/versions'), false)).toBeUndefined();
  });

  it('checks the addresses again when the connection looks the name up (a name may change its answer)', async () => {
    const lookup = (allow: boolean, all: boolean) =>
      new Promise<{ error: (Error & { refusal?: string }) | null; address: unknown }>((resolve) =>
        checked_lookup(allow)('localhost', { all }, (error, address) =>
          resolve({ error: error as (Error & { refusal?: string }) | null, address }),
        ),
      );
    for (const all of [false, true]) {
      const refused = await lookup(false, all);
      expect(refused.error?.refusal).toMatch(/^localhost resolves to (127\.0\.0\.1|::1), loopback/);
      const allowed = await lookup(true, all);
      expect(allowed.error).toBeNull();
      expect(JSON.stringify(allowed.address)).toMatch(/127\.0\.0\.1|::1/);
    }
  });
});
