// Operations: is the pipeline keeping up? Meter values written per second, how old the newest
// written event is, OCPP frames rejected by error code, chargers connected. Read from the tables
// the pipeline writes; the Prometheus metrics (/metrics) give the same picture per process.
local e = import 'evrate.libsonnet';
local g = import 'grafana.libsonnet';
local p = g.panel;
local sql = g.query.sql;

local received_s = 'intDiv(received_at_ms, 1000)';
local received_in_range = '%s >= %s AND %s <= %s' % [received_s, e.from_s, received_s, e.to_s];

// Connection intervals per charger and node: a charger that reconnects to another node before
// the old node notices the dropped socket is connected on the new node, not disconnected.
local connection_intervals = e.intervals(
  '${database}.charger_connections FINAL',
  [['charge_point_id', 'station'], ['node_id', 'node']],
  'connected',
  'at',
  e.filters.station(),
);

// Rejected frames, each once: a redelivered batch writes its rejections again, and
// ocpp_rejections (ReplacingMergeTree, migration 35) folds the copies only when it merges.
local distinct_rejections = |||
  (SELECT DISTINCT charge_point_id, at_ms, node_id, action, error_code, at
    FROM ${database}.ocpp_rejections
    WHERE $__timeFilter(at) AND %s)
||| % e.filters.station();

local panels = [
  p.stat('Rating lag', [sql(|||
    SELECT least(toUInt32(now()), %s) - intDiv(max(received_at_ms), 1000) AS lag_s
    FROM ${database}.meter_values
    WHERE %s AND %s
  ||| % [e.to_s, received_in_range, e.filters.station()])], 's')
  + p.withThresholds([[null, 'green'], [30, 'orange'], [300, 'red']])
  + p.withDescription(|||
    Age of the newest meter value the rating service has written (received time), at the end of
    the range. It grows when rating falls behind or chargers go quiet; per-process detail is the
    Prometheus histogram evrate_rating_event_lag_seconds.
  |||),

  p.stat('Connected chargers', [sql(|||
    SELECT countIf(connected_nodes > 0) AS connected_chargers
    FROM (
      SELECT station, sum(last_connected) AS connected_nodes
      FROM (
        SELECT charge_point_id AS station, node_id, argMax(connected, at_ms) AS last_connected
        FROM ${database}.charger_connections FINAL
        WHERE at <= $__toTime AND %s
        GROUP BY station, node_id
      )
      GROUP BY station
    )
  ||| % e.filters.station())], 'none')
  + p.withThresholds([[null, 'blue']])
  + p.withDescription('Chargers with an open connection on some node at the end of the range.'),

  p.stat('Rejected frames', [sql(|||
    SELECT count() AS rejected_frames
    FROM %s
  ||| % distinct_rejections)], 'none')
  + p.withThresholds([[null, 'green'], [1, 'orange'], [100, 'red']]),

  p.stat('Meter values written', [sql(|||
    SELECT count() AS meter_values
    FROM ${database}.meter_values
    WHERE %s AND %s
  ||| % [received_in_range, e.filters.station()])], 'short')
  + p.withThresholds([[null, 'blue']]),

  p.timeseries('Meter values ingested per second', [sql(|||
    SELECT %s AS time, round(count() / $__interval_s, 4) AS meter_values_per_s
    FROM ${database}.meter_values
    WHERE %s AND %s
    GROUP BY time
    ORDER BY time
  ||| % [e.bucket(received_s), received_in_range, e.filters.station()], format='time_series')], 'ops')
  + p.withSize(12, 9)
  + p.withDescription('Sampled values written to meter_values, by the time ingest received them.'),

  p.timeseries('Chargers connected (during each interval)', [sql(|||
    SELECT toDateTime(b * $__interval_s, 'UTC') AS time, uniqExact(station) AS connected_chargers
    FROM (%s)
    ARRAY JOIN %s AS b
    WHERE state = 1
    GROUP BY b
    ORDER BY b
  ||| % [connection_intervals, e.buckets], format='time_series')], 'none')
  + p.withDecimals(0)
  + p.withSize(12, 9),

  p.timeseries('Rejected frames by error code', [sql(|||
    SELECT %s AS time, error_code, count() AS frames
    FROM %s
    GROUP BY time, error_code
    ORDER BY time, error_code
  ||| % [e.bucket('at'), distinct_rejections], format='time_series')], 'none', bars=true)
  + p.withStacking()
  + p.withSize(12, 9),

  p.table('Rejected frames by error code and action', [sql(|||
    SELECT error_code, action, count() AS frames, uniqExact(charge_point_id) AS chargers
    FROM %s
    GROUP BY error_code, action
    ORDER BY frames DESC, error_code, action
  ||| % distinct_rejections)], 'none')
  + p.withSize(12, 9),
];

g.dashboard.new(
  'evrate-operations',
  'evrate / Operations',
  panels,
  [e.variables.database, e.variables.station],
  names=e.names_of(['lag_s', 'connected_chargers', 'rejected_frames', 'meter_values', 'meter_values_per_s', 'frames', 'chargers', 'error_code', 'action']),
  description='Ingest rate, rating lag, rejected OCPP frames and connected chargers.',
  time_from='now-24h',
)
