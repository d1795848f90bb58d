// Utilization: how much of the time connectors are occupied and charging, per station and EVSE,
// the energy delivered, the least used stations, and the time cars stay plugged in without charging.
local e = import 'evrate.libsonnet';
local g = import 'grafana.libsonnet';
local p = g.panel;
local sql = g.query.sql;

local pct_thresholds = [[null, 'red'], [15, 'orange'], [40, 'green']];

// Share of observed connector time: an EVSE counts from its first status on, so a new one does
// not drag the figure down for the time before it existed.
local shares = |||
  round(100 * sumIf(t_to - t_from, %(occupied)s) / sum(t_to - t_from), 2) AS occupied_pct,
  round(100 * sumIf(t_to - t_from, %(charging)s) / sum(t_to - t_from), 2) AS charging_pct
||| % { occupied: e.occupied, charging: e.charging };

local sessions_where = '$__timeFilter(stopped_at) AND %s AND %s' % [e.filters.station(), e.filters.party];

local panels = [
  p.stat('Occupancy', [sql('SELECT %s FROM (%s)' % [
    'round(100 * sumIf(t_to - t_from, %s) / sum(t_to - t_from), 2) AS occupied_pct' % e.occupied,
    e.status_intervals(),
  ])], 'percent')
  + p.withThresholds(pct_thresholds)
  + p.withDescription('Share of connector time with a car plugged in (any status but Available, Unavailable, Faulted).'),

  p.stat('Charging', [sql('SELECT %s FROM (%s)' % [
    'round(100 * sumIf(t_to - t_from, %s) / sum(t_to - t_from), 2) AS charging_pct' % e.charging,
    e.status_intervals(),
  ])], 'percent')
  + p.withThresholds(pct_thresholds)
  + p.withDescription('Share of connector time in status Charging.'),

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
      round(100 * sumIf(%(overlap)s, %(occupied)s) / sum(%(overlap)s), 2) AS occupied_pct,
      round(100 * sumIf(%(overlap)s, %(charging)s) / sum(%(overlap)s), 2) AS charging_pct
    FROM (%(intervals)s)
    ARRAY JOIN %(buckets)s AS b
    GROUP BY b
    ORDER BY b
  ||| % {
    overlap: e.overlap_s('b'),
    occupied: e.occupied,
    charging: e.charging,
    intervals: e.status_intervals(),
    buckets: e.buckets,
  }, format='time_series')], 'percent')
  + p.withMinMax(0, 100)
  + p.withSize(12, 9),

  p.timeseries('Occupancy per station', [sql(|||
    SELECT toDateTime(b * $__interval_s, 'UTC') AS time, station,
      round(100 * sumIf(%(overlap)s, %(occupied)s) / sum(%(overlap)s), 2) AS occupied_pct
    FROM (%(intervals)s)
    ARRAY JOIN %(buckets)s AS b
    GROUP BY b, station
    ORDER BY b, station
  ||| % {
    overlap: e.overlap_s('b'),
    occupied: e.occupied,
    intervals: e.status_intervals(),
    buckets: e.buckets,
  }, format='time_series')], 'percent')
  + p.withMinMax(0, 100)
  + p.withSize(12, 9),

  p.table('Occupancy per station and EVSE', [sql(|||
    SELECT station, evse,
      %(shares)s
    FROM (%(intervals)s)
    GROUP BY station, evse
    ORDER BY station, evse
  ||| % { shares: shares, intervals: e.status_intervals() })], 'percent')
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
      FROM (%(intervals)s)
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
    shares: shares,
    intervals: e.status_intervals(),
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
