import type { Store } from '../../analytics/store.js';
import { put_account, validate_account } from '../../billing/accounts.js';
import {
  apply_bank_file,
  collect_billing_run,
  put_creditor,
  put_mandate,
  validate_creditor,
  validate_mandate,
} from '../../billing/collection/index.js';
import { create_credit_note } from '../../billing/credit-notes/create.js';
import { type DisputeDeps, move_case, open_case } from '../../billing/disputes/cases.js';
import { resolve_case } from '../../billing/disputes/resolve.js';
import { default_deadline_rules } from '../../billing/disputes/workflow.js';
import { run_billing } from '../../billing/invoices/run.js';
import type { Ledger } from '../../billing/ledger.js';
import { collect_invoice, save_payment_method } from '../../billing/payments/collect.js';
import { settle_invoice_excess } from '../../billing/payments/credit-notes.js';
import type { PaymentsContext } from '../../billing/payments/operations.js';
import { StripeProvider } from '../../billing/payments/stripe.js';
import { record_rated_versions } from '../../billing/rated-versions.js';
import { pain002_file } from './bank-files.js';
import { rated_row } from './billing.js';
import { put_payments_entity } from './payments.js';
import { type StripeEmulator, start_stripe_emulator } from './stripe-emulator.js';

/**
 * A month of billing made the way production makes it, for the billing analytics: rated sessions
 * (the rated feed's writer) invoiced by a billing run of October 2026, cards collected through
 * billing/payments against the Stripe-compatible emulator (a decline, a retry that pays, a decline
 * left open), a credit note refunded to the card, company accounts collected by SEPA direct debit
 * with one debit rejected by a pain.002 file, an account without mandate left to pay by transfer
 * (overdue), and dispute cases opened, moved and resolved with billing/disputes.
 * Nothing is written to billing_events or ClickHouse by hand.
 */
export const scenario_run_at_ms = Date.parse('2026-11-01T10:00:00Z');

const drivers = [
  { id: 'ana', card: 'pm_card_visa', sessions: ['31.40', '12.60'], vat: '21' },
  { id: 'bo', card: 'pm_card_visa', sessions: ['18.00'], vat: '21' },
  { id: 'cy', card: 'pm_card_chargeDeclined', retry_card: 'pm_card_visa', sessions: ['44.00'], vat: '9' },
  { id: 'dee', card: 'pm_card_chargeDeclined', sessions: ['27.50'], vat: '21' },
] as const;

const companies = [
  { id: 'acme', iban: 'NL91ABNA0417164300', sessions: ['100.00', '20.00'], mandate: true },
  { id: 'bolt', iban: 'NL91ABNA0417164300', sessions: ['75.00'], mandate: true },
  { id: 'cargo', iban: '', sessions: ['64.00'], mandate: false },
] as const;

export interface Scenario {
  emulator: StripeEmulator;
  case_ids: number[];
  stop(): Promise<void>;
}

async function invoice_id_of(ledger: Ledger, account_id: string): Promise<number> {
  const [row] = await ledger.query<{ id: number }>(
    "SELECT id FROM invoices WHERE account_id = $1 AND kind = 'invoice' AND status <> 'draft' ORDER BY id",
    [account_id],
  );
  if (row === undefined) throw new Error(`no invoice of ${account_id}`);
  return row.id;
}

export async function run_billing_scenario(ledger: Ledger, store: Store): Promise<Scenario> {
  await put_payments_entity(ledger);
  for (const d of drivers) {
    await put_account(
      ledger,
      validate_account(d.id, {
        kind: 'driver',
        name: `Driver ${d.id}`,
        legal_entity_id: 'nl',
        currency: 'EUR',
        payment_terms_days: 14,
        email: `${d.id}@example.test`,
        address: { line1: 'Weg 1', postal_code: '1000 AA', city: 'Amsterdam', country_code: 'NL' },
        tokens: [`TAG-${d.id}`],
      }),
    );
  }
  for (const c of companies) {
    await put_account(
      ledger,
      validate_account(c.id, {
        kind: 'company',
        name: `Company ${c.id}`,
        legal_entity_id: 'nl',
        currency: 'EUR',
        payment_terms_days: 14,
        address: { line1: 'Kade 2', postal_code: '3011 AA', city: 'Rotterdam', country_code: 'NL' },
        tokens: [`TAG-${c.id}`],
      }),
    );
  }
  await put_creditor(
    ledger,
    validate_creditor('nl', {
      creditor_id: 'DE98ZZZ09999999999',
      name: 'evrate Charging B.V.',
      iban: 'DE89 3704 0044 0532 0130 00',
      bic: 'COBADEFFXXX',
    }),
  );
  for (const c of companies.filter((c) => c.mandate)) {
    await put_mandate(
      ledger,
      validate_mandate(c.id, `MND-${c.id.toUpperCase()}`, {
        debtor_name: `Company ${c.id}`,
        iban: c.iban,
        bic: 'ABNANL2A',
        signed_on: '2026-08-20',
      }),
    );
  }
  // Rated sessions of October, as the billing feed records them.
  let n = 0;
  const rows = [...drivers, ...companies].flatMap((a) =>
    a.sessions.map((total) => {
      n++;
      return rated_row({
        session_id: `BA-${a.id}-${n}`,
        id_tag: `TAG-${a.id}`,
        stopped_at_ms: Date.UTC(2026, 9, 3 + n, 12),
        total_excl_vat: total,
        vat_percent: 'vat' in a ? a.vat : '21',
        station_id: n % 2 === 0 ? 'ST-NORTH' : 'ST-SOUTH',
      });
    }),
  );
  await record_rated_versions(ledger, rows);
  const run = await run_billing(ledger, { period: '2026-10' }, { now_ms: () => scenario_run_at_ms });

  // SEPA: the run's collection file, then a pain.002 rejecting bolt's debit.
  const collected = await collect_billing_run(ledger, run.id, scenario_run_at_ms + 3_600_000);
  const [file] = await ledger.query<{ message_id: string }>(
    'SELECT message_id FROM collection_files WHERE id = $1',
    [collected.file!.id],
  );
  const [attempt] = await ledger.query<{
    end_to_end_id: string;
    payment_info_id: string;
    amount_minor: number;
  }>('SELECT end_to_end_id, payment_info_id, amount_minor FROM collection_attempts WHERE invoice_id = $1', [
    await invoice_id_of(ledger, 'bolt'),
  ]);
  await apply_bank_file(
    ledger,
    pain002_file(file!.message_id, [
      {
        end_to_end_id: attempt!.end_to_end_id,
        payment_info_id: attempt!.payment_info_id,
        reason: 'AM04',
        amount: (attempt!.amount_minor / 100).toFixed(2),
      },
    ]),
    { retry_days: 5, retries_max: 1 },
    Date.parse('2026-11-06T08:00:00Z'),
  );

  // Cards through the emulator.
  const emulator = await start_stripe_emulator({});
  const ctx: PaymentsContext = {
    ledger,
    provider: new StripeProvider({
      secret_key: emulator.secret_key,
      webhook_secret: emulator.webhook_secret,
      api_base: emulator.api_base,
      max_network_retries: 0,
      timeout_ms: 5000,
    }),
  };
  for (const d of drivers) {
    await save_payment_method(ctx, { account_id: d.id, payment_method_id: d.card, actor: 'test' });
    const invoice_id = await invoice_id_of(ledger, d.id);
    await collect_invoice(ctx, invoice_id, 'system:test');
    if ('retry_card' in d) {
      await save_payment_method(ctx, { account_id: d.id, payment_method_id: d.retry_card, actor: 'test' });
      await collect_invoice(ctx, invoice_id, 'system:test');
    }
  }
  // A credit note on ana's paid invoice, refunded to her card.
  const ana = await invoice_id_of(ledger, 'ana');
  await create_credit_note(ledger, { invoice_id: ana, amount: '5.00', reason: 'connector fault' });
  await settle_invoice_excess(ctx, ana, 'test');

  // Disputes: accepted with a goodwill credit, rejected, and one left in investigation past its deadline.
  const deps: DisputeDeps = {
    ledger,
    store,
    power_w_max: 350_000,
    rules: default_deadline_rules,
    default_time_zone: 'Europe/Amsterdam',
  };
  const claimant = { kind: 'claimant' as const, id: 'driver' };
  const support = { kind: 'support' as const, id: 'agent-1' };
  const case_ids: number[] = [];
  const open = async (account: string, reason: 'energy' | 'tariff' | 'duplicate_charge', at: string) => {
    const opened = await open_case(
      deps,
      {
        subject: { kind: 'invoice_line', invoice_id: await invoice_id_of(ledger, account), line_no: 1 },
        source: account === 'acme' ? 'support' : 'driver',
        reason,
        amount_disputed_minor: 500,
        message: 'This charge is wrong.',
      },
      account === 'acme' ? support : claimant,
      Date.parse(at),
    );
    case_ids.push(opened.case.id);
    return opened.case.id;
  };
  const accepted = await open('bo', 'energy', '2026-11-10T09:00:00Z');
  await move_case(
    deps,
    accepted,
    { to: 'investigating', note: 'checking readings' },
    support,
    Date.parse('2026-11-10T12:00:00Z'),
  );
  await resolve_case(
    deps,
    accepted,
    { outcome: 'accepted', reason: 'meter fault confirmed', goodwill_minor: 300 },
    support,
    Date.parse('2026-11-12T15:00:00Z'),
  );
  const rejected = await open('cy', 'duplicate_charge', '2026-11-11T09:00:00Z');
  await resolve_case(
    deps,
    rejected,
    { outcome: 'rejected', reason: 'two sessions, two charges' },
    support,
    Date.parse('2026-11-13T10:00:00Z'),
  );
  const late = await open('acme', 'tariff', '2026-11-16T09:00:00Z');
  await move_case(
    deps,
    late,
    { to: 'investigating', note: 'tariff history' },
    support,
    Date.parse('2026-11-17T09:00:00Z'),
  );
  await open('dee', 'energy', '2026-11-20T09:00:00Z');
  return {
    emulator,
    case_ids,
    async stop() {
      await emulator.stop();
    },
  };
}
