import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  put_account,
  put_legal_entity,
  validate_account,
  validate_legal_entity,
} from '../../billing/accounts.js';
import { run_billing } from '../../billing/invoices/run.js';
import type { Ledger } from '../../billing/ledger.js';
import { record_rated_versions } from '../../billing/rated-versions.js';
import { rated_row, test_legal_entity } from './billing.js';

/** The legal entity every payments test bills from (created once per ledger). */
export async function put_payments_entity(ledger: Ledger): Promise<void> {
  await put_legal_entity(ledger, validate_legal_entity('nl', test_legal_entity));
}

/** A driver account with one token `TAG-<id>`. */
export async function put_driver(ledger: Ledger, id: string, currency = 'EUR'): Promise<void> {
  await put_account(
    ledger,
    validate_account(id, {
      kind: 'driver',
      name: `Driver ${id}`,
      legal_entity_id: 'nl',
      currency,
      payment_terms_days: 14,
      address: { line1: 'Weg 1', postal_code: '1000 AA', city: 'Amsterdam', country_code: 'NL' },
      tokens: [`TAG-${id}`],
    }),
  );
}

let session_n = 0;

/**
 * An issued invoice made the way production makes it: a rated session of the account's token in
 * `period`, then a billing run of that account. Returns the invoice's id and total.
 */
export async function issue_invoice(
  ledger: Ledger,
  request: {
    account_id: string;
    period: string;
    total_excl_vat: string;
    currency?: string;
    vat_percent?: string;
  },
): Promise<{ id: number; total_minor: number; currency: string }> {
  const [year, month] = request.period.split('-').map(Number);
  const stopped_at_ms = Date.UTC(year!, month! - 1, 10, 12);
  session_n++;
  await record_rated_versions(ledger, [
    rated_row({
      session_id: `PS-${request.account_id}-${request.period}-${session_n}`,
      id_tag: `TAG-${request.account_id}`,
      stopped_at_ms,
      total_excl_vat: request.total_excl_vat,
      currency: request.currency ?? 'EUR',
      ...(request.vat_percent !== undefined ? { vat_percent: request.vat_percent } : {}),
    }),
  ]);
  const after = Date.UTC(year!, month!, 2, 12);
  await run_billing(
    ledger,
    { period: request.period, account_ids: [request.account_id] },
    { now_ms: () => after },
  );
  const [invoice] = await ledger.query<{ id: number; total_minor: number; currency: string }>(
    "SELECT id, total_minor, currency FROM invoices WHERE account_id = $1 AND period = $2 AND kind = 'invoice' AND status <> 'draft'",
    [request.account_id, request.period],
  );
  if (invoice === undefined) throw new Error(`no invoice for ${request.account_id} ${request.period}`);
  return invoice;
}

export interface WebhookReceiver {
  /** Where the emulator delivers its events. */
  url: string;
  close(): Promise<void>;
}

/**
 * Our webhook endpoint on loopback for the tests that drive payments without the whole stack:
 * each delivery's raw body and headers go to `handle`, whose number is the HTTP status answered
 * (the emulator retries what is not 2xx).
 */
export async function start_webhook_receiver(
  handle: (body: Buffer, headers: IncomingHttpHeaders) => Promise<number>,
): Promise<WebhookReceiver> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void handle(Buffer.concat(chunks), req.headers).then((status) => {
        res.statusCode = status;
        res.end();
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
