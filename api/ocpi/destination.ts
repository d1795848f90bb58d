import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';

/**
 * Which partner URLs we call. A partner chooses the URLs we fetch (its versions URL in the
 * credentials, the endpoints in its version details, the CDRs Receiver we push to), so without a
 * check any partner could make this server request its own loopback services, the private
 * network behind it, or a cloud metadata address (169.254.169.254). A URL whose host is, or
 * resolves to, any such address is refused unless the operator allows it
 * (OCPI_ALLOW_PRIVATE_ADDRESSES, for partners on a private network and for tests on loopback).
 *
 * Every address the name resolves to is checked, not only the first: a name with one public and
 * one loopback address would otherwise be refused or allowed by chance. The check is made right
 * before each request, and again on the addresses the connection itself looks up (client.ts
 * checked_lookup), so a name whose answer changes in between (DNS rebinding) is refused too.
 */
const refused_ranges: readonly { net: string; prefix: number; family: 'ipv4' | 'ipv6'; what: string }[] = [
  { net: '0.0.0.0', prefix: 8, family: 'ipv4', what: '"this network" (0.0.0.0/8)' },
  { net: '10.0.0.0', prefix: 8, family: 'ipv4', what: 'private (10.0.0.0/8)' },
  { net: '100.64.0.0', prefix: 10, family: 'ipv4', what: 'shared address space (100.64.0.0/10)' },
  { net: '127.0.0.0', prefix: 8, family: 'ipv4', what: 'loopback (127.0.0.0/8)' },
  { net: '169.254.0.0', prefix: 16, family: 'ipv4', what: 'link-local (169.254.0.0/16)' },
  { net: '172.16.0.0', prefix: 12, family: 'ipv4', what: 'private (172.16.0.0/12)' },
  { net: '192.168.0.0', prefix: 16, family: 'ipv4', what: 'private (192.168.0.0/16)' },
  { net: '224.0.0.0', prefix: 4, family: 'ipv4', what: 'multicast (224.0.0.0/4)' },
  { net: '240.0.0.0', prefix: 4, family: 'ipv4', what: 'reserved or broadcast (240.0.0.0/4)' },
  { net: '::', prefix: 128, family: 'ipv6', what: 'unspecified (::)' },
  { net: '::1', prefix: 128, family: 'ipv6', what: 'loopback (::1)' },
  { net: 'fc00::', prefix: 7, family: 'ipv6', what: 'unique-local (fc00::/7)' },
  { net: 'fe80::', prefix: 10, family: 'ipv6', what: 'link-local (fe80::/10)' },
  { net: 'ff00::', prefix: 8, family: 'ipv6', what: 'multicast (ff00::/8)' },
];

const blocks = refused_ranges.map((r) => {
  const list = new BlockList();
  list.addSubnet(r.net, r.prefix, r.family);
  return { list, family: r.family, what: r.what };
});

/** An IPv4 address written as IPv4-mapped IPv6 (::ffff:a.b.c.d or ::ffff:xxxx:yyyy), else undefined. */
function mapped_ipv4(address: string): string | undefined {
  const text = address.toLowerCase();
  const dotted = /^(?:0{0,4}:){0,5}:?ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(text);
  if (dotted !== null) return dotted[1];
  const hex = /^(?:0{0,4}:){0,5}:?ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(text);
  if (hex === null) return undefined;
  const high = Number.parseInt(hex[1]!, 16);
  const low = Number.parseInt(hex[2]!, 16);
  return `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`;
}

/** What kind of non-public address this is, or undefined for an address we may call. */
export function refused_address_kind(address: string): string | undefined {
  const v4 = isIP(address) === 6 ? mapped_ipv4(address) : undefined;
  const checked = v4 ?? address;
  const family = isIP(checked) === 4 ? 'ipv4' : isIP(checked) === 6 ? 'ipv6' : undefined;
  if (family === undefined) return 'not an IP address';
  return blocks.find((b) => b.family === family && b.list.check(checked, family))?.what;
}

/** Bound on the addresses of one name that are checked (a resolver answer is small anyway). */
const addresses_checked_max = 64;

/**
 * Resolves the URL's host (dns.lookup, every address) and returns why the URL is refused, naming
 * it, when an address is loopback, private, link-local, unique-local, multicast or unspecified;
 * undefined when it may be called (or `allow_private` is set).
 */
export async function destination_refusal(url: URL, allow_private: boolean): Promise<string | undefined> {
  if (allow_private) return undefined;
  // URL keeps IPv6 literals in brackets.
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  let addresses: string[];
  if (isIP(host) !== 0) {
    addresses = [host];
  } else {
    try {
      addresses = (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);
    } catch (error) {
      return `${url.href}: cannot resolve ${host}: ${(error as Error).message}`;
    }
  }
  for (const address of addresses.slice(0, addresses_checked_max)) {
    const kind = refused_address_kind(address);
    if (kind !== undefined) {
      const where = host === address ? 'the address' : `${host} resolves to`;
      return `${url.href}: ${where} ${address}, ${kind}; partner URLs must be public addresses (OCPI_ALLOW_PRIVATE_ADDRESSES=true allows others)`;
    }
  }
  return undefined;
}

/**
 * OCPI_ALLOW_PRIVATE_ADDRESSES as core/config.ts reads it (true/1, false/0, unset false), for
 * client options that do not carry the setting.
 */
export function allow_private_addresses_from_env(env: NodeJS.ProcessEnv = process.env): boolean {
  const raw = env.OCPI_ALLOW_PRIVATE_ADDRESSES;
  return raw === 'true' || raw === '1';
}
