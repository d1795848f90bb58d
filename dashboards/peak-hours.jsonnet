// Peak hours: when sessions start, and what they deliver and earn, by weekday and hour of the
// day in the chosen time zone; how many sessions run at the same time.
local e = import 'evrate.libsonnet';
local g = import 'grafana.libsonnet';
local p = g.panel;
local sql = g.query.sql;

local sessions_where = '$__timeFilter(started_at) AND %s AND %s' % [e.filters.station(), e.filters.party];

// Panels by start time read the session_facts rollup (analytics/session-facts.ts): one narrow
// row per session version, partitioned by the month the session started, so a range of start
// times reads only its partitions and no breakdown JSON. FINAL keeps each session's latest version.
local facts = '${database}.session_facts FINAL';

// One row per weekday, one column per hour: sessions are attributed to the hour they started.
local grid(aggregate_if, value, extra_where) = |||
  SELECT arrayElement(%(names)s, day) AS weekday,
    %(columns)s
  FROM (
    SELECT toDayOfWeek(toDate(started_at, ${tz:singlequote})) AS day, toHour(started_at, ${tz:singlequote}) AS hour,
      energy_wh, total_excl_vat
    FROM %(facts)s
    WHERE %(where)s AND %(extra)s
  )
  GROUP BY day
  ORDER BY day
||| % {
  names: e.weekday_names,
  columns: e.hour_columns(aggregate_if, value),
  facts: facts,
  where: sessions_where,
  extra: extra_where,
};

local panels = [
  p.heatmap_table('Sessions started: weekday × hour', [sql(grid('countIf', null, '1 = 1'))], 'none')
  + p.withSize(24, 7)
  + p.withDescription('Sessions by the local weekday and hour of their start (time zone variable).'),

  p.heatmap_table('Energy (kWh) by start: weekday × hour', [sql(grid('sumIf', 'energy_wh / 1000', '1 = 1'))], 'kwatth')
  + p.withDecimals(1)
  + p.withSize(24, 7),

  p.heatmap_table('Revenue excl. VAT (${currency}) by start: weekday × hour', [
    sql(grid('sumIf', 'total_excl_vat', e.filters.currency)),
  ], 'none')
  + p.withDecimals(2)
  + p.withSize(24, 7),

  p.timeseries('Concurrent sessions (average per interval)', [sql(|||
    SELECT toDateTime(b * $__interval_s, 'UTC') AS time,
      round(sum(%(overlap)s) / (least((b + 1) * $__interval_s, %(to_s)s) - greatest(b * $__interval_s, %(from_s)s)), 3) AS concurrent_sessions
    FROM (
      SELECT greatest(toUInt32(started_at), %(from_s)s) AS t_from, least(toUInt32(stopped_at), %(to_s)s) AS t_to
      FROM %(sessions)s
      WHERE started_at <= $__toTime AND stopped_at >= $__fromTime AND %(station)s AND %(party)s
        AND stopped_at > started_at
    )
    ARRAY JOIN %(buckets)s AS b
    WHERE t_to > t_from
    GROUP BY b
    ORDER BY b
  ||| % {
    overlap: e.overlap_s('b'),
    from_s: e.from_s,
    to_s: e.to_s,
    sessions: e.sessions,
    station: e.filters.station(),
    party: e.filters.party,
    buckets: e.buckets,
  }, format='time_series')], 'none')
  + p.withDecimals(2)
  + p.withSize(16, 9)
  + p.withDescription('Plugged-in time of all sessions in each interval divided by its length.'),

  p.barchart('Sessions by hour of day', [sql(|||
    SELECT concat(if(hour < 10, '0', ''), toString(hour), ':00') AS hour_of_day, count() AS sessions
    FROM (
      SELECT toHour(started_at, ${tz:singlequote}) AS hour
      FROM %s
      WHERE %s
    )
    GROUP BY hour
    ORDER BY hour
  ||| % [facts, sessions_where])], 'none', x_field='hour_of_day')
  + p.withSize(8, 9),
];

g.dashboard.new(
  'evrate-peak-hours',
  'evrate / Peak hours',
  panels,
  [e.variables.database, e.variables.station, e.variables.party, e.variables.currency, e.variables.tz],
  names=e.names_of(['concurrent_sessions', 'sessions', 'hour_of_day', 'weekday']),
  description='Weekday x hour of sessions, energy and revenue; concurrent sessions.',
)
