import { PartnerRegistry, token_sha256 } from '../../api/ocpi/partners.js';
import type { Config } from '../../core/config.js';
import { create_logger } from '../../core/log.js';
import { connect_nats, type Nats } from '../../core/nats.js';

export interface EmspPartner {
  partner_id: string;
  country_code: string;
  party_id: string;
  name: string;
  /** Token C, which the partner presents. */
  token: string;
  /** Token B, which we would present to the partner. */
  partner_token?: string;
}

/**
 * Registers an eMSP partner as a completed credentials handshake leaves it, straight in the
 * registry. Returns the NATS connection it used: the caller closes it.
 */
export async function register_emsp_partner(
  stack: { nats_url: string; config: Config },
  partner: EmspPartner,
): Promise<Nats> {
  const nats = await connect_nats(stack.config, stack.nats_url, create_logger('warn'));
  const party = { country_code: partner.country_code, party_id: partner.party_id };
  await (await PartnerRegistry.open(nats)).save(
    {
      partner_id: partner.partner_id,
      parties: [party],
      status: 'registered',
      token_sha256: token_sha256(partner.token),
      token_kind: 'C',
      ...(partner.partner_token === undefined ? {} : { partner_token: partner.partner_token }),
      roles: [{ role: 'EMSP', business_details: { name: partner.name }, ...party }],
      created_at_ms: 0,
      updated_at_ms: 0,
    },
    undefined,
  );
  return nats;
}
