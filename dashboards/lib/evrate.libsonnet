// evrate's shared dashboard pieces: the variables every dashboard offers, the filters they
// expand to, and SQL building blocks over the tables the pipeline writes (analytics/migrations.ts).
//
// Every query runs on Debian's ClickHouse 18.16 and on current servers alike: no
// toStartOfInterval (so no $__timeInterval: buckets are intDiv over $__interval_s), no window
// functions (status intervals come from sorted arrays), no DateTime64, no query parameters.
// Values enter SQL only through variables with a quoting format (${name:singlequote}); the one
// unquoted variable is the constant database name, an identifier.
local g = import 'grafana.libsonnet';

{
  variables:: {
    database: g.variable.constant('database', 'evrate'),

    // Stations are charge points: the rating service writes station_id = charge_point_id, and
    // connector_status and the other tables know only the charge point.
    station: g.variable.query(
      'station',
      'Station (charge point)',
      |||
        SELECT DISTINCT station FROM (
          SELECT charge_point_id AS station FROM ${database}.connector_status
          UNION ALL
          SELECT charge_point_id AS station FROM ${database}.rated_sessions
        ) ORDER BY station
      |||,
      multi=true,
      include_all=true,
    ),

    // The token issuer as OCPI "CC*PID"; our own tokens have no party and show as "own" (an
    // empty value would read as "All" to the plugin's $__conditionalAll).
    party: g.variable.query(
      'party',
      'Operator / party',
      "SELECT DISTINCT if(party = '', 'own', party) AS party FROM ${database}.rated_sessions ORDER BY party",
      multi=true,
      include_all=true,
    ),

    // Money is never summed across currencies: revenue panels show one currency at a time.
    currency: g.variable.query(
      'currency',
      'Currency',
      'SELECT DISTINCT currency FROM ${database}.rated_sessions ORDER BY currency',
    ),

    // Hours and weekdays are local time; ClickHouse needs the zone as a constant.
    tz: g.variable.custom(
      'tz',
      'Time zone for hours and days',
      ['UTC', 'Europe/Berlin', 'Europe/London', 'Europe/Paris', 'Europe/Amsterdam', 'America/New_York'],
      'UTC',
    ),
  },

  filters:: {
    station(column='charge_point_id'):: '$__conditionalAll(%s IN (${station:singlequote}), $station)' % column,
    party:: "$__conditionalAll(if(party = '', 'own', party) IN (${party:singlequote}), $party)",
    currency:: 'currency = ${currency:singlequote}',
  },

  // Latest version of every session (ReplacingMergeTree by version: FINAL counts each once).
  sessions:: '${database}.rated_sessions FINAL',

  // Start of the Grafana interval holding a DateTime or a number of seconds, as a UTC DateTime.
  bucket(seconds_expr):: "toDateTime(intDiv(toUInt32(%s), $__interval_s) * $__interval_s, 'UTC')" % seconds_expr,

  from_s:: 'toUInt32($__fromTime)',
  to_s:: 'toUInt32($__toTime)',

  // Rows (keys..., state, t_from, t_to) where each event of a key holds from its time until the
  // key's next event, the last one until the end of the range; cut to [from, to]. Events from
  // before the range (back to `since`, a DateTime expression, when given) are read so the state
  // at its start is known. Sorted arrays stand in for window functions, which ClickHouse 18.16
  // lacks.
  intervals(table, keys, state, time_column, where, since=null)::
    local key_select = std.join(', ', ['%s AS %s' % [k[0], k[1]] for k in keys]);
    local key_names = std.join(', ', [k[1] for k in keys]);
    |||
      SELECT %(key_names)s, state, greatest(t_start, %(from_s)s) AS t_from, least(t_end, %(to_s)s) AS t_to
      FROM (
        SELECT %(key_select)s,
          arraySort(groupArray(toUInt32(%(time)s))) AS starts,
          arraySort((s, t) -> t, groupArray(%(state)s), groupArray(toUInt32(%(time)s))) AS states
        FROM %(table)s
        WHERE %(time)s <= $__toTime AND %(since)s AND %(where)s
        GROUP BY %(key_names)s
      )
      ARRAY JOIN states AS state, starts AS t_start, arrayPushBack(arraySlice(starts, 2), %(to_s)s) AS t_end
      WHERE t_end > %(from_s)s AND t_start < %(to_s)s
    ||| % {
      key_names: key_names,
      key_select: key_select,
      state: state,
      time: time_column,
      table: table,
      where: where,
      since: if since == null then '1 = 1' else '%s >= %s' % [time_column, since],
      from_s: $.from_s,
      to_s: $.to_s,
    },

  // Utilization follows the rules of the operator API (analytics/utilization.ts), so that the
  // dashboards and /v1/analytics give the same figures:
  // - occupied: a status meaning a vehicle is at the connector (OCPP 1.6 Preparing, Charging,
  //   SuspendedEV, SuspendedEVSE, Finishing; OCPP 2.0.1 Occupied) until the next status; the
  //   status in force at the range start is the last one in the 35 days before it;
  //   and a rated session's time from start to stop is occupied too, whatever the statuses say;
  //   occupied time is the union of both, each second counted once;
  // - charging: from the rated sessions, since OCPP 2.0.1 has no Charging status: a session
  //   charges from its start for its duration minus its idle time, never past its stop; sessions
  //   started up to 7 days before the range count;
  // - percentages are of the time span times the number of EVSEs, an EVSE counting when it has a
  //   status in the lookback or the range or a session in the charging lookback or the range.
  occupied_statuses:: ['Preparing', 'Charging', 'SuspendedEV', 'SuspendedEVSE', 'Finishing', 'Occupied'],
  status_lookback_s:: 35 * 86400,
  charging_lookback_s:: 7 * 86400,

  local status_since = 'toDateTime(%s - %d)' % [$.from_s, $.status_lookback_s],
  local charging_since = 'toDateTime(%s - %d)' % [$.from_s, $.charging_lookback_s],
  // OCPP 1.6 connector 0 is the charge point itself, not a place a vehicle stands.
  local status_where = 'NOT (evse_id = 0 AND connector_id = 0) AND %s' % $.filters.station(),

  // Rows (station, evse, kind, t_from, t_to) in seconds, cut to the range: kind 'occupied' and
  // 'charging' pieces that never overlap within one EVSE and kind, 'evse' for every EVSE with a
  // status or a session, and one 'range' row spanning the range so that every interval bucket is
  // present. Occupied is the union of the statuses' occupied intervals and the sessions' times
  // (start to stop), charging the union of the sessions' charging intervals (never past the
  // stop), as in analytics/utilization.ts: each interval becomes events time * 2 + 1 (opens) and
  // time * 2 (closes), sorted, and a piece runs from each event to the next while a running count
  // of open intervals is above zero. A redelivered status row is an exact copy and makes an
  // interval of zero length, so connector_status is read without FINAL.
  utilization_parts::
    |||
      SELECT station, evse, kind, toUInt32(tupleElement(piece, 1)) AS t_from, toUInt32(tupleElement(piece, 2)) AS t_to
      FROM (
        SELECT station, evse, kind, arraySort(groupArrayArray(events)) AS ev
        FROM (
          SELECT station, toUInt32(evse) AS evse, 'occupied' AS kind,
            [toInt64(t_from) * 2 + 1, toInt64(t_to) * 2] AS events
          FROM (%(status_intervals)s)
          WHERE state IN (%(occupied)s) AND t_to > t_from
          UNION ALL
          SELECT station, evse, 'occupied' AS kind, [toInt64(t_from) * 2 + 1, toInt64(stop_to) * 2] AS events
          FROM (%(sessions)s)
          WHERE stop_to > t_from
          UNION ALL
          SELECT station, evse, 'charging' AS kind, [toInt64(t_from) * 2 + 1, toInt64(charge_to) * 2] AS events
          FROM (%(sessions)s)
          WHERE charge_to > t_from
        )
        GROUP BY station, evse, kind
      )
      ARRAY JOIN arrayFilter(p -> tupleElement(p, 2) > tupleElement(p, 1), arrayMap(
        (depth, x, next) -> if(depth > 0, (intDiv(x, 2), intDiv(next, 2)), (toInt64(0), toInt64(0))),
        arrayPopBack(arrayCumSum(arrayMap(x -> if(x %% 2 = 1, toInt64(1), toInt64(-1)), ev))),
        arrayPopBack(ev), arrayPopFront(ev))) AS piece
      UNION ALL
      SELECT DISTINCT station, evse, 'evse' AS kind, %(from_s)s AS t_from, %(from_s)s AS t_to
      FROM (%(sessions)s)
      UNION ALL
      SELECT DISTINCT charge_point_id AS station, toUInt32(if(evse_id > 0, evse_id, connector_id)) AS evse,
        'evse' AS kind, %(from_s)s AS t_from, %(from_s)s AS t_to
      FROM ${database}.connector_status
      WHERE timestamp >= %(status_since)s AND timestamp <= $__toTime AND %(status_where)s
      UNION ALL
      SELECT '' AS station, toUInt32(0) AS evse, 'range' AS kind, %(from_s)s AS t_from, %(to_s)s AS t_to
    ||| % {
      status_intervals: $.intervals(
        '${database}.connector_status',
        [['charge_point_id', 'station'], ['if(evse_id > 0, evse_id, connector_id)', 'evse']],
        'status',
        'timestamp',
        status_where,
        since=status_since,
      ),
      // The sessions of the charging lookback and the range, cut to the range, in seconds.
      sessions: |||
        SELECT charge_point_id AS station, toUInt32(evse_id) AS evse, toUInt32(started_at) AS start_s,
          greatest(start_s, %(from_s)s) AS t_from,
          least(toUInt32(intDiv(stopped_at_ms, 1000)), %(to_s)s) AS stop_to,
          least(least(start_s + toUInt32(greatest(toInt64(duration_s) - toInt64(parking_s), 0)),
            toUInt32(intDiv(stopped_at_ms, 1000))), %(to_s)s) AS charge_to
        FROM ${database}.session_facts FINAL
        WHERE started_at >= %(charging_since)s AND started_at <= $__toTime AND %(station)s
      ||| % {
        from_s: $.from_s,
        to_s: $.to_s,
        charging_since: charging_since,
        station: $.filters.station(),
      },
      occupied: std.join(', ', ["'%s'" % s for s in $.occupied_statuses]),
      status_since: status_since,
      status_where: status_where,
      from_s: $.from_s,
      to_s: $.to_s,
    },

  // EVSEs that count, over the utilization parts.
  evse_count:: "uniqExactIf(station, evse, kind != 'range')",
  span_s:: '(%s - %s)' % [$.to_s, $.from_s],
  // Length of bucket b inside the range (the first and last bucket may be cut).
  bucket_span_s(b):: '(least((%(b)s + 1) * $__interval_s, %(to_s)s) - greatest(%(b)s * $__interval_s, %(from_s)s))' % {
    b: b,
    from_s: $.from_s,
    to_s: $.to_s,
  },

  // Seconds of [t_from, t_to) inside interval bucket b (a number of $__interval_s from the epoch).
  overlap_s(b):: 'least(t_to, (%(b)s + 1) * $__interval_s) - greatest(t_from, %(b)s * $__interval_s)' % { b: b },
  // Every bucket index that [t_from, t_to) touches, for ARRAY JOIN.
  buckets:: 'arrayMap(i -> i + intDiv(t_from, $__interval_s), range(toUInt32(intDiv(t_to - 1, $__interval_s) - intDiv(t_from, $__interval_s) + 1)))',

  // The 24 hour-of-day columns of a weekday x hour grid, e.g. countIf(hour = 7) AS `07:00`.
  hour_columns(aggregate_if, value=null)::
    std.join(',\n  ', [
      if value == null
      then '%s(hour = %d) AS `%02d:00`' % [aggregate_if, h, h]
      else '%s(%s, hour = %d) AS `%02d:00`' % [aggregate_if, value, h, h]
      for h in std.range(0, 23)
    ]),

  weekday_names:: "['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun']",

  // Display names of fields, for the fields a dashboard has.
  names_of(fields):: { [f]: $.names[f] for f in fields },
  names:: {
    occupied_pct: 'Occupied',
    charging_pct: 'Charging',
    energy_kwh: 'Energy',
    sessions: 'Sessions',
    station: 'Station',
    revenue_excl_vat: 'Revenue excl. VAT',
    revenue_incl_vat: 'Revenue incl. VAT',
    revenue_per_kwh: 'Per kWh',
    idle_h: 'Idle time',
    lag_s: 'Lag',
    connected_chargers: 'Connected chargers',
    rejected_frames: 'Rejected frames',
    meter_values: 'Meter values',
    meter_values_per_s: 'Meter values/s',
    concurrent_sessions: 'Concurrent sessions',
    frames: 'Frames',
    chargers: 'Chargers',
    error_code: 'Error code',
    action: 'Action',
    method: 'Payment method',
    tariff: 'Tariff',
    hour_of_day: 'Hour',
    weekday: 'Weekday',
  },
}
