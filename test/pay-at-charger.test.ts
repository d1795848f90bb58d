import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningStack, start_stack } from '../app/stack.js';
import { minor_of, text_of_minor } from '../billing/amounts.js';
import { StripeProvider } from '../billing/payments/stripe.js';
import { load_config } from '../core/config.js';
import { create_logger } from '../core/log.js';
import { open_browser } from './helpers/browser.js';
import { connect_rpc_charger, type RpcCharger } from './helpers/ocpp-rpc.js';
import { eventually, test_operator_token } from './helpers/stack.js';
import { type StripeEmulator, start_stripe_emulator } from './helpers/stripe-emulator.js';

type Json = Record<string, unknown>;
type Browser = Awaited<ReturnType<typeof open_browser>>;

const images = path.join(import.meta.dirname, '..', 'docs', 'images');

/** The tariff drivers pay here: energy and charging time, 19 % VAT, with its own words. */
const tariff = {
  country_code: 'DE',
  party_id: 'EVR',
  id: 'default',
  currency: 'EUR',
  tariff_alt_text: [
    { language: 'en', text: '0.30 EUR per kWh and 1.20 EUR per hour, plus 19 % VAT.' },
    { language: 'de', text: '0,30 EUR pro kWh und 1,20 EUR pro Stunde, zzgl. 19 % MwSt.' },
  ],
  elements: [
    {
      price_components: [
        { type: 'ENERGY', price: 0.3, vat: 19, step_size: 1 },
        { type: 'TIME', price: 1.2, vat: 19, step_size: 60 },
      ],
    },
  ],
  last_updated: '2026-11-01T00:00:00Z',
};

/** A 2.0.1 or 1.6 charger (ocpp-rpc, strict schemas) that records the commands it receives. */
interface Charger {
  client: RpcCharger;
  starts: Json[];
  stops: Json[];
  displays: Json[];
}

describe('pay at the charger, in Chromium, against a real stack and the Stripe emulator', () => {
  let emulator: StripeEmulator;
  let stack: RunningStack;
  let dir: string;
  let a: Browser;
  let b: Browser;
  const chargers: Charger[] = [];

  const operator = async (method: string, pathname: string, body?: unknown) => {
    const res = await fetch(`${stack.api_url}${pathname}`, {
      method,
      headers: { authorization: `Bearer ${test_operator_token}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.status, body: (await res.json()) as Json };
  };

  async function connect(
    identity: string,
    protocol: 'ocpp1.6' | 'ocpp2.0.1',
    accept = true,
  ): Promise<Charger> {
    const client = await connect_rpc_charger(stack.ocpp_url, identity, protocol);
    const charger: Charger = { client, starts: [], stops: [], displays: [] };
    const answer = { status: accept ? 'Accepted' : 'Rejected' };
    if (protocol === 'ocpp2.0.1') {
      client.handle('RequestStartTransaction', async ({ params }) => {
        charger.starts.push(params as Json);
        return answer;
      });
      client.handle('RequestStopTransaction', async ({ params }) => {
        charger.stops.push(params as Json);
        return { status: 'Accepted' };
      });
      client.handle('SetDisplayMessage', async ({ params }) => {
        charger.displays.push(params as Json);
        return { status: 'Accepted' };
      });
      client.handle('CostUpdated', async () => ({}));
    } else {
      client.handle('RemoteStartTransaction', async ({ params }) => {
        charger.starts.push(params as Json);
        return answer;
      });
      client.handle('RemoteStopTransaction', async ({ params }) => {
        charger.stops.push(params as Json);
        return { status: 'Accepted' };
      });
      client.handle('DataTransfer', async () => ({ status: 'Accepted' }));
    }
    chargers.push(charger);
    return charger;
  }

  /** A TransactionEvent with the energy register in kWh (signed at the end, as Eichrecht meters do). */
  function transaction_event(
    charger: Charger,
    eventType: 'Started' | 'Updated' | 'Ended',
    seqNo: number,
    transaction_id: string,
    at_ms: number,
    kwh: number,
    id_token?: Json,
    remote_start_id?: number,
    trigger_reason?: string,
  ) {
    const at = new Date(at_ms).toISOString();
    const context =
      eventType === 'Started'
        ? 'Transaction.Begin'
        : eventType === 'Ended'
          ? 'Transaction.End'
          : 'Sample.Periodic';
    return charger.client.call('TransactionEvent', {
      eventType,
      timestamp: at,
      triggerReason:
        trigger_reason ??
        (eventType === 'Started'
          ? 'RemoteStart'
          : eventType === 'Ended'
            ? 'RemoteStop'
            : 'MeterValuePeriodic'),
      seqNo,
      transactionInfo: {
        transactionId: transaction_id,
        ...(eventType === 'Ended'
          ? { stoppedReason: 'Remote', chargingState: 'Idle' }
          : { chargingState: 'Charging' }),
        ...(remote_start_id === undefined ? {} : { remoteStartId: remote_start_id }),
      },
      evse: { id: 1, connectorId: 1 },
      ...(id_token === undefined ? {} : { idToken: id_token }),
      meterValue: [
        {
          timestamp: at,
          sampledValue: [
            {
              value: kwh,
              context,
              measurand: 'Energy.Active.Import.Register',
              unitOfMeasure: { unit: 'kWh' },
              ...(eventType === 'Ended'
                ? {
                    signedMeterValue: {
                      signedMeterData: Buffer.from(`OCMF|{"RD":[{"RV":${kwh}}]}`).toString('base64'),
                      signingMethod: 'ECDSA-secp256r1-SHA256',
                      encodingMethod: 'OCMF',
                      publicKey: 'MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE',
                    },
                  }
                : {}),
            },
          ],
        },
      ],
    });
  }

  const text = async (page: Page, selector: string) => (await page.locator(selector).textContent())?.trim();
  const pay_id_of = (page: Page) => /\/sessions\/([A-Z2-9]{20})/.exec(page.url())![1]!;
  const ledger_row = async (id: string) => (await operator('GET', `/v1/pay-at-charger/sessions/${id}`)).body;
  const shot = (page: Page, name: string) =>
    page.screenshot({ path: path.join(images, `pay-${name}.png`), fullPage: true });

  /** From the EVSE page to an authorized hold: the card goes into the provider's field only. */
  async function pay(page: Page, evse_url: string, card: string): Promise<string> {
    await page.goto(evse_url);
    await page.click('#start-payment');
    await page.waitForURL(/\/sessions\/[A-Z2-9]{20}/);
    await page.locator('#pay-button:enabled').waitFor();
    await page.locator('[data-emulator=number]').fill(card);
    await page.locator('[data-emulator=expiry]').fill('12/34');
    await page.locator('[data-emulator=cvc]').fill('123');
    return pay_id_of(page);
  }

  beforeAll(async () => {
    mkdirSync(images, { recursive: true });
    emulator = await start_stripe_emulator();
    dir = mkdtempSync(path.join(tmpdir(), 'evrate-pay-'));
    const config = load_config({
      DATA_DIR: dir,
      ROLES: 'ingest,rating,api,billing',
      OCPP_PORT: '0',
      API_PORT: '0',
      OCPP_HOST: '127.0.0.1',
      API_HOST: '127.0.0.1',
      OPERATOR_TOKEN: test_operator_token,
      LOG_LEVEL: 'warn',
      OCPP_ALLOW_UNKNOWN: 'true',
      OCPP_COMMAND_TIMEOUT_S: '5',
      PAY_PROVIDER_JS_URL: `${emulator.api_base}/emulator/stripe.js`,
      PAY_PROVIDER_PUBLISHABLE_KEY: 'pk_test_emulator',
      PAY_REQUESTS_PER_S_MAX: '200',
      PAY_NO_POWER_TIMEOUT_S: '6',
      PAY_TERMINAL_GRACE_MIN: '5',
    });
    const provider = new StripeProvider({
      secret_key: emulator.secret_key,
      webhook_secret: emulator.webhook_secret,
      api_base: emulator.api_base,
      max_network_retries: 0,
    });
    stack = await start_stack(config, create_logger('warn'), { payment_provider: provider });
    expect((await operator('PUT', '/v1/tariffs/default', tariff)).status).toBe(200);
    a = await open_browser();
    b = await open_browser();
  });

  afterAll(async () => {
    for (const charger of chargers) await charger.client.close({ force: true }).catch(() => undefined);
    await a?.close();
    await b?.close();
    await stack?.stop();
    await emulator?.stop();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('pays, charges a real charger with the cost live, stops, captures the rated total to the cent and shows it on the receipt', async () => {
    const charger = await connect('CP-PAY-201', 'ocpp2.0.1');
    const evse_url = `${stack.api_url}/pay/CP-PAY-201/1`;
    const page = await a.context.newPage();
    // Whatever the browser sends to our API, the card number is never in it.
    const sent_to_us: string[] = [];
    page.on('request', (request) => {
      if (request.url().startsWith(stack.api_url))
        sent_to_us.push(`${request.url()} ${request.postData() ?? ''}`);
    });

    await page.goto(evse_url);
    await eventually(async () => {
      await page.reload();
      return (await text(page, '#evse-state')) === 'Free' ? true : undefined;
    });
    expect(await text(page, '#tariff-alt-text')).toBe(tariff.tariff_alt_text[0]!.text);
    // 30 kWh x 0.30 + 0.75 h x 1.20 = 9.90 net, + 19 % VAT = 11.781 -> 11.78.
    expect(await text(page, '#worked-example')).toBe('30 kWh in 45 minutes costs about EUR 11.78.');
    // No site hold, no max_price: 22 kW (default) for 120 min = 44 kWh, 13.20 + 2.40 = 15.60 net,
    // 18.564 incl. VAT, rounded up to 19.00.
    expect(await text(page, '#hold-amount')).toBe('EUR 19.00');
    await shot(page, 'evse');

    const id = await pay(page, evse_url, '4242424242424242');
    await shot(page, 'card');
    await page.click('#pay-button');
    await page.locator('#energy').waitFor();
    expect(await ledger_row(id)).toMatchObject({
      status: 'starting',
      hold_minor: 1900,
      hold_source: 'estimate',
    });
    const held = emulator.payment_intents.get(String((await ledger_row(id)).provider_payment_id))!;
    expect(held).toMatchObject({ status: 'requires_capture', amount: 1900, amount_capturable: 1900 });

    // The charger receives the remote start with the payment's ad-hoc token.
    const start = await eventually(async () => charger.starts[0]);
    const id_token = start.idToken as { idToken: string; type: string };
    expect(id_token.type).toBe('Central');
    expect(id_token.idToken).toMatch(/^PAY[A-Z2-9]{16}$/);
    expect(start.evseId).toBe(1);
    const t0 = Date.now() - 30 * 60_000;
    await transaction_event(
      charger,
      'Started',
      0,
      'TX-PAY-1',
      t0,
      0,
      id_token,
      start.remoteStartId as number,
    );
    await transaction_event(charger, 'Updated', 1, 'TX-PAY-1', t0 + 15 * 60_000, 5);
    await transaction_event(charger, 'Updated', 2, 'TX-PAY-1', t0 + 25 * 60_000, 12.345);

    // The page follows it live: energy, and the running cost the rating service published.
    await eventually(async () => ((await text(page, '#energy')) === '12.345 kWh' ? true : undefined));
    const open = await eventually(async () => {
      const sessions = (await operator('GET', '/v1/sessions/open')).body.sessions as Json[] | undefined;
      const mine = sessions?.find((s) => s.session_id === 'CP-PAY-201/TX-PAY-1');
      return (mine?.running_cost as { incl_vat: string } | null | undefined)?.incl_vat === undefined
        ? undefined
        : mine;
    });
    const running = (open.running_cost as { incl_vat: string }).incl_vat;
    await eventually(async () =>
      (await text(page, '#cost')) === `EUR ${text_of_minor(minor_of(running, 'EUR'), 'EUR')}`
        ? true
        : undefined,
    );
    expect(await text(page, '#state_text')).toBe('Charging');
    await shot(page, 'charging');

    // Another browser sees only that the EVSE is taken, and cannot stop the session.
    const other = await b.context.newPage();
    const session_url = page.url().split('?')[0]!;
    const denied = await other.goto(session_url);
    expect(denied?.status()).toBe(403);
    expect(await other.locator('#other-browser').count()).toBe(1);
    expect(await other.locator('#energy').count()).toBe(0);
    expect(await text(other, '#evse-state')).toBe('Occupied');
    await shot(other, 'other-browser');
    const stop_attempt = await b.context.request.post(`${session_url}/stop`, { maxRedirects: 0 });
    expect(stop_attempt.status()).toBe(403);
    const events_attempt = await b.context.request.get(`${session_url}/events`);
    expect(events_attempt.status()).toBe(403);
    await other.goto(evse_url);
    expect(await text(other, '#evse-state')).toBe('Occupied');
    expect(await other.locator('#start-payment').count()).toBe(0);
    await other.close();
    expect(charger.stops).toEqual([]);
    expect((await ledger_row(id)).status).toBe('charging');

    // The connection is lost (the page closed); the session goes on, and the payer's browser finds it again.
    await page.close();
    const again = await a.context.newPage();
    await again.goto(evse_url);
    await again.click(`a[href*="/sessions/${id}"]`);
    await again.locator('#energy').waitFor();
    expect(await text(again, '#energy')).toBe('12.345 kWh');

    // The driver stops from the page: RequestStopTransaction, then the charger's Ended.
    await again.click('#stop');
    const stop = await eventually(async () => charger.stops[0]);
    expect(stop).toEqual({ transactionId: 'TX-PAY-1' });
    await transaction_event(charger, 'Ended', 3, 'TX-PAY-1', t0 + 26 * 60_000, 12.345);
    await again.waitForURL(/\/receipt/, { timeout: 60_000 });

    // The capture is exactly the rated total of the final version, the rest of the hold is released.
    const [rated] = await stack.store!.query<{
      total_excl_vat: string;
      total_incl_vat: string;
      version: number;
    }>(
      `SELECT toString(total_excl_vat) AS total_excl_vat, toString(total_incl_vat) AS total_incl_vat, version
       FROM ${stack.store!.database}.rated_sessions FINAL WHERE session_id = 'CP-PAY-201/TX-PAY-1'`,
    );
    const incl_minor = minor_of(rated!.total_incl_vat, 'EUR');
    const excl_minor = minor_of(rated!.total_excl_vat, 'EUR');
    // 12.345 kWh x 0.30 = 3.7035 and 26 min x 1.20/h = 0.52: 4.22 net.
    expect(excl_minor).toBe(422);
    const row = await ledger_row(id);
    expect(row).toMatchObject({
      status: 'settled',
      captured_minor: incl_minor,
      total_incl_vat_minor: incl_minor,
    });
    const intent = emulator.payment_intents.get(String(row.provider_payment_id))!;
    expect(intent.status).toBe('succeeded');
    expect(intent.amount_received).toBe(incl_minor);
    expect(emulator.net_received(intent.id)).toBe(incl_minor);

    // The receipt shows the same figures.
    const eur = (minor: number) => `EUR ${text_of_minor(minor, 'EUR')}`;
    expect(await text(again, '#receipt-total')).toBe(eur(incl_minor));
    expect(await text(again, '#receipt-net')).toBe(eur(excl_minor));
    expect(await text(again, '#receipt-vat')).toBe(eur(incl_minor - excl_minor));
    expect(await text(again, '#receipt-captured')).toBe(eur(incl_minor));
    expect(await text(again, '#receipt-released')).toBe(eur(1900 - incl_minor));
    expect(await text(again, '#receipt-energy')).toBe('12.345 kWh');
    await shot(again, 'receipt');

    // The ledger: one balanced entry (cash against revenue and VAT), and the events in the outbox.
    const ledger = stack.ledger!;
    const lines = await ledger.query<{ ledger_account: string; debit_minor: number; credit_minor: number }>(
      `SELECT l.ledger_account, l.debit_minor, l.credit_minor FROM journal_lines l JOIN journal_entries e ON e.id = l.entry_id
       WHERE e.source_id = $1 ORDER BY l.line_no`,
      [`pay_at_charger:${id}`],
    );
    expect(lines).toEqual([
      { ledger_account: 'cash', debit_minor: incl_minor, credit_minor: 0 },
      { ledger_account: 'revenue:vat_19', debit_minor: 0, credit_minor: excl_minor },
      { ledger_account: 'vat_payable:19', debit_minor: 0, credit_minor: incl_minor - excl_minor },
    ]);
    const events = await ledger.query<{ kind: string; amount_minor: number; method: string }>(
      `SELECT kind, amount_minor, attributes->>'method' AS method FROM billing_events
       WHERE attributes->>'pay_session_id' = $1 ORDER BY id`,
      [id],
    );
    expect(events).toEqual([
      { kind: 'payment_authorized', amount_minor: 1900, method: 'pay_at_charger' },
      { kind: 'payment_captured', amount_minor: incl_minor, method: 'pay_at_charger' },
      { kind: 'payment_received', amount_minor: incl_minor, method: 'pay_at_charger' },
    ]);

    // The PDF receipt and the charger's signed meter data, downloaded by the payer.
    const pdf = await a.context.request.get(`${session_url}/receipt.pdf`);
    expect(pdf.headers()['content-type']).toBe('application/pdf');
    const pdf_file = path.join(dir, 'receipt.pdf');
    writeFileSync(pdf_file, await pdf.body());
    const pdf_text = execFileSync('pdftotext', ['-layout', pdf_file, '-']).toString();
    expect(pdf_text).toContain(`${text_of_minor(incl_minor, 'EUR')} EUR`);
    expect(pdf_text).toContain(`${text_of_minor(excl_minor, 'EUR')} EUR`);
    const meter = (await (await a.context.request.get(`${session_url}/meter-data`)).json()) as {
      meter_values: { context: string; format: string; signed_data: string; value: string }[];
    };
    const signed = meter.meter_values.find((v) => v.context === 'Transaction.End');
    expect(signed?.format).toBe('SignedData');
    expect(JSON.parse(signed!.signed_data).encodingMethod).toBe('OCMF');
    expect((await b.context.request.get(`${session_url}/receipt.pdf`)).status()).toBe(403);

    // Dispute this charge: a case of the disputes module, on the payer's own session only.
    await again.selectOption('#dispute-reason', 'energy');
    await again.fill('#dispute-amount', '1.00');
    await again.fill('#dispute-message', 'I charged less than that.');
    await shot(again, 'dispute-form');
    await again.click('#dispute');
    await again.locator('#dispute-case').waitFor();
    const case_id = Number(await again.locator('#dispute-case').getAttribute('data-case-id'));
    expect(await text(again, '#dispute-state')).toBe('Received, not yet looked at');
    expect(await text(again, '#dispute-amount-given')).toBe('EUR 1.00');
    const [opened] = await ledger.query<{
      session_id: string;
      source: string;
      reason: string;
      amount_disputed_minor: number;
      state: string;
      findings: { check: string; status: string }[];
    }>(
      'SELECT session_id, source, reason, amount_disputed_minor, state, findings FROM dispute_cases WHERE id = $1',
      [case_id],
    );
    expect(opened).toMatchObject({
      session_id: 'CP-PAY-201/TX-PAY-1',
      source: 'driver',
      reason: 'energy',
      amount_disputed_minor: 100,
      state: 'open',
    });
    // The automatic investigation ran on the session's facts and its findings are on the page.
    expect(opened!.findings.map((f) => f.check)).toContain('energy_vs_power');
    expect(await again.locator('#dispute-findings li').count()).toBe(opened!.findings.length);
    const [message] = await ledger.query<{ author_kind: string; body: string }>(
      'SELECT author_kind, body FROM dispute_messages WHERE case_id = $1 ORDER BY seq LIMIT 1',
      [case_id],
    );
    expect(message).toEqual({ author_kind: 'claimant', body: 'I charged less than that.' });
    const [opened_event] = await ledger.query<{ amount_minor: number; source: string; case_id: string }>(
      `SELECT amount_minor, attributes->>'source' AS source, attributes->>'case_id' AS case_id FROM billing_events
       WHERE kind = 'dispute_opened' AND (attributes->>'case_id')::int8 = $1`,
      [case_id],
    );
    expect(opened_event).toEqual({ amount_minor: 100, source: 'driver', case_id: String(case_id) });
    await shot(again, 'dispute-case');

    // The payer downloads the evidence bundle of their session; its manifest names every part.
    const bundle_res = await a.context.request.get(`${session_url}/dispute/bundle.json`);
    expect(bundle_res.status()).toBe(200);
    const bundle = (await bundle_res.json()) as {
      manifest: { case_id: number; parts: { name: string }[] };
      parts: Record<string, string>;
    };
    expect(bundle.manifest.case_id).toBe(case_id);
    expect(Object.keys(bundle.parts)).toContain('bundle.pdf');
    const bundle_pdf = await a.context.request.get(`${session_url}/dispute/bundle.pdf`);
    expect(bundle_pdf.headers()['content-type']).toBe('application/pdf');
    expect((await bundle_pdf.body()).subarray(0, 4).toString()).toBe('%PDF');

    // A second dispute of the same charge opens no second case.
    const twice = await a.context.request.post(`${session_url}/dispute`, {
      form: { reason: 'other', amount: '0.50', message: 'again' },
      maxRedirects: 0,
    });
    expect(twice.status()).toBe(303);
    expect(
      await ledger.query('SELECT id FROM dispute_cases WHERE session_id = $1', ['CP-PAY-201/TX-PAY-1']),
    ).toEqual([{ id: case_id }]);

    // Bad input names its field and opens nothing.
    for (const [form, field] of [
      [{ reason: 'energy', amount: '99.00', message: 'too much' }, 'amount'],
      [{ reason: 'energy', amount: 'one euro', message: 'too much' }, 'amount'],
      [{ reason: 'bogus', amount: '1.00', message: 'too much' }, 'reason'],
      [{ reason: 'energy', amount: '1.00', message: '' }, 'message'],
    ] as const) {
      const bad = await a.context.request.post(`${session_url}/dispute`, { form, maxRedirects: 0 });
      expect({ status: bad.status(), field: ((await bad.json()) as Json).field }).toEqual({
        status: 400,
        field,
      });
    }

    // Another browser can neither read the case, nor fetch its evidence, nor dispute the charge.
    const b_receipt = await b.context.request.get(`${session_url}/receipt`);
    expect(b_receipt.status()).toBe(403);
    expect(await b_receipt.text()).not.toContain('dispute-case');
    expect((await b.context.request.get(`${session_url}/dispute/bundle.json`)).status()).toBe(403);
    expect((await b.context.request.get(`${session_url}/dispute/bundle.pdf`)).status()).toBe(403);
    const b_dispute = await b.context.request.post(`${session_url}/dispute`, {
      form: { reason: 'other', amount: '1.00', message: 'not mine' },
      maxRedirects: 0,
    });
    expect(b_dispute.status()).toBe(403);
    expect((await b.context.request.get(`${stack.api_url}/v1/claimant/disputes/${case_id}`)).status()).toBe(
      404,
    );
    // Nor can it open one on the payer's session through the claimant API without the session's token.
    const b_claim = await b.context.request.post(`${stack.api_url}/v1/claimant/disputes`, {
      data: {
        session_id: 'CP-PAY-201/TX-PAY-1',
        id_tag: 'PAYAAAAAAAAAAAAAAAA',
        reason: 'other',
        amount_disputed_minor: 100,
        message: 'not mine',
      },
    });
    expect(b_claim.status()).toBe(404);
    expect(
      await ledger.query('SELECT count(*)::int AS n FROM dispute_cases WHERE session_id = $1', [
        'CP-PAY-201/TX-PAY-1',
      ]),
    ).toEqual([{ n: 1 }]);

    expect(sent_to_us.some((s) => s.includes('4242424242424242'))).toBe(false);
    await again.close();
  });

  it('stops the session by command when its running cost nears the hold, and captures no more than the hold', async () => {
    const charger = await connect('CP-PAY-CAP', 'ocpp2.0.1');
    expect(
      (await operator('PUT', '/v1/pay-at-charger/sites/CP-PAY-CAP/hold', { amount: '6.00', currency: 'EUR' }))
        .status,
    ).toBe(200);
    const evse_url = `${stack.api_url}/pay/CP-PAY-CAP/1`;
    const page = await a.context.newPage();
    await eventually(async () => {
      await page.goto(evse_url);
      return (await text(page, '#evse-state')) === 'Free' ? true : undefined;
    });
    expect(await text(page, '#hold-amount')).toBe('EUR 6.00');
    const id = await pay(page, evse_url, '4242424242424242');
    await page.click('#pay-button');
    await page.locator('#energy').waitFor();
    const start = await eventually(async () => charger.starts[0]);
    const t0 = Date.now() - 20 * 60_000;
    await transaction_event(
      charger,
      'Started',
      0,
      'TX-CAP-1',
      t0,
      0,
      start.idToken as Json,
      start.remoteStartId as number,
    );
    // 10 kWh in 10 min: 3.00 + 0.20 = 3.20 net, 3.81 incl.: below 95 % of 6.00.
    await transaction_event(charger, 'Updated', 1, 'TX-CAP-1', t0 + 10 * 60_000, 10);
    await eventually(async () => ((await text(page, '#energy')) === '10.000 kWh' ? true : undefined));
    expect(charger.stops).toEqual([]);
    // 15 kWh in 15 min: 4.50 + 0.30 = 4.80 net, 5.71 incl.: past 5.70, the cap stops it.
    await transaction_event(charger, 'Updated', 2, 'TX-CAP-1', t0 + 15 * 60_000, 15);
    const stop = await eventually(async () => charger.stops[0]);
    expect(stop).toEqual({ transactionId: 'TX-CAP-1' });
    expect((await ledger_row(id)).stop_requested_by).toBe('cost_cap');
    await transaction_event(charger, 'Ended', 3, 'TX-CAP-1', t0 + 15 * 60_000, 15);
    await page.waitForURL(/\/receipt/, { timeout: 60_000 });
    const row = await ledger_row(id);
    const [rated] = await stack.store!.query<{ incl: string }>(
      `SELECT toString(total_incl_vat) AS incl FROM ${stack.store!.database}.rated_sessions FINAL WHERE session_id = 'CP-PAY-CAP/TX-CAP-1'`,
    );
    expect(minor_of(rated!.incl, 'EUR')).toBe(571);
    expect(row).toMatchObject({ status: 'settled', captured_minor: 571, hold_minor: 600 });
    expect(emulator.payment_intents.get(String(row.provider_payment_id))!.amount_received).toBe(571);
    expect(await page.locator('#stopped-by-cap').count()).toBe(1);
    expect(await text(page, '#receipt-released')).toBe('EUR 0.29');
    await page.close();
  });

  it('releases the hold at once when the charger refuses the start', async () => {
    const charger = await connect('CP-PAY-16', 'ocpp1.6', false);
    const evse_url = `${stack.api_url}/pay/CP-PAY-16/1`;
    const page = await a.context.newPage();
    await eventually(async () => {
      await page.goto(evse_url);
      return (await text(page, '#evse-state')) === 'Free' ? true : undefined;
    });
    const id = await pay(page, evse_url, '4242424242424242');
    await page.click('#pay-button');
    await page.locator('#outcome').waitFor();
    expect(await page.locator('#outcome').getAttribute('data-reason')).toBe('start_refused');
    expect(charger.starts).toEqual([{ idTag: expect.stringMatching(/^PAY/), connectorId: 1 }]);
    const row = await ledger_row(id);
    expect(row).toMatchObject({ status: 'released', reason: 'start_refused', captured_minor: 0 });
    expect(emulator.payment_intents.get(String(row.provider_payment_id))).toMatchObject({
      status: 'canceled',
      amount_received: 0,
      amount_capturable: 0,
    });
    await shot(page, 'start-refused');
    await page.close();
  });

  it('shows a declined card and reserves nothing', async () => {
    const evse_url = `${stack.api_url}/pay/CP-PAY-16/1`;
    const page = await a.context.newPage();
    const id = await pay(page, evse_url, '4000000000000002');
    await page.click('#pay-button');
    await page.locator('#outcome[data-status=declined]').waitFor();
    const row = await ledger_row(id);
    expect(row).toMatchObject({ status: 'declined', reason: 'generic_decline' });
    expect(emulator.payment_intents.get(String(row.provider_payment_id))!.amount_capturable).toBe(0);
    await shot(page, 'declined');
    await page.close();
  });

  it('asks for 3-D Secure when the card needs it: the challenge completed authorizes the hold and starts the charge', async () => {
    const charger = await connect('CP-PAY-3DS', 'ocpp2.0.1');
    const evse_url = `${stack.api_url}/pay/CP-PAY-3DS/1`;
    const page = await a.context.newPage();
    await eventually(async () => {
      await page.goto(evse_url);
      return (await text(page, '#evse-state')) === 'Free' ? true : undefined;
    });
    const id = await pay(page, evse_url, '4000002760003184');
    await page.click('#pay-button');
    // The issuer's challenge, hosted by the gateway, in a dialog over the page (as Stripe.js shows it).
    const challenge = page.frameLocator('#emulator-3ds iframe');
    await challenge.locator('#complete').waitFor();
    expect(await page.locator('#emulator-3ds[role=dialog]').count()).toBe(1);
    const pending = await ledger_row(id);
    expect(pending.status).toBe('awaiting_payment');
    const intent_id = String(pending.provider_payment_id);
    expect(emulator.payment_intents.get(intent_id)).toMatchObject({
      status: 'requires_action',
      amount_capturable: 0,
    });
    await shot(page, '3ds-challenge');
    expect(charger.starts).toEqual([]);
    await challenge.locator('#complete').click();
    await page.locator('#energy').waitFor();
    expect(await page.locator('#emulator-3ds').count()).toBe(0);
    expect((await ledger_row(id)).status).toBe('starting');
    expect(emulator.payment_intents.get(intent_id)).toMatchObject({
      status: 'requires_capture',
      amount_capturable: 1900,
    });
    const start = await eventually(async () => charger.starts[0]);
    expect((start.idToken as { idToken: string }).idToken).toBe((await ledger_row(id)).id_tag);
    await page.close();
  });

  it('shows a clear page and holds nothing when the 3-D Secure challenge fails', async () => {
    const evse_url = `${stack.api_url}/pay/CP-PAY-16/1`;
    const page = await a.context.newPage();
    const id = await pay(page, evse_url, '4000002760003184');
    await page.click('#pay-button');
    const challenge = page.frameLocator('#emulator-3ds iframe');
    await challenge.locator('#fail').click();
    await page.locator('#outcome[data-status=declined]').waitFor();
    expect(await page.locator('#outcome').getAttribute('data-reason')).toBe(
      'payment_intent_authentication_failure',
    );
    expect(await text(page, '#outcome')).toBe(
      'Your bank did not confirm the payment (3-D Secure). Nothing was reserved on your card.',
    );
    const row = await ledger_row(id);
    expect(row).toMatchObject({ status: 'declined', reason: 'payment_intent_authentication_failure' });
    expect(emulator.payment_intents.get(String(row.provider_payment_id))).toMatchObject({
      status: 'canceled',
      amount_capturable: 0,
      amount_received: 0,
    });
    await shot(page, '3ds-failed');
    await page.close();
  });

  it('releases the hold when the car draws no power', async () => {
    const charger = await connect('CP-PAY-IDLE', 'ocpp2.0.1');
    const evse_url = `${stack.api_url}/pay/CP-PAY-IDLE/1`;
    const page = await a.context.newPage();
    await eventually(async () => {
      await page.goto(evse_url);
      return (await text(page, '#evse-state')) === 'Free' ? true : undefined;
    });
    const id = await pay(page, evse_url, '4242424242424242');
    await page.click('#pay-button');
    const start = await eventually(async () => charger.starts[0]);
    await transaction_event(
      charger,
      'Started',
      0,
      'TX-IDLE-1',
      Date.now(),
      0,
      start.idToken as Json,
      start.remoteStartId as number,
    );
    const stop = await eventually(async () => charger.stops[0]);
    expect(stop).toEqual({ transactionId: 'TX-IDLE-1' });
    await transaction_event(charger, 'Ended', 1, 'TX-IDLE-1', Date.now(), 0);
    await page.locator('#outcome[data-status=released]').waitFor({ timeout: 60_000 });
    expect(await page.locator('#outcome').getAttribute('data-reason')).toBe('no_power');
    const row = await ledger_row(id);
    expect(row).toMatchObject({ status: 'released', stop_requested_by: 'no_power', captured_minor: 0 });
    expect(emulator.payment_intents.get(String(row.provider_payment_id))!.status).toBe('canceled');
    await shot(page, 'no-power');
    await page.close();
  });

  it('tells an offline charger apart, speaks German, serves the QR code and puts it on the display', async () => {
    const page = await b.context.newPage();
    await page.goto(`${stack.api_url}/pay/CP-PAY-OFF/1`);
    expect(await text(page, '#evse-state')).toBe('Offline');
    expect(await page.locator('#start-payment').count()).toBe(0);
    await shot(page, 'offline');
    const refused = await b.context.request.post(`${stack.api_url}/pay/CP-PAY-OFF/1/sessions`, {
      maxRedirects: 0,
    });
    expect(refused.status()).toBe(303);
    const bad = await fetch(`${stack.api_url}/pay/CP-PAY-OFF/first`);
    expect({ status: bad.status, body: await bad.json() }).toMatchObject({
      status: 400,
      body: { field: 'evse_id' },
    });

    await page.goto(`${stack.api_url}/pay/CP-PAY-201/1?lang=de`);
    expect(await page.getAttribute('html', 'lang')).toBe('de');
    expect(await text(page, '#evse-state')).toBe('Frei');
    expect(await text(page, '#tariff-alt-text')).toBe(tariff.tariff_alt_text[1]!.text);
    expect(await text(page, '#worked-example')).toBe('30 kWh in 45 Minuten kosten etwa 11,78 EUR.');
    await shot(page, 'evse-de');
    await page.close();
    const german = await fetch(`${stack.api_url}/pay/CP-PAY-201/1`, {
      headers: { 'accept-language': 'de-DE,de;q=0.9,en;q=0.5' },
    });
    expect(await german.text()).toContain('<html lang="de">');

    const svg = await fetch(`${stack.api_url}/pay/CP-PAY-201/1/qr.svg`);
    expect(svg.headers.get('content-type')).toBe('image/svg+xml');
    expect(await svg.text()).toMatch(/^<svg /);
    const png = Buffer.from(await (await fetch(`${stack.api_url}/pay/CP-PAY-201/1/qr.png`)).arrayBuffer());
    expect(png.subarray(1, 4).toString()).toBe('PNG');

    const shown = await operator('POST', '/v1/pay-at-charger/charge-points/CP-PAY-201/evses/1/display-qr');
    expect(shown).toMatchObject({ status: 200, body: { status: 'answered', action: 'SetDisplayMessage' } });
    const display = chargers.find((c) => c.displays.length > 0)!.displays[0] as { message: Json };
    expect(display.message).toMatchObject({
      priority: 'InFront',
      message: { format: 'URI', content: `${stack.api_url}/pay/CP-PAY-201/1` },
    });
    const on_16 = await operator('POST', '/v1/pay-at-charger/charge-points/CP-PAY-16/evses/1/display-qr');
    expect(on_16).toMatchObject({ status: 400, body: { field: 'command' } });
  });

  it("rates a session a charger's own terminal authorized, settles it from the terminal provider's confirmation once, and reconciles it", async () => {
    // The terminal provider gets its own credential; the operator token is no credential there.
    const registered = await operator('POST', '/v1/pay-at-charger/terminal-providers', {
      id: 'acme-pay',
      name: 'Acme Payment Terminals',
    });
    expect(registered.status).toBe(201);
    const token = String(registered.body.token);
    expect(token).toMatch(/^tp\.acme-pay\./);
    const [kept] = await stack.ledger!.query<{ token_sha256: string }>(
      "SELECT token_sha256 FROM pay_terminal_providers WHERE id = 'acme-pay'",
    );
    expect(kept!.token_sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(kept!.token_sha256).not.toContain(token.split('.')[2]!);
    const confirm = async (body: unknown, authorization?: string) => {
      const res = await fetch(`${stack.api_url}/v1/pay-at-charger/terminal-confirmations`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(authorization === undefined ? {} : { authorization }),
        },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      });
      return { status: res.status, body: (await res.json()) as Json };
    };

    // The charger's terminal authorized the card; the charger starts the session itself with the
    // terminal's reference as its idToken (OCPP 2.0.1, see billing/pay-at-charger/terminal.ts).
    // Only on charge points the operator flagged as having a terminal is its reference Accepted.
    for (const [cp, prefix] of [
      ['CP-PAY-TERM', 'TERM-'],
      ['CP-PAY-TERM16', 'TA16-'],
    ] as const) {
      const flagged = await operator('PUT', `/v1/pay-at-charger/charge-points/${cp}/payment-terminal`, {
        reference_prefix: prefix,
      });
      expect(flagged).toMatchObject({
        status: 200,
        body: { payment_terminal: { reference_prefix: prefix } },
      });
    }
    const charger = await connect('CP-PAY-TERM', 'ocpp2.0.1');
    const reference = 'TERM-AUTH-7F3A9C';
    const id_token = {
      idToken: reference,
      type: 'Local',
      additionalInfo: [{ additionalIdToken: reference, type: 'PaymentTerminal' }],
    };
    const t0 = Date.now() - 40 * 60_000;
    const started_term = (await transaction_event(
      charger,
      'Started',
      0,
      'TX-TERM-1',
      t0,
      100,
      id_token,
      undefined,
      'Authorized',
    )) as { idTokenInfo: Json };
    expect(started_term.idTokenInfo.status).toBe('Accepted');
    // The same reference on a charge point without the flag is an unknown token: Invalid.
    const plain = await connect('CP-PAY-NOTERM', 'ocpp2.0.1');
    expect(await plain.client.call('Authorize', { idToken: id_token })).toMatchObject({
      idTokenInfo: { status: 'Invalid' },
    });
    await transaction_event(charger, 'Updated', 1, 'TX-TERM-1', t0 + 20 * 60_000, 106);
    await transaction_event(charger, 'Updated', 2, 'TX-TERM-1', t0 + 30 * 60_000, 110);
    await transaction_event(
      charger,
      'Ended',
      3,
      'TX-TERM-1',
      t0 + 30 * 60_000,
      110,
      id_token,
      undefined,
      'StopAuthorized',
    );
    // Rated: 10 kWh x 0.30 + 30 min x 1.20/h = 3.60 net, 4.284 -> 4.28 incl. 19 % VAT.
    const rated = await eventually(async () => {
      const [row] = await stack.ledger!.query<{ session_id: string; total_incl_vat: string; id_tag: string }>(
        `SELECT session_id, total_incl_vat::text AS total_incl_vat, id_tag FROM session_versions
         WHERE id_tag = $1 AND final ORDER BY version DESC LIMIT 1`,
        [reference],
      );
      return row;
    });
    expect(rated.session_id).toBe('CP-PAY-TERM/TX-TERM-1');
    const rated_minor = minor_of(rated.total_incl_vat, 'EUR');
    expect(rated_minor).toBe(428);
    const [method] = await stack.ledger!.query<{ payment_method: string }>(
      'SELECT DISTINCT payment_method FROM session_versions WHERE session_id = $1',
      [rated.session_id],
    );
    expect(method!.payment_method).toBe('TERMINAL');
    // A third terminal session the provider never confirms.
    await transaction_event(
      charger,
      'Started',
      0,
      'TX-TERM-3',
      t0,
      300,
      {
        ...id_token,
        idToken: 'TERM-NEVER-1',
        additionalInfo: [{ additionalIdToken: 'TERM-NEVER-1', type: 'PaymentTerminal' }],
      },
      undefined,
      'Authorized',
    );
    await transaction_event(charger, 'Ended', 1, 'TX-TERM-3', t0 + 30 * 60_000, 301);

    const confirmation = {
      id: 'FAC-7F3A9C',
      authorization_reference: reference,
      total_costs: { excl_vat: '3.60', incl_vat: text_of_minor(rated_minor, 'EUR') },
      currency: 'EUR',
      eft_data: ['PAN ****1234', 'AID A0000000041010'],
      capture_status_code: 'SUCCESS',
      capture_status_message: 'Captured',
      last_updated: new Date().toISOString(),
    };
    const journal = (source: string) =>
      stack.ledger!.query<{ ledger_account: string; debit_minor: number; credit_minor: number }>(
        `SELECT l.ledger_account, l.debit_minor, l.credit_minor FROM journal_lines l JOIN journal_entries e ON e.id = l.entry_id
         WHERE e.source_id = $1 ORDER BY l.line_no`,
        [source],
      );
    const confirmations = () => stack.ledger!.query('SELECT id FROM pay_terminal_confirmations ORDER BY id');

    // No credential, a wrong one, the operator's: 401, and nothing is recorded.
    const before = await confirmations();
    expect(await confirm(confirmation)).toMatchObject({ status: 401 });
    expect(await confirm(confirmation, `Bearer ${test_operator_token}`)).toMatchObject({ status: 401 });
    expect(await confirm(confirmation, `Bearer ${token.slice(0, -2)}xx`)).toMatchObject({ status: 401 });
    expect(await confirm(confirmation, `Bearer tp.other.${token.split('.')[2]}`)).toMatchObject({
      status: 401,
    });
    expect(await confirmations()).toEqual(before);
    // A bad body: 400 naming the field, nothing recorded.
    const bearer = `Bearer ${token}`;
    for (const [body, field] of [
      [{ ...confirmation, capture_status_code: 'OK' }, 'capture_status_code'],
      [{ ...confirmation, currency: 'eur' }, 'currency'],
      [{ ...confirmation, total_costs: { excl_vat: '3,60' } }, 'total_costs.excl_vat'],
      [{ ...confirmation, eft_data: 'PAN' }, 'eft_data'],
      [{ ...confirmation, last_updated: 'yesterday' }, 'last_updated'],
    ] as const) {
      expect(await confirm(body, bearer)).toMatchObject({ status: 400, body: { field } });
    }
    expect(await confirmations()).toEqual(before);

    // The confirmation settles it; a repeat changes nothing.
    expect(await confirm(confirmation, bearer)).toMatchObject({
      status: 200,
      body: { recorded: true, session_id: 'CP-PAY-TERM/TX-TERM-1' },
    });
    expect(await confirm(confirmation, bearer)).toMatchObject({
      status: 200,
      body: { recorded: false, session_id: 'CP-PAY-TERM/TX-TERM-1' },
    });
    expect(await journal(`terminal:${confirmation.id}`)).toEqual([
      { ledger_account: 'cash', debit_minor: 428, credit_minor: 0 },
      { ledger_account: 'revenue:vat_19', debit_minor: 0, credit_minor: 360 },
      { ledger_account: 'vat_payable:19', debit_minor: 0, credit_minor: 68 },
    ]);
    const events = await stack.ledger!.query(
      `SELECT kind, amount_minor, attributes->>'session_id' AS session_id, attributes->>'provider' AS provider
       FROM billing_events WHERE attributes->>'method' = 'terminal' AND attributes->>'confirmation_id' = $1`,
      [confirmation.id],
    );
    expect(events).toEqual([
      {
        kind: 'payment_received',
        amount_minor: 428,
        session_id: 'CP-PAY-TERM/TX-TERM-1',
        provider: 'acme-pay',
      },
    ]);

    // A second terminal session whose capture is not its rated total.
    const other_reference = 'TERM-AUTH-88B1';
    const other_token = {
      idToken: other_reference,
      type: 'Local',
      additionalInfo: [{ additionalIdToken: other_reference, type: 'PaymentTerminal' }],
    };
    await transaction_event(
      charger,
      'Started',
      0,
      'TX-TERM-2',
      t0,
      200,
      other_token,
      undefined,
      'Authorized',
    );
    await transaction_event(
      charger,
      'Ended',
      1,
      'TX-TERM-2',
      t0 + 30 * 60_000,
      210,
      other_token,
      undefined,
      'StopAuthorized',
    );
    await eventually(async () => {
      const [row] = await stack.ledger!.query('SELECT 1 FROM session_versions WHERE id_tag = $1 AND final', [
        other_reference,
      ]);
      return row;
    });
    expect(
      await confirm(
        {
          ...confirmation,
          id: 'FAC-88B1',
          authorization_reference: other_reference,
          total_costs: { excl_vat: '5.00', incl_vat: '5.95' },
        },
        bearer,
      ),
    ).toMatchObject({ status: 200, body: { recorded: true } });

    // OCPP 1.6: the reference is StartTransaction's idTag (CiString20Type).
    const charger_16 = await connect('CP-PAY-TERM16', 'ocpp1.6');
    const reference_16 = 'TA16-5521';
    const started = (await charger_16.client.call('StartTransaction', {
      connectorId: 1,
      idTag: reference_16,
      meterStart: 0,
      timestamp: new Date(t0).toISOString(),
    })) as { transactionId: number };
    await charger_16.client.call('MeterValues', {
      connectorId: 1,
      transactionId: started.transactionId,
      meterValue: [
        {
          timestamp: new Date(t0 + 15 * 60_000).toISOString(),
          sampledValue: [{ value: '5000', measurand: 'Energy.Active.Import.Register', unit: 'Wh' }],
        },
      ],
    });
    await charger_16.client.call('StopTransaction', {
      transactionId: started.transactionId,
      idTag: reference_16,
      meterStop: 10_000,
      timestamp: new Date(t0 + 30 * 60_000).toISOString(),
      reason: 'Local',
    });
    const session_16 = `CP-PAY-TERM16/${started.transactionId}`;
    await eventually(async () => {
      const [row] = await stack.ledger!.query(
        'SELECT 1 FROM session_versions WHERE id_tag = $1 AND session_id = $2 AND final',
        [reference_16, session_16],
      );
      return row;
    });
    expect(
      await confirm({ ...confirmation, id: 'FAC-5521', authorization_reference: reference_16 }, bearer),
    ).toMatchObject({ status: 200, body: { recorded: true, session_id: session_16 } });

    // The reconciliation of the day: the first and the 1.6 one matched, the second mismatched.
    const today = new Date().toISOString().slice(0, 10);
    const report = await operator('GET', `/v1/reconciliation?day=${today}`);
    expect(report.status).toBe(200);
    const captures = report.body.terminal_captures as { captures_matched: number; items: Json[] };
    expect(captures.items).toEqual([
      {
        confirmation_id: 'FAC-7F3A9C',
        authorization_reference: reference,
        terminal_provider_id: 'acme-pay',
        capture_status_code: 'SUCCESS',
        session_id: 'CP-PAY-TERM/TX-TERM-1',
        currency: 'EUR',
        captured: '4.28',
        rated_total: '4.28',
        rated_currency: 'EUR',
        difference: '0.00',
        status: 'matched',
      },
      {
        confirmation_id: 'FAC-88B1',
        authorization_reference: other_reference,
        terminal_provider_id: 'acme-pay',
        capture_status_code: 'SUCCESS',
        session_id: 'CP-PAY-TERM/TX-TERM-2',
        currency: 'EUR',
        captured: '5.95',
        rated_total: '4.28',
        rated_currency: 'EUR',
        difference: '1.67',
        status: 'mismatched',
      },
      {
        confirmation_id: 'FAC-5521',
        authorization_reference: reference_16,
        terminal_provider_id: 'acme-pay',
        capture_status_code: 'SUCCESS',
        session_id: session_16,
        currency: 'EUR',
        captured: '4.28',
        rated_total: '4.28',
        rated_currency: 'EUR',
        difference: '0.00',
        status: 'matched',
      },
    ]);
    expect(captures.captures_matched).toBe(2);
    // PAY_TERMINAL_GRACE_MIN=5: the session stopped 10 minutes ago that no confirmation named.
    const unconfirmed = await eventually(async () => {
      const r = await operator('GET', `/v1/reconciliation?day=${today}`);
      const t = r.body.terminal_captures as { sessions_unconfirmed: Json[] };
      return t.sessions_unconfirmed.length > 0 ? t.sessions_unconfirmed : undefined;
    });
    expect(unconfirmed).toEqual([
      expect.objectContaining({
        session_id: 'CP-PAY-TERM/TX-TERM-3',
        authorization_reference: 'TERM-NEVER-1',
        charge_point_id: 'CP-PAY-TERM',
      }),
    ]);
  });

  it('rate-limits the public pages per client address (HTTP 429 with Retry-After)', async () => {
    // PAY_REQUESTS_PER_S_MAX=200 here: a burst of 400 passes, the rest of 700 at once does not. On a
    // busy machine a burst can take long enough for the bucket to refill, so bursts are repeated
    // (at most 10) until one is limited; the first one always gets its 400.
    const burst = () =>
      Promise.all(
        Array.from({ length: 700 }, () =>
          fetch(`${stack.api_url}/pay/CP-PAY-OFF/1/qr.svg`).then(async (r) => {
            await r.arrayBuffer();
            return { status: r.status, retry_after: r.headers.get('retry-after') };
          }),
        ),
      );
    const first = await burst();
    expect(first.filter((r) => r.status === 200).length).toBeGreaterThanOrEqual(400);
    let limited = first.filter((r) => r.status === 429);
    for (let i = 1; i < 10 && limited.length === 0; i++)
      limited = (await burst()).filter((r) => r.status === 429);
    expect(limited.length).toBeGreaterThan(0);
    expect(Number(limited[0]!.retry_after)).toBeGreaterThanOrEqual(1);
  });
});
