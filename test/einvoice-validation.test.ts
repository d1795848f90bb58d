import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Decimal } from 'decimal.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  put_account,
  put_legal_entity,
  validate_account,
  validate_legal_entity,
} from '../billing/accounts.js';
import { document_totals, text_of_minor } from '../billing/amounts.js';
import { create_credit_note } from '../billing/credit-notes/create.js';
import {
  ArtifactsMissing,
  type EInvoiceReport,
  einvoice_artifacts_dir,
  format_einvoice_report,
  validate_einvoice,
} from '../billing/documents/einvoice-validate.js';
import { ubl_document } from '../billing/documents/ubl.js';
import { type DocumentView, get_document, list_documents } from '../billing/invoices/query.js';
import { run_billing } from '../billing/invoices/run.js';
import type { Ledger } from '../billing/ledger.js';
import { record_rated_versions } from '../billing/rated-versions.js';
import { open_test_ledger, rated_row, test_legal_entity } from './helpers/billing.js';

/**
 * Every e-invoice the billing path writes (invoices of a billing run with sessions of two VAT rates
 * and a membership fee, an invoice in a currency without minor unit, a credit note of a re-rated
 * session and a partial credit note) passes the OASIS UBL 2.1 schema with no error and the CEN
 * EN 16931 rules with no fatal error; a broken document fails both, naming the rules.
 *
 * The artifacts are found by billing/documents/einvoice-validate.ts (schemas/ of the repository,
 * or shared/reference/einvoice beside it), or in EINVOICE_ARTIFACTS_DIR; without them the suite is
 * skipped and says so. The CLI part runs the built dist/app/cli.js (npx tsc first).
 */
function artifacts(): string | undefined {
  try {
    return einvoice_artifacts_dir(process.env.EINVOICE_ARTIFACTS_DIR || undefined);
  } catch (error) {
    if (error instanceof ArtifactsMissing) {
      console.warn(`e-invoice validation skipped: ${error.message}`);
      return undefined;
    }
    throw error;
  }
}
const artifacts_dir = artifacts();

const now_ms = Date.parse('2026-12-04T12:00:00Z');
const now = () => now_ms;
const address = { line1: 'Kade 2', postal_code: '3011 AA', city: 'Rotterdam', country_code: 'NL' };

/** A rated version whose breakdown has an energy part at 21 % and a parking part at 9 %. */
function two_rate_row(
  session_id: string,
  id_tag: string,
  stopped_at_ms: number,
  energy: string,
  parking: string,
) {
  return rated_row({
    session_id,
    id_tag,
    stopped_at_ms,
    total_excl_vat: new Decimal(energy).add(parking).toString(),
    breakdown: JSON.stringify({
      lines: [
        { dimension: 'ENERGY', vat_percent: '21', cost_excl_vat: energy },
        { dimension: 'PARKING_TIME', vat_percent: '9', cost_excl_vat: parking },
      ],
    }),
  });
}

async function check(doc: DocumentView, credited?: string): Promise<EInvoiceReport> {
  const xml = ubl_document(doc, credited);
  const report = await validate_einvoice(xml, { artifacts_dir: artifacts_dir! });
  const printed = format_einvoice_report(report);
  console.info(`${doc.number}: ${report.valid ? 'valid' : 'INVALID'}${printed === '' ? '' : `\n${printed}`}`);
  return report;
}

describe.skipIf(artifacts_dir === undefined)('EN 16931 e-invoices of the billing path', () => {
  let ledger: Ledger;
  let dispose: () => Promise<void>;
  const docs: { label: string; doc: DocumentView; credited?: string }[] = [];

  beforeAll(async () => {
    const opened = await open_test_ledger('pglite');
    ledger = opened.ledger;
    dispose = opened.dispose;
    await put_legal_entity(ledger, validate_legal_entity('nl', test_legal_entity));
    await put_account(
      ledger,
      validate_account('fleet', {
        kind: 'company',
        name: 'ACME Fleet & Sons <B.V.>',
        legal_entity_id: 'nl',
        currency: 'EUR',
        payment_terms_days: 14,
        vat_id: 'NL999999999B01',
        address,
        tokens: ['TAG-F1'],
        memberships: [{ plan_id: 'fleet', monthly_fee: '30.00', starts_on: '2026-11-16' }],
      }),
    );
    await put_account(
      ledger,
      validate_account('tokyo', {
        kind: 'driver',
        name: 'Driver in yen',
        legal_entity_id: 'nl',
        currency: 'JPY',
        address: { line1: '1-1 Chiyoda', postal_code: '100-0001', city: 'Tokyo', country_code: 'JP' },
        tokens: ['TAG-J1'],
      }),
    );
    await record_rated_versions(
      ledger,
      [
        two_rate_row('F1', 'TAG-F1', Date.parse('2026-11-03T10:00:00Z'), '10.123', '2.005'),
        two_rate_row('F2', 'TAG-F1', Date.parse('2026-11-20T12:00:00Z'), '7.35', '4.00'),
        rated_row({
          session_id: 'F3',
          id_tag: 'TAG-F1',
          stopped_at_ms: Date.parse('2026-11-21T12:00:00Z'),
          total_excl_vat: '5.005',
        }),
        rated_row({
          session_id: 'J1',
          id_tag: 'TAG-J1',
          stopped_at_ms: Date.parse('2026-11-05T12:00:00Z'),
          total_excl_vat: '1234.5',
          total_incl_vat: '1493.745',
          currency: 'JPY',
          vat_percent: '21',
        }),
      ],
      now_ms,
    );
    const run = await run_billing(ledger, { period: '2026-11' }, { now_ms: now });
    expect(run.invoices_created).toBe(2);
    const invoices = await list_documents(ledger, { kind: 'invoice', limit: 10, offset: 0 });
    for (const listed of invoices) {
      const doc = (await get_document(ledger, listed.id))!;
      docs.push({ label: `invoice ${doc.currency}`, doc });
    }
    const fleet_invoice = docs.find((d) => d.doc.account_id === 'fleet')!.doc;
    // Two VAT rates and the membership fee are on the invoice.
    expect(fleet_invoice.vat_breakdown.map((v) => v.vat_percent)).toEqual(['9', '21']);
    expect(fleet_invoice.lines.some((l) => l.kind === 'fee')).toBe(true);

    // A session re-rated after it was invoiced: a credit note of its invoiced version.
    const outcome = await record_rated_versions(
      ledger,
      [
        {
          ...two_rate_row('F2', 'TAG-F1', Date.parse('2026-11-20T12:00:00Z'), '6.35', '4.00'),
          version: 2,
        },
      ],
      now_ms,
    );
    expect(outcome.credit_notes).toHaveLength(1);
    docs.push({
      label: 'credit note of a re-rating',
      doc: (await get_document(ledger, outcome.credit_notes[0]!))!,
      credited: fleet_invoice.number!,
    });
    // A partial credit note through the credit-note operation the API calls.
    const partial = await create_credit_note(
      ledger,
      { invoice_id: fleet_invoice.id, amount: '3.00', vat_percent: '21', reason: 'goodwill' },
      now_ms,
    );
    docs.push({
      label: 'partial credit note',
      doc: (await get_document(ledger, partial))!,
      credited: fleet_invoice.number!,
    });
  }, 900_000);

  afterAll(async () => {
    await dispose?.();
  });

  it('passes the UBL 2.1 schema and the EN 16931 rules with every document the billing path writes', async () => {
    expect(docs.map((d) => d.doc.kind)).toEqual(['invoice', 'invoice', 'credit_note', 'credit_note']);
    for (const { label, doc, credited } of docs) {
      const report = await check(doc, credited);
      expect(report.xsd, label).toEqual([]);
      expect(report.fatal, label).toEqual([]);
      expect(report.valid).toBe(true);
    }
  }, 900_000);

  it('maps a negative line (a discount, as membership lines may add) to quantity -1 at a positive price', async () => {
    // Not a line the billing path writes yet: the fleet invoice with one more line, its totals
    // recomputed by the project's one rounding rule (billing/amounts.ts document_totals).
    const { doc } = docs[0]!;
    const discount = {
      ...doc.lines.find((l) => l.kind === 'fee')!,
      line_no: doc.lines.length + 1,
      kind: 'discount',
      description: 'Loyalty discount',
      net_minor: -500,
      net: '-5.00',
    };
    const lines = [...doc.lines, discount];
    const totals = document_totals(lines, doc.currency);
    const with_discount: DocumentView = {
      ...doc,
      lines,
      net_minor: totals.net_minor,
      vat_minor: totals.vat_minor,
      total_minor: totals.total_minor,
      vat_breakdown: totals.vat.map((v) => ({
        ...v,
        net: text_of_minor(v.net_minor, doc.currency),
        vat: text_of_minor(v.vat_minor, doc.currency),
      })),
    };
    const xml = ubl_document(with_discount);
    expect(xml).toContain(
      '<cbc:InvoicedQuantity unitCode="C62">-1</cbc:InvoicedQuantity><cbc:LineExtensionAmount currencyID="EUR">-5.00</cbc:LineExtensionAmount>',
    );
    const report = await check(with_discount);
    expect(report).toMatchObject({ valid: true, xsd: [], fatal: [] });
  }, 900_000);

  it('fails a document whose totals do not add up, or that lacks a mandatory element, naming the rules', async () => {
    const { doc } = docs[0]!;
    const xml = ubl_document(doc);
    // BT-106 (sum of line net amounts) one cent off: BR-CO-10; and so the totals after it.
    const wrong_sum = xml.replace(
      /(<cac:LegalMonetaryTotal>\n<cbc:LineExtensionAmount currencyID="EUR">)([\d.]+)/,
      (_, head: string, amount: string) => `${head}${(Number(amount) + 0.01).toFixed(2)}`,
    );
    expect(wrong_sum).not.toBe(xml);
    const sum_report = await validate_einvoice(wrong_sum, { artifacts_dir: artifacts_dir! });
    console.info(`broken sum:\n${format_einvoice_report(sum_report)}`);
    expect(sum_report.valid).toBe(false);
    expect(sum_report.fatal.map((f) => f.id)).toContain('BR-CO-10');

    // No issue date (BT-2): the schema requires cbc:IssueDate, EN 16931 rule BR-03.
    const no_date = xml.replace(/<cbc:IssueDate>[^<]*<\/cbc:IssueDate>\n?/, '');
    expect(no_date).not.toBe(xml);
    const date_report = await validate_einvoice(no_date, { artifacts_dir: artifacts_dir! });
    console.info(`no issue date:\n${format_einvoice_report(date_report)}`);
    expect(date_report.xsd.length).toBeGreaterThan(0);
    expect(date_report.xsd.map((f) => f.message).join('\n')).toMatch(/IssueDate/);
    expect(date_report.fatal.map((f) => f.id)).toContain('BR-03');

    // A warning is reported as one and leaves the document valid: UBL-CR-003, no ProfileExecutionID.
    const warned = xml.replace(
      '</cbc:CustomizationID>',
      '</cbc:CustomizationID><cbc:ProfileExecutionID>1</cbc:ProfileExecutionID>',
    );
    const warned_report = await validate_einvoice(warned, { artifacts_dir: artifacts_dir! });
    expect(warned_report).toMatchObject({ valid: true, xsd: [], fatal: [] });
    expect(warned_report.warnings.map((f) => f.id)).toEqual(['UBL-CR-003']);

    // The same through the built CLI: exit 0 for the valid file, 1 with the broken one, rule ids printed.
    const dir = mkdtempSync(path.join(tmpdir(), 'evrate-einvoice-cli-'));
    try {
      writeFileSync(path.join(dir, 'valid.xml'), xml);
      writeFileSync(path.join(dir, 'broken.xml'), wrong_sum);
      const cli = (...files: string[]) =>
        spawnSync(
          'node',
          [
            'dist/app/cli.js',
            'invoice',
            'validate',
            '--artifacts',
            artifacts_dir!,
            ...files.map((f) => path.join(dir, f)),
          ],
          { encoding: 'utf8', timeout: 600_000 },
        );
      const valid = cli('valid.xml');
      expect(valid.status, valid.stderr).toBe(0);
      expect(valid.stdout).toContain('valid.xml: valid (0 errors');
      const broken = cli('valid.xml', 'broken.xml');
      expect(broken.status, broken.stderr).toBe(1);
      expect(broken.stdout).toMatch(/broken\.xml: INVALID[\s\S]*error BR-CO-10/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 900_000);
});
