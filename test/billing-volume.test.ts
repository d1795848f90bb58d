import { Decimal } from 'decimal.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RatedSessionRow } from '../analytics/sessions.js';
import {
  put_account,
  put_legal_entity,
  validate_account,
  validate_legal_entity,
} from '../billing/accounts.js';
import { RatedFeedConsumer } from '../billing/feed-consumer.js';
import { run_billing } from '../billing/invoices/run.js';
import type { Ledger } from '../billing/ledger.js';
import { create_logger } from '../core/log.js';
import { publish_rated_versions } from '../core/rated-feed.js';
import { open_test_ledger, rated_row, test_legal_entity } from './helpers/billing.js';
import { type Benefits, expected_discounts, expected_total, type Sess } from './helpers/membership-oracle.js';
import { start_test_nats } from './helpers/nats.js';
import { eventually } from './helpers/stack.js';

/**
 * 100,000 final sessions of 1,000 accounts, fed through the rated feed (JetStream, durable
 * consumer), billed in one run; every invoice's total is checked against an independent
 * computation here with decimal.js from the rated totals and the fees, and since memberships give
 * more than a fee, every discount line (included kWh, volume tiers, loyalty) against the rules
 * written again in test/helpers/membership-oracle.ts.
 */
const accounts_n = 1000;
const sessions_per_account = 100;
const november_ms = Date.parse('2026-11-01T00:00:00Z');

/** Deterministic pseudo-random numbers (mulberry32), so a failure can be replayed. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Every 10th account, from 11 November (20 of 30 days): 9.99 a month, 100 kWh included at 0.05/kWh. */
const fleet: Benefits = { included_energy: { kwh: '100', price_per_kwh: '0.05' } };
/** Every 10th account from the 5th, all month, no fee: tiers over the month and every 7th session half price. */
const volume: Benefits = {
  volume_tiers: [
    { above_kwh: '600', discount_per_kwh: '0.03' },
    { above_kwh: '1200', discount_per_kwh: '0.06' },
  ],
  loyalty: { every_nth_session: 7, discount_percent: '50' },
};
const period_start_ms = Date.parse('2026-11-01T00:00:00Z');
const fleet_start_ms = Date.parse('2026-11-11T00:00:00Z');

function half_up_cents(d: Decimal): Decimal {
  return d.toDecimalPlaces(2, Decimal.ROUND_HALF_UP);
}

describe('billing 100,000 sessions of 1,000 accounts on pglite', () => {
  let ledger: Ledger;
  let dispose_ledger: () => Promise<void>;
  let nats: Awaited<ReturnType<typeof start_test_nats>>;
  const expected = new Map<string, string>();

  beforeAll(async () => {
    nats = await start_test_nats();
    const opened = await open_test_ledger('pglite');
    ledger = opened.ledger;
    dispose_ledger = opened.dispose;
    await put_legal_entity(ledger, validate_legal_entity('nl', { ...test_legal_entity, time_zone: 'UTC' }));
  });

  afterAll(async () => {
    await dispose_ledger?.();
    await nats?.dispose();
  });

  it('invoices every account to the cent', async () => {
    const random = prng(18);
    const rows: RatedSessionRow[] = [];
    let expected_discount_lines = 0;
    const expected_lines = new Map<string, string[]>();
    for (let a = 0; a < accounts_n; a++) {
      const account_id = `A${String(a).padStart(4, '0')}`;
      // Every 10th account has a membership of 9.99 a month from 11 November: 20 of 30 days.
      const member = a % 10 === 0;
      const volume_member = a % 10 === 5;
      await put_account(
        ledger,
        validate_account(account_id, {
          kind: 'company',
          name: `Fleet ${a}`,
          legal_entity_id: 'nl',
          currency: 'EUR',
          address: { line1: 'Weg 1', postal_code: '1000 AA', city: 'Amsterdam', country_code: 'NL' },
          tokens: [`${account_id}-T0`, `${account_id}-T1`],
          memberships: member
            ? [{ plan_id: 'fleet', monthly_fee: '9.99', starts_on: '2026-11-11', ...fleet }]
            : volume_member
              ? [{ plan_id: 'volume', monthly_fee: '0', starts_on: '2026-01-01', ...volume }]
              : [],
        }),
      );
      const sessions: (Sess & { stopped_at_ms: number })[] = [];
      for (let s = 0; s < sessions_per_account; s++) {
        // Totals with four decimals, so that rounding each line to cents matters.
        const excl = new Decimal(Math.floor(random() * 2_000_000)).div(10_000);
        const vat_percent = a % 7 === 0 && s % 3 === 0 ? '9' : '21';
        const stopped_at_ms = november_ms + Math.floor(random() * 29 * 86_400_000);
        const energy_wh = 1000 + Math.floor(random() * 30_000);
        rows.push(
          rated_row({
            session_id: `${account_id}-S${s}`,
            id_tag: `${account_id}-T${s % 2}`,
            stopped_at_ms,
            energy_wh,
            total_excl_vat: excl.toString(),
            vat_percent,
          }),
        );
        const net_minor = half_up_cents(excl).mul(100).toNumber();
        sessions.push({
          session_id: `${account_id}-S${s}`,
          stopped_at_ms,
          energy_wh,
          net_minor,
          parts: [{ vat_percent, net_minor }],
        });
      }
      // The run reads sessions in stop order, then session id.
      sessions.sort((x, y) => x.stopped_at_ms - y.stopped_at_ms || (x.session_id < y.session_id ? -1 : 1));
      const discounts = member
        ? expected_discounts(
            sessions.filter((x) => x.stopped_at_ms >= fleet_start_ms),
            fleet,
            20,
            30,
          )
        : volume_member
          ? expected_discounts(
              sessions.filter((x) => x.stopped_at_ms >= period_start_ms),
              volume,
              30,
              30,
            )
          : [];
      expected_discount_lines += discounts.length;
      if (discounts.length > 0)
        expected_lines.set(account_id, discounts.map(([key, cents]) => `${key}|${cents}`).sort());
      // 9.99 x 20 / 30 = 6.66, at the legal entity's 21 % for fees.
      const { total: total_minor } = expected_total(sessions, member ? 666 : 0, discounts);
      const total = new Decimal(total_minor).div(100);
      expected.set(account_id, total.toFixed(2));
    }
    // A provisional version of some sessions first: recorded, never billed.
    const provisional = rows
      .slice(0, 1000)
      .map((r) => ({ ...r, version: 0, provisional: 1, total_excl_vat: '999.99' }));
    const feed = await RatedFeedConsumer.start(
      nats.nats,
      ledger,
      { durable_name: 'billing', batch_max: 5000, ack_wait_ms: 60_000 },
      create_logger('warn'),
    );
    try {
      await publish_rated_versions(nats.nats, provisional);
      await publish_rated_versions(nats.nats, rows);
      // Published again: deduplicated by message id.
      await publish_rated_versions(nats.nats, rows.slice(0, 500));
      await eventually(async () => ((await feed.caught_up()) ? true : undefined), 120_000);
    } finally {
      await feed.close();
    }
    const [versions] = await ledger.query<{ n: number }>('SELECT count(*)::int8 AS n FROM session_versions');
    expect(versions!.n).toBe(101_000);

    const run = await run_billing(
      ledger,
      { period: '2026-11' },
      { now_ms: () => Date.parse('2026-12-04T00:00:00Z') },
    );
    expect(run).toMatchObject({
      status: 'finished',
      accounts_done: accounts_n,
      invoices_created: accounts_n,
    });
    const invoices = await ledger.query<{
      account_id: string;
      total_minor: number;
      lines: number;
      number: number;
    }>(
      `SELECT i.account_id, i.total_minor, i.number, (SELECT count(*) FROM invoice_lines l WHERE l.invoice_id = i.id)::int8 AS lines
       FROM invoices i WHERE kind = 'invoice' ORDER BY number`,
    );
    expect(invoices).toHaveLength(accounts_n);
    const wrong: string[] = [];
    for (const invoice of invoices) {
      const got = new Decimal(invoice.total_minor).div(100).toFixed(2);
      if (got !== expected.get(invoice.account_id))
        wrong.push(`${invoice.account_id}: ${got} != ${expected.get(invoice.account_id)}`);
    }
    expect(wrong).toEqual([]);
    // Numbers 1..1000 without a gap; 100 session lines each, the fee line of every 10th account
    // (the volume plan's fee of 0.00 too), and the discount lines.
    expect(invoices.map((i) => i.number)).toEqual(Array.from({ length: accounts_n }, (_, i) => i + 1));
    expect(expected_discount_lines).toBeGreaterThan(300);
    expect(invoices.reduce((sum, i) => sum + i.lines, 0)).toBe(100_000 + 200 + expected_discount_lines);
    // Each discount line against the oracle, not only the totals.
    const [discount_lines] = await ledger.query<{ n: number }>(
      `SELECT count(*)::int8 AS n FROM invoice_lines WHERE kind = 'discount' AND net_minor < 0`,
    );
    expect(discount_lines!.n).toBe(expected_discount_lines);
    const lines = await ledger.query<{
      account_id: string;
      rule: string;
      tier: string;
      vat_percent: string;
      net_minor: number;
    }>(
      `SELECT i.account_id, l.rule, CASE WHEN l.description LIKE '%above 600 kWh%' THEN '0'
           WHEN l.description LIKE '%above 1200 kWh%' THEN '1' ELSE '' END AS tier,
         trim_scale(l.vat_percent)::text AS vat_percent, l.net_minor
       FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id WHERE l.kind = 'discount'`,
    );
    const got_lines = new Map<string, string[]>();
    for (const l of lines) {
      const list = got_lines.get(l.account_id) ?? [];
      list.push(`${l.rule}${l.tier}|${l.vat_percent}|${-l.net_minor}`);
      got_lines.set(l.account_id, list);
    }
    for (const list of got_lines.values()) list.sort();
    expect(got_lines).toEqual(expected_lines);
  });
});
