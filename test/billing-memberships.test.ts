import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Decimal } from 'decimal.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RatedSessionRow } from '../analytics/sessions.js';
import { billing_routes } from '../api/billing-routes.js';
import { ApiServer } from '../api/server.js';
import { put_legal_entity, validate_legal_entity } from '../billing/accounts.js';
import { pdf_document } from '../billing/documents/pdf.js';
import { ubl_document } from '../billing/documents/ubl.js';
import { get_document } from '../billing/invoices/query.js';
import { run_billing } from '../billing/invoices/run.js';
import type { Ledger } from '../billing/ledger.js';
import { record_rated_versions } from '../billing/rated-versions.js';
import { create_logger } from '../core/log.js';
import { type MeterSample, rate_session } from '../rating/engine.js';
import {
  ledger_backends,
  open_test_ledger,
  rated_row,
  test_legal_entity,
  two_vat_rates_tariff,
} from './helpers/billing.js';
import { type Benefits, expected_discounts, expected_total, type Part } from './helpers/membership-oracle.js';

/**
 * Memberships beyond the monthly fee: included kWh, volume tiers and loyalty as discount lines of
 * the period's invoice, from sessions rated by the real engine and recorded as the rated feed
 * records them. Every line and total is checked against a computation written here from the rules
 * (billing/memberships.ts), to the cent; the journal entry balances, the PDF and the UBL carry the
 * lines; bad membership values are a 400 naming the field and change nothing.
 */
const D = Decimal.clone({ precision: 60, rounding: Decimal.ROUND_HALF_UP });
const now_ms = Date.parse('2026-12-04T12:00:00Z');
const address = { line1: 'Weg 1', postal_code: '1000 AA', city: 'Amsterdam', country_code: 'NL' };
const token = 'memberships-operator-token';

/** Energy at 0.30/kWh at 21 %, parking (not charging) at 2.00/h in 15-minute steps at 9 %. */
const tariff = two_vat_rates_tariff('members');

/** A session rated by the real engine: `energy_wh` over an hour, then `parked_min` minutes not charging. */
function rated(session_id: string, id_tag: string, stop_iso: string, energy_wh: number, parked_min: number) {
  const stop_ms = Date.parse(stop_iso);
  const minutes = 60 + parked_min;
  const start_ms = stop_ms - minutes * 60_000;
  const samples: MeterSample[] = [
    { at_ms: start_ms, energy_wh: 0, charging: true },
    { at_ms: start_ms + 30 * 60_000, energy_wh: Math.floor(energy_wh / 2), charging: true },
    { at_ms: start_ms + 60 * 60_000, energy_wh, charging: parked_min === 0 },
    ...(parked_min === 0 ? [] : [{ at_ms: stop_ms, energy_wh, charging: false }]),
  ];
  const r = rate_session({ tariff, time_zone: 'Europe/Amsterdam', samples });
  return rated_row({
    session_id,
    id_tag,
    started_at_ms: start_ms,
    stopped_at_ms: stop_ms,
    energy_wh,
    total_excl_vat: r.total_cost.excl_vat,
    total_incl_vat: r.total_cost.incl_vat,
    tariff_id: tariff.id,
    breakdown: JSON.stringify(r),
  });
}

const plus: Benefits = {
  included_energy: { kwh: '30', price_per_kwh: '0.10' },
  volume_tiers: [
    { above_kwh: '60', discount_per_kwh: '0.05' },
    { above_kwh: '90', discount_per_kwh: '0.08' },
  ],
  loyalty: { every_nth_session: 3, discount_percent: '50' },
};
const half: Benefits = {
  included_energy: { kwh: '40', price_per_kwh: '0' },
  loyalty: { every_nth_session: 2, discount_percent: '100' },
};

describe.each(ledger_backends)('membership benefits on %s', (backend) => {
  let ledger: Ledger;
  let dispose: () => Promise<void>;
  let api: ApiServer;
  let base_url: string;
  const dir = mkdtempSync(path.join(tmpdir(), 'evrate-memberships-'));

  const request = async (method: string, pathname: string, body?: unknown) => {
    const res = await fetch(`${base_url}${pathname}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const account_body = (tokens: string[], memberships: unknown[], billing_period = 'monthly') => ({
    kind: 'driver',
    name: 'Member',
    legal_entity_id: 'nl',
    currency: 'EUR',
    billing_period,
    address,
    tokens,
    memberships,
  });

  beforeAll(async () => {
    const opened = await open_test_ledger(backend);
    ledger = opened.ledger;
    dispose = opened.dispose;
    await put_legal_entity(ledger, validate_legal_entity('nl', { ...test_legal_entity, time_zone: 'UTC' }));
    api = new ApiServer(
      {
        host: '127.0.0.1',
        port: 0,
        operator_token: token,
        body_bytes_max: 65_536,
        operator_requests_per_s_max: 1000,
      },
      billing_routes({ ledger, log: create_logger('silent') }),
      create_logger('silent'),
    );
    base_url = `http://127.0.0.1:${await api.listen()}`;
  });

  afterAll(async () => {
    await api?.close();
    await dispose?.();
    rmSync(dir, { recursive: true, force: true });
  });

  it('stores included kWh, volume tiers and loyalty through the account API and reads them back', async () => {
    const put = await request(
      'PUT',
      '/v1/accounts/plus',
      account_body(['PLUS-T'], [{ plan_id: 'plus', monthly_fee: '10.00', starts_on: '2026-10-01', ...plus }]),
    );
    expect(put.status).toBe(201);
    expect((put.body.memberships as unknown[])[0]).toEqual({
      plan_id: 'plus',
      currency: 'EUR',
      monthly_fee: '10.00',
      starts_on: '2026-10-01',
      ...plus,
    });
    // From 16 November: 15 of 30 days, so 20 of its 40 kWh included.
    const half_put = await request(
      'PUT',
      '/v1/accounts/half',
      account_body(['HALF-T'], [{ plan_id: 'half', monthly_fee: '6.00', starts_on: '2026-11-16', ...half }]),
    );
    expect(half_put.status).toBe(201);
  });

  it('answers bad membership values with a 400 naming the field and changes nothing', async () => {
    const before = await request('GET', '/v1/accounts/plus');
    const membership = { plan_id: 'plus', monthly_fee: '10.00', starts_on: '2026-10-01' };
    const cases: [unknown, string, string?][] = [
      [{ ...membership, included_energy: { kwh: '-5' } }, 'memberships[0].included_energy.kwh'],
      [{ ...membership, included_energy: { kwh: '0' } }, 'memberships[0].included_energy.kwh'],
      [
        { ...membership, included_energy: { kwh: '10', price_per_kwh: 'free' } },
        'memberships[0].included_energy.price_per_kwh',
      ],
      [{ ...membership, included_energy: { kwh: '10', bonus: 1 } }, 'memberships[0].included_energy.bonus'],
      [
        {
          ...membership,
          volume_tiers: [
            { above_kwh: '100', discount_per_kwh: '0.05' },
            { above_kwh: '50', discount_per_kwh: '0.08' },
          ],
        },
        'memberships[0].volume_tiers[1].above_kwh',
      ],
      [
        { ...membership, volume_tiers: [{ above_kwh: '100', discount_per_kwh: '0' }] },
        'memberships[0].volume_tiers[0].discount_per_kwh',
      ],
      [{ ...membership, volume_tiers: [] }, 'memberships[0].volume_tiers'],
      [
        { ...membership, loyalty: { every_nth_session: 1, discount_percent: '100' } },
        'memberships[0].loyalty.every_nth_session',
      ],
      [
        { ...membership, loyalty: { every_nth_session: 5, discount_percent: '150' } },
        'memberships[0].loyalty.discount_percent',
      ],
      [
        { ...membership, loyalty: { every_nth_session: 5, discount_percent: '10' } },
        'memberships[0].loyalty',
        'per_session',
      ],
    ];
    for (const [m, field, period] of cases) {
      const res = await request('PUT', '/v1/accounts/plus', account_body(['PLUS-T'], [m], period));
      expect([res.status, res.body.field]).toEqual([400, field]);
    }
    expect(await request('GET', '/v1/accounts/plus')).toEqual(before);
  });

  it('invoices the discount lines of the period to the cent, VAT on the rate of the sessions they discount', async () => {
    const rows: RatedSessionRow[] = [
      // A late session of October: billed as an adjustment, outside November's benefits.
      rated('P0', 'PLUS-T', '2026-10-30T10:00:00Z', 25_000, 0),
      rated('P1', 'PLUS-T', '2026-11-02T10:00:00Z', 18_000, 0),
      rated('P2', 'PLUS-T', '2026-11-04T10:00:00Z', 21_500, 45),
      rated('P3', 'PLUS-T', '2026-11-07T10:00:00Z', 12_345, 0),
      rated('P4', 'PLUS-T', '2026-11-12T10:00:00Z', 17_777, 30),
      rated('P5', 'PLUS-T', '2026-11-20T10:00:00Z', 22_222, 0),
      rated('P6', 'PLUS-T', '2026-11-28T10:00:00Z', 9_999, 15),
      // Before its membership started: counted by no rule.
      rated('H0', 'HALF-T', '2026-11-10T10:00:00Z', 30_000, 0),
      rated('H1', 'HALF-T', '2026-11-17T10:00:00Z', 12_000, 0),
      rated('H2', 'HALF-T', '2026-11-18T10:00:00Z', 11_000, 30),
      rated('H3', 'HALF-T', '2026-11-25T10:00:00Z', 9_000, 0),
    ];
    // October's session arrives after October was closed: it becomes an adjustment line of November.
    await record_rated_versions(ledger, rows.slice(1), now_ms);
    await run_billing(ledger, { period: '2026-10' }, { now_ms: () => now_ms });
    await record_rated_versions(ledger, rows.slice(0, 1), now_ms);
    const run = await run_billing(ledger, { period: '2026-11' }, { now_ms: () => now_ms });
    expect(run.status).toBe('finished');

    // Billing's input as recorded: each session's net per VAT rate.
    const recorded = await ledger.query<{
      session_id: string;
      energy_wh: number;
      net_minor: number;
      vat_parts: Part[];
    }>(
      'SELECT session_id, energy_wh, net_minor, vat_parts FROM session_versions ORDER BY stopped_at_ms, session_id',
    );
    const of = (ids: string[]) =>
      recorded.filter((r) => ids.includes(r.session_id)).map((r) => ({ ...r, parts: r.vat_parts }));
    expect(of(['P2']).at(0)!.parts).toHaveLength(2);
    const cases = [
      {
        account: 'plus',
        fee: 1000,
        sessions: of(['P1', 'P2', 'P3', 'P4', 'P5', 'P6']),
        extra: of(['P0']),
        b: plus,
        days_active: 30,
      },
      {
        account: 'half',
        fee: 300,
        sessions: of(['H1', 'H2', 'H3']),
        extra: of(['H0']),
        b: half,
        days_active: 15,
      },
    ];
    for (const c of cases) {
      const [head] = await ledger.query<{ id: number }>(
        `SELECT id FROM invoices WHERE account_id = $1 AND period = '2026-11'`,
        [c.account],
      );
      const doc = (await get_document(ledger, head!.id))!;
      const discounts = expected_discounts(c.sessions, c.b, c.days_active, 30);
      const got = doc.lines
        .filter((l) => l.kind === 'discount')
        .map((l) => [
          `${l.rule}${l.rule === 'volume_tier' ? (l.description.includes('above 60 kWh') ? 0 : 1) : ''}|${l.vat_percent}`,
          -l.net_minor,
        ]);
      expect(got.sort()).toEqual([...discounts].map(([k, v]) => [k, v]).sort());
      // Every rule gave something here, loyalty and tiers included.
      expect(new Set(got.map(([k]) => String(k).split('|')[0]))).toEqual(
        new Set(
          c.b.volume_tiers
            ? ['included_energy', 'volume_tier0', 'volume_tier1', 'loyalty']
            : ['included_energy', 'loyalty'],
        ),
      );
      const { total, by_rate } = expected_total([...c.sessions, ...c.extra], c.fee, discounts);
      expect(doc.total_minor).toBe(total);
      expect(doc.vat_breakdown.map((v) => [v.vat_percent, v.net_minor])).toEqual(
        [...by_rate.entries()].sort((a, b) => Number(a[0]) - Number(b[0])),
      );
      // The included line says how many kWh it included and what it credited.
      const included = doc.lines.find((l) => l.rule === 'included_energy' && l.vat_percent === '21')!;
      expect(included.description).toMatch(/kWh of (30\.000|20\.000) kWh included/);
      expect(included.description).toContain(`${(-included.net_minor / 100).toFixed(2)} credited`);

      // The journal entry balances: receivable = revenue + VAT per rate, after the discounts.
      const journal = await ledger.query<{
        ledger_account: string;
        debit_minor: number;
        credit_minor: number;
      }>(
        `SELECT l.ledger_account, l.debit_minor, l.credit_minor FROM journal_entries e JOIN journal_lines l ON l.entry_id = e.id
         WHERE e.kind = 'invoice_issued' AND e.source_id = $1`,
        [String(doc.id)],
      );
      const debits = journal.reduce((s, l) => s + l.debit_minor, 0);
      expect(debits).toBe(journal.reduce((s, l) => s + l.credit_minor, 0));
      expect(debits).toBe(total);
      for (const [rate, net] of by_rate) {
        // A rate whose sessions were all discounted away moves no revenue (a zero line is not posted).
        const revenue = journal.find((l) => l.ledger_account === `revenue:vat_${rate}`);
        expect(revenue?.credit_minor ?? 0).toBe(net);
      }

      // UBL: each discount is a line of quantity -1 at a positive price; the lines add up to BT-106.
      const xml = path.join(dir, `${c.account}-${backend}.xml`);
      writeFileSync(xml, ubl_document(doc));
      execFileSync('xmllint', ['--noout', xml]);
      const xpath = (e: string) => execFileSync('xmllint', ['--xpath', e, xml]).toString().trim();
      const n_discounts = doc.lines.filter((l) => l.kind === 'discount').length;
      expect(
        Number(xpath("count(//*[local-name()='InvoiceLine'][*[local-name()='InvoicedQuantity']='-1'])")),
      ).toBe(n_discounts);
      expect(Number(xpath("count(//*[local-name()='PriceAmount'][starts-with(., '-')])"))).toBe(0);
      const sum_lines = new D(
        xpath("sum(//*[local-name()='InvoiceLine']/*[local-name()='LineExtensionAmount'])"),
      );
      expect(sum_lines.mul(100).toDecimalPlaces(0).toNumber()).toBe(doc.net_minor);

      // PDF: the discount sentences and their amounts are in its text.
      const pdf = path.join(dir, `${c.account}-${backend}.pdf`);
      writeFileSync(pdf, await pdf_document(doc));
      const text = execFileSync('pdftotext', ['-layout', pdf, '-']).toString().replace(/\s+/g, ' ');
      for (const l of doc.lines.filter((x) => x.kind === 'discount')) {
        expect(text).toContain(l.net);
        expect(text).toContain(`${(-l.net_minor / 100).toFixed(2)} credited`);
      }
      expect(text).toContain((doc.total_minor / 100).toFixed(2));
    }
  });

  it('bills nothing new when the run is repeated', async () => {
    const [before] = await ledger.query<{ n: number }>('SELECT count(*)::int8 AS n FROM invoice_lines');
    const again = await run_billing(ledger, { period: '2026-11' }, { now_ms: () => now_ms });
    expect(again.invoices_created).toBe(0);
    const [after] = await ledger.query<{ n: number }>('SELECT count(*)::int8 AS n FROM invoice_lines');
    expect(after!.n).toBe(before!.n);
  });
});
