// Revenue: what the rated sessions earned, by day, station, tariff, payment method, party and
// currency; revenue per session and per kWh; average session duration and energy.
// Sessions count in the range where they ended (their CDR date); each at its latest rated version.
local e = import 'evrate.libsonnet';
local g = import 'grafana.libsonnet';
local p = g.panel;
local sql = g.query.sql;

local where = '$__timeFilter(stopped_at) AND %s AND %s' % [e.filters.station(), e.filters.party];
local where_currency = '%s AND %s' % [where, e.filters.currency];

// Ratios in Float64: Decimal division truncates to the scale, and differently across versions.
local per_kwh = 'round(toFloat64(sum(total_excl_vat)) / (sum(energy_wh) / 1000), 4)';

// Money with two decimals; counts stay whole.
local money(panel) = panel + p.withDecimals(2) + p.withFieldOverride('sessions', 'none', null, 0);

local panels = [
  p.stat('Key figures (${currency})', [sql(|||
    SELECT sum(total_excl_vat) AS revenue_excl_vat,
      sum(total_incl_vat) AS revenue_incl_vat,
      count() AS sessions,
      round(toFloat64(sum(total_excl_vat)) / count(), 4) AS revenue_per_session,
      %s AS revenue_per_kwh,
      round(avg(duration_s), 1) AS avg_duration_s,
      round(avg(energy_wh) / 1000, 3) AS avg_energy_kwh
    FROM %s
    WHERE %s
  ||| % [per_kwh, e.sessions, where_currency])], 'none')
  + p.withSize(24, 5)
  + p.withThresholds([[null, 'blue']])
  + p.withFieldOverride('revenue_excl_vat', 'none', 'Revenue excl. VAT', 2)
  + p.withFieldOverride('revenue_incl_vat', 'none', 'Revenue incl. VAT', 2)
  + p.withFieldOverride('sessions', 'none', 'Sessions', 0)
  + p.withFieldOverride('revenue_per_session', 'none', 'Per session', 2)
  + p.withFieldOverride('revenue_per_kwh', 'none', 'Per kWh', 3)
  + p.withFieldOverride('avg_duration_s', 's', 'Average duration')
  + p.withFieldOverride('avg_energy_kwh', 'kwatth', 'Average energy', 1),

  money(p.timeseries('Revenue by day (${currency})', [sql(|||
    SELECT toDateTime(toUInt32(toStartOfDay(stopped_at, ${tz:singlequote})), 'UTC') AS time,
      sum(total_excl_vat) AS revenue_excl_vat,
      sum(total_incl_vat) AS revenue_incl_vat
    FROM %s
    WHERE %s
    GROUP BY time
    ORDER BY time
  ||| % [e.sessions, where_currency], format='time_series')], 'none', bars=true))
  + p.withSize(24, 8)
  + p.withDescription('Days in the time zone variable; sessions by the day they ended.'),

  money(p.table('Revenue by station (${currency})', [sql(|||
    SELECT charge_point_id AS station, count() AS sessions, round(sum(energy_wh) / 1000, 3) AS energy_kwh,
      sum(total_excl_vat) AS revenue_excl_vat, sum(total_incl_vat) AS revenue_incl_vat,
      %s AS revenue_per_kwh
    FROM %s
    WHERE %s
    GROUP BY station
    ORDER BY revenue_excl_vat DESC, station
  ||| % [per_kwh, e.sessions, where_currency])], 'none'))
  + p.withFieldOverride('energy_kwh', 'kwatth', 'Energy', 1)
  + p.withFieldOverride('revenue_per_kwh', 'none', 'Per kWh', 3)
  + p.withSize(12, 9),

  money(p.barchart('Revenue by tariff (${currency})', [sql(|||
    SELECT concat(tariff_id, ' v', toString(tariff_version)) AS tariff, count() AS sessions,
      sum(total_excl_vat) AS revenue_excl_vat
    FROM %s
    WHERE %s
    GROUP BY tariff
    ORDER BY revenue_excl_vat DESC, tariff
  ||| % [e.sessions, where_currency])], 'none', x_field='tariff'))
  + p.withFieldOverride('sessions', 'none', 'Sessions', 0)
  + p.withSize(12, 9),

  money(p.piechart('Revenue by payment method (${currency})', [sql(|||
    SELECT if(payment_method = '', 'UNKNOWN', payment_method) AS method, sum(total_excl_vat) AS revenue_excl_vat
    FROM %s
    WHERE %s
    GROUP BY method
    ORDER BY revenue_excl_vat DESC, method
  ||| % [e.sessions, where_currency])], 'none'))
  + p.withSize(8, 9),

  money(p.table('Revenue by operator / party (${currency})', [sql(|||
    SELECT if(party = '', 'own', party) AS party_id, count() AS sessions,
      round(sum(energy_wh) / 1000, 3) AS energy_kwh, sum(total_excl_vat) AS revenue_excl_vat
    FROM %s
    WHERE %s
    GROUP BY party_id
    ORDER BY revenue_excl_vat DESC, party_id
  ||| % [e.sessions, where_currency])], 'none'))
  + p.withFieldOverride('party_id', 'string', 'Party')
  + p.withFieldOverride('energy_kwh', 'kwatth', 'Energy', 1)
  + p.withSize(8, 9),

  money(p.table('Revenue by currency (all currencies)', [sql(|||
    SELECT currency, count() AS sessions, sum(total_excl_vat) AS revenue_excl_vat,
      sum(total_incl_vat) AS revenue_incl_vat
    FROM %s
    WHERE %s
    GROUP BY currency
    ORDER BY currency
  ||| % [e.sessions, where])], 'none'))
  + p.withSize(8, 9)
  + p.withDescription('Not filtered by the currency variable: one row per currency, never summed across.'),
];

g.dashboard.new(
  'evrate-revenue',
  'evrate / Revenue',
  panels,
  [e.variables.database, e.variables.station, e.variables.party, e.variables.currency, e.variables.tz],
  names=e.names_of(['revenue_excl_vat', 'revenue_incl_vat', 'sessions', 'station', 'method', 'tariff', 'revenue_per_kwh']),
  description='Revenue by day, station, tariff, payment method, party and currency.',
  time_from='now-30d',
)
