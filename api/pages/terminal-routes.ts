import type { Ledger } from '../../billing/ledger.js';
import {
  parse_terminal_confirmation,
  record_terminal_confirmation,
} from '../../billing/pay-at-charger/index.js';
import {
  register_terminal_provider,
  terminal_provider_of,
} from '../../billing/pay-at-charger/terminal-providers.js';
import { FieldError } from '../../core/field-error.js';
import { HttpError, type Route, type RouteContext, send_json } from '../http.js';

/**
 * Chargers with a built-in payment terminal: the operator registers the terminal providers, and
 * each provider confirms its captures with its own token (billing/pay-at-charger/terminal-providers.ts),
 * never with the operator's. A missing or wrong token is 401 before the body is read: nothing changes.
 */
export function terminal_routes(deps: { ledger: Ledger; limit: (ctx: RouteContext) => void }): Route[] {
  const field_errors = async <T>(work: () => Promise<T>): Promise<T> => {
    try {
      return await work();
    } catch (error) {
      if (error instanceof FieldError) throw new HttpError(400, error.message, error.field);
      throw error;
    }
  };
  return [
    {
      method: 'POST',
      path: /^\/v1\/pay-at-charger\/terminal-providers$/,
      auth: 'operator',
      doc: {
        path: '/v1/pay-at-charger/terminal-providers',
        summary:
          'Registers a payment terminal provider (or renews its token): answers the token it confirms captures with, once',
        tags: ['pay at the charger'],
        request_body: {
          type: 'object',
          required: ['id', 'name'],
          properties: { id: { type: 'string', example: 'acme-pay' }, name: { type: 'string' } },
        },
        responses: {
          '201': { description: 'the provider and its token (kept only as its SHA-256)' },
          '400': { description: 'bad field' },
        },
      },
      handle: async ({ res, json_body }) => {
        const body = (await json_body()) as Record<string, unknown> | null;
        const { provider, token } = await field_errors(() =>
          register_terminal_provider(deps.ledger, { id: body?.id, name: body?.name }),
        );
        send_json(res, 201, { provider, token }, { 'cache-control': 'no-store' });
      },
    },
    {
      method: 'POST',
      path: /^\/v1\/pay-at-charger\/terminal-confirmations$/,
      auth: 'self',
      doc: {
        path: '/v1/pay-at-charger/terminal-confirmations',
        summary:
          "A payment terminal provider's capture confirmation (OCPI 2.3 FinancialAdviceConfirmation fields), with the provider's own token (Authorization: Bearer tp.…); settles the terminal session in the ledger once per id",
        tags: ['pay at the charger'],
        request_body: {
          type: 'object',
          required: [
            'id',
            'authorization_reference',
            'total_costs',
            'currency',
            'eft_data',
            'capture_status_code',
            'last_updated',
          ],
          properties: {
            id: { type: 'string', maxLength: 36 },
            authorization_reference: { type: 'string', maxLength: 36 },
            total_costs: {
              type: 'object',
              properties: { excl_vat: { type: 'string' }, incl_vat: { type: 'string' } },
            },
            currency: { type: 'string', example: 'EUR' },
            eft_data: { type: 'array', items: { type: 'string', maxLength: 255 } },
            capture_status_code: { type: 'string', enum: ['SUCCESS', 'PARTIAL_SUCCESS', 'FAILED'] },
            capture_status_message: { type: 'string', maxLength: 255 },
            last_updated: { type: 'string', format: 'date-time' },
          },
        },
        responses: {
          '200': { description: 'recorded (or seen before: recorded false)' },
          '400': { description: 'bad field, named' },
          '401': { description: 'no valid terminal provider token' },
          '429': { description: 'rate limit; Retry-After' },
        },
      },
      handle: async (ctx) => {
        deps.limit(ctx);
        const provider = await terminal_provider_of(deps.ledger, ctx.req.headers.authorization);
        if (provider === undefined)
          throw new HttpError(401, 'a registered terminal provider token is required', 'authorization', {
            'www-authenticate': 'Bearer',
          });
        const confirmation = await field_errors(async () =>
          parse_terminal_confirmation(await ctx.json_body()),
        );
        const outcome = await record_terminal_confirmation(deps.ledger, confirmation, provider.id);
        send_json(ctx.res, 200, { id: confirmation.id, ...outcome });
      },
    },
  ];
}
