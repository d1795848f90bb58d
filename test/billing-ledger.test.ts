import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  put_account,
  put_legal_entity,
  validate_account,
  validate_legal_entity,
} from '../billing/accounts.js';
import { create_credit_note } from '../billing/credit-notes/create.js';
import { get_document, list_documents } from '../billing/invoices/query.js';
import { run_billing } from '../billing/invoices/run.js';
import type { Ledger } from '../billing/ledger.js';
import { migrate_ledger } from '../billing/migrations.js';
import { record_payment } from '../billing/payments/record.js';
import { record_rated_versions } from '../billing/rated-versions.js';
import { FieldError } from '../core/field-error.js';
import { ledger_backends, open_test_ledger, rated_row, test_legal_entity } from './helpers/billing.js';

const now_ms = Date.parse('2026-12-04T12:00:00Z');
const now = () => now_ms;

async function count(ledger: Ledger, table: string): Promise<number> {
  const [row] = await ledger.query<{ n: number }>(`SELECT count(*)::int8 AS n FROM ${table}`);
  return row!.n;
}

describe.each(ledger_backends)('billing ledger on %s', (backend) => {
  let ledger: Ledger;
  let dispose: () => Promise<void>;

  beforeAll(async () => {
    const opened = await open_test_ledger(backend);
    ledger = opened.ledger;
    dispose = opened.dispose;
    await put_legal_entity(ledger, validate_legal_entity('nl', test_legal_entity));
    await put_account(
      ledger,
      validate_account('acme', {
        kind: 'company',
        name: 'ACME Fleet',
        legal_entity_id: 'nl',
        currency: 'EUR',
        payment_terms_days: 14,
        vat_id: 'NL999999999B01',
        address: { line1: 'Kade 2', postal_code: '3011 AA', city: 'Rotterdam', country_code: 'NL' },
        cost_centres: [{ id: 'ops', name: 'Operations' }],
        tokens: [{ uid: 'TAG-1', cost_centre_id: 'ops' }, 'TAG-2'],
        memberships: [{ plan_id: 'fleet', monthly_fee: '30.00', starts_on: '2026-11-16' }],
      }),
    );
  });

  afterAll(async () => {
    await dispose?.();
  });

  it('applies its migrations once', async () => {
    expect(await migrate_ledger(ledger)).toEqual([]);
  });

  it('refuses an unbalanced journal entry at commit and keeps nothing of it', async () => {
    const before = await count(ledger, 'journal_entries');
    await expect(
      ledger.transaction(async (tx) => {
        const [entry] = await tx.query<{ id: number }>(
          `INSERT INTO journal_entries (kind, source_id, currency, posted_at_ms, description)
           VALUES ('test', 'x', 'EUR', 0, 'unbalanced') RETURNING id`,
        );
        await tx.query(
          `INSERT INTO journal_lines (entry_id, line_no, ledger_account, debit_minor, credit_minor)
           VALUES ($1, 1, 'receivable', 100, 0), ($1, 2, 'revenue:vat_21', 0, 99)`,
          [entry!.id],
        );
      }),
    ).rejects.toThrow(/does not balance/);
    expect(await count(ledger, 'journal_entries')).toBe(before);
  });

  it('names the field of a bad account and of a token another account owns', async () => {
    expect(() => validate_account('x', { kind: 'fleet' })).toThrow(FieldError);
    try {
      validate_account('x', { kind: 'driver', name: 'A', legal_entity_id: 'nl', currency: 'eur' });
    } catch (error) {
      expect((error as FieldError).field).toBe('currency');
    }
    const other = validate_account('bob', {
      kind: 'driver',
      name: 'Bob',
      legal_entity_id: 'nl',
      currency: 'EUR',
      address: { line1: 'Weg 1', postal_code: '1000 AA', city: 'Amsterdam', country_code: 'NL' },
      tokens: ['TAG-3', 'TAG-1'],
    });
    await expect(put_account(ledger, other)).rejects.toMatchObject({ field: 'tokens[1].uid' });
    expect(await count(ledger, "accounts WHERE id = 'bob'")).toBe(0);
  });

  it('invoices final sessions of the period in the legal entity time zone, with the pro-rated fee', async () => {
    await record_rated_versions(ledger, [
      // 10.123 -> line net 10.12 (half up at the third digit).
      rated_row({
        session_id: 'S1',
        id_tag: 'TAG-1',
        stopped_at_ms: Date.parse('2026-11-03T10:00:00Z'),
        total_excl_vat: '10.123',
      }),
      // 5.005 -> 5.01.
      rated_row({
        session_id: 'S2',
        id_tag: 'TAG-2',
        stopped_at_ms: Date.parse('2026-11-20T12:00:00Z'),
        total_excl_vat: '5.005',
      }),
      // 23:30 UTC on 30 November is 00:30 on 1 December in Amsterdam: December's.
      rated_row({
        session_id: 'S3',
        id_tag: 'TAG-1',
        stopped_at_ms: Date.parse('2026-11-30T23:30:00Z'),
        total_excl_vat: '2.50',
      }),
      // Provisional: recorded, not billable.
      rated_row({
        session_id: 'S4',
        id_tag: 'TAG-1',
        stopped_at_ms: Date.parse('2026-11-10T10:00:00Z'),
        total_excl_vat: '3.00',
        provisional: 1,
      }),
      // No account owns TAG-9.
      rated_row({
        session_id: 'S5',
        id_tag: 'TAG-9',
        stopped_at_ms: Date.parse('2026-11-10T10:00:00Z'),
        total_excl_vat: '7.00',
      }),
    ]);
    // A redelivered version adds nothing.
    const again = await record_rated_versions(ledger, [
      rated_row({
        session_id: 'S1',
        id_tag: 'TAG-1',
        stopped_at_ms: Date.parse('2026-11-03T10:00:00Z'),
        total_excl_vat: '10.123',
      }),
    ]);
    expect(again.versions_recorded).toBe(0);

    const run = await run_billing(ledger, { period: '2026-11' }, { now_ms: now });
    expect(run).toMatchObject({
      status: 'finished',
      accounts_total: 1,
      accounts_done: 1,
      invoices_created: 1,
    });
    const [listed] = await list_documents(ledger, {
      kind: 'invoice',
      account_id: 'acme',
      limit: 10,
      offset: 0,
    });
    const invoice = (await get_document(ledger, listed!.id))!;
    // Lines 10.12 + 5.01 + fee 15.00 (16 to 30 November: 15 of 30 days of 30.00), all at 21 %:
    // net 30.13, VAT 30.13 x 0.21 = 6.3273 -> 6.33, total 36.46.
    expect(invoice.lines.map((l) => [l.kind, l.session_id, l.net, l.vat_percent, l.cost_centre_id])).toEqual([
      ['session', 'S1', '10.12', '21', 'ops'],
      ['session', 'S2', '5.01', '21', null],
      ['fee', null, '15.00', '21', null],
    ]);
    expect(invoice).toMatchObject({
      number: 'INV-000001',
      status: 'issued',
      net: '30.13',
      vat: '6.33',
      total: '36.46',
      issue_date: '2026-12-04',
      due_date: '2026-12-18',
    });
    expect(invoice.vat_breakdown).toEqual([
      { vat_percent: '21', net: '30.13', vat: '6.33', net_minor: 3013, vat_minor: 633 },
    ]);
    const journal = await ledger.query<{ ledger_account: string; debit_minor: number; credit_minor: number }>(
      `SELECT l.ledger_account, l.debit_minor, l.credit_minor FROM journal_lines l JOIN journal_entries e ON e.id = l.entry_id
       WHERE e.kind = 'invoice_issued' AND e.source_id = $1 ORDER BY l.line_no`,
      [String(invoice.id)],
    );
    expect(journal).toEqual([
      { ledger_account: 'receivable', debit_minor: 3646, credit_minor: 0 },
      { ledger_account: 'revenue:vat_21', debit_minor: 0, credit_minor: 3013 },
      { ledger_account: 'vat_payable:21', debit_minor: 0, credit_minor: 633 },
    ]);
  });

  it('creates nothing when the period is run again', async () => {
    const invoices = await count(ledger, 'invoices');
    const run = await run_billing(ledger, { period: '2026-11' }, { now_ms: now });
    expect(run.invoices_created).toBe(0);
    expect(await count(ledger, 'invoices')).toBe(invoices);
  });

  it('refuses a future period and an unknown account, naming the field', async () => {
    await expect(run_billing(ledger, { period: '2027-01' }, { now_ms: now })).rejects.toMatchObject({
      field: 'period',
    });
    await expect(run_billing(ledger, { period: '2026-13' }, { now_ms: now })).rejects.toMatchObject({
      field: 'period',
    });
    await expect(
      run_billing(ledger, { period: '2026-11', account_ids: ['acme', 'nobody'] }, { now_ms: now }),
    ).rejects.toMatchObject({ field: 'account_ids[1]' });
  });

  it('refuses a credit note larger than what remains of the invoice, then credits part of it', async () => {
    const [invoice] = await list_documents(ledger, {
      kind: 'invoice',
      account_id: 'acme',
      limit: 1,
      offset: 0,
    });
    const before = await count(ledger, 'invoices');
    // 40.00 + 21 % = 48.40 > 36.46.
    await expect(
      create_credit_note(ledger, { invoice_id: invoice!.id, amount: '40.00', reason: 'goodwill' }, now_ms),
    ).rejects.toMatchObject({ field: 'amount' });
    expect(await count(ledger, 'invoices')).toBe(before);
    // 5.00 net + 1.05 VAT = 6.05.
    const id = await create_credit_note(
      ledger,
      { invoice_id: invoice!.id, amount: '5.00', reason: 'goodwill' },
      now_ms,
    );
    expect(await get_document(ledger, id)).toMatchObject({
      number: 'CN-000001',
      total: '6.05',
      credited_invoice_id: invoice!.id,
    });
    expect(await get_document(ledger, invoice!.id)).toMatchObject({ credited: '6.05', status: 'issued' });
    await expect(
      create_credit_note(ledger, { invoice_id: invoice!.id, reason: 'all of it' }, now_ms),
    ).rejects.toMatchObject({ field: 'amount' });
  });

  it('keeps an issued invoice immutable', async () => {
    const [invoice] = await list_documents(ledger, {
      kind: 'invoice',
      account_id: 'acme',
      limit: 1,
      offset: 0,
    });
    await expect(
      ledger.query('UPDATE invoices SET total_minor = 1, net_minor = 1, vat_minor = 0 WHERE id = $1', [
        invoice!.id,
      ]),
    ).rejects.toThrow(/cannot change/);
    await expect(
      ledger.query('UPDATE invoice_lines SET net_minor = 1 WHERE invoice_id = $1', [invoice!.id]),
    ).rejects.toThrow(/cannot change/);
    await expect(ledger.query('DELETE FROM journal_lines')).rejects.toThrow(/immutable/);
  });

  it('credits a session re-rated after invoicing and bills its new version on the next invoice', async () => {
    const outcome = await record_rated_versions(
      ledger,
      [
        rated_row({
          session_id: 'S1',
          version: 2,
          id_tag: 'TAG-1',
          stopped_at_ms: Date.parse('2026-11-03T10:00:00Z'),
          total_excl_vat: '12.00',
        }),
      ],
      now_ms,
    );
    expect(outcome.credit_notes).toHaveLength(1);
    const note = (await get_document(ledger, outcome.credit_notes[0]!))!;
    // The invoiced line 10.12, VAT 10.12 x 0.21 = 2.1252 -> 2.13, total 12.25.
    expect(note).toMatchObject({ number: 'CN-000002', net: '10.12', vat: '2.13', total: '12.25' });
    expect(note.lines.map((l) => [l.kind, l.session_id, l.session_version])).toEqual([['credit', 'S1', 1]]);

    const run = await run_billing(ledger, { period: '2026-12' }, { now_ms: now });
    expect(run.invoices_created).toBe(1);
    const [, december] = await list_documents(ledger, {
      kind: 'invoice',
      account_id: 'acme',
      limit: 10,
      offset: 0,
    });
    const invoice = (await get_document(ledger, december!.id))!;
    // S1 version 2 (12.00, an adjustment of November), S3 2.50, fee 30.00 (all of December):
    // net 44.50, VAT 9.345 -> 9.35, total 53.85.
    expect(invoice.lines.map((l) => [l.session_id, l.session_version, l.net])).toEqual([
      ['S1', 2, '12.00'],
      ['S3', 1, '2.50'],
      [null, null, '30.00'],
    ]);
    expect(invoice).toMatchObject({ number: 'INV-000002', net: '44.50', vat: '9.35', total: '53.85' });
    // Receivable of acme: 36.46 - 6.05 - 12.25 + 53.85 = 72.01.
    const [balance] = await ledger.query<{ balance: number }>(
      `SELECT (sum(debit_minor) - sum(credit_minor))::int8 AS balance FROM journal_lines
       WHERE ledger_account = 'receivable' AND party = 'acme'`,
    );
    expect(balance!.balance).toBe(7201);
    const unbalanced = await ledger.query(
      'SELECT entry_id FROM journal_lines GROUP BY entry_id HAVING sum(debit_minor) <> sum(credit_minor)',
    );
    expect(unbalanced).toEqual([]);
  });

  it('writes one outbox event per issued document and payment, in the same transaction, append-only', async () => {
    const invoices = await list_documents(ledger, {
      kind: 'invoice',
      account_id: 'acme',
      limit: 10,
      offset: 0,
    });
    const december = invoices.find((d) => d.number === 'INV-000002');
    expect(december).toBeDefined();
    await record_payment(ledger, { invoice_id: december!.id, amount: '53.85', reference: 'bank-1' }, now_ms);
    // Replayed with the same reference: booked once, no second event.
    await record_payment(ledger, { invoice_id: december!.id, amount: '53.85', reference: 'bank-1' }, now_ms);
    const events = await ledger.query<{ kind: string; amount_minor: number; number: string | null }>(
      `SELECT kind, amount_minor, attributes->>'number' AS number FROM billing_events
       WHERE account_id = 'acme' ORDER BY id`,
    );
    // The figures of the tests above: 36.46, 6.05, 12.25, 53.85.
    expect(events).toEqual([
      { kind: 'invoice_issued', amount_minor: 3646, number: 'INV-000001' },
      { kind: 'credit_note_issued', amount_minor: 605, number: 'CN-000001' },
      { kind: 'credit_note_issued', amount_minor: 1225, number: 'CN-000002' },
      { kind: 'invoice_issued', amount_minor: 5385, number: 'INV-000002' },
      { kind: 'payment_received', amount_minor: 5385, number: null },
      { kind: 'invoice_paid', amount_minor: 5385, number: null },
    ]);
    await expect(ledger.query('UPDATE billing_events SET amount_minor = 0')).rejects.toThrow(/append-only/);
    await expect(ledger.query('DELETE FROM billing_events')).rejects.toThrow(/append-only/);
  });
});
