/**
 * The session event log: every event the rating reducer applied to a session, in the order it
 * applied them (stream sequence, then the event's place in its batch), with the session's start
 * as the rating service resolved it (tariff version, plan, site, token decision, clock offset,
 * connector status). A re-rating replays exactly these facts through the same reducer, so a live
 * price and a re-rated one of the same tariff version are equal to the cent (rating/rerate.ts).
 *
 * A redelivered batch writes the same (session_id, seq, idx) rows again: ReplacingMergeTree keeps
 * one, and the re-rating reads one row per key (LIMIT 1 BY), merged or not.
 */
export function session_events_statements(db: string): string[] {
  return [
    `CREATE TABLE IF NOT EXISTS ${db}.session_events (
      session_id String,
      charge_point_id String,
      seq UInt64,
      idx UInt32,
      received_at Date,
      received_at_ms Int64,
      kind String,
      fact String
    ) ENGINE = ReplacingMergeTree
    PARTITION BY toYYYYMM(received_at)
    ORDER BY (session_id, seq, idx)`,
  ];
}

export interface SessionEventRow {
  session_id: string;
  charge_point_id: string;
  seq: number;
  idx: number;
  received_at_ms: number;
  /** 'start', or the event's body ('meterValues', 'status', 'stopped'). */
  kind: string;
  /** JSON: the session's start meta for 'start', the OCPP event otherwise. */
  fact: string;
}

export function session_event_json(row: SessionEventRow): string {
  return JSON.stringify({
    session_id: row.session_id,
    charge_point_id: row.charge_point_id,
    seq: row.seq,
    idx: row.idx,
    received_at: new Date(row.received_at_ms).toISOString().slice(0, 10),
    received_at_ms: row.received_at_ms,
    kind: row.kind,
    fact: row.fact,
  });
}
