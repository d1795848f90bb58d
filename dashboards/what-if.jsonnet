// Pricing what-if: scenarios of candidate tariffs replayed on past sessions (rating/what-if.ts),
// compared side by side: revenue and price per kWh before (as rated) and after (as the candidate
// would have priced), by station, weekday x hour, payment method and plan; the sessions whose
// price changes most; the share of sessions at min_price / max_price.
// A scenario is chosen by its name; each candidate tariff of it is one row (scenario / tariff).
local e = import 'evrate.libsonnet';
local g = import 'grafana.libsonnet';
local p = g.panel;
local sql = g.query.sql;

// Renamed inside, so that the sums' aliases never shadow the columns they sum.
local figures = '(SELECT *, before_excl_vat AS b_excl, after_excl_vat AS a_excl, before_incl_vat AS b_incl, after_incl_vat AS a_incl FROM ${database}.what_if_figures FINAL)';
local where(dimension) =
  "dimension = '%s' AND $__conditionalAll(name IN (${scenario:singlequote}), $scenario) AND currency = ${wi_currency:singlequote}" % dimension;
local candidate = "concat(name, ' / ', tariff_id) AS scenario";
// Ratios in Float64: Decimal division truncates to the scale, and differently across versions.
local per_kwh(column) = 'round(toFloat64(sum(%s)) / (sum(energy_wh) / 1000), 4)' % column;
local money(panel) = panel + p.withDecimals(2) + p.withFieldOverride('sessions', 'none', null, 0);

local by(dimension, key_name, title, w) =
  money(p.table(title, [sql(|||
    SELECT %s, key AS %s, sum(sessions) AS sessions,
      sum(b_excl) AS before_excl_vat, sum(a_excl) AS after_excl_vat,
      sum(a_excl) - sum(b_excl) AS difference_excl_vat,
      %s AS before_per_kwh, %s AS after_per_kwh
    FROM %s
    WHERE %s
    GROUP BY scenario, %s
    ORDER BY scenario, %s
  ||| % [candidate, key_name, per_kwh('b_excl'), per_kwh('a_excl'), figures, where(dimension), key_name, key_name])], 'none'))
  + p.withFieldOverride('before_per_kwh', 'none', 'Per kWh before', 4)
  + p.withFieldOverride('after_per_kwh', 'none', 'Per kWh after', 4)
  + p.withSize(w, 9);

local panels = [
  money(p.table('Scenarios compared (${wi_currency})', [sql(|||
    SELECT %s, sum(sessions) AS sessions, round(sum(energy_wh) / 1000, 3) AS energy_kwh,
      sum(b_excl) AS before_excl_vat, sum(a_excl) AS after_excl_vat,
      sum(a_excl) - sum(b_excl) AS difference_excl_vat,
      sum(b_incl) AS before_incl_vat, sum(a_incl) AS after_incl_vat,
      %s AS before_per_kwh, %s AS after_per_kwh,
      round(sum(min_price_sessions) * 100 / sum(sessions), 2) AS min_price_pct,
      round(sum(max_price_sessions) * 100 / sum(sessions), 2) AS max_price_pct
    FROM %s
    WHERE %s
    GROUP BY scenario
    ORDER BY scenario
  ||| % [candidate, per_kwh('b_excl'), per_kwh('a_excl'), figures, where('total')])], 'none'))
  + p.withFieldOverride('energy_kwh', 'kwatth', 'Energy', 1)
  + p.withFieldOverride('before_per_kwh', 'none', 'Per kWh before', 4)
  + p.withFieldOverride('after_per_kwh', 'none', 'Per kWh after', 4)
  + p.withFieldOverride('min_price_pct', 'percent', 'At min_price', 2)
  + p.withFieldOverride('max_price_pct', 'percent', 'At max_price', 2)
  + p.withSize(24, 6)
  + p.withDescription('Before: the sessions as rated. After: the same sessions replayed under the candidate tariff.'),

  money(p.barchart('Revenue after minus before, by station (${wi_currency})', [sql(|||
    SELECT key AS station, sum(a_excl) - sum(b_excl) AS difference_excl_vat
    FROM %s
    WHERE %s
    GROUP BY station
    ORDER BY difference_excl_vat DESC, station
  ||| % [figures, where('station')])], 'none', x_field='station'))
  + p.withSize(12, 9)
  + p.withDescription('Summed over the scenarios selected.'),

  by('station', 'station', 'By station (${wi_currency})', 12),

  money(p.heatmap_table('Difference by weekday and hour (${wi_currency})', [sql(|||
    SELECT weekday, hour, sum(sessions) AS sessions, sum(a_excl) - sum(b_excl) AS difference_excl_vat
    FROM %s
    WHERE %s
    GROUP BY weekday, hour
    ORDER BY weekday, hour
  ||| % [figures, where('weekday_hour')])], 'none'))
  + p.withSize(12, 9)
  + p.withDescription("Weekday 1 = Monday; hours of the session's start in its station's time zone."),

  by('payment_method', 'method', 'By payment method (${wi_currency})', 12),
  by('plan', 'plan', 'By plan (${wi_currency})', 12),

  money(p.table('Sessions whose price changes most (${wi_currency})', [sql(|||
    SELECT concat(name, ' / ', tariff_id) AS scenario, rank, session_id, station_id AS station,
      before_excl_vat, after_excl_vat, after_excl_vat - before_excl_vat AS difference_excl_vat,
      price_limit_applied
    FROM ${database}.what_if_changes FINAL
    WHERE $__conditionalAll(name IN (${scenario:singlequote}), $scenario) AND currency = ${wi_currency:singlequote}
    ORDER BY scenario, rank
  |||)], 'none'))
  + p.withSize(12, 9),
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
      'SELECT DISTINCT name FROM ${database}.what_if_scenarios ORDER BY name',
      multi=true,
      include_all=true,
    ),
    g.variable.query(
      'wi_currency',
      'Currency',
      'SELECT DISTINCT currency FROM ${database}.what_if_figures ORDER BY currency',
    ),
  ],
  names={
    sessions: 'Sessions',
    station: 'Station',
    before_excl_vat: 'Before excl. VAT',
    after_excl_vat: 'After excl. VAT',
    difference_excl_vat: 'Difference excl. VAT',
    before_incl_vat: 'Before incl. VAT',
    after_incl_vat: 'After incl. VAT',
  },
  description='Candidate tariffs replayed on past sessions, compared with what the sessions were rated.',
  time_from='now-30d',
)
