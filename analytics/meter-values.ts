import type { MeterValue } from '../schemas/events.js';

export interface MeterValueContext {
  charge_point_id: string;
  connector_id: number;
  transaction_id: string;
  received_at_ms: number;
}

/** One JSONEachRow line per sampled value, the value kept verbatim (signed data included). */
export function meter_value_json_rows(
  context: MeterValueContext,
  meter_values: readonly MeterValue[],
): string[] {
  const rows: string[] = [];
  for (const meter_value of meter_values) {
    for (const sampled of meter_value.sampledValues) {
      rows.push(
        JSON.stringify({
          charge_point_id: context.charge_point_id,
          connector_id: context.connector_id,
          transaction_id: context.transaction_id,
          timestamp: Math.floor(meter_value.timestampMs / 1000),
          timestamp_ms: meter_value.timestampMs,
          received_at_ms: context.received_at_ms,
          measurand: sampled.measurand,
          phase: sampled.phase,
          location: sampled.location,
          unit: sampled.unit,
          context: sampled.context,
          format: sampled.format,
          value: sampled.value,
          signed_data: sampled.signedData ?? '',
        }),
      );
    }
  }
  return rows;
}
