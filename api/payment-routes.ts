import { minor_of } from '../billing/amounts.js';
import type { Ledger } from '../billing/ledger.js';
import {
  collect_invoice,
  get_payment_customer,
  save_payment_method,
  set_credit_note_choice,
} from '../billing/payments/collect.js';
import { EventNotReadyError, process_provider_event } from '../billing/payments/events.js';
import { type PaymentsContext, pending_operation, run_operation } from '../billing/payments/operations.js';
import { PaymentUnavailableError, refund_payment } from '../billing/payments/payments.js';
import { get_payout, list_payouts, record_payment_fees, sync_payouts } from '../billing/payments/payouts.js';
import {
  type PaymentProvider,
  PaymentProviderError,
  type ProviderEvent,
} from '../billing/payments/provider.js';
import { get_payment, payments_of_account, payments_of_invoice } from '../billing/payments/query.js';
import { FieldError } from '../core/field-error.js';
import type { Logger } from '../core/log.js';
import { HttpError, int_param, object_body, type Route, send_json } from './http.js';

/**
 * Payments endpoints: the Stripe webhook (signature checked on the raw body, each event applied
 * once), payments of an invoice or an account, one payment with its transitions, refunds and
 * provider calls, a refund, a retry, collecting an invoice now, and an account's saved card and
 * credit note choice. Bad input is a 400 naming the field and changes nothing; a gateway that does
 * not answer is a 503 (the call stays pending and is resent with the same key).
 */
export interface PaymentRouteDeps {
  ledger: Ledger;
  /** Unset when no gateway is configured (STRIPE_SECRET_KEY): the routes that need it answer 503. */
  provider: PaymentProvider | undefined;
  log: Logger;
  /**
   * Called after an event was applied (or found a duplicate, so a redelivery finishes what a crash
   * interrupted): the disputes module opens and resolves chargeback cases here. A failure answers
   * 500, and the provider delivers the event again.
   */
  after_event?: ((event: ProviderEvent) => Promise<unknown>) | undefined;
}

/** A webhook body is a small JSON event; Stripe's are far below this. */
const webhook_bytes_max = 512 * 1024;

async function guarded<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof FieldError) throw new HttpError(400, error.message, error.field);
    if (error instanceof PaymentUnavailableError)
      throw new HttpError(503, error.message, undefined, { 'retry-after': '30' });
    if (error instanceof PaymentProviderError) {
      const status = error.code === 'unavailable' ? 503 : 502;
      throw new HttpError(status, `the payment provider refused: ${error.message}`);
    }
    throw error;
  }
}

function id_of(value: string, what: string): number {
  if (!/^[1-9]\d{0,15}$/.test(value)) throw new HttpError(404, `id: no such ${what}`, 'id');
  return Number(value);
}

const id_path = (name: string, type = 'string') => ({ name, in: 'path', required: true, schema: { type } });
const payment_schema = {
  type: 'object',
  description:
    'A card payment: state (created, requires_action, authorized, captured, partly_refunded, refunded, charged_back, cancelled, failed), amounts as decimal text of its currency, every transition (actor, reason, time), refunds and provider calls with their idempotency keys',
};

async function read_raw(req: import('node:http').IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req) {
    total += (chunk as Buffer).length;
    if (total > webhook_bytes_max) throw new HttpError(413, `request body over ${webhook_bytes_max} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

export function payment_routes(deps: PaymentRouteDeps): Route[] {
  const { ledger, log } = deps;
  const context = (): PaymentsContext => {
    if (deps.provider === undefined) {
      throw new HttpError(503, 'card payments are not configured (STRIPE_SECRET_KEY, STRIPE_WEBHOOK_SECRET)');
    }
    return { ledger, provider: deps.provider };
  };
  return [
    {
      method: 'POST',
      path: /^\/v1\/payments\/webhooks\/stripe$/,
      // Stripe cannot send our operator token: the signature over the raw body authenticates it.
      auth: 'self',
      doc: {
        path: '/v1/payments/webhooks/stripe',
        summary:
          'Stripe webhook endpoint: the Stripe-Signature header is checked on the raw body (HMAC-SHA256, 300 s tolerance); each event is applied to the ledger once',
        tags: ['payments'],
        request_body: { type: 'object', description: 'a Stripe event object, as Stripe sends it' },
        responses: {
          '200': {
            description: '{received: true, outcome: applied | duplicate | unmatched | ignored | mismatch}',
          },
          '400': { description: 'missing, bad or stale signature: nothing changes' },
          '503': {
            description:
              'the event is ahead of the ledger (or no gateway is configured): Stripe delivers it again',
          },
        },
      },
      async handle(ctx) {
        const payments = context();
        const body = await read_raw(ctx.req);
        let event: ReturnType<PaymentProvider['parse_event']>;
        try {
          event = payments.provider.parse_event(body, ctx.req.headers);
        } catch (error) {
          if (error instanceof PaymentProviderError)
            throw new HttpError(400, `signature: ${error.message}`, 'stripe-signature');
          throw error;
        }
        try {
          const outcome = await process_provider_event(payments, event);
          if (outcome === 'applied' || outcome === 'duplicate') await deps.after_event?.(event);
          send_json(ctx.res, 200, { received: true, outcome });
        } catch (error) {
          if (error instanceof EventNotReadyError) {
            log.info(
              { event_id: event.event_id, reason: error.message },
              'webhook event ahead of the ledger; asked again later',
            );
            throw new HttpError(503, error.message);
          }
          throw error;
        }
      },
    },
    ...payout_routes(deps, context),
    {
      method: 'GET',
      path: /^\/v1\/payments\/([^/]+)$/,
      auth: 'operator',
      param_names: ['id'],
      doc: {
        path: '/v1/payments/{id}',
        summary: 'One card payment with its transitions, refunds and provider calls',
        tags: ['payments'],
        parameters: [id_path('id', 'integer')],
        responses: {
          '200': { description: 'the payment', content: { 'application/json': { schema: payment_schema } } },
          '404': { description: 'no such payment' },
        },
      },
      async handle(ctx) {
        const payment = await get_payment(ledger, id_of(ctx.params[0]!, 'payment'));
        if (payment === undefined) throw new HttpError(404, 'id: no such payment', 'id');
        send_json(ctx.res, 200, payment);
      },
    },
    {
      method: 'GET',
      path: /^\/v1\/invoices\/([^/]+)\/payments$/,
      auth: 'operator',
      param_names: ['id'],
      doc: {
        path: '/v1/invoices/{id}/payments',
        summary: 'The card payments (collection attempts) of an invoice, oldest first',
        tags: ['payments'],
        parameters: [id_path('id', 'integer')],
        responses: {
          '200': { description: '{payments: [payment]}' },
          '404': { description: 'no such invoice' },
        },
      },
      async handle(ctx) {
        const id = id_of(ctx.params[0]!, 'invoice');
        const [invoice] = await ledger.query("SELECT 1 FROM invoices WHERE id = $1 AND kind = 'invoice'", [
          id,
        ]);
        if (invoice === undefined) throw new HttpError(404, 'id: no such invoice', 'id');
        send_json(ctx.res, 200, { payments: await payments_of_invoice(ledger, id) });
      },
    },
    {
      method: 'GET',
      path: /^\/v1\/accounts\/([^/]+)\/payments$/,
      auth: 'operator',
      param_names: ['id'],
      doc: {
        path: '/v1/accounts/{id}/payments',
        summary:
          "An account's card payments, newest first, a page of `limit` before `before_id`; with its saved card and credit note choice",
        tags: ['payments'],
        parameters: [
          id_path('id'),
          { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 200, default: 50 } },
          { name: 'before_id', in: 'query', schema: { type: 'integer', minimum: 1 } },
        ],
        responses: {
          '200': { description: '{payments: [payment], payment_method, credit_notes}' },
          '404': { description: 'no such account' },
        },
      },
      async handle(ctx) {
        const account_id = ctx.params[0]!;
        const [account] = await ledger.query('SELECT 1 FROM accounts WHERE id = $1', [account_id]);
        if (account === undefined) throw new HttpError(404, 'id: no such account', 'id');
        const limit = int_param(ctx.url.searchParams, 'limit', 50, 1, 200);
        const before = int_param(ctx.url.searchParams, 'before_id', 0, 0, Number.MAX_SAFE_INTEGER);
        const customer = await get_payment_customer(ledger, account_id);
        send_json(ctx.res, 200, {
          payments: await payments_of_account(ledger, account_id, {
            limit,
            before_id: before === 0 ? undefined : before,
          }),
          payment_method:
            customer?.payment_method_id == null
              ? null
              : { id: customer.payment_method_id, brand: customer.card_brand, last4: customer.card_last4 },
          credit_notes: customer?.credit_notes ?? 'refund',
        });
      },
    },
    {
      method: 'PUT',
      path: /^\/v1\/accounts\/([^/]+)\/payment-method$/,
      auth: 'operator',
      param_names: ['id'],
      doc: {
        path: '/v1/accounts/{id}/payment-method',
        summary:
          "Saves the account's card for off-session collection (a provider payment method id, e.g. from Stripe.js) and/or its choice for credit notes on paid invoices: refund to the card or keep as account credit",
        tags: ['payments'],
        parameters: [id_path('id')],
        request_body: {
          type: 'object',
          properties: {
            payment_method_id: { type: 'string', description: 'e.g. pm_... (Stripe)' },
            credit_notes: { type: 'string', enum: ['refund', 'account_credit'] },
          },
        },
        responses: {
          '200': { description: '{payment_method, credit_notes}' },
          '400': { description: 'invalid field' },
          '404': { description: 'no such account' },
        },
      },
      async handle(ctx) {
        const account_id = ctx.params[0]!;
        const body = object_body(await ctx.json_body());
        const [account] = await ledger.query('SELECT 1 FROM accounts WHERE id = $1', [account_id]);
        if (account === undefined) throw new HttpError(404, 'id: no such account', 'id');
        if (body.payment_method_id === undefined && body.credit_notes === undefined) {
          throw new HttpError(
            400,
            'payment_method_id: give payment_method_id or credit_notes',
            'payment_method_id',
          );
        }
        if (
          body.credit_notes !== undefined &&
          body.credit_notes !== 'refund' &&
          body.credit_notes !== 'account_credit'
        ) {
          throw new HttpError(400, "credit_notes: must be 'refund' or 'account_credit'", 'credit_notes');
        }
        await guarded(async () => {
          if (body.payment_method_id !== undefined) {
            await save_payment_method(context(), {
              account_id,
              payment_method_id: body.payment_method_id as string,
              actor: 'operator',
            });
          }
          if (body.credit_notes !== undefined) {
            await set_credit_note_choice(ledger, account_id, body.credit_notes);
          }
        });
        const customer = (await get_payment_customer(ledger, account_id))!;
        send_json(ctx.res, 200, {
          payment_method:
            customer.payment_method_id === null
              ? null
              : { id: customer.payment_method_id, brand: customer.card_brand, last4: customer.card_last4 },
          credit_notes: customer.credit_notes,
        });
      },
    },
    {
      method: 'POST',
      path: /^\/v1\/invoices\/([^/]+)\/collect$/,
      auth: 'operator',
      param_names: ['id'],
      doc: {
        path: '/v1/invoices/{id}/collect',
        summary:
          "Collects what remains of an issued invoice now: the account's credit first, then an off-session charge of its saved card (an open attempt is resumed, never doubled)",
        tags: ['payments'],
        parameters: [id_path('id', 'integer')],
        responses: {
          '200': { description: '{invoice_id, credit_used, payment, skipped}' },
          '400': { description: 'not an issued invoice' },
          '503': {
            description:
              'the gateway did not answer: the charge stays pending and is resent with the same key',
          },
        },
      },
      async handle(ctx) {
        const id = id_of(ctx.params[0]!, 'invoice');
        const result = await guarded(() => collect_invoice(context(), id, 'operator'));
        const payment_id = result.outcome?.payment.id ?? result.waiting?.id;
        send_json(ctx.res, 200, {
          invoice_id: id,
          credit_used_minor: result.credit_used_minor,
          skipped: result.skipped ?? null,
          payment: payment_id === undefined ? null : await get_payment(ledger, payment_id),
        });
      },
    },
    {
      method: 'POST',
      path: /^\/v1\/payments\/([^/]+)\/refunds$/,
      auth: 'operator',
      param_names: ['id'],
      doc: {
        path: '/v1/payments/{id}/refunds',
        summary:
          'Refunds all (no amount) or part of a captured payment: never more than captured less refunded; for an invoice payment never more than its credit notes (or overpayment) leave to pay back',
        tags: ['payments'],
        parameters: [id_path('id', 'integer')],
        request_body: {
          type: 'object',
          required: ['reason'],
          properties: {
            amount: { type: 'string', description: "decimal text in the payment's currency, e.g. 12.50" },
            reason: {
              type: 'string',
              description: 'requested_by_customer, duplicate, fraudulent, or free text (kept in the ledger)',
            },
          },
        },
        responses: {
          '200': { description: 'the payment after the refund' },
          '400': { description: 'invalid field (amount above what may be refunded, payment not captured)' },
          '503': {
            description:
              'the gateway did not answer: the refund stays pending and is resent with the same key',
          },
        },
      },
      async handle(ctx) {
        const id = id_of(ctx.params[0]!, 'payment');
        const body = object_body(await ctx.json_body());
        const payment = await get_payment(ledger, id);
        if (payment === undefined) throw new HttpError(404, 'id: no such payment', 'id');
        let amount_minor: number | undefined;
        if (body.amount !== undefined) {
          if (typeof body.amount !== 'string' || !/^\d{1,12}(\.\d+)?$/.test(body.amount)) {
            throw new HttpError(400, 'amount: must be a positive decimal text', 'amount');
          }
          amount_minor = await guarded(async () => minor_of(body.amount as string, payment.currency));
        }
        const outcome = await guarded(() =>
          refund_payment(context(), id, { amount_minor, reason: body.reason as string, actor: 'operator' }),
        );
        if (outcome.operation.status === 'failed') {
          throw new HttpError(
            502,
            `the payment provider refused the refund: ${outcome.error?.message ?? 'failed'}`,
          );
        }
        send_json(ctx.res, 200, await get_payment(ledger, id));
      },
    },
    {
      method: 'POST',
      path: /^\/v1\/payments\/([^/]+)\/retry$/,
      auth: 'operator',
      param_names: ['id'],
      doc: {
        path: '/v1/payments/{id}/retry',
        summary:
          "Retries a payment: a provider call still pending is sent again with its own key; a failed collection attempt starts the invoice's next attempt",
        tags: ['payments'],
        parameters: [id_path('id', 'integer')],
        responses: {
          '200': { description: 'the payment retried, or the new attempt' },
          '400': { description: 'nothing to retry' },
          '503': { description: 'the gateway did not answer' },
        },
      },
      async handle(ctx) {
        const id = id_of(ctx.params[0]!, 'payment');
        const payment = await get_payment(ledger, id);
        if (payment === undefined) throw new HttpError(404, 'id: no such payment', 'id');
        const payments = context();
        const pending = await pending_operation(ledger, id);
        if (pending !== undefined) {
          const outcome = await run_operation(payments, pending, 'operator');
          if (outcome.error?.code === 'unavailable')
            throw new HttpError(503, `the gateway did not answer: ${outcome.error.message}`);
          send_json(ctx.res, 200, await get_payment(ledger, id));
          return;
        }
        if (payment.state !== 'failed' || payment.invoice_id === null) {
          throw new HttpError(
            400,
            `id: payment is ${payment.state}: only a failed invoice payment or a pending call is retried`,
            'id',
          );
        }
        const result = await guarded(() => collect_invoice(payments, payment.invoice_id!, 'operator'));
        const next = result.outcome?.payment.id ?? result.waiting?.id;
        send_json(
          ctx.res,
          200,
          next === undefined ? { skipped: result.skipped ?? null } : await get_payment(ledger, next),
        );
      },
    },
  ];
}

const payout_statuses = ['pending', 'in_transit', 'paid', 'failed', 'canceled'];
const reconciliations = ['pending', 'matched', 'mismatch'];

/**
 * The gateway's payouts (before `/v1/payments/{id}`, which would take "payouts" for an id): the
 * list, one payout with the balance transactions it settled and how each matched the ledger, and
 * a sync that lists the gateway's payouts and fees now instead of waiting for the sweep.
 */
function payout_routes(deps: PaymentRouteDeps, context: () => PaymentsContext): Route[] {
  const { ledger } = deps;
  const payout_schema = {
    type: 'object',
    description:
      'A payout of the gateway balance to the bank: amount, status (pending, in_transit, paid, failed, canceled), arrival_on, failure_code, reconciliation (pending, matched, mismatch) with the net of its balance transactions and a note of what did not match; items: its balance transactions (type, source, amount, fee, net, the ledger payment or refund, match_status matched | unmatched | mismatch | payout)',
  };
  const choice = (value: string | null, field: string, allowed: string[]) => {
    if (value === null) return undefined;
    if (!allowed.includes(value))
      throw new HttpError(400, `${field}: must be one of ${allowed.join(', ')}`, field);
    return value;
  };
  return [
    {
      method: 'GET',
      path: /^\/v1\/payments\/payouts$/,
      auth: 'operator',
      doc: {
        path: '/v1/payments/payouts',
        summary:
          'Payouts of the gateway balance to the bank, newest arrival first, with their reconciliation',
        tags: ['payments'],
        parameters: [
          { name: 'status', in: 'query', required: false, schema: { type: 'string', enum: payout_statuses } },
          {
            name: 'reconciliation',
            in: 'query',
            required: false,
            schema: { type: 'string', enum: reconciliations },
          },
        ],
        responses: {
          '200': {
            description: '{payouts: [payout]}',
            content: { 'application/json': { schema: payout_schema } },
          },
          '400': { description: 'a bad filter (the body names it)' },
        },
      },
      async handle(ctx) {
        const status = choice(ctx.url.searchParams.get('status'), 'status', payout_statuses);
        const reconciliation = choice(
          ctx.url.searchParams.get('reconciliation'),
          'reconciliation',
          reconciliations,
        );
        send_json(ctx.res, 200, { payouts: await list_payouts(ledger, { status, reconciliation }) });
      },
    },
    {
      method: 'POST',
      path: /^\/v1\/payments\/payouts\/sync$/,
      auth: 'operator',
      doc: {
        path: '/v1/payments/payouts/sync',
        summary:
          "Lists the gateway's payouts of the last 14 days and the fees of captured payments now, reconciles every paid or failed payout not reconciled yet",
        tags: ['payments'],
        responses: {
          '200': { description: '{listed, reconciled, fees}' },
          '503': { description: 'no gateway configured, or it did not answer' },
        },
      },
      async handle(ctx) {
        const payments = context();
        const result = await guarded(async () => {
          const fees = await record_payment_fees(payments, 200);
          return { ...(await sync_payouts(payments)), fees };
        });
        send_json(ctx.res, 200, result);
      },
    },
    {
      method: 'GET',
      path: /^\/v1\/payments\/payouts\/([^/]+)$/,
      auth: 'operator',
      param_names: ['id'],
      doc: {
        path: '/v1/payments/payouts/{id}',
        summary: 'One payout with the balance transactions it settled and how each matched the ledger',
        tags: ['payments'],
        parameters: [id_path('id')],
        responses: {
          '200': { description: 'the payout', content: { 'application/json': { schema: payout_schema } } },
          '404': { description: 'no such payout' },
        },
      },
      async handle(ctx) {
        const id = ctx.params[0]!;
        const provider = deps.provider?.name ?? 'stripe';
        const payout = /^[A-Za-z0-9_]{1,255}$/.test(id) ? await get_payout(ledger, provider, id) : undefined;
        if (payout === undefined) throw new HttpError(404, 'id: no such payout', 'id');
        send_json(ctx.res, 200, payout);
      },
    },
  ];
}
