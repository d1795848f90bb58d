import { ident } from '../../analytics/sql.js';

/**
 * Rated sessions generated inside ClickHouse (`numbers()`), as many as a paging test or benchmark
 * needs without sending them over the wire: ten CDRs per minute of last_updated from `base_s`,
 * spread over `charge_points` charge points, all of one party.
 */
export function cdr_seed_sql(o: {
  database: string;
  party: string;
  count: number;
  first: number;
  base_s: number;
  charge_points: number;
}): string {
  const db = ident(o.database).text;
  const { base_s, charge_points } = o;
  if (!/^[A-Z]{2}\*[A-Z0-9]{3}$/.test(o.party)) throw new TypeError(`not a party: ${o.party}`);
  for (const n of [o.count, o.first, base_s, charge_points]) {
    if (!Number.isSafeInteger(n) || n < 0) throw new TypeError(`not a count: ${n}`);
  }
  return `INSERT INTO ${db}.rated_sessions (session_id, version, charge_point_id, connector_id, transaction_id,
    id_tag, started_at, stopped_at, started_at_ms, stopped_at_ms, meter_start_wh, meter_stop_wh, energy_wh,
    stop_reason, tariff_id, tariff_version, currency, total_excl_vat, total_incl_vat, breakdown, rated_at_ms,
    evse_id, station_id, payment_method, party, duration_s, provisional)
  SELECT concat('CP', toString(number % ${charge_points}), '/', toString(number)), 1,
    concat('CP', toString(number % ${charge_points})), 1,
    toString(number), concat('TAG', toString(number % 977)),
    toDateTime(${base_s} + intDiv(number, 10) * 60 - 3600, 'UTC'), toDateTime(${base_s} + intDiv(number, 10) * 60, 'UTC'),
    (${base_s} + intDiv(number, 10) * 60 - 3600) * 1000, (${base_s} + intDiv(number, 10) * 60) * 1000,
    0, 10000 + number % 5000, 10000 + number % 5000, 'Local', 'default', 1, 'EUR',
    toDecimal64(3 + (number % 100) / 100, 4), toDecimal64(3.6 + (number % 100) / 100, 4), '{}',
    (${base_s} + intDiv(number, 10) * 60) * 1000, 1, concat('CP', toString(number % ${charge_points})), 'ROAMING',
    '${o.party}', 3600, 0
  FROM numbers(${o.first}, ${o.count})`;
}
