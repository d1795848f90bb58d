import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run_billing } from '../billing/invoices/run.js';
import { camt054_file } from './helpers/bank-files.js';
import { connect_rpc_charger, type RpcCharger } from './helpers/ocpp-rpc.js';
import { start_test_stack, test_operator_token } from './helpers/stack.js';

type Stack = Awaited<ReturnType<typeof start_test_stack>>;

/**
 * End to end on one stack (ingest, API, billing on PGlite, a real nats-server for the token
 * store), a charger played by ocpp-rpc in strict mode: a company account with a SEPA mandate is
 * invoiced, collected by a pain.008 file (valid against the XSD), the debit comes back in a
 * camt.054 (AM04): the invoice is open again and dunning starts; as the invoice is past the
 * suspend days, the account is suspended and its RFID card is refused at the charger (Authorize:
 * Blocked); a bank transfer with the invoice's RF reference pays it and the card is accepted again.
 */
const day_ms = 86_400_000;
const uid = 'FLEET-CARD-7';
const xsd = path.resolve('schemas/iso20022/pain.008.001.02.xsd');

async function api(
  stack: Stack,
  method: string,
  pathname: string,
  body?: unknown,
  content_type = 'application/json',
): Promise<{ status: number; body: Record<string, unknown>; text: string }> {
  const res = await fetch(`${stack.api_url}${pathname}`, {
    method,
    headers: { authorization: `Bearer ${test_operator_token}`, 'content-type': content_type },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  const text = await res.text();
  const json = (res.headers.get('content-type') ?? '').startsWith('application/json') ? JSON.parse(text) : {};
  return { status: res.status, body: json, text };
}

async function authorize(charger: RpcCharger): Promise<string> {
  const answer = (await charger.call('Authorize', { idTag: uid })) as { idTagInfo: { status: string } };
  return answer.idTagInfo.status;
}

describe('a returned SEPA debit suspends the account and blocks its RFID card until it pays', () => {
  let stack: Stack;
  let charger: RpcCharger;
  const dir = mkdtempSync(path.join(tmpdir(), 'evrate-collection-e2e-'));
  let invoice_id = 0;
  let end_to_end_id = '';

  beforeAll(async () => {
    stack = await start_test_stack({
      ROLES: 'ingest,api,billing',
      OCPI_CDR_PUSH_INTERVAL_MS: '0',
      COLLECTION_SCHEDULE_INTERVAL_S: '0',
      DUNNING_REMINDER_DAYS: '7',
      DUNNING_SECOND_REMINDER_DAYS: '14',
      DUNNING_SUSPEND_DAYS: '30',
    });
    charger = await connect_rpc_charger(stack.ocpp_url, 'CP-SEPA-1', 'ocpp1.6');
    const boot = (await charger.call('BootNotification', {
      chargePointVendor: 'Acme',
      chargePointModel: 'X1',
    })) as {
      status: string;
    };
    expect(boot.status).toBe('Accepted');
  });

  afterAll(async () => {
    await charger?.close({ force: true });
    await stack?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('sets up the creditor, the company account with its card and its mandate over the API', async () => {
    expect(
      (
        await api(stack, 'PUT', '/v1/legal-entities/nl', {
          name: 'evrate Charging B.V.',
          vat_id: 'NL123456789B01',
          address: {
            line1: 'Stationsplein 1',
            postal_code: '1012 AB',
            city: 'Amsterdam',
            country_code: 'NL',
          },
          country_code: 'NL',
          time_zone: 'Europe/Amsterdam',
          fee_vat_percent: '21',
        })
      ).status,
    ).toBeLessThan(300);
    const bad = await api(stack, 'PUT', '/v1/legal-entities/nl/sepa-creditor', {
      creditor_id: 'DE98ZZZ09999999999',
      name: 'evrate Charging B.V.',
      iban: 'DE89370400440532013001',
      bic: 'COBADEFFXXX',
    });
    expect(bad).toMatchObject({ status: 400, body: { field: 'iban' } });
    expect(
      (
        await api(stack, 'PUT', '/v1/legal-entities/nl/sepa-creditor', {
          creditor_id: 'DE98ZZZ09999999999',
          name: 'evrate Charging B.V.',
          iban: 'DE89370400440532013000',
          bic: 'COBADEFFXXX',
        })
      ).status,
    ).toBe(200);
    // The month the invoice is for: the one before the run, 54 days ago (due 14 days after the run).
    const run_at = new Date(Date.now() - 54 * day_ms);
    const period_start = new Date(Date.UTC(run_at.getUTCFullYear(), run_at.getUTCMonth() - 1, 1));
    const period = period_start.toISOString().slice(0, 7);
    expect(
      (
        await api(stack, 'PUT', '/v1/accounts/fleet', {
          kind: 'company',
          name: 'Fleet & Co',
          legal_entity_id: 'nl',
          currency: 'EUR',
          payment_terms_days: 14,
          address: { line1: 'Kade 2', postal_code: '3011 AA', city: 'Rotterdam', country_code: 'NL' },
          tokens: [uid],
          memberships: [{ plan_id: 'fleet', monthly_fee: '100.00', starts_on: `${period}-01` }],
        })
      ).status,
    ).toBeLessThan(300);
    expect(
      (await api(stack, 'PUT', `/v1/tokens/${uid}`, { type: 'RFID', whitelist: 'ALLOWED' })).status,
    ).toBe(200);
    const mandate = await api(stack, 'PUT', '/v1/accounts/fleet/mandates/MND-FLEET-1', {
      debtor_name: 'Fleet + Co',
      iban: 'NL91ABNA0417164300',
      bic: 'ABNANL2A',
      signed_on: '2026-01-15',
    });
    expect(mandate).toMatchObject({ status: 201, body: { status: 'active', iban: 'NL91ABNA0417164300' } });
    expect((await api(stack, 'GET', '/v1/accounts/fleet/mandates')).body.mandates).toHaveLength(1);
    // The billing run as the billing process ran it then (its clock 54 days back).
    const run = await run_billing(stack.ledger!, { period }, { now_ms: () => run_at.getTime() });
    expect(run).toMatchObject({ status: 'finished', invoices_created: 1 });
    const collected = await api(stack, 'POST', `/v1/billing/runs/${run.id}/sepa-file`);
    expect(collected).toMatchObject({
      status: 200,
      body: { file: { transactions: 1, control_sum: '121.00' }, skipped: [] },
    });
    const file = await api(stack, 'GET', `/v1/billing/runs/${run.id}/sepa-file`);
    expect(file.status).toBe(200);
    const xml_file = path.join(dir, 'collection.xml');
    writeFileSync(xml_file, file.text);
    execFileSync('xmllint', ['--noout', '--schema', xsd, xml_file], { stdio: 'pipe' });
    end_to_end_id = /<EndToEndId>([^<]+)<\/EndToEndId>/.exec(file.text)![1]!;
    const invoices = (await api(stack, 'GET', '/v1/invoices?account_id=fleet')).body.invoices as {
      id: number;
      status: string;
    }[];
    expect(invoices.map((i) => i.status)).toEqual(['paid']);
    invoice_id = invoices[0]!.id;
    expect(await authorize(charger)).toBe('Accepted');
  });

  it('refuses a bank file with a bad line over the API, naming the line, and changes nothing', async () => {
    const bad = camt054_file('CAMT-E2E-0', [
      { direction: 'DBIT', amount: '121.00', booked_on: '2026-12-01', end_to_end_id, return_reason: 'AM04' },
    ]).replace('<CdtDbtInd>DBIT</CdtDbtInd>', '<CdtDbtInd>DEBIT</CdtDbtInd>');
    const answer = await api(stack, 'POST', '/v1/bank-files', bad, 'application/xml');
    expect(answer).toMatchObject({ status: 400, body: { field: 'line 15: Ntry/CdtDbtInd' } });
    expect((await api(stack, 'GET', `/v1/invoices/${invoice_id}`)).body.status).toBe('paid');
  });

  it('a camt.054 return reopens the invoice, starts dunning, and past the suspend days blocks the card', async () => {
    const today = new Date().toISOString().slice(0, 10);
    const returned = camt054_file('CAMT-E2E-1', [
      {
        direction: 'DBIT',
        amount: '121.00',
        booked_on: today,
        end_to_end_id,
        return_reason: 'AM04',
        fee: '2.50',
      },
    ]);
    const applied = await api(stack, 'POST', '/v1/bank-files', returned, 'application/xml');
    expect(applied).toMatchObject({
      status: 200,
      body: {
        message_type: 'camt.054.001.02',
        already_applied: false,
        lines: [{ kind: 'returned', status: 'matched', reason_code: 'AM04', invoice_id, fee: '2.50' }],
        dunning_started: ['fleet'],
        dunning: [{ account_id: 'fleet', from: 'reminder', to: 'suspended', overdue_days: 40 }],
      },
    });
    expect((await api(stack, 'GET', `/v1/invoices/${invoice_id}`)).body).toMatchObject({
      status: 'issued',
      paid: '0.00',
    });
    const dunning = await api(stack, 'GET', '/v1/accounts/fleet/dunning');
    expect(dunning.body).toMatchObject({
      state: 'suspended',
      blocked_tokens: [uid],
      history: [
        { from: 'none', to: 'reminder', reason: 'debit_returned' },
        { from: 'reminder', to: 'suspended', reason: 'overdue' },
      ],
    });
    expect((await api(stack, 'GET', `/v1/tokens/${uid}`)).body.valid).toBe(false);
    // OCPP 1.6 §4.2 Authorize: the Central System answers the card's IdTagInfo, here Blocked.
    expect(await authorize(charger)).toBe('Blocked');
    const kinds = await stack.ledger!.query<{ kind: string }>(
      `SELECT kind FROM billing_events WHERE account_id = 'fleet' AND kind IN ('debit_returned', 'dunning_state_changed', 'payment_fee') ORDER BY id`,
    );
    expect(kinds.map((k) => k.kind)).toEqual([
      'debit_returned',
      'dunning_state_changed',
      'payment_fee',
      'dunning_state_changed',
    ]);
    const report = await api(stack, 'GET', `/v1/reconciliation?day=${today}`);
    expect(report.body).toMatchObject({
      lines_total: 1,
      lines_matched: 1,
      items: [],
      fees: [{ amount: '2.50' }],
    });
  });

  it('a bank transfer with the RF reference pays the invoice and the card is accepted again', async () => {
    const reference = (await api(stack, 'GET', `/v1/invoices/${invoice_id}/payment-reference`)).body;
    expect(reference).toMatchObject({ invoice_id, reference: expect.stringMatching(/^RF\d{2}EVR/) });
    const transfer = camt054_file('CAMT-E2E-2', [
      {
        direction: 'CRDT',
        amount: '121.00',
        booked_on: new Date().toISOString().slice(0, 10),
        creditor_reference: reference.reference as string,
      },
    ]);
    const applied = await api(stack, 'POST', '/v1/bank-files', transfer, 'application/xml');
    expect(applied).toMatchObject({
      status: 200,
      body: {
        lines: [{ kind: 'transfer_credit', status: 'matched', invoice_id }],
        dunning: [{ account_id: 'fleet', from: 'suspended', to: 'none' }],
      },
    });
    expect((await api(stack, 'GET', `/v1/invoices/${invoice_id}`)).body).toMatchObject({
      status: 'paid',
      paid: '121.00',
    });
    expect((await api(stack, 'GET', '/v1/accounts/fleet/dunning')).body).toMatchObject({
      state: 'none',
      blocked_tokens: [],
    });
    expect(await authorize(charger)).toBe('Accepted');
    // The same file again pays nothing twice.
    const again = await api(stack, 'POST', '/v1/bank-files', transfer, 'application/xml');
    expect(again.body).toMatchObject({ already_applied: true });
    expect((await api(stack, 'GET', `/v1/invoices/${invoice_id}`)).body.paid).toBe('121.00');
  });
});
