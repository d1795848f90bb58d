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
import { start_test_nats } from './helpers/nats.js';
import { eventually } from './helpers/stack.js';

/**
 * 100,000 final sessions of 1,000 accounts, fed through the rated feed (JetStream, durable
 * consumer), billed in one run; every invoice's total is checked against an independent
 * computation here with decimal.js from the rated totals and the fees.
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
    for (let a = 0; a < accounts_n; a++) {
      const account_id = `A${String(a).padStart(4, '0')}`;
      // Every 10th account has a membership of 9.99 a month from 11 November: 20 of 30 days.
      const member = a % 10 === 0;
      await put_account(
        ledger,
        validate_account(account_id, {
          kind: 'company',
          name: `Fleet ${a}`,
          legal_entity_id: 'nl',
          currency: 'EUR',
          address: { line1: 'Weg 1', postal_code: '1000 AA', city: 'Amsterdam', country_code: 'NL' },
          tokens: [`${account_id}-T0`, `${account_id}-T1`],
          memberships: member ? [{ plan_id: 'fleet', monthly_fee: '9.99', starts_on: '2026-11-11' }] : [],
        }),
      );
      const nets = new Map<string, Decimal>();
      for (let s = 0; s < sessions_per_account; s++) {
        // Totals with four decimals, so that rounding each line to cents matters.
        const excl = new Decimal(Math.floor(random() * 2_000_000)).div(10_000);
        const vat_percent = a % 7 === 0 && s % 3 === 0 ? '9' : '21';
        rows.push(
          rated_row({
            session_id: `${account_id}-S${s}`,
            id_tag: `${account_id}-T${s % 2}`,
            stopped_at_ms: november_ms + Math.floor(random() * 29 * 86_400_000),
            total_excl_vat: excl.toString(),
            vat_percent,
          }),
        );
        nets.set(vat_percent, (nets.get(vat_percent) ?? new Decimal(0)).add(half_up_cents(excl)));
      }
      if (member) {
        // 9.99 x 20 / 30 = 6.66, at the legal entity's 21 % for fees.
        nets.set('21', (nets.get('21') ?? new Decimal(0)).add('6.66'));
      }
      let total = new Decimal(0);
      for (const [rate, net] of nets) total = total.add(net).add(half_up_cents(net.mul(rate).div(100)));
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
    // Numbers 1..1000 without a gap; 100 session lines each, plus the fee line of every 10th account.
    expect(invoices.map((i) => i.number)).toEqual(Array.from({ length: accounts_n }, (_, i) => i + 1));
    expect(invoices.reduce((sum, i) => sum + i.lines, 0)).toBe(100_000 + 100);
  });
});
