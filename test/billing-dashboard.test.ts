import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { billing_figures } from '../analytics/billing.js';
import type { Store } from '../analytics/store.js';
import { ship_billing_events } from '../billing/analytics/shipper.js';
import type { Ledger } from '../billing/ledger.js';
import { expand_query, type GrafanaQueryContext } from '../dashboards/grafana-macros.js';
import { render_dashboard, svg_to_png } from '../dashboards/render.js';
import { open_test_ledger } from './helpers/billing.js';
import { run_billing_scenario, type Scenario } from './helpers/billing-scenario.js';
import { store_transports, type TestStore } from './helpers/stores.js';

/**
 * The Billing dashboard (dashboards/billing.jsonnet) on data made by the real paths (a billing
 * run from rated sessions, card collection against the Stripe emulator, a SEPA rejection, a
 * credit note refunded to the card, dispute cases opened and resolved), shipped by the shipper:
 * every panel's query, expanded as Grafana does, gives the figures this test computes from the
 * ledger's own tables (invoices, invoice_vat, dispute_cases) and rows, on PGlite + chdb and on a
 * PostgreSQL server + ClickHouse 18.16 server. The chdb run also draws the dashboard into
 * docs/images/billing-dashboard.png (headless Chromium).
 */
const root = path.resolve(import.meta.dirname, '..');

interface Panel {
  title: string;
  type: string;
  targets: { rawSql: string }[];
}
interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: { name: string; type: string; query: string }[] };
}

function build_billing(): Dashboard {
  const dir = mkdtempSync(path.join(tmpdir(), 'evrate-billing-dash-'));
  try {
    execFileSync(process.execPath, [path.join(root, 'dashboards', 'build.mjs'), '--out', dir], {
      stdio: 'pipe',
    });
    return JSON.parse(readFileSync(path.join(dir, 'billing.json'), 'utf8')) as Dashboard;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

type Row = Record<string, string | number>;
const day_ms = 86_400_000;
const round = (x: number, d: number) => Math.round(x * 10 ** d) / 10 ** d;
const major = (minor: number) => round(minor / 100, 3);
const utc_day_text = (ms: number) =>
  `${new Date(Math.floor(ms / day_ms) * day_ms).toISOString().slice(0, 10)} 00:00:00`;

interface LedgerInvoice {
  id: number;
  kind: string;
  currency: string;
  total_minor: number;
  paid_minor: number;
  credited_minor: number;
  credited_invoice_id: number | null;
  issued_at_ms: number;
  due_date: string;
}
interface LedgerEvent {
  kind: string;
  invoice_id: number | null;
  occurred_at_ms: number;
  amount_minor: number;
  attributes: Record<string, unknown>;
}

/** The figures of every panel, from the ledger's tables, for the range [from_ms, to_ms) and EUR. */
async function expected_panels(
  ledger: Ledger,
  from_ms: number,
  to_ms: number,
): Promise<Record<string, Row[]>> {
  const docs = await ledger.query<LedgerInvoice>(
    `SELECT id, kind, currency, total_minor, paid_minor, credited_minor, credited_invoice_id, issued_at_ms, due_date::text AS due_date
     FROM invoices WHERE status <> 'draft' AND currency = 'EUR' ORDER BY id`,
  );
  const events = await ledger.query<LedgerEvent>(
    `SELECT kind, invoice_id, occurred_at_ms, amount_minor, attributes FROM billing_events
     WHERE currency = 'EUR' AND occurred_at_ms >= $1 AND occurred_at_ms < $2 ORDER BY id`,
    [from_ms, to_ms],
  );
  const invoices = docs.filter(
    (d) => d.kind === 'invoice' && d.issued_at_ms >= from_ms && d.issued_at_ms < to_ms,
  );
  const open = (d: LedgerInvoice) => d.total_minor - d.paid_minor - d.credited_minor;
  const to_day = Math.floor(to_ms / 1000 / 86_400);
  const due_day = (d: LedgerInvoice) => Date.parse(`${d.due_date}T00:00:00Z`) / day_ms;
  const overdue = invoices.filter((d) => open(d) > 0 && due_day(d) < to_day);
  // The last time each invoice was paid in full (ledger rows of invoice_paid).
  const paid_at = new Map<number, number>();
  for (const e of events) if (e.kind === 'invoice_paid') paid_at.set(e.invoice_id!, e.occurred_at_ms);
  const paid = invoices.filter((d) => d.paid_minor + d.credited_minor >= d.total_minor && paid_at.has(d.id));
  const days = paid.map((d) => (paid_at.get(d.id)! - d.issued_at_ms) / day_ms);
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

  const ages = ['not due', '1-30 days', '31-60 days', '61-90 days', 'over 90 days'];
  const age_of = (d: LedgerInvoice) => {
    const late = to_day - due_day(d);
    return late <= 0
      ? ages[0]!
      : late <= 30
        ? ages[1]!
        : late <= 60
          ? ages[2]!
          : late <= 90
            ? ages[3]!
            : ages[4]!;
  };
  const ageing = ages
    .map((age) => {
      const of = docs.filter(
        (d) => d.kind === 'invoice' && d.issued_at_ms < to_ms && open(d) > 0 && age_of(d) === age,
      );
      return { age, invoices: of.length, outstanding: major(sum(of.map(open))) };
    })
    .filter((r) => r.invoices > 0);

  const methods = new Map<
    string,
    { payments: number; received: number; attempts: number; failures: number }
  >();
  for (const e of events) {
    const method = String(e.attributes.method ?? '');
    if (method === '') continue;
    const m = methods.get(method) ?? { payments: 0, received: 0, attempts: 0, failures: 0 };
    if (e.kind === 'payment_received') {
      m.payments++;
      m.received += e.amount_minor;
    } else if (e.kind === 'collection_attempted') m.attempts++;
    else if (e.kind === 'collection_failed' || e.kind === 'debit_returned') m.failures++;
    else continue;
    methods.set(method, m);
  }
  const method_rows = [...methods.entries()]
    .map(([method, m]) => ({
      method,
      payments: m.payments,
      received: major(m.received),
      attempts: m.attempts,
      failures: m.failures,
      failure_rate_pct: m.attempts === 0 ? 0 : round((100 * m.failures) / m.attempts, 2),
    }))
    .sort((a, b) => b.payments - a.payments || (a.method < b.method ? -1 : 1));

  const per_day = new Map<string, { attempts: number; retries: number; failures: number }>();
  for (const e of events) {
    const is_attempt = e.kind === 'collection_attempted';
    if (!is_attempt && e.kind !== 'collection_failed' && e.kind !== 'debit_returned') continue;
    const key = utc_day_text(e.occurred_at_ms);
    const d = per_day.get(key) ?? { attempts: 0, retries: 0, failures: 0 };
    if (is_attempt) {
      d.attempts++;
      if (Number(e.attributes.attempt) > 1) d.retries++;
    } else d.failures++;
    per_day.set(key, d);
  }

  const months = new Map<
    string,
    { credit_notes: number; credited: number; refunds: number; refunded: number }
  >();
  const month_of = (ms: number) => new Date(ms).toISOString().slice(0, 8).concat('01');
  for (const d of docs.filter(
    (d) => d.kind === 'credit_note' && d.issued_at_ms >= from_ms && d.issued_at_ms < to_ms,
  )) {
    const m = months.get(month_of(d.issued_at_ms)) ?? {
      credit_notes: 0,
      credited: 0,
      refunds: 0,
      refunded: 0,
    };
    m.credit_notes++;
    m.credited += d.total_minor;
    months.set(month_of(d.issued_at_ms), m);
  }
  for (const e of events.filter((e) => e.kind === 'payment_refunded')) {
    const m = months.get(month_of(e.occurred_at_ms)) ?? {
      credit_notes: 0,
      credited: 0,
      refunds: 0,
      refunded: 0,
    };
    m.refunds++;
    m.refunded += e.amount_minor;
    months.set(month_of(e.occurred_at_ms), m);
  }

  const vat = await ledger.query<{ vat_rate: string; documents: number; net: number; vat: number }>(
    `SELECT trim(trailing '.' FROM trim(trailing '0' FROM v.vat_percent::text)) AS vat_rate, count(*)::int AS documents,
       sum(CASE WHEN i.kind = 'credit_note' THEN -v.net_minor ELSE v.net_minor END)::int8 AS net,
       sum(CASE WHEN i.kind = 'credit_note' THEN -v.vat_minor ELSE v.vat_minor END)::int8 AS vat
     FROM invoice_vat v JOIN invoices i ON i.id = v.invoice_id
     WHERE i.status <> 'draft' AND i.currency = 'EUR' AND i.issued_at_ms >= $1 AND i.issued_at_ms < $2
     GROUP BY v.vat_percent ORDER BY v.vat_percent DESC`,
    [from_ms, to_ms],
  );

  const cases = await ledger.query<{
    id: number;
    reason: string;
    state: string;
    source: string;
    outcome: string | null;
    opened_at_ms: number;
    resolved_at_ms: number | null;
    deadline_at_ms: number | null;
  }>(
    'SELECT id, reason, state, source, outcome, opened_at_ms, resolved_at_ms, deadline_at_ms FROM dispute_cases ORDER BY id',
  );
  const disputes_by_day = new Map<string, { opened: number; resolved: number }>();
  for (const c of cases) {
    for (const [at, field] of [
      [c.opened_at_ms, 'opened'],
      [c.resolved_at_ms, 'resolved'],
    ] as const) {
      if (at === null || at < from_ms || at >= to_ms) continue;
      const d = disputes_by_day.get(utc_day_text(at)) ?? { opened: 0, resolved: 0 };
      d[field]++;
      disputes_by_day.set(utc_day_text(at), d);
    }
  }
  const in_range_cases = cases.filter((c) => c.opened_at_ms >= from_ms && c.opened_at_ms < to_ms);
  const reasons = [...new Set(in_range_cases.map((c) => c.reason))]
    .map((reason) => {
      const of = in_range_cases.filter((c) => c.reason === reason);
      return {
        reason,
        cases: of.length,
        resolved: of.filter((c) => c.state === 'resolved').length,
        in_claimant_favour: of.filter((c) =>
          ['accepted', 'partly_accepted', 'chargeback_lost'].includes(c.outcome ?? ''),
        ).length,
        rejected: of.filter((c) => ['rejected', 'chargeback_won'].includes(c.outcome ?? '')).length,
      };
    })
    .sort((a, b) => b.cases - a.cases || (a.reason < b.reason ? -1 : 1));
  const late = cases
    .filter((c) => c.state !== 'resolved' && c.deadline_at_ms !== null && c.deadline_at_ms < to_ms)
    .sort((a, b) => a.deadline_at_ms! - b.deadline_at_ms! || a.id - b.id)
    .map((c) => ({
      case_id: c.id,
      reason: c.reason,
      state: c.state,
      source: c.source,
      deadline: new Date(c.deadline_at_ms!).toISOString().slice(0, 19).replace('T', ' '),
      days_late: round((to_ms - c.deadline_at_ms!) / day_ms, 1),
    }));

  return {
    'Invoices (${currency})': [
      {
        issued: invoices.length,
        issued_amount: major(sum(invoices.map((d) => d.total_minor))),
        settled: invoices.filter((d) => open(d) <= 0).length,
        overdue: overdue.length,
        overdue_amount: major(sum(overdue.map(open))),
        outstanding_amount: major(sum(invoices.filter((d) => open(d) > 0).map(open))),
      },
    ],
    'Collection rate and days to pay (${currency})': [
      {
        collection_rate_pct: round(
          (100 * sum(invoices.map((d) => d.paid_minor))) /
            sum(invoices.map((d) => d.total_minor - d.credited_minor)),
          2,
        ),
        settled_pct: round((100 * invoices.filter((d) => open(d) <= 0).length) / invoices.length, 2),
        paid: paid.length,
        days_to_pay_avg: round(sum(days) / days.length, 2),
        days_to_pay_max: round(Math.max(...days), 2),
      },
    ],
    'Receivables ageing (${currency})': ageing,
    'Payment method mix and failure rate (${currency})': method_rows,
    'Collection attempts, failures and retries (${currency})': [...per_day.entries()]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([time, d]) => ({ time, ...d })),
    'Payments by method (${currency})': method_rows
      .filter((m) => m.payments > 0)
      .map((m) => ({ method: m.method, received: m.received }))
      .sort((a, b) => b.received - a.received || (a.method < b.method ? -1 : 1)),
    'Refunds and credit notes (${currency})': [...months.entries()]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([month, m]) => ({
        month,
        credit_notes: m.credit_notes,
        credited: major(m.credited),
        refunds: m.refunds,
        refunded: major(m.refunded),
      })),
    'Revenue recognised per VAT rate (${currency})': vat.map((v) => ({
      vat_rate: v.vat_rate,
      documents: v.documents,
      net: major(v.net),
      vat: major(v.vat),
      gross: major(v.net + v.vat),
    })),
    'Disputes opened and resolved': [...disputes_by_day.entries()]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([time, d]) => ({ time, ...d })),
    'Disputes by reason and outcome': reasons,
    'Open dispute cases past their deadline': late,
  };
}

function problems_of(actual: Row[], expected: Row[]): string[] {
  const problems: string[] = [];
  if (actual.length !== expected.length) problems.push(`${actual.length} rows, expected ${expected.length}`);
  for (let i = 0; i < Math.min(actual.length, expected.length); i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (Object.keys(a).join() !== Object.keys(e).join())
      problems.push(`row ${i}: columns ${Object.keys(a).join()}, expected ${Object.keys(e).join()}`);
    for (const [key, want] of Object.entries(e)) {
      const got = a[key];
      if (typeof want === 'number' ? !(Math.abs(Number(got) - want) <= 0.006) : String(got) !== want)
        problems.push(`row ${i} ${key}: ${got}, expected ${want}`);
    }
  }
  return problems;
}

const pairs = [
  { name: 'PGlite + chdb', ledger: 'pglite' as const, store: store_transports[0]!, picture: true },
  {
    name: 'PostgreSQL server + ClickHouse 18.16 server',
    ledger: 'server' as const,
    store: store_transports[1]!,
    picture: false,
  },
];

describe.each(pairs)('Billing dashboard on $name', (pair) => {
  const dashboard = build_billing();
  let ledger: Ledger;
  let dispose_ledger: () => Promise<void>;
  let test_store: TestStore;
  let store: Store;
  let scenario: Scenario;
  const from_ms = Date.parse('2026-10-01T00:00:00Z');
  // The card collections happen now: the range ends a day after.
  const to_ms = (Math.floor(Date.now() / 3_600_000) + 24) * 3_600_000;

  beforeAll(async () => {
    const opened = await open_test_ledger(pair.ledger);
    ledger = opened.ledger;
    dispose_ledger = opened.dispose;
    test_store = await pair.store.open();
    store = test_store.store;
    scenario = await run_billing_scenario(ledger, store);
    await ship_billing_events(ledger, store, { batch_max: 7 });
  }, 240_000);
  afterAll(async () => {
    await scenario?.stop();
    await test_store?.dispose();
    await dispose_ledger?.();
  });

  const context = (currency_options: string[]): GrafanaQueryContext => ({
    from_ms,
    to_ms,
    interval_s: 86_400,
    variables: {
      database: { kind: 'identifier', value: store.database },
      currency: { kind: 'values', selected: ['EUR'], options: currency_options },
      tz: { kind: 'values', selected: ['UTC'], options: ['UTC'] },
    },
  });

  it('ships every ledger event once (counted without FINAL)', async () => {
    const [ledger_count] = await ledger.query<{ n: number }>('SELECT count(*)::int AS n FROM billing_events');
    const [shipped] = await store.query<{ n: string; ids: string }>(
      `SELECT count() AS n, uniqExact(id) AS ids FROM ${store.database}.billing_events`,
    );
    expect(Number(shipped!.n)).toBe(ledger_count!.n);
    expect(Number(shipped!.ids)).toBe(ledger_count!.n);
    const kinds = await store.query<{ kind: string }>(
      `SELECT DISTINCT kind FROM ${store.database}.billing_events ORDER BY kind`,
    );
    expect(kinds.map((k) => k.kind)).toEqual(
      expect.arrayContaining([
        'invoice_issued',
        'invoice_paid',
        'payment_received',
        'collection_attempted',
        'collection_failed',
        'debit_returned',
        'credit_note_issued',
        'payment_refunded',
        'dispute_opened',
        'dispute_state_changed',
        'dispute_resolved',
      ]),
    );
  });

  it('the currency variable lists the currencies of the events', async () => {
    const variable = dashboard.templating.list.find((v) => v.name === 'currency')!;
    const rows = await store.query<Row>(expand_query(variable.query, context([])));
    expect(rows.map((r) => String(Object.values(r)[0]))).toEqual(['EUR']);
  });

  it('every panel shows the figures computed from the ledger', async () => {
    const expected = await expected_panels(ledger, from_ms, to_ms);
    expect(dashboard.panels.map((p) => p.title).sort()).toEqual(Object.keys(expected).sort());
    const problems: string[] = [];
    for (const panel of dashboard.panels) {
      const want = expected[panel.title]!;
      expect(want.length, `${panel.title}: the scenario must give it something to show`).toBeGreaterThan(0);
      const rows = await store.query<Row>(expand_query(panel.targets[0]!.rawSql, context(['EUR'])));
      for (const p of problems_of(rows, want)) problems.push(`${panel.title}: ${p}`);
    }
    expect(problems).toEqual([]);
  });

  it('analytics/billing.ts gives the same figures as the ledger', async () => {
    const figures = await billing_figures(store, { from_ms, to_ms, currency: 'EUR' });
    const expected = await expected_panels(ledger, from_ms, to_ms);
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a panel title with its Grafana variable
    const invoices = expected['Invoices (${currency})']![0]!;
    expect(figures.invoices).toMatchObject({ issued: invoices.issued, overdue: invoices.overdue });
    expect(major(figures.invoices.issued_minor)).toBe(invoices.issued_amount);
    expect(figures.vat.map((v) => v.vat_rate)).toEqual(
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a panel title with its Grafana variable
      expected['Revenue recognised per VAT rate (${currency})']!.map((v) => v.vat_rate),
    );
    expect(figures.disputes_past_deadline.map((c) => c.case_id)).toEqual(
      expected['Open dispute cases past their deadline']!.map((c) => c.case_id),
    );
  });

  it.runIf(pair.picture)('draws the dashboard into docs/images/billing-dashboard.png', async () => {
    const svg = await render_dashboard(
      store,
      dashboard as never,
      { ...context(['EUR']), interval_s: 604_800 },
      { currency: 'EUR', tz: 'UTC' },
      'billing of the test scenario (real paths)',
    );
    const out = path.join(root, 'docs', 'images');
    mkdirSync(out, { recursive: true });
    const png = await svg_to_png(svg, path.join(out, 'billing-dashboard.png'));
    expect(png.byteLength).toBeGreaterThan(10_000);
  });
});
