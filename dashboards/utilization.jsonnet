// Utilization: how much of the time connectors are occupied and charging, per station and EVSE,
// the energy delivered, the least used stations, and the time cars stay plugged in without charging.
local e = import 'evrate.libsonnet';
local g = import 'grafana.libsonnet';
local p = g.panel;
local sql = g.query.sql;

local pct_thresholds = [[null, 'red'], [15, 'orange'], [40, 'green']];

// Occupied and charging shares of `span` times the EVSEs counted, in percent.
local shares(evses, span) = |||
  round(100 * sumIf(t_to - t_from, kind = 'occupied') / (%(evses)s * %(span)s), 2) AS occupied_pct,
  round(100 * sumIf(t_to - t_from, kind = 'charging') / (%(evses)s * %(span)s), 2) AS charging_pct
||| % { evses: evses, span: span };

// The same per interval bucket b, from the pieces of the parts inside it.
local bucket_shares(evses) = |||
  round(100 * sumIf(%(overlap)s, kind = 'occupied') / (%(evses)s * %(span)s), 2) AS occupied_pct,
  round(100 * sumIf(%(overlap)s, kind = 'charging') / (%(evses)s * %(span)s), 2) AS charging_pct
||| % { overlap: e.overlap_s('b'), evses: evses, span: e.bucket_span_s('b') };

local sessions_where = '$__timeFilter(stopped_at) AND %s AND %s' % [e.filters.station(), e.filters.party];

local panels = [
  p.stat('Occupancy', [sql(|||
    SELECT round(100 * sumIf(t_to - t_from, kind = 'occupied') / (%s * %s), 2) AS occupied_pct
    FROM (%s)
  ||| % [e.evse_count, e.span_s, e.utilization_parts])], 'percent')
  + p.withThresholds(pct_thresholds)
  + p.withDescription('Share of EVSE time with a vehicle at the connector (Preparing, Charging, SuspendedEV, SuspendedEVSE, Finishing; 2.0.1 Occupied).'),

  p.stat('Charging', [sql(|||
    SELECT round(100 * sumIf(t_to - t_from, kind = 'charging') / (%s * %s), 2) AS charging_pct
    FROM (%s)
  ||| % [e.evse_count, e.span_s, e.utilization_parts])], 'percent')
  + p.withThresholds(pct_thresholds)
  + p.withDescription('Share of EVSE time charging: each session from its start for its duration minus its idle time.'),

  p.stat('Energy delivered', [sql(|||
    SELECT round(sum(energy_wh) / 1000, 3) AS energy_kwh
    FROM %s
    WHERE %s
  ||| % [e.sessions, sessions_where])], 'kwatth')
  + p.withThresholds([[null, 'blue']])
  + p.withDescription('Energy of the sessions that ended in the range (latest rated version of each).'),

  p.stat('Sessions', [sql(|||
    SELECT count() AS sessions
    FROM %s
    WHERE %s
  ||| % [e.sessions, sessions_where])], 'none')
  + p.withThresholds([[null, 'blue']]),

  p.timeseries('Occupancy and charging over time', [sql(|||
    SELECT toDateTime(b * $__interval_s, 'UTC') AS time,
      %(shares)s
    FROM (%(parts)s)
    ARRAY JOIN %(buckets)s AS b
    WHERE t_to > t_from
    GROUP BY b
    ORDER BY b
  ||| % {
    shares: bucket_shares('(SELECT %s FROM (%s))' % [e.evse_count, e.utilization_parts]),
    parts: e.utilization_parts,
    buckets: e.buckets,
  }, format='time_series')], 'percent')
  + p.withMinMax(0, 100)
  + p.withSize(12, 9),

  p.timeseries('Occupancy per station', [sql(|||
    SELECT toDateTime(b * $__interval_s, 'UTC') AS time, station,
      round(100 * sumIf(%(overlap)s, kind = 'occupied') / (any(evses) * %(span)s), 2) AS occupied_pct
    FROM (
      SELECT station, kind, t_from, t_to, evses
      FROM (%(parts)s) AS parts
      ANY LEFT JOIN (%(counts)s) AS counts USING station
      WHERE kind = 'occupied' AND t_to > t_from
      UNION ALL
      -- Every station over the whole range, so an interval without occupied time reads 0.
      SELECT station, 'station' AS kind, %(from_s)s AS t_from, %(to_s)s AS t_to, evses
      FROM (%(counts)s)
    )
    ARRAY JOIN %(buckets)s AS b
    GROUP BY b, station
    ORDER BY b, station
  ||| % {
    overlap: e.overlap_s('b'),
    span: e.bucket_span_s('b'),
    parts: e.utilization_parts,
    counts: "SELECT station, uniqExact(evse) AS evses FROM (%s) WHERE kind != 'range' GROUP BY station" % e.utilization_parts,
    from_s: e.from_s,
    to_s: e.to_s,
    buckets: e.buckets,
  }, format='time_series')], 'percent')
  + p.withMinMax(0, 100)
  + p.withSize(12, 9),

  p.table('Occupancy per station and EVSE', [sql(|||
    SELECT station, evse,
      %(shares)s
    FROM (%(parts)s)
    WHERE kind != 'range'
    GROUP BY station, evse
    ORDER BY station, evse
  ||| % { shares: shares('1', e.span_s), parts: e.utilization_parts })], 'percent')
  + p.withFieldOverride('evse', 'none', 'EVSE')
  + p.withFieldOverride('station', 'string', 'Station')
  + p.withThresholds(pct_thresholds)
  + p.withSize(12, 9),

  p.timeseries('Energy delivered per interval', [sql(|||
    SELECT %s AS time, round(sum(energy_wh) / 1000, 3) AS energy_kwh
    FROM %s
    WHERE %s
    GROUP BY time
    ORDER BY time
  ||| % [e.bucket('stopped_at'), e.sessions, sessions_where], format='time_series')], 'kwatth', bars=true)
  + p.withSize(12, 9)
  + p.withDescription('Attributed to the interval in which each session ended.'),

  p.table('Underutilized stations (least occupied first)', [sql(|||
    SELECT station, evses, occupied_pct, charging_pct, sessions, energy_kwh
    FROM (
      SELECT station, uniqExact(evse) AS evses,
        %(shares)s
      FROM (%(parts)s)
      WHERE kind != 'range'
      GROUP BY station
    ) AS occupancy
    ANY LEFT JOIN (
      SELECT charge_point_id AS station, count() AS sessions, round(sum(energy_wh) / 1000, 3) AS energy_kwh
      FROM %(sessions)s
      WHERE %(sessions_where)s
      GROUP BY station
    ) AS delivered USING station
    ORDER BY occupied_pct, station
    LIMIT 20
  ||| % {
    shares: shares('evses', e.span_s),
    parts: e.utilization_parts,
    sessions: e.sessions,
    sessions_where: sessions_where,
  })], 'percent')
  + p.withFieldOverride('station', 'string', 'Station')
  + p.withFieldOverride('evses', 'none', 'EVSEs')
  + p.withFieldOverride('sessions', 'none', 'Sessions')
  + p.withFieldOverride('energy_kwh', 'kwatth', 'Energy')
  + p.withThresholds(pct_thresholds)
  + p.withSize(12, 9),

  p.barchart('Idle time: plugged in, not charging', [sql(|||
    SELECT charge_point_id AS station,
      round(sum(parking_s) / 3600, 2) AS idle_h,
      round(100 * sum(parking_s) / sum(duration_s), 2) AS idle_pct_of_plugged
    FROM %s
    WHERE %s
    GROUP BY station
    ORDER BY idle_h DESC, station
  ||| % [e.sessions, sessions_where])], 'h', x_field='station')
  + p.withFieldOverride('idle_pct_of_plugged', 'percent', 'Idle share of plugged time')
  + p.withSize(12, 9)
  + p.withDescription('Parking time of the sessions that ended in the range (what PARKING_TIME tariffs bill).'),
];

g.dashboard.new(
  'evrate-utilization',
  'evrate / Utilization',
  panels,
  [e.variables.database, e.variables.station, e.variables.party],
  names=e.names_of(['occupied_pct', 'charging_pct', 'energy_kwh', 'sessions', 'station', 'idle_h']),
  description='Occupancy, charging share, energy and idle time per station and EVSE.',
)
