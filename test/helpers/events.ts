import type { Nats } from '../../core/nats.js';
import { group_by_partition, partition_subject } from '../../core/partitions.js';
import type { MeterValue, OcppEvent } from '../../schemas/events.js';
import { encode_event_batch } from '../../schemas/events.js';

/** A synthetic session's events, in the order a charger would send them. */
export interface SyntheticSession {
  charge_point_id: string;
  transaction_id: string;
  events: OcppEvent[];
  /** Sampled values in the session's events (rows expected in meter_values). */
  sampled_values: number;
}

/** A meter value of the energy register (Wh) and the power (W) at one instant. */
export function energy_and_power(at_ms: number, wh: number, power_w = 7000 + (wh % 500)): MeterValue {
  return {
    timestampMs: at_ms,
    sampledValues: [
      {
        value: String(wh),
        unit: 'Wh',
        measurand: 'Energy.Active.Import.Register',
        phase: '',
        location: 'Outlet',
        context: 'Sample.Periodic',
        format: 'Raw',
      },
      {
        value: String(power_w),
        unit: 'W',
        measurand: 'Power.Active.Import',
        phase: '',
        location: 'Outlet',
        context: 'Sample.Periodic',
        format: 'Raw',
      },
    ],
  };
}

/**
 * Deterministic sessions: `per_charger` sessions on each of `chargers` charge points, each with a
 * start, `samples` meter values (energy and power) with an idle stretch, a status change and a stop.
 */
export function synthetic_sessions(
  chargers: number,
  per_charger: number,
  samples: number,
  t0_ms: number,
): SyntheticSession[] {
  const sessions: SyntheticSession[] = [];
  for (let c = 0; c < chargers; c++) {
    const cp = `CP-${String(c).padStart(5, '0')}`;
    let at = t0_ms + c * 7_000;
    let wh = 1000 + c * 13;
    for (let n = 0; n < per_charger; n++) {
      const transaction_id = String(c * 1000 + n + 1);
      const base = (received: number) => ({
        chargePointId: cp,
        receivedAtMs: received,
        ocppVersion: '1.6',
        messageId: `${transaction_id}-${received}`,
      });
      const events: OcppEvent[] = [];
      events.push({
        ...base(at),
        body: 'started',
        started: {
          transactionId: transaction_id,
          connectorId: 1,
          idTag: `TAG${c}`,
          meterStartWh: wh,
          timestampMs: at,
          reservationId: 0,
          evseId: 0,
        },
      });
      let values = 0;
      for (let k = 0; k < samples; k++) {
        at += 5 * 60_000 + ((c * 31 + n * 17 + k * 7) % 120) * 1000;
        // The last two intervals are idle: no energy (parking).
        if (k < samples - 2) wh += 300 + ((c + n + k) % 9) * 111;
        events.push({
          ...base(at),
          body: 'meterValues',
          meterValues: {
            transactionId: transaction_id,
            connectorId: 1,
            meterValues: [energy_and_power(at, wh)],
          },
        });
        values += 2;
        if (k === samples - 3) {
          events.push({
            ...base(at),
            body: 'status',
            status: {
              connectorId: 1,
              status: 'SuspendedEV',
              errorCode: 'NoError',
              timestampMs: at,
              info: '',
              evseId: 0,
            },
          });
        }
      }
      at += 60_000;
      events.push({
        ...base(at),
        body: 'stopped',
        stopped: {
          transactionId: transaction_id,
          idTag: `TAG${c}`,
          meterStopWh: wh,
          timestampMs: at,
          reason: 'EVDisconnected',
          transactionData: [],
        },
      });
      events.push({
        ...base(at),
        body: 'status',
        status: {
          connectorId: 1,
          status: 'Available',
          errorCode: 'NoError',
          timestampMs: at,
          info: '',
          evseId: 0,
        },
      });
      at += 10 * 60_000;
      sessions.push({ charge_point_id: cp, transaction_id, events, sampled_values: values });
    }
  }
  return sessions;
}

/**
 * Publishes events as ingest would: per partition, in order, `per_message` events per JetStream
 * message. Events of one charge point keep their order.
 */
export async function publish_events(
  nats: Nats,
  events: OcppEvent[],
  partitions: number,
  per_message = 50,
): Promise<number> {
  const by_partition = group_by_partition(events, (e) => e.chargePointId, partitions);
  let messages = 0;
  for (const [p, list] of by_partition) {
    for (let i = 0; i < list.length; i += per_message) {
      await nats.js.publish(
        partition_subject(nats.events_subject, p),
        encode_event_batch({ nodeId: 'test', sequence: messages, events: list.slice(i, i + per_message) }),
      );
      messages++;
    }
  }
  return messages;
}

/** The events of all sessions interleaved across charge points but in order per charge point. */
export function interleave(sessions: SyntheticSession[]): OcppEvent[] {
  return sessions.flatMap((s) => s.events).sort((a, b) => a.receivedAtMs - b.receivedAtMs);
}
