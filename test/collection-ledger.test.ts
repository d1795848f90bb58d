import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  put_account,
  put_legal_entity,
  validate_account,
  validate_legal_entity,
} from '../billing/accounts.js';
import {
  apply_bank_file,
  BankFileError,
  collect_billing_run,
  get_collection_file,
  get_dunning,
  invoice_payment_reference,
  put_creditor,
  put_mandate,
  reconciliation_report,
  run_collection_pass,
  validate_creditor,
  validate_mandate,
} from '../billing/collection/index.js';
import { get_document } from '../billing/invoices/query.js';
import { run_billing } from '../billing/invoices/run.js';
import type { Ledger } from '../billing/ledger.js';
import { record_payment } from '../billing/payments/record.js';
import type { FieldError } from '../core/field-error.js';
import { camt054_file, pain002_file } from './helpers/bank-files.js';
import { ledger_backends, open_test_ledger, test_legal_entity } from './helpers/billing.js';

/**
 * SEPA Direct Debit and bank transfers on the ledger, on PGlite and on a PostgreSQL server: a
 * billing run's pain.008 file (valid against the ISO 20022 XSD), a pain.002 rejection and a
 * camt.054 return that reopen the invoice and start dunning, a retry, dunning through its states
 * by the days after the due date, a bank transfer matched by its RF reference, bad files refused
 * naming the line and changing nothing, and the reconciliation report of the day.
 */
const xsd = path.resolve('schemas/iso20022/pain.008.001.02.xsd');
/** The run closes September on 1 October; invoices are due 14 days later, on 15 October. */
const run_at_ms = Date.parse('2026-10-01T10:00:00Z');
const policy = {
  reminder_days: 7,
  second_reminder_days: 14,
  suspend_days: 30,
  retry_days: 5,
  retries_max: 1,
};

const company = (name: string) => ({
  kind: 'company',
  name,
  legal_entity_id: 'nl',
  currency: 'EUR',
  payment_terms_days: 14,
  address: { line1: 'Kade 2', postal_code: '3011 AA', city: 'Rotterdam', country_code: 'NL' },
  memberships: [{ plan_id: 'fleet', monthly_fee: '100.00', starts_on: '2026-09-01' }],
});

async function events(ledger: Ledger, kind: string): Promise<Record<string, unknown>[]> {
  return await ledger.query(
    'SELECT account_id, invoice_id, amount_minor, attributes FROM billing_events WHERE kind = $1 ORDER BY id',
    [kind],
  );
}

async function invoice_of(ledger: Ledger, account_id: string) {
  const [row] = await ledger.query<{ id: number }>(
    `SELECT id FROM invoices WHERE account_id = $1 AND kind = 'invoice' ORDER BY id`,
    [account_id],
  );
  return (await get_document(ledger, row!.id))!;
}

async function ledger_counts(ledger: Ledger) {
  const [row] = await ledger.query<Record<string, number>>(
    `SELECT (SELECT count(*)::int FROM journal_entries) AS entries, (SELECT count(*)::int FROM billing_events) AS events,
       (SELECT count(*)::int FROM bank_files) AS files, (SELECT sum(paid_minor)::int8 FROM invoices) AS paid`,
  );
  return row!;
}

describe.each(ledger_backends)('SEPA and bank-transfer collection on %s', (backend) => {
  let ledger: Ledger;
  let dispose: () => Promise<void>;
  const dir = mkdtempSync(path.join(tmpdir(), 'evrate-sepa-'));
  let run_id = 0;
  let message_id = '';

  beforeAll(async () => {
    const opened = await open_test_ledger(backend);
    ledger = opened.ledger;
    dispose = opened.dispose;
    await put_legal_entity(ledger, validate_legal_entity('nl', test_legal_entity));
    for (const [id, name] of [
      ['acme', 'ACME Fleet & Sons'],
      ['bolt', 'Bolt Logistics'],
      ['cargo', 'Cargo <Transfer>'],
    ] as const) {
      await put_account(ledger, validate_account(id, company(name)));
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
    await put_mandate(
      ledger,
      validate_mandate('acme', 'MND-ACME-1', {
        debtor_name: 'ACME Fleet + Sons',
        iban: 'NL91ABNA0417164300',
        bic: 'ABNANL2A',
        signed_on: '2026-08-20',
      }),
    );
    await put_mandate(
      ledger,
      validate_mandate('bolt', 'MND-BOLT-1', {
        debtor_name: 'Bolt Logistics',
        iban: 'NL91 ABNA 0417 1643 00',
        bic: 'ABNANL2A',
        signed_on: '2026-08-21',
        scheme: 'B2B',
      }),
    );
    const run = await run_billing(ledger, { period: '2026-09' }, { now_ms: () => run_at_ms });
    run_id = run.id;
  });

  afterAll(async () => {
    await dispose?.();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a mandate with a wrong IBAN check, a driver account or a bad creditor id, naming the field', async () => {
    expect(() =>
      validate_mandate('acme', 'M-2', {
        debtor_name: 'x',
        iban: 'NL92ABNA0417164300',
        bic: 'ABNANL2A',
        signed_on: '2026-08-20',
      }),
    ).toThrow(/iban: IBAN check digits are wrong/);
    expect(() =>
      validate_mandate('acme', 'M 2', {
        debtor_name: 'x',
        iban: 'NL91ABNA0417164300',
        bic: 'ABNANL2A',
        signed_on: '2026-08-20',
      }),
    ).toThrow(/mandate_id/);
    expect(() =>
      validate_creditor('nl', { creditor_id: 'DE99ZZZ09999999999', name: 'x', iban: 'x', bic: 'x' }),
    ).toThrow(/creditor_id: creditor identifier check digits are wrong/);
    await put_account(
      ledger,
      validate_account('driver-1', { ...company('Dee'), kind: 'driver', memberships: [] }),
    );
    await expect(
      put_mandate(
        ledger,
        validate_mandate('driver-1', 'M-D', {
          debtor_name: 'Dee',
          iban: 'NL91ABNA0417164300',
          bic: 'ABNANL2A',
          signed_on: '2026-08-20',
        }),
      ),
    ).rejects.toThrow(/account_id: SEPA Direct Debit collects from company accounts only/);
  });

  it('writes one pain.008.001.02 file for the run, valid against the ISO 20022 XSD, amounts exact', async () => {
    const result = await collect_billing_run(ledger, run_id, run_at_ms + 3_600_000);
    expect(result.file).toMatchObject({
      kind: 'run',
      transactions: 2,
      control_sum: '242.00',
      currency: 'EUR',
    });
    // cargo has no mandate: it pays by bank transfer.
    expect(result.skipped).toEqual([
      {
        invoice_id: (await invoice_of(ledger, 'cargo')).id,
        reason: 'no active SEPA mandate: collected by bank transfer',
      },
    ]);
    const file = (await get_collection_file(ledger, result.file!.id))!;
    message_id = file.message_id;
    const xml_file = path.join(dir, 'collection.xml');
    writeFileSync(xml_file, file.xml);
    // xmllint exits non-zero (and the test fails) when the file does not validate.
    execFileSync('xmllint', ['--noout', '--schema', xsd, xml_file], { stdio: 'pipe' });
    const xpath = (e: string) => execFileSync('xmllint', ['--xpath', e, xml_file]).toString().trim();
    const ns = "*[local-name()='";
    expect(xpath(`string(//${ns}GrpHdr']/${ns}CtrlSum'])`)).toBe('242.00');
    expect(xpath(`count(//${ns}PmtInf'])`)).toBe('2'); // CORE and B2B are separate batches
    expect(xpath(`string(//${ns}DrctDbtTxInf'][1]/${ns}InstdAmt'])`)).toBe('121.00');
    expect(xpath(`string(//${ns}PmtInf'][1]/${ns}PmtTpInf']/${ns}SeqTp'])`)).toBe('FRST');
    expect(xpath(`string(//${ns}PmtInf'][1]/${ns}ReqdColltnDt'])`)).toBe('2026-10-15');
    expect(xpath(`string(//${ns}Dbtr']/${ns}Nm'])`)).toBe('ACME Fleet + Sons');
    expect(file.xml).toContain('<Cdtr><Nm>evrate Charging B.V.</Nm></Cdtr>');
    // Both invoices are paid by the submitted debits; the events say how.
    for (const id of ['acme', 'bolt']) expect((await invoice_of(ledger, id)).status).toBe('paid');
    expect((await events(ledger, 'collection_attempted')).map((e) => e.attributes)).toEqual([
      expect.objectContaining({ attempt: 1, method: 'sepa_debit', sequence_type: 'FRST' }),
      expect.objectContaining({ attempt: 1, method: 'sepa_debit', sequence_type: 'FRST' }),
    ]);
    // Asking again answers the same file and books nothing more.
    const again = await collect_billing_run(ledger, run_id, run_at_ms + 7_200_000);
    expect(again.file!.id).toBe(result.file!.id);
    expect((await events(ledger, 'collection_attempted')).length).toBe(2);
  });

  it('refuses a bad bank file naming the line and field, and changes nothing', async () => {
    const before = await ledger_counts(ledger);
    await expect(apply_bank_file(ledger, '<Document><open></Document>', policy)).rejects.toThrow(
      /line 1: end tag <\/Document> does not close <open>/,
    );
    const bad_amount = camt054_file('CAMT-BAD', [
      {
        direction: 'DBIT',
        amount: '121.00',
        booked_on: '2026-10-20',
        end_to_end_id: 'x',
        return_reason: 'AM04',
      },
    ]).replace(
      '<Amt Ccy="EUR">121.00</Amt>\n        <CdtDbtInd>',
      '<Amt Ccy="EUR">121.001</Amt>\n        <CdtDbtInd>',
    );
    const error = await apply_bank_file(ledger, bad_amount, policy).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BankFileError);
    expect((error as FieldError).field).toBe('line 14: Ntry/Amt');
    expect((error as FieldError).rule).toMatch(/at most 2 decimals/);
    const no_date = camt054_file('CAMT-BAD2', [
      { direction: 'CRDT', amount: '1.00', booked_on: '2026-10-20' },
    ]).replace(/<BookgDt>.*<\/BookgDt>/, '');
    await expect(apply_bank_file(ledger, no_date, policy)).rejects.toThrow(
      /line 12: Ntry\/BookgDt\/Dt: is required/,
    );
    await expect(apply_bank_file(ledger, '<!DOCTYPE x [<!ENTITY a "b">]><x/>', policy)).rejects.toThrow(
      /DTD/,
    );
    expect(await ledger_counts(ledger)).toEqual(before);
  });

  it('a pain.002 rejection reverses the payment, reopens the invoice, records debit_returned and starts dunning', async () => {
    const acme = await invoice_of(ledger, 'acme');
    const [attempt] = await ledger.query<{ end_to_end_id: string; payment_info_id: string }>(
      'SELECT end_to_end_id, payment_info_id FROM collection_attempts WHERE invoice_id = $1',
      [acme.id],
    );
    const report = pain002_file(message_id, [
      {
        end_to_end_id: attempt!.end_to_end_id,
        payment_info_id: attempt!.payment_info_id,
        reason: 'AM04',
        amount: '121.00',
      },
    ]);
    const at_ms = Date.parse('2026-10-16T08:00:00Z');
    const applied = await apply_bank_file(ledger, report, policy, at_ms);
    expect(applied.lines).toMatchObject([
      { kind: 'rejected', status: 'matched', reason_code: 'AM04', amount: '121.00' },
    ]);
    expect(applied.dunning_started).toEqual(['acme']);
    const reopened = await invoice_of(ledger, 'acme');
    expect(reopened).toMatchObject({ status: 'issued', paid: '0.00' });
    const [reversal] = await ledger.query<{ kind: string; debit: number }>(
      `SELECT e.kind, sum(l.debit_minor)::int8 AS debit FROM journal_entries e JOIN journal_lines l ON l.entry_id = e.id
       WHERE e.kind = 'payment_reversed' GROUP BY e.kind`,
    );
    expect(reversal).toEqual({ kind: 'payment_reversed', debit: 12100 });
    expect(await events(ledger, 'debit_returned')).toEqual([
      expect.objectContaining({
        account_id: 'acme',
        amount_minor: 12100,
        attributes: expect.objectContaining({ reason_code: 'AM04', stage: 'rejected', retry: true }),
      }),
    ]);
    expect((await get_dunning(ledger, 'acme')).state).toBe('reminder');
    // The same file again changes nothing.
    const before = await ledger_counts(ledger);
    expect((await apply_bank_file(ledger, report, policy, at_ms)).already_applied).toBe(true);
    expect(await ledger_counts(ledger)).toEqual(before);
  });

  it('retries the rejected debit after the retry days, as FRST again, then a camt.054 return with a fee', async () => {
    const acme = await invoice_of(ledger, 'acme');
    const early = await run_collection_pass(ledger, undefined, policy, Date.parse('2026-10-18T08:00:00Z'));
    expect(early.retry_file).toBeUndefined();
    const due = await run_collection_pass(ledger, undefined, policy, Date.parse('2026-10-21T09:00:00Z'));
    expect(due.retry_file).toMatchObject({ kind: 'retry', transactions: 1, control_sum: '121.00' });
    const retry = (await get_collection_file(ledger, due.retry_file!.id))!;
    const xml_file = path.join(dir, 'retry.xml');
    writeFileSync(xml_file, retry.xml);
    execFileSync('xmllint', ['--noout', '--schema', xsd, xml_file], { stdio: 'pipe' });
    // The first debit never reached the debtor's bank (rejected), so the mandate's first is still FRST.
    expect(retry.xml).toContain('<SeqTp>FRST</SeqTp>');
    expect(retry.xml).toContain(`<EndToEndId>EVR-${acme.id}-2</EndToEndId>`);
    expect((await invoice_of(ledger, 'acme')).status).toBe('paid');
    const returned = camt054_file('CAMT-1', [
      {
        direction: 'DBIT',
        amount: '121.00',
        booked_on: '2026-10-26',
        end_to_end_id: `EVR-${acme.id}-2`,
        return_reason: 'MD01',
        fee: '3.50',
      },
      { direction: 'CRDT', amount: '9.99', booked_on: '2026-10-26', unstructured: 'thank you' },
    ]);
    const applied = await apply_bank_file(ledger, returned, policy, Date.parse('2026-10-26T07:00:00Z'));
    expect(applied.lines).toMatchObject([
      { kind: 'returned', status: 'matched', reason_code: 'MD01', fee: '3.50' },
      { kind: 'transfer_credit', status: 'unmatched', amount: '9.99' },
    ]);
    expect((await invoice_of(ledger, 'acme')).status).toBe('issued');
    // MD01 (no mandate) is not retried.
    const [attempt] = await ledger.query<{ retry_due_ms: number | null; status: string }>(
      'SELECT retry_due_ms, status FROM collection_attempts WHERE invoice_id = $1 AND attempt = 2',
      [acme.id],
    );
    expect(attempt).toEqual({ retry_due_ms: null, status: 'returned' });
    expect(await events(ledger, 'payment_fee')).toEqual([expect.objectContaining({ amount_minor: 350 })]);
    const report = await reconciliation_report(ledger, '2026-10-26');
    expect(report).toMatchObject({
      day: '2026-10-26',
      lines_total: 2,
      lines_matched: 1,
      items: [{ kind: 'transfer_credit', status: 'unmatched', amount: '9.99' }],
      fees: [{ currency: 'EUR', amount: '3.50', amount_minor: 350 }],
    });
    // bolt's debit has been neither settled nor returned by then.
    expect(report.collections_unconfirmed.map((c) => c.amount)).toEqual(['121.00']);
    await expect(reconciliation_report(ledger, '2026-13-01')).rejects.toThrow(/day: must be a date/);
  });

  it('moves dunning to second reminder and to suspended by the days after the due date, once each', async () => {
    // Due 15 October: 14 days later is 29 October, 30 days later 14 November.
    const at = (day: string) => Date.parse(`${day}T12:00:00Z`);
    // cargo (no mandate, nothing paid) reaches the reminder days; acme is there since its return.
    expect((await run_collection_pass(ledger, undefined, policy, at('2026-10-28'))).transitions).toEqual([
      { account_id: 'cargo', from: 'none', to: 'reminder', overdue_days: 13 },
    ]);
    expect(
      (await run_collection_pass(ledger, undefined, policy, at('2026-10-29'))).transitions,
    ).toMatchObject([
      { account_id: 'acme', from: 'reminder', to: 'second_reminder', overdue_days: 14 },
      { account_id: 'cargo', from: 'reminder', to: 'second_reminder', overdue_days: 14 },
    ]);
    expect(
      (await run_collection_pass(ledger, undefined, policy, at('2026-11-14'))).transitions,
    ).toMatchObject([
      { account_id: 'acme', from: 'second_reminder', to: 'suspended', overdue_days: 30 },
      { account_id: 'cargo', from: 'second_reminder', to: 'suspended' },
    ]);
    expect((await run_collection_pass(ledger, undefined, policy, at('2026-11-20'))).transitions).toEqual([]);
    // bolt's debit went through: it is never dunned.
    expect((await get_dunning(ledger, 'bolt')).state).toBe('none');
    const changes = (await events(ledger, 'dunning_state_changed')).filter((e) => e.account_id === 'acme');
    // The retry paid the invoice again (none), its return reopened it (reminder).
    expect(changes.map((e) => (e.attributes as { to: string }).to)).toEqual([
      'reminder',
      'none',
      'reminder',
      'second_reminder',
      'suspended',
    ]);
  });

  it('matches a camt.054 bank transfer to its invoice by the RF reference and ends dunning once paid', async () => {
    const cargo = await invoice_of(ledger, 'cargo');
    const reference = invoice_payment_reference(cargo.id);
    expect(reference).toMatch(/^RF\d{2}EVR\d+$/);
    const transfer = camt054_file('CAMT-2', [
      { direction: 'CRDT', amount: '21.00', booked_on: '2026-11-21', creditor_reference: reference },
      {
        direction: 'CRDT',
        amount: '100.00',
        booked_on: '2026-11-21',
        unstructured: `invoice ${reference} rest`,
      },
      { direction: 'CRDT', amount: '500.00', booked_on: '2026-11-21', creditor_reference: reference },
    ]);
    const applied = await apply_bank_file(ledger, transfer, policy, Date.parse('2026-11-21T07:00:00Z'));
    expect(applied.lines).toMatchObject([
      { kind: 'transfer_credit', status: 'matched', invoice_id: cargo.id, reference },
      { kind: 'transfer_credit', status: 'matched', invoice_id: cargo.id },
      { kind: 'transfer_credit', status: 'mismatched', invoice_id: cargo.id },
    ]);
    expect(await invoice_of(ledger, 'cargo')).toMatchObject({ status: 'paid', paid: '121.00' });
    const received = (await events(ledger, 'payment_received')).filter((e) => e.account_id === 'cargo');
    expect(received.map((e) => (e.attributes as { method: string }).method)).toEqual([
      'bank_transfer',
      'bank_transfer',
    ]);
    // acme pays by another way (record_payment); the next pass ends both accounts' dunning.
    await record_payment(ledger, {
      invoice_id: (await invoice_of(ledger, 'acme')).id,
      amount: '121.00',
      reference: 'wire-77',
    });
    const pass = await run_collection_pass(ledger, undefined, policy, Date.parse('2026-11-22T12:00:00Z'));
    expect(pass.transitions).toMatchObject([
      { account_id: 'acme', from: 'suspended', to: 'none' },
      { account_id: 'cargo', from: 'suspended', to: 'none' },
    ]);
    expect((await reconciliation_report(ledger, '2026-11-21')).items).toMatchObject([
      {
        status: 'mismatched',
        amount: '500.00',
        note: expect.stringMatching(/^121.00 EUR remains on invoice/),
      },
    ]);
  });

  it('keeps a mandate already collected from: its IBAN cannot change', async () => {
    await expect(
      put_mandate(
        ledger,
        validate_mandate('acme', 'MND-ACME-1', {
          debtor_name: 'ACME Fleet + Sons',
          iban: 'DE89370400440532013000',
          bic: 'ABNANL2A',
          signed_on: '2026-08-20',
        }),
      ),
    ).rejects.toThrow(/iban: cannot change on a mandate already collected from/);
  });
});
