// Billing: what the ledger invoiced, collected, refunded and credited, and its disputes, from the
// ledger's events as shipped to ClickHouse exactly once (billing_events, analytics/billing-events.ts;
// plain MergeTree, so no FINAL). Money panels show one currency at a time, in major units.
// Receivables are as of the end of the time range: invoices issued up to then, less what was
// received (SEPA returns taken back) and credited up to then.
local e = import 'evrate.libsonnet';
local g = import 'grafana.libsonnet';
local p = g.panel;
local sql = g.query.sql;

local events = '${database}.billing_events';
local currency = 'currency = ${currency:singlequote}';
local in_range = 'occurred_at >= $__fromTime AND occurred_at < $__toTime';
// Minor units to major: the ISO 4217 exponent (0 and 3 for the currencies listed, 2 otherwise).
// Minor units to major: the ISO 4217 exponent (0 and 3 for the currencies listed, 2 otherwise);
// of the one currency the panel shows.
local major_of(minor) = "round(%s / pow(10, transform(${currency:singlequote}, ['JPY', 'KRW', 'ISK', 'CLP', 'VND', 'XAF', 'XOF', 'BHD', 'KWD', 'JOD', 'OMR', 'TND'], [0, 0, 0, 0, 0, 0, 0, 3, 3, 3, 3, 3], 2)), 3)" % minor;

// One row per invoice of the currency issued before the end of the range, with what was received
// (less SEPA returns and refunds) and credited on it up to then; due_day and issued/paid times for
// ageing and days to pay.
local invoices = |||
  (SELECT if(kind = 'credit_note_issued', credited_invoice_id, invoice_id) AS invoice,
     maxIf(occurred_at_ms, kind = 'invoice_issued') AS issued_at_ms,
     toRelativeDayNum(maxIf(due_date, kind = 'invoice_issued')) AS due_day,
     sumIf(amount_minor, kind = 'invoice_issued') AS total_minor,
     sumIf(amount_minor, kind = 'credit_note_issued') AS credited_minor,
     sumIf(amount_minor, kind = 'payment_received') - sumIf(amount_minor, kind IN ('debit_returned', 'payment_refunded'))
       AS received_minor,
     maxIf(occurred_at_ms, kind = 'invoice_paid') AS paid_at_ms
   FROM %s
   WHERE %s AND occurred_at < $__toTime
     AND kind IN ('invoice_issued', 'credit_note_issued', 'payment_received', 'debit_returned', 'payment_refunded',
       'invoice_paid')
   GROUP BY invoice
   HAVING invoice != 0 AND issued_at_ms != 0)
||| % [events, currency];
local outstanding = '(total_minor - credited_minor - received_minor)';
local to_day = 'intDiv(toUInt32($__toTime), 86400)';
local issued_in_range = 'issued_at_ms >= toUInt32($__fromTime) * 1000';

local panels = [
  p.stat('Invoices (${currency})', [sql(|||
    SELECT count() AS issued,
      %s AS issued_amount,
      countIf(%s <= 0) AS settled,
      countIf(%s > 0 AND due_day < %s) AS overdue,
      %s AS overdue_amount,
      %s AS outstanding_amount
    FROM %s
    WHERE %s
  ||| % [
    major_of('sum(total_minor)'),
    outstanding,
    outstanding,
    to_day,
    major_of('sumIf(%s, %s > 0 AND due_day < %s)' % [outstanding, outstanding, to_day]),
    major_of('sumIf(%s, %s > 0)' % [outstanding, outstanding]),
    invoices,
    issued_in_range,
  ])], 'none')
  + p.withSize(12, 5)
  + p.withThresholds([[null, 'blue']])
  + p.withDescription('Invoices issued in the range; settled: paid or credited in full by its end; overdue: open after the due date.')
  + p.withFieldOverride('issued', 'none', 'Issued', 0)
  + p.withFieldOverride('issued_amount', 'none', 'Invoiced', 2)
  + p.withFieldOverride('settled', 'none', 'Settled', 0)
  + p.withFieldOverride('overdue', 'none', 'Overdue', 0)
  + p.withFieldOverride('overdue_amount', 'none', 'Overdue amount', 2)
  + p.withFieldOverride('outstanding_amount', 'none', 'Outstanding', 2),

  p.stat('Collection rate and days to pay (${currency})', [sql(|||
    SELECT round(100 * sum(received_minor) / sum(total_minor - credited_minor), 2) AS collection_rate_pct,
      round(100 * countIf(%s <= 0) / count(), 2) AS settled_pct,
      countIf(paid_at_ms != 0 AND %s <= 0) AS paid,
      round(avgIf((paid_at_ms - issued_at_ms) / 86400000, paid_at_ms != 0 AND %s <= 0), 2) AS days_to_pay_avg,
      round(maxIf((paid_at_ms - issued_at_ms) / 86400000, paid_at_ms != 0 AND %s <= 0), 2) AS days_to_pay_max
    FROM %s
    WHERE %s
  ||| % [outstanding, outstanding, outstanding, outstanding, invoices, issued_in_range])], 'none')
  + p.withSize(12, 5)
  + p.withThresholds([[null, 'red'], [80, 'orange'], [95, 'green']])
  + p.withDescription('Collected (received less SEPA returns and refunds) over invoiced less credited, for invoices issued in the range; days from issue to the last payment in full, of the invoices settled by a payment.')
  + p.withFieldOverride('collection_rate_pct', 'percent', 'Collection rate', 1)
  + p.withFieldOverride('settled_pct', 'percent', 'Settled', 1)
  + p.withFieldOverride('paid', 'none', 'Paid', 0)
  + p.withFieldOverride('days_to_pay_avg', 'none', 'Days to pay (mean)', 1)
  + p.withFieldOverride('days_to_pay_max', 'none', 'Days to pay (max)', 1),

  p.barchart('Receivables ageing (${currency})', [sql(|||
    SELECT multiIf(due_day >= %s, 'not due', %s - due_day <= 30, '1-30 days', %s - due_day <= 60, '31-60 days',
        %s - due_day <= 90, '61-90 days', 'over 90 days') AS age,
      count() AS invoices,
      %s AS outstanding
    FROM %s
    WHERE %s > 0
    GROUP BY age
    ORDER BY indexOf(['not due', '1-30 days', '31-60 days', '61-90 days', 'over 90 days'], age)
  ||| % [to_day, to_day, to_day, to_day, major_of('sum(%s)' % outstanding), invoices, outstanding])], 'none', x_field='age')
  + p.withSize(12, 8)
  + p.withDescription('Open amounts at the end of the range by days past the due date (all invoices issued until then).')
  + p.withFieldOverride('invoices', 'none', 'Invoices', 0)
  + p.withFieldOverride('outstanding', 'none', 'Outstanding', 2),

  p.table('Payment method mix and failure rate (${currency})', [sql(|||
    SELECT method,
      countIf(kind = 'payment_received') AS payments,
      %s AS received,
      countIf(kind = 'collection_attempted') AS attempts,
      countIf(kind IN ('collection_failed', 'debit_returned')) AS failures,
      if(countIf(kind = 'collection_attempted') = 0, 0,
        round(100 * countIf(kind IN ('collection_failed', 'debit_returned')) / countIf(kind = 'collection_attempted'), 2)) AS failure_rate_pct
    FROM %s
    WHERE %s AND %s AND method != ''
      AND kind IN ('payment_received', 'collection_attempted', 'collection_failed', 'debit_returned')
    GROUP BY method
    ORDER BY payments DESC, method
  ||| % [major_of("sumIf(amount_minor, kind = 'payment_received')"), events, in_range, currency])], 'none')
  + p.withSize(12, 8)
  + p.withDescription('Failures: declined collections and returned or rejected SEPA debits, over collection attempts.')
  + p.withFieldOverride('method', 'string', 'Method')
  + p.withFieldOverride('payments', 'none', 'Payments', 0)
  + p.withFieldOverride('received', 'none', 'Received', 2)
  + p.withFieldOverride('attempts', 'none', 'Attempts', 0)
  + p.withFieldOverride('failures', 'none', 'Failures', 0)
  + p.withFieldOverride('failure_rate_pct', 'percent', 'Failure rate', 1),

  p.timeseries('Collection attempts, failures and retries (${currency})', [sql(|||
    SELECT toDateTime(toUInt32(toStartOfDay(occurred_at, ${tz:singlequote})), 'UTC') AS time,
      countIf(kind = 'collection_attempted') AS attempts,
      countIf(kind = 'collection_attempted' AND attempt > 1) AS retries,
      countIf(kind IN ('collection_failed', 'debit_returned')) AS failures
    FROM %s
    WHERE %s AND %s AND kind IN ('collection_attempted', 'collection_failed', 'debit_returned')
    GROUP BY time
    ORDER BY time
  ||| % [events, in_range, currency], format='time_series')], 'none', bars=true)
  + p.withSize(12, 8)
  + p.withDescription('Per day in the time zone variable; a retry is an attempt after the first for its invoice.'),

  p.piechart('Payments by method (${currency})', [sql(|||
    SELECT method, %s AS received
    FROM %s
    WHERE %s AND %s AND kind = 'payment_received'
    GROUP BY method
    ORDER BY received DESC, method
  ||| % [major_of('sum(amount_minor)'), events, in_range, currency])], 'none')
  + p.withSize(12, 8)
  + p.withFieldOverride('received', 'none', 'Received', 2),

  p.table('Refunds and credit notes (${currency})', [sql(|||
    SELECT toString(toStartOfMonth(toDate(occurred_at, ${tz:singlequote}))) AS month,
      countIf(kind = 'credit_note_issued') AS credit_notes,
      %s AS credited,
      countIf(kind = 'payment_refunded') AS refunds,
      %s AS refunded
    FROM %s
    WHERE %s AND %s AND kind IN ('credit_note_issued', 'payment_refunded')
    GROUP BY month
    ORDER BY month
  ||| % [
    major_of("sumIf(amount_minor, kind = 'credit_note_issued')"),
    major_of("sumIf(amount_minor, kind = 'payment_refunded')"),
    events,
    in_range,
    currency,
  ])], 'none')
  + p.withSize(12, 8)
  + p.withFieldOverride('month', 'string', 'Month')
  + p.withFieldOverride('credit_notes', 'none', 'Credit notes', 0)
  + p.withFieldOverride('credited', 'none', 'Credited', 2)
  + p.withFieldOverride('refunds', 'none', 'Refunds', 0)
  + p.withFieldOverride('refunded', 'none', 'Refunded', 2),

  p.table('Revenue recognised per VAT rate (${currency})', [sql(|||
    SELECT vat_rate, count() AS documents, %s AS net, %s AS vat, %s AS gross
    FROM ${database}.billing_vat_revenue
    WHERE %s AND %s
    GROUP BY vat_rate
    ORDER BY toFloat64(vat_rate) DESC
  ||| % [
    major_of('sum(net_part_minor)'),
    major_of('sum(vat_part_minor)'),
    major_of('sum(net_part_minor + vat_part_minor)'),
    in_range,
    currency,
  ])], 'none')
  + p.withSize(12, 8)
  + p.withDescription('Invoices issued less credit notes, per VAT rate of their lines.')
  + p.withFieldOverride('vat_rate', 'string', 'VAT %')
  + p.withFieldOverride('documents', 'none', 'Documents', 0)
  + p.withFieldOverride('net', 'none', 'Net', 2)
  + p.withFieldOverride('vat', 'none', 'VAT', 2)
  + p.withFieldOverride('gross', 'none', 'Gross', 2),

  p.timeseries('Disputes opened and resolved', [sql(|||
    SELECT toDateTime(toUInt32(toStartOfDay(occurred_at, ${tz:singlequote})), 'UTC') AS time,
      countIf(kind = 'dispute_opened') AS opened,
      countIf(kind = 'dispute_resolved') AS resolved
    FROM %s
    WHERE %s AND kind IN ('dispute_opened', 'dispute_resolved')
    GROUP BY time
    ORDER BY time
  ||| % [events, in_range], format='time_series')], 'none', bars=true)
  + p.withSize(12, 8)
  + p.withDescription('All currencies; per day in the time zone variable.'),

  p.table('Disputes by reason and outcome', [sql(|||
    SELECT reason, count() AS cases,
      countIf(state = 'resolved') AS resolved,
      countIf(outcome IN ('accepted', 'partly_accepted', 'chargeback_lost')) AS in_claimant_favour,
      countIf(outcome IN ('rejected', 'chargeback_won')) AS rejected
    FROM ${database}.billing_dispute_cases
    WHERE opened_at_ms >= toUInt32($__fromTime) * 1000 AND opened_at_ms < toUInt32($__toTime) * 1000
    GROUP BY reason
    ORDER BY cases DESC, reason
  |||)], 'none')
  + p.withSize(12, 8)
  + p.withDescription('Cases opened in the range, all currencies, in their state now.')
  + p.withFieldOverride('reason', 'string', 'Reason')
  + p.withFieldOverride('cases', 'none', 'Cases', 0)
  + p.withFieldOverride('resolved', 'none', 'Resolved', 0)
  + p.withFieldOverride('in_claimant_favour', 'none', 'Accepted', 0)
  + p.withFieldOverride('rejected', 'none', 'Rejected', 0),

  p.table('Open dispute cases past their deadline', [sql(|||
    SELECT case_id, reason, state, source,
      toString(toDateTime(intDiv(deadline_at_ms, 1000), ${tz:singlequote})) AS deadline,
      round((toUInt32($__toTime) * 1000 - deadline_at_ms) / 86400000, 1) AS days_late
    FROM ${database}.billing_dispute_cases
    WHERE state NOT IN ('resolved', '') AND deadline_at_ms != 0 AND deadline_at_ms < toUInt32($__toTime) * 1000
    ORDER BY deadline_at_ms, case_id
  |||)], 'none')
  + p.withSize(12, 8)
  + p.withDescription('Cases not resolved whose state deadline (working days, DISPUTE_DEADLINE_WORKING_DAYS) passed before the end of the range.')
  + p.withFieldOverride('case_id', 'string', 'Case')
  + p.withFieldOverride('reason', 'string', 'Reason')
  + p.withFieldOverride('state', 'string', 'State')
  + p.withFieldOverride('source', 'string', 'Source')
  + p.withFieldOverride('deadline', 'string', 'Deadline')
  + p.withFieldOverride('days_late', 'none', 'Days late', 1),
];

g.dashboard.new(
  'evrate-billing',
  'evrate / Billing',
  panels,
  [
    e.variables.database,
    g.variable.query(
      'currency',
      'Currency',
      'SELECT DISTINCT currency FROM ${database}.billing_events WHERE currency != \'\' ORDER BY currency',
    ),
    e.variables.tz,
  ],
  description='Invoices, receivables ageing, collection, payment methods, refunds and credit notes, revenue per VAT rate and disputes, from the billing ledger.',
  time_from='now-90d',
)
