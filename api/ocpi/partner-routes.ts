import { HttpError, type Route, send_json } from '../http.js';
import { type OcpiContext, versions_url } from './context.js';
import { rotate_partner_token } from './credentials.js';
import { type Party, partner_id_pattern, partner_view, partners_max } from './partners.js';

const parties_max = 16;

function parse_parties(value: unknown): Party[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > parties_max) {
    throw new HttpError(
      400,
      `parties: must be a list of 1 to ${parties_max} {country_code, party_id}`,
      'parties',
    );
  }
  return value.map((raw, i) => {
    const p = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
    if (typeof p.country_code !== 'string' || !/^[A-Za-z]{2}$/.test(p.country_code)) {
      throw new HttpError(400, `parties[${i}].country_code: must be 2 letters`, `parties[${i}].country_code`);
    }
    if (typeof p.party_id !== 'string' || !/^[A-Za-z0-9]{3}$/.test(p.party_id)) {
      throw new HttpError(
        400,
        `parties[${i}].party_id: must be 3 letters or digits`,
        `parties[${i}].party_id`,
      );
    }
    return { country_code: p.country_code.toUpperCase(), party_id: p.party_id.toUpperCase() };
  });
}

/** Operator routes for OCPI partner onboarding: issue token A, list partners, rotate our token. */
export function partner_routes(context: OcpiContext): Route[] {
  return [
    {
      method: 'POST',
      path: /^\/v1\/partners$/,
      auth: 'operator',
      doc: {
        path: '/v1/partners',
        summary:
          'Create a roaming partner (or restart its onboarding): returns CREDENTIALS_TOKEN_A and our OCPI versions URL; any earlier token of the partner stops working',
        tags: ['partners'],
        request_body: {
          type: 'object',
          required: ['partner_id', 'parties'],
          properties: {
            partner_id: { type: 'string', pattern: partner_id_pattern.source },
            parties: {
              type: 'array',
              minItems: 1,
              maxItems: parties_max,
              items: {
                type: 'object',
                required: ['country_code', 'party_id'],
                properties: { country_code: { type: 'string' }, party_id: { type: 'string' } },
              },
            },
          },
        },
        responses: {
          '201': { description: '{partner_id, token_a, versions_url, parties}' },
          '400': { description: 'invalid request' },
        },
      },
      async handle({ res, json_body }) {
        const body = await json_body();
        const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
        if (typeof b.partner_id !== 'string' || !partner_id_pattern.test(b.partner_id)) {
          throw new HttpError(400, 'partner_id: must be 1 to 64 letters, digits, _ . or -', 'partner_id');
        }
        const parties = parse_parties(b.parties);
        if (
          (await context.partners.get(b.partner_id)) === undefined &&
          (await context.partners.list()).length >= partners_max
        ) {
          throw new HttpError(400, `at most ${partners_max} partners`, 'partner_id');
        }
        const { token_a, record } = await context.partners.issue_token_a(b.partner_id, parties);
        send_json(res, 201, {
          partner_id: record.partner_id,
          token_a,
          versions_url: versions_url(context),
          parties,
        });
      },
    },
    {
      method: 'GET',
      path: /^\/v1\/partners$/,
      auth: 'operator',
      doc: {
        path: '/v1/partners',
        summary: 'Roaming partners with their status, roles and endpoints (no tokens)',
        tags: ['partners'],
        responses: { '200': { description: '{partners: [...]}' } },
      },
      async handle({ res }) {
        send_json(res, 200, { partners: (await context.partners.list()).map(partner_view) });
      },
    },
    {
      method: 'POST',
      path: /^\/v1\/partners\/([A-Za-z0-9_.-]{1,64})\/rotate-token$/,
      auth: 'operator',
      doc: {
        path: '/v1/partners/{partner_id}/rotate-token',
        summary:
          "Rotate our credentials token C of a registered partner: sent to the partner's credentials endpoint (OCPI PUT), which answers with a new token B; the old C stops working when it has answered",
        tags: ['partners'],
        responses: {
          '200': { description: 'the partner without tokens, with rotated_at_ms' },
          '404': { description: 'no such partner' },
          '409': { description: 'the partner is not registered' },
          '502': { description: 'the partner did not accept the new token; nothing changed' },
        },
      },
      async handle({ res, params }) {
        const rotated = await rotate_partner_token(context, params[0]!);
        send_json(res, 200, partner_view(rotated));
      },
    },
  ];
}
