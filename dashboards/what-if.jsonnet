// Pricing what-if: scenarios of candidate tariffs replayed on past sessions (rating/what-if.ts,
// tables in analytics/what-if-tables.ts), compared side by side: revenue and price per kWh
// before (as rated) and after (as the candidate would have priced), in total and by station,
// weekday x hour, payment method and plan; the sessions whose price changes most; the share of
// sessions held at min_price or max_price.
//
// A scenario is chosen by its name; a name run again shows its latest finished run. Each candidate
// tariff of a scenario is one row, labelled "scenario / tariff". The figures are stored per
// scenario, so the time picker does not filter them (a scenario's period is its own).
// Every query runs on ClickHouse 18.16 and on current servers: the stored columns are renamed in
// a subquery, so that no alias of a sum names a column it sums (ClickHouse aliases are visible
// in the whole SELECT), and ratios are Float64 (Decimal division differs across versions).
local e = import 'evrate.libsonnet';
local g = import 'grafana.libsonnet';
local p = g.panel;
local sql = g.query.sql;
// The text without its last newline (this jsonnet has no std.rstrip).
local chomp(s) = if std.length(s) > 0 && s[std.length(s) - 1] == '\n' then std.substr(s, 0, std.length(s) - 1) else s;

// The latest finished run of every name (what_if_scenarios keeps every progress report; FINAL
// keeps a scenario's last one).
local latest = |||
  scenario_id IN (
      SELECT argMax(scenario_id, created_at_ms) FROM ${database}.what_if_scenarios FINAL
      WHERE state = 'done' GROUP BY name
    )
|||;
local chosen = "%s AND $__conditionalAll(name IN (${scenario:singlequote}), $scenario) AND currency = ${currency:singlequote}" % chomp(latest);

// The figures of one dimension of the chosen scenarios, their columns renamed.
local figures(dimension) = |||
  (
    SELECT concat(name, ' / ', tariff_id) AS label, key AS k, weekday AS wd, hour,
      sessions AS n, energy_wh AS wh, before_excl_vat AS b_excl, after_excl_vat AS a_excl,
      before_incl_vat AS b_incl, after_incl_vat AS a_incl,
      min_price_sessions AS n_min, max_price_sessions AS n_max
    FROM ${database}.what_if_figures FINAL
    WHERE dimension = '%s' AND %s
  )
||| % [dimension, chosen];

local per_kwh(column) = 'round(toFloat64(sum(%s)) * 1000 / nullIf(sum(wh), 0), 4)' % column;
local sums = |||
  sum(n) AS sessions,
    sum(b_excl) AS before_excl_vat, sum(a_excl) AS after_excl_vat, sum(a_excl) - sum(b_excl) AS difference_excl_vat,
    %s AS before_per_kwh, %s AS after_per_kwh
||| % [per_kwh('b_excl'), per_kwh('a_excl')];

local money(panel) = panel + p.withDecimals(2) + p.withFieldOverride('sessions', 'none', null, 0);
local per_kwh_fields(panel) = panel
  + p.withFieldOverride('before_per_kwh', 'none', 'Per kWh before', 4)
  + p.withFieldOverride('after_per_kwh', 'none', 'Per kWh after', 4);
// A text column of a heatmap table is a label, not a coloured cell.
local label_column(name) = {
  fieldConfig+: {
    overrides+: [{
      matcher: { id: 'byName', options: name },
      properties: [{ id: 'custom.cellOptions', value: { type: 'auto' } }, { id: 'unit', value: 'string' }],
    }],
  },
};

// Half-width tables: short headers, the title says excl. VAT.
local short_names(panel) = panel
  + p.withDisplayNames({
    before_excl_vat: 'Before',
    after_excl_vat: 'After',
    difference_excl_vat: 'Change',
    before_per_kwh: 'Before/kWh',
    after_per_kwh: 'After/kWh',
  });

// One table per dimension: a row per scenario and key.
local by(dimension, key_name, title, w) =
  short_names(per_kwh_fields(money(p.table(title, [sql(|||
    SELECT label AS scenario, k AS %(key)s,
      %(sums)s
    FROM %(figures)s
    GROUP BY scenario, %(key)s
    ORDER BY scenario, %(key)s
  ||| % { key: key_name, sums: chomp(sums), figures: chomp(figures(dimension)) })], 'none'))))
  + p.withSize(w, 9);

local panels = [
  per_kwh_fields(money(p.table('Scenarios compared (${currency})', [sql(|||
    SELECT label AS scenario, %(sums)s,
      round(sum(wh) / 1000, 3) AS energy_kwh,
      round(toFloat64(sum(a_excl) - sum(b_excl)) * 100 / nullIf(toFloat64(sum(b_excl)), 0), 2) AS change_pct,
      sum(b_incl) AS before_incl_vat, sum(a_incl) AS after_incl_vat,
      round(sum(n_min) * 100 / sum(n), 2) AS min_price_pct,
      round(sum(n_max) * 100 / sum(n), 2) AS max_price_pct
    FROM %(figures)s
    GROUP BY scenario
    ORDER BY scenario
  ||| % { sums: chomp(sums), figures: chomp(figures('total')) })], 'none')))
  + p.withFieldOverride('energy_kwh', 'kwatth', 'Energy', 1)
  + p.withFieldOverride('change_pct', 'percent', 'Change', 2)
  + p.withFieldOverride('min_price_pct', 'percent', 'At min_price', 2)
  + p.withFieldOverride('max_price_pct', 'percent', 'At max_price', 2)
  + p.withSize(24, 5)
  + p.withDescription('Before: the sessions as rated. After: the same sessions replayed under the candidate tariff. At min_price / max_price: the share of sessions whose price the limit set.'),

  money(p.barchart('Revenue excl. VAT before and after (${currency})', [sql(|||
    SELECT label AS scenario, sum(b_excl) AS before_excl_vat, sum(a_excl) AS after_excl_vat
    FROM %s
    GROUP BY scenario
    ORDER BY scenario
  ||| % chomp(figures('total')))], 'none', x_field='scenario'))
  + p.withSize(12, 7),

  p.barchart('Sessions held at min_price / max_price (%)', [sql(|||
    SELECT label AS scenario, round(sum(n_min) * 100 / sum(n), 2) AS min_price_pct,
      round(sum(n_max) * 100 / sum(n), 2) AS max_price_pct
    FROM %s
    GROUP BY scenario
    ORDER BY scenario
  ||| % chomp(figures('total')))], 'percent', x_field='scenario')
  + p.withDecimals(2)
  + p.withFieldOverride('min_price_pct', 'percent', 'At min_price', 2)
  + p.withFieldOverride('max_price_pct', 'percent', 'At max_price', 2)
  + p.withSize(12, 7),

  money(p.heatmap_table('Revenue change excl. VAT (${currency}): weekday × hour', [sql(|||
    SELECT label AS scenario, arrayElement(%(names)s, wd) AS weekday,
      %(columns)s
    FROM %(figures)s
    GROUP BY scenario, wd
    ORDER BY scenario, wd
  ||| % {
    names: e.weekday_names,
    columns: e.hour_columns('sumIf', 'a_excl - b_excl'),
    figures: chomp(figures('weekday_hour')),
  })], 'none'))
  + label_column('scenario')
  + p.withSize(24, 8)
  + p.withDescription("After minus before, by the weekday and hour of the session's start in its station's time zone."),

  by('station', 'station', 'By station, excl. VAT (${currency})', 12),

  short_names(per_kwh_fields(money(p.table('By weekday and hour, excl. VAT (${currency})', [sql(|||
    SELECT label AS scenario, arrayElement(%(names)s, wd) AS weekday, hour,
      %(sums)s
    FROM %(figures)s
    GROUP BY scenario, wd, hour
    ORDER BY scenario, wd, hour
  ||| % { names: e.weekday_names, sums: chomp(sums), figures: chomp(figures('weekday_hour')) })], 'none'))))
  + p.withFieldOverride('hour', 'none', 'Hour', 0)
  + p.withSize(12, 9),

  by('payment_method', 'method', 'By payment method, excl. VAT (${currency})', 12),
  by('plan', 'plan', 'By plan, excl. VAT (${currency})', 12),

  money(p.table('Sessions whose price changes most (${currency})', [sql(|||
    SELECT concat(name, ' / ', tariff_id) AS scenario, rank, session_id, station_id AS station,
      before_excl_vat, after_excl_vat, after_excl_vat - before_excl_vat AS difference_excl_vat,
      price_limit_applied
    FROM ${database}.what_if_changes FINAL
    WHERE %s
    ORDER BY rank, scenario
  ||| % chosen)], 'none'))
  + p.withFieldOverride('rank', 'none', 'Rank', 0)
  + p.withFieldOverride('session_id', 'string', 'Session', null)
  + p.withFieldOverride('price_limit_applied', 'string', 'Limit applied', null)
  + p.withSize(24, 9)
  + p.withDescription('Ranked by the size of the change, up or down, per scenario (rank 1 of each first); the limit is the min_price or max_price that set the price.'),
];

g.dashboard.new(
  'evrate-what-if',
  'evrate / Pricing what-if',
  panels,
  [
    e.variables.database,
    g.variable.query(
      'scenario',
      'Scenario',
      "SELECT DISTINCT name FROM ${database}.what_if_scenarios FINAL WHERE state = 'done' ORDER BY name",
      multi=true,
      include_all=true,
    ),
    // Money is never summed across currencies: one at a time, as on the revenue dashboard.
    g.variable.query(
      'currency',
      'Currency',
      'SELECT DISTINCT currency FROM ${database}.what_if_figures ORDER BY currency',
    ),
  ],
  names={
    scenario: 'Scenario / tariff',
    sessions: 'Sessions',
    station: 'Station',
    method: 'Payment method',
    plan: 'Plan',
    weekday: 'Weekday',
    before_excl_vat: 'Before excl. VAT',
    after_excl_vat: 'After excl. VAT',
    difference_excl_vat: 'Difference excl. VAT',
    before_incl_vat: 'Before incl. VAT',
    after_incl_vat: 'After incl. VAT',
  },
  description='Candidate tariffs replayed on past sessions, compared with what the sessions were rated.',
  time_from='now-30d',
)
