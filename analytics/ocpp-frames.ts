import type { OcppEvent } from '../schemas/events.js';
import { ident, sql } from './sql.js';
import type { Store } from './store.js';

/**
 * The transaction messages of the chargers as received (StartTransaction, StopTransaction,
 * MeterValues, TransactionEvent): the CALL frame's text, verbatim, keyed by charge point and
 * OCPP-J message id, so a billing dispute can show what the charger said, byte for byte. Ingest
 * puts the frame on the frame's first event (schemas/events.proto raw_frame); rating writes it
 * here. Bounded like the raw meter values by ANALYTICS_RAW_RETENTION_DAYS (retention.ts: a TTL on
 * `timestamp` where the server has one, monthly partitions dropped on 18.16).
 */
export function ocpp_frame_statements(db: string): string[] {
  return [
    `CREATE TABLE IF NOT EXISTS ${db}.ocpp_frames (
      charge_point_id String,
      message_id String,
      timestamp DateTime('UTC'),
      received_at_ms Int64,
      ocpp_version String,
      action String,
      transaction_id String,
      frame String
    ) ENGINE = ReplacingMergeTree
    PARTITION BY toYYYYMM(timestamp)
    ORDER BY (charge_point_id, message_id, received_at_ms)`,
  ];
}

function transaction_of(event: OcppEvent): string {
  if (event.body === 'started') return event.started.transactionId;
  if (event.body === 'stopped') return event.stopped.transactionId;
  if (event.body === 'meterValues') return event.meterValues.transactionId;
  return '';
}

function action_of(frame: string): string {
  // [2, "<id>", "<Action>", {...}]: the action is the third element.
  return /^\s*\[\s*2\s*,\s*"(?:[^"\\]|\\.)*"\s*,\s*"([A-Za-z]{1,64})"/.exec(frame)?.[1] ?? '';
}

export function ocpp_frame_json(event: OcppEvent & { rawFrame: string }): string {
  return JSON.stringify({
    charge_point_id: event.chargePointId,
    message_id: event.messageId,
    timestamp: Math.floor(event.receivedAtMs / 1000),
    received_at_ms: event.receivedAtMs,
    ocpp_version: event.ocppVersion,
    action: action_of(event.rawFrame),
    transaction_id: transaction_of(event),
    frame: event.rawFrame,
  });
}

export interface StoredFrame {
  message_id: string;
  received_at_ms: number;
  ocpp_version: string;
  action: string;
  frame: string;
}

/**
 * The frames of one transaction. A 2.0.1 TransactionEvent names its transaction in every frame;
 * 1.6 MeterValues and StopTransaction do too, and the StartTransaction (which has no id yet) is
 * found by the message id of the session's start.
 */
export async function frames_of_transaction(
  store: Store,
  charge_point_id: string,
  transaction_id: string,
  message_ids: readonly string[],
  rows_max: number,
): Promise<StoredFrame[]> {
  const db = ident(store.database).text;
  const ids = message_ids.length === 0 ? [''] : message_ids;
  const rows = await store.query<StoredFrame>(
    `SELECT message_id, received_at_ms, ocpp_version, action, frame FROM ${db}.ocpp_frames FINAL
     WHERE ${sql`charge_point_id = ${charge_point_id} AND (transaction_id = ${transaction_id} OR message_id IN ${ids})`.text}
     ORDER BY received_at_ms, message_id LIMIT ${sql`${rows_max}`.text}`,
  );
  return rows.map((r) => ({ ...r, received_at_ms: Number(r.received_at_ms) }));
}
