// @ts-check
/**
 * The `throughput` scenario for k6 users: each VU is one charge point in a closed loop (its next
 * CALL as soon as the previous one is answered), running sessions of MeterValues, half of the
 * VUs on OCPP 1.6J and half on 2.0.1. Start evrate yourself (OCPP_ALLOW_UNKNOWN=true), then:
 *
 *   k6 run -e OCPP_URL=ws://127.0.0.1:9220/ocpp -e CLICKHOUSE_URL=http://127.0.0.1:8123 \
 *          -e CHARGERS=500 -e SECONDS=30 bench/k6/throughput.js
 *
 * With CLICKHOUSE_URL (a ClickHouse server; not the embedded engine), teardown waits for the
 * stored count to settle and the summary compares meter values answered with meter values
 * stored, as `npm run bench -- --scenario throughput` does. Type-checked with @types/k6
 * (bench/k6/tsconfig.json); plain JavaScript so that every k6 version runs it unchanged.
 */
import { sleep } from 'k6';
import exec from 'k6/execution';
import http from 'k6/http';
import { Counter, Trend } from 'k6/metrics';
import ws from 'k6/ws';

const ocpp_url = __ENV.OCPP_URL || 'ws://127.0.0.1:9220/ocpp';
const clickhouse_url = __ENV.CLICKHOUSE_URL || '';
const clickhouse_database = __ENV.CLICKHOUSE_DATABASE || 'evrate';
const chargers = Number(__ENV.CHARGERS || 500);
const seconds = Number(__ENV.SECONDS || 30);
const samples = Number(__ENV.SAMPLES || 4);
const session_meter_values = Number(__ENV.SESSION_METER_VALUES || 60);
const settle_s_max = Number(__ENV.SETTLE_S || 120);
/** Each k6 run gets its own charge point ids, so that stored counts can be told apart. */
const run_tag = __ENV.RUN_TAG || String(Date.now() % 1_000_000);

const meter_values_answered = new Counter('meter_values_answered');
const meter_values_stored = new Counter('meter_values_stored');
const sessions_finished = new Counter('sessions_finished');
const answer_ms = new Trend('answer_ms', true);

/** @type {import('k6/options').Options} */
export const options = {
  scenarios: {
    throughput: {
      executor: 'per-vu-iterations',
      vus: chargers,
      iterations: 1,
      maxDuration: `${seconds + 60}s`,
    },
  },
  teardownTimeout: `${settle_s_max + 30}s`,
};

const measurands = [
  ['Energy.Active.Import.Register', 'Wh'],
  ['Power.Active.Import', 'W'],
  ['Current.Import', 'A'],
  ['Voltage', 'V'],
  ['SoC', 'Percent'],
];

/**
 * @param {boolean} v201
 * @param {number} energy_wh
 * @param {string} context
 * @param {number} n
 */
function sampled(v201, energy_wh, context, n) {
  const values = [energy_wh, 11000, 16, 230, 50];
  return measurands
    .slice(0, n)
    .map(([measurand, unit], i) =>
      v201
        ? { value: values[i], context, measurand, unitOfMeasure: { unit } }
        : { value: String(values[i]), context, measurand, unit },
    );
}

export default function () {
  const vu = exec.vu.idInTest;
  const v201 = vu % 2 === 0;
  const id = `K6-${run_tag}-${vu}`;
  const deadline_ms = Date.now() + seconds * 1000;
  let sim_ms = Date.now() - 60 * 86_400_000 + vu * 1000;
  let energy_wh = 0;
  let next_id = 1;
  let seq_no = 0;
  let transaction_id = '';
  let meter_values_left = 0;
  /** @type {{ id: string, at: number, kind: string, values: number } | undefined} */
  let waiting;

  ws.connect(
    `${ocpp_url}/${id}`,
    { headers: { 'Sec-WebSocket-Protocol': v201 ? 'ocpp2.0.1' : 'ocpp1.6' } },
    (socket) => {
      /**
       * @param {string} kind
       * @param {string} action
       * @param {object} payload
       * @param {number} values  sampled values carried (rows the store must end up with)
       */
      const call = (kind, action, payload, values) => {
        const message_id = String(next_id++);
        waiting = { id: message_id, at: Date.now(), kind, values };
        socket.send(JSON.stringify([2, message_id, action, payload]));
      };
      const iso = () => new Date(sim_ms).toISOString();
      const evse = { id: 1, connectorId: 1 };
      const start = () => {
        sim_ms += 600_000;
        meter_values_left = session_meter_values;
        seq_no = 0;
        if (v201) {
          transaction_id = `${id}-${next_id}`;
          call(
            'start',
            'TransactionEvent',
            {
              eventType: 'Started',
              timestamp: iso(),
              triggerReason: 'Authorized',
              seqNo: seq_no++,
              transactionInfo: { transactionId: transaction_id },
              evse,
              idToken: { idToken: 'K6TAG', type: 'ISO14443' },
              meterValue: [
                { timestamp: iso(), sampledValue: sampled(true, energy_wh, 'Transaction.Begin', samples) },
              ],
            },
            samples,
          );
        } else {
          call(
            'start',
            'StartTransaction',
            { connectorId: 1, idTag: 'K6TAG', meterStart: energy_wh, timestamp: iso() },
            0,
          );
        }
      };
      const meter_value = () => {
        sim_ms += 60_000;
        energy_wh += 183;
        const meterValue = [
          { timestamp: iso(), sampledValue: sampled(v201, energy_wh, 'Sample.Periodic', samples) },
        ];
        if (v201) {
          call(
            'meter',
            'TransactionEvent',
            {
              eventType: 'Updated',
              timestamp: iso(),
              triggerReason: 'MeterValuePeriodic',
              seqNo: seq_no++,
              transactionInfo: { transactionId: transaction_id },
              evse,
              meterValue,
            },
            samples,
          );
        } else {
          call(
            'meter',
            'MeterValues',
            { connectorId: 1, transactionId: Number(transaction_id), meterValue },
            samples,
          );
        }
      };
      const stop = () => {
        sim_ms += 60_000;
        if (v201) {
          call(
            'stop',
            'TransactionEvent',
            {
              eventType: 'Ended',
              timestamp: iso(),
              triggerReason: 'EVCommunicationLost',
              seqNo: seq_no++,
              transactionInfo: { transactionId: transaction_id, stoppedReason: 'EVDisconnected' },
              evse,
              meterValue: [
                { timestamp: iso(), sampledValue: sampled(true, energy_wh, 'Transaction.End', 1) },
              ],
            },
            1,
          );
        } else {
          call(
            'stop',
            'StopTransaction',
            {
              transactionId: Number(transaction_id),
              meterStop: energy_wh,
              timestamp: iso(),
              reason: 'EVDisconnected',
            },
            0,
          );
        }
      };

      socket.on('open', () => {
        const boot = v201
          ? { reason: 'PowerUp', chargingStation: { vendorName: 'evrate-k6', model: 'k6' } }
          : { chargePointVendor: 'evrate-k6', chargePointModel: 'k6' };
        call('boot', 'BootNotification', boot, 0);
      });
      socket.on('message', (text) => {
        const frame = JSON.parse(text);
        if (waiting === undefined || frame[1] !== waiting.id) return;
        const answered = waiting;
        waiting = undefined;
        if (frame[0] !== 3) {
          // A CALLERROR: nothing is durable; stop this charger so that the counts stay exact.
          socket.close();
          return;
        }
        meter_values_answered.add(answered.values);
        if (answered.kind === 'meter') answer_ms.add(Date.now() - answered.at);
        if (answered.kind === 'start' && !v201) transaction_id = String(frame[2].transactionId);
        if (answered.kind === 'stop') {
          sessions_finished.add(1);
          if (Date.now() >= deadline_ms) {
            socket.close();
            return;
          }
        }
        if (answered.kind === 'boot' || answered.kind === 'stop') start();
        else if (meter_values_left-- > 0 && Date.now() < deadline_ms) meter_value();
        else stop();
      });
    },
  );
}

/** @param {string} sql */
function clickhouse_count(sql) {
  const res = http.post(`${clickhouse_url}/`, sql);
  return Number(String(res.body).trim());
}

export function teardown() {
  if (clickhouse_url === '') return;
  const sql = `SELECT count() FROM ${clickhouse_database}.meter_values FINAL WHERE charge_point_id LIKE 'K6-${run_tag}-%'`;
  let stored = -1;
  // Stored counts stop moving once the pipeline has caught up; bounded by SETTLE_S.
  for (let waited_s = 0; waited_s < settle_s_max; waited_s += 2) {
    const now = clickhouse_count(sql);
    if (now === stored && now > 0) break;
    stored = now;
    sleep(2);
  }
  meter_values_stored.add(stored);
}

/** @param {{ metrics: Record<string, { values: Record<string, number> }> }} data */
export function handleSummary(data) {
  const answered = data.metrics.meter_values_answered?.values.count ?? 0;
  const stored = data.metrics.meter_values_stored?.values.count;
  const seconds_run = (data.metrics.iteration_duration?.values.max ?? seconds * 1000) / 1000;
  const result = {
    meter_values_answered: answered,
    meter_values_answered_per_s: Math.round(answered / seconds_run),
    answer_ms_p99: data.metrics.answer_ms?.values['p(99)'],
    sessions_finished: data.metrics.sessions_finished?.values.count ?? 0,
    meter_values_stored: stored,
    honesty: stored === undefined ? 'not checked (no CLICKHOUSE_URL)' : stored === answered ? 'PASS' : 'FAIL',
  };
  return { stdout: `${JSON.stringify(result, null, 2)}\n` };
}
