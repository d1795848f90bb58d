/**
 * OCPP 1.6J and 2.0.1 CALL payloads a simulated charge point sends, free of I/O. Field names
 * and enums follow the official JSON schemas (OCPP 1.6 section 6, OCPP 2.0.1 part 2 section 1),
 * which the ingest validates strictly; a payload that does not validate is a bench bug.
 */
export type OcppProtocol = 'ocpp1.6' | 'ocpp2.0.1';
type Json = Record<string, unknown>;

/** What the meter shows at one instant. */
export interface MeterReading {
  at_ms: number;
  energy_wh: number;
  power_w: number;
  current_a: number;
  voltage_v: number;
  soc_percent: number;
}

/**
 * Measurands in the order a MeterValues sample carries them; `sampled_values_per_meter_value`
 * takes the first n. The register comes first because rating needs it.
 */
const measurands = [
  { measurand: 'Energy.Active.Import.Register', unit: 'Wh', of: (r: MeterReading) => r.energy_wh },
  { measurand: 'Power.Active.Import', unit: 'W', of: (r: MeterReading) => r.power_w },
  { measurand: 'Current.Import', unit: 'A', of: (r: MeterReading) => r.current_a },
  { measurand: 'Voltage', unit: 'V', of: (r: MeterReading) => r.voltage_v },
  { measurand: 'SoC', unit: 'Percent', of: (r: MeterReading) => r.soc_percent },
] as const;
export const measurands_max = measurands.length;

function iso(at_ms: number): string {
  return new Date(at_ms).toISOString();
}

function sampled_values(protocol: OcppProtocol, reading: MeterReading, n: number, context: string): Json[] {
  return measurands.slice(0, n).map((m) =>
    protocol === 'ocpp1.6'
      ? { value: String(m.of(reading)), context, measurand: m.measurand, unit: m.unit, location: 'Outlet' }
      : {
          value: m.of(reading),
          context,
          measurand: m.measurand,
          location: 'Outlet',
          unitOfMeasure: { unit: m.unit },
        },
  );
}

export function boot_notification(protocol: OcppProtocol, serial: string): Json {
  return protocol === 'ocpp1.6'
    ? { chargePointVendor: 'evrate-bench', chargePointModel: 'sim-ac22', chargePointSerialNumber: serial }
    : {
        reason: 'PowerUp',
        chargingStation: { vendorName: 'evrate-bench', model: 'sim-dc50', serialNumber: serial },
      };
}

export function status_notification(
  protocol: OcppProtocol,
  connector_id: number,
  status: 'Available' | 'Preparing' | 'Charging' | 'Finishing',
  at_ms: number,
): Json {
  if (protocol === 'ocpp1.6') {
    return { connectorId: connector_id, errorCode: 'NoError', status, timestamp: iso(at_ms) };
  }
  // OCPP 2.0.1 ConnectorStatusEnumType has no Preparing/Charging/Finishing: the cable is Occupied.
  return {
    timestamp: iso(at_ms),
    connectorStatus: status === 'Available' ? 'Available' : 'Occupied',
    evseId: connector_id,
    connectorId: 1,
  };
}

export function authorize(protocol: OcppProtocol, id_tag: string): Json {
  return protocol === 'ocpp1.6' ? { idTag: id_tag } : { idToken: { idToken: id_tag, type: 'ISO14443' } };
}

/** A session start. For 2.0.1 the transaction id is the charger's own. */
export function transaction_started(
  protocol: OcppProtocol,
  s: { connector_id: number; id_tag: string; transaction_id: string; seq_no: number; reading: MeterReading },
  n: number,
): { action: string; payload: Json; sampled_values_total: number } {
  if (protocol === 'ocpp1.6') {
    return {
      action: 'StartTransaction',
      payload: {
        connectorId: s.connector_id,
        idTag: s.id_tag,
        meterStart: s.reading.energy_wh,
        timestamp: iso(s.reading.at_ms),
      },
      sampled_values_total: 0,
    };
  }
  return {
    action: 'TransactionEvent',
    payload: {
      eventType: 'Started',
      timestamp: iso(s.reading.at_ms),
      triggerReason: 'Authorized',
      seqNo: s.seq_no,
      transactionInfo: { transactionId: s.transaction_id, chargingState: 'Charging' },
      evse: { id: s.connector_id, connectorId: 1 },
      idToken: { idToken: s.id_tag, type: 'ISO14443' },
      meterValue: [
        {
          timestamp: iso(s.reading.at_ms),
          sampledValue: sampled_values(protocol, s.reading, n, 'Transaction.Begin'),
        },
      ],
    },
    sampled_values_total: n,
  };
}

export function meter_values(
  protocol: OcppProtocol,
  s: { connector_id: number; transaction_id: string; seq_no: number; reading: MeterReading },
  n: number,
): { action: string; payload: Json; sampled_values_total: number } {
  const meter_value = [
    {
      timestamp: iso(s.reading.at_ms),
      sampledValue: sampled_values(protocol, s.reading, n, 'Sample.Periodic'),
    },
  ];
  if (protocol === 'ocpp1.6') {
    return {
      action: 'MeterValues',
      payload: {
        connectorId: s.connector_id,
        transactionId: Number(s.transaction_id),
        meterValue: meter_value,
      },
      sampled_values_total: n,
    };
  }
  // OCPP 2.0.1 sends transaction-bound samples in TransactionEvent Updated (E02.FR.07).
  return {
    action: 'TransactionEvent',
    payload: {
      eventType: 'Updated',
      timestamp: iso(s.reading.at_ms),
      triggerReason: 'MeterValuePeriodic',
      seqNo: s.seq_no,
      transactionInfo: { transactionId: s.transaction_id, chargingState: 'Charging' },
      evse: { id: s.connector_id, connectorId: 1 },
      meterValue: meter_value,
    },
    sampled_values_total: n,
  };
}

export function transaction_ended(
  protocol: OcppProtocol,
  s: { connector_id: number; id_tag: string; transaction_id: string; seq_no: number; reading: MeterReading },
): { action: string; payload: Json; sampled_values_total: number } {
  if (protocol === 'ocpp1.6') {
    return {
      action: 'StopTransaction',
      payload: {
        transactionId: Number(s.transaction_id),
        idTag: s.id_tag,
        meterStop: s.reading.energy_wh,
        timestamp: iso(s.reading.at_ms),
        reason: 'EVDisconnected',
      },
      sampled_values_total: 0,
    };
  }
  return {
    action: 'TransactionEvent',
    payload: {
      eventType: 'Ended',
      timestamp: iso(s.reading.at_ms),
      triggerReason: 'EVCommunicationLost',
      seqNo: s.seq_no,
      transactionInfo: {
        transactionId: s.transaction_id,
        chargingState: 'Idle',
        stoppedReason: 'EVDisconnected',
      },
      evse: { id: s.connector_id, connectorId: 1 },
      // The register at the end is the session's stop reading (one sampled value).
      meterValue: [
        {
          timestamp: iso(s.reading.at_ms),
          sampledValue: sampled_values(protocol, s.reading, 1, 'Transaction.End'),
        },
      ],
    },
    sampled_values_total: 1,
  };
}
