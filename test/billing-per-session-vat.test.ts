import { Decimal } from 'decimal.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RatedSessionRow } from '../analytics/sessions.js';
import {
  put_account,
  put_legal_entity,
  validate_account,
  validate_legal_entity,
} from '../billing/accounts.js';
import { split_minor } from '../billing/amounts.js';
import { get_document, list_documents } from '../billing/invoices/query.js';
import { create_billing_run, list_billing_runs, run_billing } from '../billing/invoices/run.js';
import type { Ledger } from '../billing/ledger.js';
import { record_rated_versions } from '../billing/rated-versions.js';
import { type MeterSample, type RatedSession, rate_session } from '../rating/engine.js';
import type { Plan } from '../rating/plans.js';
import {
  ledger_backends,
  open_test_ledger,
  rated_row,
  test_legal_entity,
  two_vat_rates_tariff,
} from './helpers/billing.js';

/**
 * Accounts billed per session (one invoice per final session, from the rated feed or the run),
 * sessions with several VAT rates (one invoice line per rate, the plan discount split over the
 * rates), and billing runs whose process died (stale, then taken over and abandoned).
 */
const now_ms = Date.parse('2026-12-04T12:00:00Z');
const now = () => now_ms;
const address = { line1: 'Weg 1', postal_code: '1000 AA', city: 'Amsterdam', country_code: 'NL' };

function account(id: string, billing_period: 'monthly' | 'per_session', tokens: string[]) {
  return validate_account(id, {
    kind: 'driver',
    name: `Driver ${id}`,
    legal_entity_id: 'nl',
    currency: 'EUR',
    billing_period,
    address,
    tokens,
  });
}

/** A tariff of two VAT rates: energy at 21 %, parking (not charging) at 9 % per 15 minutes started. */
const two_rates = two_vat_rates_tariff('two-rates');

/** Rated by the real engine, as the rating service writes the row (breakdown = the RatedSession). */
function rated_by_engine(
  session_id: string,
  id_tag: string,
  stop_ms: number,
  rows: [minute: number, energy_wh: number, charging: boolean][],
  plan?: Plan,
): { row: RatedSessionRow; rated: RatedSession } {
  const start_ms = stop_ms - rows[rows.length - 1]![0] * 60_000;
  const samples: MeterSample[] = rows.map(([minute, energy_wh, charging]) => ({
    at_ms: start_ms + minute * 60_000,
    energy_wh,
    charging,
  }));
  const rated = rate_session({
    tariff: two_rates,
    time_zone: 'Europe/Amsterdam',
    samples,
    ...(plan === undefined ? {} : { plan }),
  });
  const row = rated_row({
    session_id,
    id_tag,
    stopped_at_ms: stop_ms,
    started_at_ms: start_ms,
    total_excl_vat: rated.total_cost.excl_vat,
    total_incl_vat: rated.total_cost.incl_vat,
    tariff_id: two_rates.id,
    breakdown: JSON.stringify(rated),
  });
  return { row, rated };
}

const cents = (d: Decimal) => d.toDecimalPlaces(2, Decimal.ROUND_HALF_UP);

describe('splitting an amount over weights', () => {
  it('gives parts that add up to the total, each the floor or the ceiling of its exact share', () => {
    let seed = 7;
    const random = (n: number) => {
      seed = (seed * 48_271) % 2_147_483_647;
      return seed % n;
    };
    for (let i = 0; i < 2000; i++) {
      const weights = Array.from({ length: 1 + random(4) }, () => random(100_000));
      const total = random(200_000) - 50_000;
      const parts = split_minor(total, weights);
      expect(parts.reduce((a, b) => a + b, 0)).toBe(total);
      const sum = weights.reduce((a, b) => a + b, 0);
      parts.forEach((part, k) => {
        const exact =
          sum === 0 ? new Decimal(k === 0 ? total : 0) : new Decimal(total).mul(weights[k]!).div(sum);
        expect(new Decimal(part).sub(exact).abs().lt(1)).toBe(true);
      });
    }
  });
});

describe.each(ledger_backends)('per-session invoices and VAT parts on %s', (backend) => {
  let ledger: Ledger;
  let dispose: () => Promise<void>;

  beforeAll(async () => {
    const opened = await open_test_ledger(backend);
    ledger = opened.ledger;
    dispose = opened.dispose;
    await put_legal_entity(ledger, validate_legal_entity('nl', test_legal_entity));
    await put_account(ledger, account('per', 'per_session', ['PER-T']));
    await put_account(ledger, account('month', 'monthly', ['MONTH-T']));
  });

  afterAll(async () => {
    await dispose?.();
  });

  async function invoice_numbers(): Promise<number[]> {
    const rows = await ledger.query<{ number: number }>(
      `SELECT number FROM invoices WHERE kind = 'invoice' AND number IS NOT NULL ORDER BY number`,
    );
    return rows.map((r) => r.number);
  }

  it('issues one invoice per final session of a per-session account when the feed brings it, once', async () => {
    const stop = Date.parse('2026-11-05T10:00:00Z');
    const first = await record_rated_versions(
      ledger,
      [
        rated_row({ session_id: 'P1', id_tag: 'PER-T', stopped_at_ms: stop, total_excl_vat: '10.005' }),
        // Provisional: not billable yet.
        rated_row({
          session_id: 'P2',
          id_tag: 'PER-T',
          stopped_at_ms: stop + 60_000,
          total_excl_vat: '4.00',
          provisional: 1,
        }),
        // A monthly account's session waits for the run.
        rated_row({ session_id: 'M1', id_tag: 'MONTH-T', stopped_at_ms: stop, total_excl_vat: '3.00' }),
      ],
      now_ms,
    );
    expect(first.invoices).toHaveLength(1);
    const invoice = (await get_document(ledger, first.invoices[0]!))!;
    // 10.005 -> 10.01 net; VAT 21 % 2.1021 -> 2.10; total 12.11.
    expect(invoice).toMatchObject({
      number: 'INV-000001',
      status: 'issued',
      account_id: 'per',
      session_id: 'P1',
      period: null,
      net: '10.01',
      vat: '2.10',
      total: '12.11',
    });
    expect(invoice.lines.map((l) => [l.kind, l.session_id, l.net])).toEqual([['session', 'P1', '10.01']]);
    // Redelivered: nothing new.
    const again = await record_rated_versions(
      ledger,
      [rated_row({ session_id: 'P1', id_tag: 'PER-T', stopped_at_ms: stop, total_excl_vat: '10.005' })],
      now_ms,
    );
    expect(again.invoices).toEqual([]);
    // P2's final version arrives: its own invoice, the next number.
    const p2 = await record_rated_versions(
      ledger,
      [
        rated_row({
          session_id: 'P2',
          id_tag: 'PER-T',
          version: 2,
          stopped_at_ms: stop + 60_000,
          total_excl_vat: '4.00',
        }),
      ],
      now_ms,
    );
    expect(p2.invoices).toHaveLength(1);
    expect((await get_document(ledger, p2.invoices[0]!))!).toMatchObject({
      number: 'INV-000002',
      total: '4.84',
    });
    expect(await invoice_numbers()).toEqual([1, 2]);
  });

  it('credits a re-rated per-session invoice and invoices the new version at once', async () => {
    const stop = Date.parse('2026-11-05T10:00:00Z');
    const outcome = await record_rated_versions(
      ledger,
      [
        rated_row({
          session_id: 'P1',
          id_tag: 'PER-T',
          version: 2,
          stopped_at_ms: stop,
          total_excl_vat: '8.00',
        }),
      ],
      now_ms,
    );
    expect(outcome.credit_notes).toHaveLength(1);
    expect(outcome.invoices).toHaveLength(1);
    const credit = (await get_document(ledger, outcome.credit_notes[0]!))!;
    expect(credit).toMatchObject({ kind: 'credit_note', total: '12.11' });
    const corrected = (await get_document(ledger, outcome.invoices[0]!))!;
    expect(corrected).toMatchObject({ number: 'INV-000003', session_id: 'P1', total: '9.68' });
    expect(corrected.lines.map((l) => l.session_version)).toEqual([2]);
  });

  it('bills a per-session account sessions the feed could not attribute at the run, one invoice each', async () => {
    const stop = Date.parse('2026-11-20T10:00:00Z');
    // LATE-T is nobody's yet: recorded, not billed.
    const arrived = await record_rated_versions(
      ledger,
      [
        rated_row({ session_id: 'L1', id_tag: 'LATE-T', stopped_at_ms: stop, total_excl_vat: '1.00' }),
        rated_row({ session_id: 'L2', id_tag: 'LATE-T', stopped_at_ms: stop + 1000, total_excl_vat: '2.00' }),
      ],
      now_ms,
    );
    expect(arrived.invoices).toEqual([]);
    await put_account(ledger, account('per', 'per_session', ['PER-T', 'LATE-T']));
    const run = await run_billing(ledger, { period: '2026-11' }, { now_ms: now });
    expect(run).toMatchObject({ status: 'finished', invoices_created: 3 });
    const per = await list_documents(ledger, { kind: 'invoice', account_id: 'per', limit: 100, offset: 0 });
    expect(per.map((d) => [d.session_id, d.period, d.total])).toEqual([
      ['P1', null, '12.11'],
      ['P2', null, '4.84'],
      ['P1', null, '9.68'],
      ['L1', null, '1.21'],
      ['L2', null, '2.42'],
    ]);
    const month = await list_documents(ledger, {
      kind: 'invoice',
      account_id: 'month',
      limit: 100,
      offset: 0,
    });
    expect(month.map((d) => [d.session_id, d.period, d.total])).toEqual([[null, '2026-11', '3.63']]);
    // One series for both kinds of account: gapless, no duplicate.
    expect(await invoice_numbers()).toEqual([1, 2, 3, 4, 5, 6]);
    const again = await run_billing(ledger, { period: '2026-11' }, { now_ms: now });
    expect(again.invoices_created).toBe(0);
    expect(await invoice_numbers()).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('invoices a session of two VAT rates as one line per rate, the plan discount split over them', async () => {
    const stop = Date.parse('2026-10-10T12:00:00Z');
    const plan: Plan = { id: 'ten-off', name: '10 % off', currency: 'EUR', discount_percent: 10 };
    // 20 kWh charged in 2 hours, then 40 minutes parked (billed as 45: 900 s steps).
    const discounted = rated_by_engine(
      'V1',
      'MONTH-T',
      stop,
      [
        [0, 0, true],
        [120, 20_000, false],
        [160, 20_000, false],
      ],
      plan,
    );
    // A session of the same tariff with odd amounts, no plan: 7.777 kWh, 50 minutes parked (60 billed).
    const odd = rated_by_engine('V2', 'MONTH-T', stop + 3_600_000, [
      [0, 0, true],
      [50, 7_777, false],
      [100, 7_777, false],
    ]);
    await record_rated_versions(ledger, [discounted.row, odd.row], now_ms);
    const run = await run_billing(ledger, { period: '2026-10' }, { now_ms: now });
    expect(run.invoices_created).toBe(1);
    const [listed] = await list_documents(ledger, {
      kind: 'invoice',
      account_id: 'month',
      period: '2026-10',
      limit: 1,
      offset: 0,
    });
    const invoice = (await get_document(ledger, listed!.id))!;

    // Worked by hand. V1: energy 20 x 0.30 = 6.00 at 21 %, parking 0.75 h x 2.00 = 1.50 at 9 %:
    // 7.50; 10 % off = 0.75, split 6.00 : 1.50 -> 0.60 and 0.15: 5.40 at 21 % and 1.35 at 9 %.
    expect(discounted.rated.total_cost.excl_vat).toBe('6.75');
    // V2: energy 7.777 x 0.30 = 2.3331 -> 2.33 at 21 %, parking 1 h x 2.00 = 2.00 at 9 %.
    expect(odd.rated.total_cost.excl_vat).toBe('4.33');
    expect(invoice.lines.map((l) => [l.session_id, l.vat_percent, l.net])).toEqual([
      ['V1', '9', '1.35'],
      ['V1', '21', '5.40'],
      ['V2', '9', '2.00'],
      ['V2', '21', '2.33'],
    ]);
    // VAT per rate on the sum of the line nets (EN 16931 BT-117): 9 % of 3.35 = 0.3015 -> 0.30;
    // 21 % of 7.73 = 1.6233 -> 1.62. Total 11.08 + 1.92 = 13.00.
    expect(invoice.vat_breakdown.map((v) => [v.vat_percent, v.net, v.vat])).toEqual([
      ['9', '3.35', '0.30'],
      ['21', '7.73', '1.62'],
    ]);
    expect(invoice).toMatchObject({ net: '11.08', vat: '1.92', total: '13.00' });

    // The same, computed here from the engine's own explanation: per rate the sum of its
    // dimensions' rounded costs, the session total's difference shared in proportion, then VAT once
    // per rate. The lines of each session add up to its rated net.
    const expected_nets = new Map<string, Decimal>();
    for (const { rated } of [discounted, odd]) {
      const groups = new Map<string, Decimal>();
      for (const line of rated.lines) {
        const key = `${line.dimension}|${line.vat_percent}`;
        groups.set(key, (groups.get(key) ?? new Decimal(0)).add(line.cost_excl_vat));
      }
      const by_rate = new Map<string, Decimal>();
      for (const [key, excl] of groups) {
        const rate = key.split('|')[1]!;
        by_rate.set(rate, (by_rate.get(rate) ?? new Decimal(0)).add(cents(excl)));
      }
      const base = [...by_rate.values()].reduce((a, b) => a.add(b), new Decimal(0));
      const total = new Decimal(rated.total_cost.excl_vat);
      for (const [rate, net] of by_rate) {
        const share = net.sub(base.sub(total).mul(net).div(base));
        const line = invoice.lines.find(
          (l) => l.vat_percent === rate && l.net_minor === share.mul(100).round().toNumber(),
        );
        expect(line).toBeDefined();
        expected_nets.set(rate, (expected_nets.get(rate) ?? new Decimal(0)).add(share));
      }
    }
    const expected_total = [...expected_nets.entries()].reduce(
      (sum, [rate, net]) => sum.add(net).add(cents(net.mul(rate).div(100))),
      new Decimal(0),
    );
    expect(invoice.total).toBe(expected_total.toFixed(2));
    // The journal books revenue and VAT per rate.
    const journal = await ledger.query<{ ledger_account: string; credit_minor: number }>(
      `SELECT l.ledger_account, l.credit_minor FROM journal_lines l JOIN journal_entries e ON e.id = l.entry_id
       WHERE e.kind = 'invoice_issued' AND e.source_id = $1 AND l.credit_minor > 0 ORDER BY l.ledger_account`,
      [String(invoice.id)],
    );
    expect(journal).toEqual([
      { ledger_account: 'revenue:vat_21', credit_minor: 773 },
      { ledger_account: 'revenue:vat_9', credit_minor: 335 },
      { ledger_account: 'vat_payable:21', credit_minor: 162 },
      { ledger_account: 'vat_payable:9', credit_minor: 30 },
    ]);
  });

  it('shows a run whose lease ran out as stale, and the next run of its period abandons and resumes it', async () => {
    const started = Date.parse('2026-12-05T08:00:00Z');
    // A run recorded by a process that died before it did anything: its lease lasts 1 s.
    const dead = await create_billing_run(ledger, { period: '2026-09' }, started, 1000);
    const [before] = await list_billing_runs(ledger, 1, started + 500);
    expect(before).toMatchObject({ id: dead, status: 'running' });
    const [later] = await list_billing_runs(ledger, 1, started + 5000);
    expect(later).toMatchObject({ id: dead, status: 'stale' });
    const resumed = await run_billing(ledger, { period: '2026-09' }, { now_ms: () => started + 5000 });
    expect(resumed.status).toBe('finished');
    const runs = await list_billing_runs(ledger, 2, started + 5000);
    expect(runs.map((r) => [r.id, r.status, r.resumed_by_run_id])).toEqual([
      [resumed.id, 'finished', null],
      [dead, 'abandoned', resumed.id],
    ]);
    // A run of another period, or still holding its lease, is left alone.
    const live = await create_billing_run(ledger, { period: '2026-08' }, started + 5000, 60_000);
    await run_billing(ledger, { period: '2026-08' }, { now_ms: () => started + 6000 });
    const [row] = await ledger.query<{ status: string }>('SELECT status FROM billing_runs WHERE id = $1', [
      live,
    ]);
    expect(row!.status).toBe('running');
  });
});
