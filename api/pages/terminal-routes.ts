import type { Ledger } from '../../billing/ledger.js';
import {
  parse_terminal_confirmation,
  record_terminal_confirmation,
} from '../../billing/pay-at-charger/index.js';
import {
  register_terminal_provider,
  terminal_provider_of,
} from '../../billing/pay-at-charger/terminal-providers.js';
import {
  type ChargePointProfile,
  type ChargePointRegistry,
  terminal_reference_prefix_pattern,
} from '../../core/charge-points.js';
import { FieldError } from '../../core/field-error.js';
import { HttpError, object_body, type Route, type RouteContext, send_json } from '../http.js';

const charge_point_pattern = /^[\x21-\x7e]{1,48}$/;

/**
 * Chargers with a built-in payment terminal: the operator flags the charge points that have one
 * (with the prefix of its terminal's authorization references: ingest then accepts those as
 * terminal sessions there, and nowhere else, ingest/payment-terminal.ts), registers the terminal
 * providers, and each provider confirms its captures with its own token
 * (billing/pay-at-charger/terminal-providers.ts), never with the operator's. A missing or wrong
 * token is 401 before the body is read: nothing changes.
 */
export function terminal_routes(deps: {
  ledger: Ledger;
  charge_points: ChargePointRegistry;
  limit: (ctx: RouteContext) => void;
}): Route[] {
  const field_errors = async <T>(work: () => Promise<T>): Promise<T> => {
    try {
      return await work();
    } catch (error) {
      if (error instanceof FieldError) throw new HttpError(400, error.message, error.field);
      throw error;
    }
  };
  const charge_point_of = (value: string): string => {
    if (!charge_point_pattern.test(value))
      throw new HttpError(
        400,
        'charge_point_id: must be 1 to 48 printable ASCII characters',
        'charge_point_id',
      );
    return value;
  };
  /** Sets or clears the flag in the charge point's profile, keeping its other settings. */
  const set_terminal = async (
    charge_point_id: string,
    payment_terminal: ChargePointProfile['payment_terminal'],
  ): Promise<ChargePointProfile> => {
    const { payment_terminal: _, ...previous } = (await deps.charge_points.profile(charge_point_id)) ?? {
      charge_point_id,
    };
    const profile: ChargePointProfile = {
      ...previous,
      charge_point_id,
      ...(payment_terminal === undefined ? {} : { payment_terminal }),
      updated_at_ms: Date.now(),
    };
    await deps.charge_points.set_profile(profile);
    return profile;
  };
  const terminal_path = /^\/v1\/pay-at-charger\/charge-points\/([^/]{1,48})\/payment-terminal$/;
  const terminal_doc = {
    path: '/v1/pay-at-charger/charge-points/{charge_point_id}/payment-terminal',
    tags: ['pay at the charger'],
  };
  return [
    {
      method: 'PUT',
      path: terminal_path,
      param_names: ['charge_point_id'],
      auth: 'operator',
      doc: {
        ...terminal_doc,
        summary:
          "Flags a charge point as having a built-in payment terminal: its sessions started with a reference of the terminal's form (the prefix; on OCPP 2.0.1 also an additionalInfo of type PaymentTerminal) are Accepted and rated as terminal sessions; reaches every ingest node within 30 s",
        request_body: {
          type: 'object',
          required: ['reference_prefix'],
          properties: {
            reference_prefix: {
              type: 'string',
              pattern: terminal_reference_prefix_pattern.source,
              example: 'TERM-',
            },
          },
        },
        responses: {
          '200': { description: "the charge point's profile with its payment_terminal" },
          '400': { description: 'bad field, named' },
        },
      },
      handle: async ({ res, params, json_body }) => {
        const charge_point_id = charge_point_of(params[0]!);
        const body = object_body(await json_body());
        for (const key of Object.keys(body))
          if (key !== 'reference_prefix')
            throw new HttpError(400, `${key}: is not a payment terminal field`, key);
        const prefix = body.reference_prefix;
        if (typeof prefix !== 'string' || !terminal_reference_prefix_pattern.test(prefix))
          throw new HttpError(
            400,
            'reference_prefix: must be 1 to 16 of A-Z, a-z, 0-9, ., _, : and -',
            'reference_prefix',
          );
        send_json(res, 200, await set_terminal(charge_point_id, { reference_prefix: prefix }));
      },
    },
    {
      method: 'DELETE',
      path: terminal_path,
      param_names: ['charge_point_id'],
      auth: 'operator',
      doc: {
        ...terminal_doc,
        summary:
          'Clears the payment terminal flag: terminal references are Invalid there again (as every unknown token)',
        responses: { '200': { description: "the charge point's profile without payment_terminal" } },
      },
      handle: async ({ res, params }) => {
        send_json(res, 200, await set_terminal(charge_point_of(params[0]!), undefined));
      },
    },
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
