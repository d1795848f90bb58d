import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Decimal } from 'decimal.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { doc_of } from '../api/openapi.js';
import {
  ArtifactsMissing,
  einvoice_artifacts_dir,
  format_einvoice_report,
  validate_einvoice,
} from '../billing/documents/einvoice-validate.js';
import { run_ocpp16_session, TestCharger } from './helpers/charger.js';
import { api_get, api_put, eventually, start_test_stack, test_operator_token } from './helpers/stack.js';

type Stack = Awaited<ReturnType<typeof start_test_stack>>;

/**
 * From a real OCPP 1.6 charger through ingest, rating, the rated feed and the ledger to an issued
 * invoice with its PDF and UBL e-invoice, over the operator API; then a credit note, a payment and
 * the journal export. Bad input is answered 4xx naming the field and changes nothing.
 */
const tariff = {
  country_code: 'DE',
  party_id: 'EVR',
  id: 'bill',
  currency: 'EUR',
  elements: [
    {
      price_components: [
        { type: 'ENERGY', price: 0.35, vat: 19, step_size: 1 },
        { type: 'FLAT', price: 1.0, vat: 19, step_size: 1 },
      ],
    },
  ],
  last_updated: '2026-11-01T00:00:00Z',
};

const address = { line1: 'Hauptstr. 1', postal_code: '10115', city: 'Berlin', country_code: 'DE' };

async function api(
  stack: Stack,
  method: string,
  pathname: string,
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown>; bytes: Buffer }> {
  const res = await fetch(`${stack.api_url}${pathname}`, {
    method,
    headers: { authorization: `Bearer ${test_operator_token}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const bytes = Buffer.from(await res.arrayBuffer());
  let parsed: Record<string, unknown> = {};
  if ((res.headers.get('content-type') ?? '').startsWith('application/json'))
    parsed = JSON.parse(bytes.toString());
  return { status: res.status, body: parsed, bytes };
}

function xpath(file: string, expression: string): string {
  return execFileSync('xmllint', ['--xpath', expression, file]).toString().trim();
}

/** The UBL 2.1 XSD and the EN 16931 rules, when their artifacts are here (test/einvoice-validation.test.ts). */
async function expect_valid_einvoice(xml: string): Promise<void> {
  let artifacts_dir: string;
  try {
    artifacts_dir = einvoice_artifacts_dir(process.env.EINVOICE_ARTIFACTS_DIR || undefined);
  } catch (error) {
    if (!(error instanceof ArtifactsMissing)) throw error;
    console.warn(`e-invoice validation skipped: ${error.message}`);
    return;
  }
  const report = await validate_einvoice(xml, { artifacts_dir });
  console.info(`e-invoice: ${report.valid ? 'valid' : 'INVALID'}\n${format_einvoice_report(report)}`);
  expect(report.xsd).toEqual([]);
  expect(report.fatal).toEqual([]);
}

describe('billing over the API, from an OCPP charger to an invoice', () => {
  let stack: Stack;
  const dir = mkdtempSync(path.join(tmpdir(), 'evrate-billing-docs-'));
  let invoice_id = 0;

  beforeAll(async () => {
    stack = await start_test_stack({
      ROLES: 'ingest,rating,api,billing',
      DEFAULT_TARIFF_ID: 'bill',
      OCPP_ACCEPT_UNKNOWN_TOKENS: 'true',
      OCPI_CDR_PUSH_INTERVAL_MS: '0',
    });
  });
  afterAll(async () => {
    await stack?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('describes every billing route in the OpenAPI document', async () => {
    const billing = stack.api_routes.filter((r) =>
      /accounts|invoices|credit-notes|billing|legal-entities/.test(r.path.source),
    );
    expect(billing.length).toBeGreaterThanOrEqual(18);
    const { body } = await api_get(stack, '/v1/openapi.json');
    const paths = (body as { paths: Record<string, Record<string, unknown>> }).paths;
    for (const route of billing) {
      const doc = doc_of(route);
      expect(doc, route.path.source).toBeDefined();
      expect(paths[doc!.path]?.[route.method.toLowerCase()], `${route.method} ${doc!.path}`).toBeDefined();
    }
  });

  it('refuses bad input naming the field, and changes nothing', async () => {
    expect((await api(stack, 'GET', '/v1/invoices')).status).toBe(200);
    const no_auth = await fetch(`${stack.api_url}/v1/accounts`);
    expect(no_auth.status).toBe(401);
    const entity = await api(stack, 'PUT', '/v1/legal-entities/de', {
      name: 'evrate GmbH',
      vat_id: 'DE123456789',
      address,
      country_code: 'DE',
      time_zone: 'Europe/Berlin',
      fee_vat_percent: '19',
    });
    expect(entity.status).toBe(200);
    const unknown_entity = await api(stack, 'PUT', '/v1/accounts/acme', {
      kind: 'company',
      name: 'ACME',
      legal_entity_id: 'nowhere',
      currency: 'EUR',
      address,
    });
    expect(unknown_entity).toMatchObject({ status: 400, body: { field: 'legal_entity_id' } });
    expect((await api(stack, 'GET', '/v1/accounts/acme')).status).toBe(404);
    const future = await api(stack, 'POST', '/v1/billing/runs', { period: '2099-01' });
    expect(future).toMatchObject({ status: 400, body: { field: 'period' } });
    const nobody = await api(stack, 'POST', '/v1/billing/runs', {
      period: '2026-11',
      account_ids: ['nobody'],
    });
    expect(nobody).toMatchObject({ status: 400, body: { field: 'account_ids[0]' } });
    expect((await api(stack, 'GET', '/v1/billing/runs')).body).toEqual({ runs: [] });
    expect((await api(stack, 'GET', '/v1/invoices?period=2026-13')).body).toMatchObject({ field: 'period' });
  });

  it('invoices the session a charger ran, with PDF and UBL documents', async () => {
    expect((await api_put(stack, '/v1/tariffs/bill', JSON.stringify(tariff))).status).toBe(200);
    const created = await api(stack, 'PUT', '/v1/accounts/acme', {
      kind: 'company',
      name: 'ACME Logistics GmbH',
      legal_entity_id: 'de',
      currency: 'EUR',
      vat_id: 'DE999999999',
      payment_terms_days: 30,
      address,
      cost_centres: [{ id: 'north', name: 'Depot North' }],
      tokens: [{ uid: 'TAG-B1', cost_centre_id: 'north' }],
      // 16 to 30 November: 15 of 30 days of 10.00 = 5.00.
      memberships: [{ plan_id: 'fleet', monthly_fee: '10.00', starts_on: '2026-11-16' }],
    });
    expect(created.status).toBe(201);

    const charger = await TestCharger.connect(stack.ocpp_url.replace('{chargePointId}', 'CP-BILL-1'));
    expect(
      (await charger.call('BootNotification', { chargePointVendor: 'Acme', chargePointModel: 'X1' })).status,
    ).toBe('Accepted');
    await run_ocpp16_session(charger, {
      id_tag: 'TAG-B1',
      connector_id: 1,
      meter_start_wh: 1_000_000,
      meter_stop_wh: 1_012_345,
      start: new Date('2026-11-20T17:00:00.000Z'),
      stop: new Date('2026-11-20T18:30:00.000Z'),
    });
    charger.close();
    // The final version reaches the ledger through the rated feed.
    await eventually(async () => {
      const rows = await stack.ledger!.query<{ n: number }>(
        `SELECT count(*)::int8 AS n FROM sessions WHERE account_id = 'acme' AND final_version IS NOT NULL`,
      );
      return rows[0]!.n === 1 ? true : undefined;
    });

    const started = await api(stack, 'POST', '/v1/billing/runs', { period: '2026-11' });
    expect(started.status).toBe(202);
    const run = await eventually(async () => {
      const { body } = await api(stack, 'GET', `/v1/billing/runs/${started.body.id}`);
      return body.status === 'finished' ? body : undefined;
    });
    expect(run).toMatchObject({ accounts_done: 1, invoices_created: 1 });

    const list = await api(stack, 'GET', '/v1/invoices?account_id=acme&period=2026-11');
    const invoices = list.body.invoices as { id: number; number: string }[];
    expect(invoices.map((i) => i.number)).toEqual(['INV-000001']);
    invoice_id = invoices[0]!.id;
    const invoice = (await api(stack, 'GET', `/v1/invoices/${invoice_id}`)).body;
    // 12.345 kWh x 0.35 + 1.00 = 5.32075 -> 5.32; fee 5.00; both at 19 %:
    // net 10.32, VAT 10.32 x 0.19 = 1.9608 -> 1.96, total 12.28.
    expect(invoice).toMatchObject({
      number: 'INV-000001',
      status: 'issued',
      currency: 'EUR',
      net: '10.32',
      vat: '1.96',
      total: '12.28',
      period: '2026-11',
    });
    expect((invoice.lines as Record<string, unknown>[]).map((l) => [l.kind, l.net, l.vat_percent])).toEqual([
      ['session', '5.32', '19'],
      ['fee', '5.00', '19'],
    ]);
    expect((invoice.lines as Record<string, unknown>[])[0]).toMatchObject({
      charge_point_id: 'CP-BILL-1',
      energy_wh: 12_345,
      duration_s: 5400,
      tariff_id: 'bill',
      tariff_version: 2,
      cost_centre_id: 'north',
      id_tag: 'TAG-B1',
    });

    const pdf = await api(stack, 'GET', `/v1/invoices/${invoice_id}/pdf`);
    expect(pdf.status).toBe(200);
    const pdf_file = path.join(dir, 'invoice.pdf');
    writeFileSync(pdf_file, pdf.bytes);
    execFileSync('pdftoppm', ['-png', '-r', '40', pdf_file, path.join(dir, 'page')]);
    const pages = readdirSync(dir).filter((f) => f.startsWith('page') && f.endsWith('.png'));
    expect(pages.length).toBeGreaterThanOrEqual(1);
    expect(statSync(path.join(dir, pages[0]!)).size).toBeGreaterThan(1000);
    const text = execFileSync('pdftotext', ['-layout', pdf_file, '-']).toString();
    for (const figure of [
      'Invoice INV-000001',
      'ACME Logistics GmbH',
      '12.345',
      '5.32',
      '5.00',
      '10.32',
      '1.96',
      '12.28',
    ]) {
      expect(text).toContain(figure);
    }

    const ubl = await api(stack, 'GET', `/v1/invoices/${invoice_id}/ubl`);
    expect(ubl.status).toBe(200);
    const ubl_file = path.join(dir, 'invoice.xml');
    writeFileSync(ubl_file, ubl.bytes);
    // Well-formed, and the mandatory EN 16931 business terms are where UBL 2.1 puts them.
    execFileSync('xmllint', ['--noout', ubl_file]);
    const bt = (name: string) =>
      xpath(ubl_file, `string(/*[local-name()='Invoice']/*[local-name()='${name}'])`);
    expect(bt('CustomizationID')).toBe('urn:cen.eu:en16931:2017'); // BT-24
    expect(bt('ID')).toBe('INV-000001'); // BT-1
    expect(bt('IssueDate')).toMatch(/^\d{4}-\d{2}-\d{2}$/); // BT-2
    expect(bt('InvoiceTypeCode')).toBe('380'); // BT-3
    expect(bt('DocumentCurrencyCode')).toBe('EUR'); // BT-5
    const total = (name: string) =>
      xpath(ubl_file, `string(//*[local-name()='LegalMonetaryTotal']/*[local-name()='${name}'])`);
    expect([
      total('LineExtensionAmount'),
      total('TaxExclusiveAmount'),
      total('TaxInclusiveAmount'),
      total('PayableAmount'),
    ]).toEqual(['10.32', '10.32', '12.28', '12.28']); // BT-106, BT-109, BT-112, BT-115
    expect(xpath(ubl_file, "string(/*/*[local-name()='TaxTotal']/*[local-name()='TaxAmount'])")).toBe('1.96'); // BT-110
    expect(xpath(ubl_file, "string(//*[local-name()='TaxSubtotal']/*[local-name()='TaxableAmount'])")).toBe(
      '10.32',
    ); // BT-116
    expect(xpath(ubl_file, "string(//*[local-name()='TaxSubtotal']//*[local-name()='Percent'])")).toBe('19'); // BT-119
    expect(
      xpath(
        ubl_file,
        "string(//*[local-name()='AccountingSupplierParty']//*[local-name()='RegistrationName'])",
      ),
    ).toBe('evrate GmbH'); // BT-27
    expect(
      xpath(
        ubl_file,
        "string(//*[local-name()='AccountingCustomerParty']//*[local-name()='RegistrationName'])",
      ),
    ).toBe('ACME Logistics GmbH'); // BT-44
    expect(xpath(ubl_file, "count(//*[local-name()='InvoiceLine'])")).toBe('2');
    expect(
      xpath(ubl_file, "string(//*[local-name()='InvoiceLine'][1]/*[local-name()='LineExtensionAmount'])"),
    ).toBe('5.32'); // BT-131
    await expect_valid_einvoice(ubl.bytes.toString());
  }, 900_000);

  it('credits part of the invoice, never more than remains, and takes a payment of the rest', async () => {
    const too_much = await api(stack, 'POST', '/v1/credit-notes', {
      invoice_id,
      amount: '20.00',
      reason: 'goodwill',
    });
    expect(too_much).toMatchObject({ status: 400, body: { field: 'amount' } });
    expect(((await api(stack, 'GET', '/v1/credit-notes')).body.credit_notes as unknown[]).length).toBe(0);
    // 1.00 + 19 % = 1.19.
    const note = await api(stack, 'POST', '/v1/credit-notes', {
      invoice_id,
      amount: '1.00',
      reason: 'goodwill',
    });
    expect(note).toMatchObject({
      status: 201,
      body: { number: 'CN-000001', total: '1.19', credited_invoice_id: invoice_id },
    });
    const pdf = await api(stack, 'GET', `/v1/credit-notes/${note.body.id}/pdf`);
    const pdf_file = path.join(dir, 'credit.pdf');
    writeFileSync(pdf_file, pdf.bytes);
    const text = execFileSync('pdftotext', ['-layout', pdf_file, '-']).toString();
    expect(text).toContain('Credit note CN-000001');
    expect(text).toContain('INV-000001');
    const ubl_file = path.join(dir, 'credit.xml');
    writeFileSync(ubl_file, (await api(stack, 'GET', `/v1/credit-notes/${note.body.id}/ubl`)).bytes);
    expect(
      xpath(ubl_file, "string(/*[local-name()='CreditNote']/*[local-name()='CreditNoteTypeCode'])"),
    ).toBe('381');
    expect(xpath(ubl_file, "string(//*[local-name()='BillingReference']//*[local-name()='ID'])")).toBe(
      'INV-000001',
    ); // BT-25
    await expect_valid_einvoice(readFileSync(ubl_file, 'utf8'));

    // 12.28 - 1.19 = 11.09 remains.
    const over = await api(stack, 'POST', `/v1/invoices/${invoice_id}/payments`, {
      amount: '11.10',
      reference: 'bank-1',
    });
    expect(over).toMatchObject({ status: 400, body: { field: 'amount' } });
    const paid = await api(stack, 'POST', `/v1/invoices/${invoice_id}/payments`, {
      amount: '11.09',
      reference: 'bank-1',
    });
    expect(paid).toMatchObject({ status: 200, body: { status: 'paid', paid: '11.09' } });
    const again = await api(stack, 'POST', `/v1/invoices/${invoice_id}/payments`, {
      amount: '11.09',
      reference: 'bank-1',
    });
    expect(again).toMatchObject({ status: 200, body: { status: 'paid', paid: '11.09' } });

    const csv = await api(
      stack,
      'GET',
      '/v1/billing/journal?from=2026-01-01T00:00:00Z&to=2100-01-01T00:00:00Z&format=csv',
    );
    const rows = csv.bytes.toString().trim().split('\r\n');
    expect(rows[0]).toBe(
      'entry_id,posted_at,kind,source_id,currency,line_no,ledger_account,party,debit,credit,description',
    );
    // Invoice (3 lines), credit note (3), payment (2).
    expect(rows.length - 1).toBe(8);
    const json = await api(
      stack,
      'GET',
      '/v1/billing/journal?from=2026-01-01T00:00:00Z&to=2100-01-01T00:00:00Z',
    );
    const lines = json.body.lines as {
      ledger_account: string;
      party: string;
      debit: string;
      credit: string;
    }[];
    const cents = (s: string) => new Decimal(s).mul(100).toNumber();
    const receivable = lines
      .filter((l) => l.ledger_account === 'receivable' && l.party === 'acme')
      .reduce((sum, l) => sum + cents(l.debit) - cents(l.credit), 0);
    // 12.28 - 1.19 - 11.09 = 0.
    expect(receivable).toBe(0);
    expect(lines.reduce((sum, l) => sum + cents(l.debit) - cents(l.credit), 0)).toBe(0);
  }, 900_000);
});
