import { Decimal } from 'decimal.js';
import type { SessionFacts } from './session-facts.js';
import { type ReadingVerification, type RegisteredKey, verify_meter_value } from './signed-values.js';

/**
 * The automatic investigation at opening: plausibility checks on the session's facts, each a
 * finding that support starts from. Pure: (facts, keys, connector power) -> findings.
 */
export type FindingStatus = 'ok' | 'warning' | 'failed' | 'not_applicable';

export interface Finding {
  check:
    | 'energy_vs_power'
    | 'register_continuity'
    | 'readings_after_stop'
    | 'duplicate_sessions'
    | 'tariff_version'
    | 'clock_sync'
    | 'signatures'
    | 'rating_anomalies';
  status: FindingStatus;
  detail: string;
  figures: Record<string, string | number | boolean | null | readonly (string | number)[]>;
}

const energy_register = 'Energy.Active.Import.Register';

function wh_of(value: string, unit: string): Decimal | undefined {
  try {
    if (unit === 'kWh') return new Decimal(value).mul(1000);
    if (unit === 'Wh' || unit === '') return new Decimal(value);
  } catch {
    return undefined;
  }
  return undefined;
}

/** The session's register readings in Wh, in time order (signed and raw of one instant both kept). */
function register_readings(facts: SessionFacts): { at_ms: number; wh: Decimal }[] {
  const out: { at_ms: number; wh: Decimal }[] = [];
  for (const v of facts.meter_values) {
    if (v.measurand !== energy_register || v.phase !== '') continue;
    const wh = wh_of(v.value, v.unit);
    if (wh !== undefined) out.push({ at_ms: v.timestamp_ms, wh });
  }
  return out.sort((a, b) => a.at_ms - b.at_ms);
}

export function verify_readings(facts: SessionFacts, keys: readonly RegisteredKey[]): ReadingVerification[] {
  return facts.meter_values.map((v) => verify_meter_value(v, keys));
}

export function investigate(
  facts: SessionFacts,
  options: { keys: readonly RegisteredKey[]; max_power_w: number; power_source: string },
): Finding[] {
  const s = facts.latest;
  const findings: Finding[] = [];
  const duration_s = Math.max(0, (s.stopped_at_ms - s.started_at_ms) / 1000);
  // Energy over power and time: P_max x t bounds what a connector can deliver.
  const possible_wh = new Decimal(options.max_power_w).mul(duration_s).div(3600).floor();
  findings.push({
    check: 'energy_vs_power',
    status: new Decimal(s.energy_wh).gt(possible_wh) ? 'failed' : 'ok',
    detail: new Decimal(s.energy_wh).gt(possible_wh)
      ? `${s.energy_wh} Wh in ${duration_s} s is more than ${options.max_power_w} W can deliver (${possible_wh} Wh)`
      : `${s.energy_wh} Wh in ${duration_s} s is within ${options.max_power_w} W (${options.power_source})`,
    figures: {
      energy_wh: s.energy_wh,
      duration_s,
      max_power_w: options.max_power_w,
      possible_wh: possible_wh.toNumber(),
    },
  });

  const readings = register_readings(facts);
  const decreases: number[] = [];
  for (let i = 1; i < readings.length; i++)
    if (readings[i]!.wh.lt(readings[i - 1]!.wh)) decreases.push(readings[i]!.at_ms);
  const below_start = readings.filter((r) => r.wh.lt(s.meter_start_wh)).length;
  const above_stop = readings.filter((r) => r.at_ms <= s.stopped_at_ms && r.wh.gt(s.meter_stop_wh)).length;
  findings.push({
    check: 'register_continuity',
    status:
      readings.length === 0
        ? 'not_applicable'
        : decreases.length + below_start + above_stop > 0
          ? 'failed'
          : 'ok',
    detail:
      readings.length === 0
        ? 'no energy register readings were received'
        : decreases.length + below_start + above_stop > 0
          ? `the register decreased ${decreases.length} time(s); ${below_start} reading(s) below the start register, ${above_stop} above the stop register`
          : `${readings.length} readings, never decreasing, from ${s.meter_start_wh} to ${s.meter_stop_wh} Wh`,
    figures: {
      readings: readings.length,
      decreases: decreases.length,
      below_start,
      above_stop,
      meter_start_wh: s.meter_start_wh,
      meter_stop_wh: s.meter_stop_wh,
    },
  });

  const after = facts.meter_values.filter((v) => v.timestamp_ms > s.stopped_at_ms);
  findings.push({
    check: 'readings_after_stop',
    status: after.length > 0 ? 'warning' : 'ok',
    detail:
      after.length > 0
        ? `${after.length} reading(s) are timed after the stop at ${new Date(s.stopped_at_ms).toISOString()}`
        : 'no reading is timed after the stop',
    figures: { readings_after_stop: after.length },
  });

  findings.push({
    check: 'duplicate_sessions',
    status: facts.overlapping.length > 0 ? 'warning' : 'ok',
    detail:
      facts.overlapping.length > 0
        ? `token ${s.id_tag} has ${facts.overlapping.length} other session(s) overlapping this one`
        : 'no other session of the same token overlaps this one',
    figures: { overlapping: facts.overlapping.map((o) => o.session_id) },
  });

  // A tariff version created while the session ran: the session kept the version in force at
  // its start (rating/tariff-store.ts), which the claimant may not expect.
  const changes = facts.tariff_versions.filter(
    (t) => t.created_at_ms > s.started_at_ms && t.created_at_ms < s.stopped_at_ms,
  );
  const applied = facts.tariff_versions.find((t) => t.version === s.tariff_version);
  findings.push({
    check: 'tariff_version',
    status: applied === undefined || changes.length > 0 ? 'warning' : 'ok',
    detail:
      applied === undefined
        ? `tariff ${s.tariff_id} version ${s.tariff_version} is not in the tariff archive`
        : changes.length > 0
          ? `tariff ${s.tariff_id} changed during the session (version ${changes.map((c) => c.version).join(', ')}); version ${s.tariff_version} was applied`
          : `tariff ${s.tariff_id} version ${s.tariff_version} applied; no change during the session`,
    figures: {
      tariff_id: s.tariff_id,
      tariff_version: s.tariff_version,
      changed_during_session: changes.length > 0,
      versions_created_during_session: changes.map((c) => c.version),
    },
  });

  const verifications = verify_readings(facts, options.keys);
  const signed = verifications.filter((v) => v.status !== 'unsigned');
  const time_statuses = signed.flatMap((v) => v.readings.map((r) => r.time_status));
  const unsynced = time_statuses.filter((t) => t !== 'S' && t !== 'R').length;
  findings.push({
    check: 'clock_sync',
    status: time_statuses.length === 0 ? 'not_applicable' : unsynced > 0 ? 'warning' : 'ok',
    detail:
      time_statuses.length === 0
        ? 'no signed reading carries a clock status'
        : unsynced > 0
          ? `${unsynced} of ${time_statuses.length} signed readings were taken with an unsynchronized or informative clock`
          : `all ${time_statuses.length} signed readings were taken with a synchronized clock`,
    figures: { signed_readings: time_statuses.length, unsynchronized: unsynced },
  });

  const count = (status: string) => signed.filter((v) => v.status === status).length;
  const failed = count('failed') + count('malformed');
  findings.push({
    check: 'signatures',
    status:
      signed.length === 0
        ? 'not_applicable'
        : failed > 0
          ? 'failed'
          : count('verified') === signed.length
            ? 'ok'
            : 'warning',
    detail:
      signed.length === 0
        ? 'no reading is signed'
        : `${count('verified')} of ${signed.length} signed readings verify; ${failed} fail; ${count('no_key')} without a registered key; ${count('unsupported_encoding') + count('unsupported_algorithm')} unsupported`,
    figures: {
      signed: signed.length,
      verified: count('verified'),
      failed,
      no_key: count('no_key'),
      unsupported: count('unsupported_encoding') + count('unsupported_algorithm'),
    },
  });

  let anomalies: Record<string, number> = {};
  try {
    anomalies = JSON.parse(s.anomalies || '{}') as Record<string, number>;
  } catch {
    anomalies = {};
  }
  const names = Object.keys(anomalies).sort();
  findings.push({
    check: 'rating_anomalies',
    status: names.length > 0 ? 'warning' : 'ok',
    detail:
      names.length > 0
        ? `rating recorded: ${names.map((n) => `${n} x${anomalies[n]}`).join(', ')}`
        : 'rating recorded no anomaly',
    figures: { anomalies: names },
  });
  return findings;
}
