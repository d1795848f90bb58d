/**
 * One simulated charge point: connects (from its own loopback source address), boots, and runs
 * sessions (plug in, authorize, start, meter values at a power curve, stop, idle) over OCPP-J
 * with one CALL outstanding at a time (OCPP-J 1.6 section 4.1.1). It drops its connection or goes
 * offline now and then, buffering meter values and sending the backlog when back.
 */
import WebSocket from 'ws';
import {
  authorize,
  boot_notification,
  type MeterReading,
  meter_values,
  type OcppProtocol,
  status_notification,
  transaction_ended,
  transaction_started,
} from './frames.js';
import type { LatencyHistogram } from './histogram.js';
import {
  type ChargerProfile,
  charge_step,
  new_car_session,
  pick_profile,
  reading_of,
  seeded_random,
  session_done,
} from './session-model.js';

export type Pace = 'closed' | 'interval' | 'hold';

export interface SimOptions {
  /** ws://HOST:PORT/ocpp — the charge point id is appended. */
  url_base: string;
  /** closed: next CALL as soon as the answer arrives; interval: one meter value per interval_ms;
   * hold: connect, boot, then only heartbeats every interval_ms (connection capacity). */
  pace: Pace;
  interval_ms: number;
  /** Simulated seconds between two meter values (K): time runs faster than the wall clock. */
  sim_interval_s: number;
  sampled_values_per_meter_value: number;
  /** Fraction of chargers speaking OCPP 2.0.1; the rest speak 1.6J. */
  ocpp201_share: number;
  reconnect_per_session: number;
  offline_per_session: number;
  /** Meter values buffered during an offline burst. */
  offline_meter_values: number;
  session_meter_values_max: number;
  /** Simulated clock start; chargers finish before their clock passes sim_end_ms (the present),
   * so that no timestamp is in the future. */
  sim_start_ms: number;
  sim_end_ms: number;
  /** Spread the connection ramp over this long. */
  ramp_ms: number;
  call_timeout_ms: number;
  /** Connections sharing one loopback source address (each address has ~28k ephemeral ports). */
  chargers_per_source_address: number;
  charge_point_prefix: string;
  seed: number;
}

export interface ChargerCounters {
  connections_open: number;
  connects_total: number;
  connect_failures: number;
  reconnects_planned: number;
  offline_bursts: number;
  calls_sent: number;
  calls_answered: number;
  call_errors: number;
  call_timeouts: number;
  calls_resent: number;
  calls_abandoned: number;
  meter_value_calls_answered: number;
  /** Sampled values in answered CALLs: each is one row the store must end up with. */
  sampled_values_answered: number;
  sessions_started: number;
  sessions_stopped: number;
  chargers_failed: number;
  /** CALLs the server sent (running costs) that the charger answered. */
  server_calls_answered: number;
}

export function new_counters(): ChargerCounters {
  return {
    connections_open: 0,
    connects_total: 0,
    connect_failures: 0,
    reconnects_planned: 0,
    offline_bursts: 0,
    calls_sent: 0,
    calls_answered: 0,
    call_errors: 0,
    call_timeouts: 0,
    calls_resent: 0,
    calls_abandoned: 0,
    meter_value_calls_answered: 0,
    sampled_values_answered: 0,
    sessions_started: 0,
    sessions_stopped: 0,
    chargers_failed: 0,
    server_calls_answered: 0,
  };
}

/** Attempts of one CALL (after CALLERROR, timeout or a lost connection) before giving up. */
const call_attempts_max = 5;
const connect_backoff_ms_max = 2000;

/** 127.1.x.y: Linux routes all of 127.0.0.0/8 to loopback, so each is a distinct source. */
export function source_address_of(charger_index: number, chargers_per_address: number): string {
  const k = Math.floor(charger_index / chargers_per_address);
  return `127.1.${1 + Math.floor(k / 250)}.${1 + (k % 250)}`;
}

class ChargerStopped extends Error {}

/**
 * A charger answers the server's CALLs (OCPP-J 4.1.1): running costs are accepted (OCPP 2.0.1
 * CostUpdated, 1.6 DataTransfer as evrate sends them); remote commands are not simulated.
 */
function answer_server_call(frame: unknown[]): unknown[] {
  const [, id, action] = frame;
  if (action === 'CostUpdated') return [3, id, {}];
  if (action === 'DataTransfer') return [3, id, { status: 'Accepted' }];
  return [4, id, 'NotImplemented', `${String(action)} is not simulated`, {}];
}

type Outcome =
  | { kind: 'result'; payload: Record<string, unknown> }
  | { kind: 'error'; code: string }
  | { kind: 'closed' }
  | { kind: 'timeout' };

export class SimCharger {
  readonly id: string;
  readonly protocol: OcppProtocol;
  private readonly random: () => number;
  private readonly profile: ChargerProfile;
  private socket: WebSocket | undefined;
  private waiting: { id: string; resolve: (o: Outcome) => void } | undefined;
  private next_id = 1;
  private sim_ms: number;
  private register_wh: number;
  private stopping = false;
  private killed = false;
  /**
   * One timer per charger, restarted for every wait of the same length: a new timer and promise
   * closures per meter value live just long enough (one interval) to be copied by the load
   * generator's young-generation GC, whose pauses show in every answer time it measures.
   */
  private timer: NodeJS.Timeout | undefined;
  private timer_ms = -1;
  private sleeping: (() => void) | undefined;
  private readonly on_timer = () => this.wake();

  constructor(
    private readonly index: number,
    private readonly options: SimOptions,
    private readonly counters: ChargerCounters,
    private readonly answer_ms: LatencyHistogram,
  ) {
    this.random = seeded_random(options.seed * 1_000_003 + index);
    this.id = `${options.charge_point_prefix}${index}`;
    this.protocol = ((index * 7919) % 1000) / 1000 < options.ocpp201_share ? 'ocpp2.0.1' : 'ocpp1.6';
    this.profile = pick_profile(this.random);
    // Chargers start at different times of the simulated day.
    this.sim_ms = options.sim_start_ms + Math.floor(this.random() * 3600_000);
    this.register_wh = Math.floor(this.random() * 5_000_000);
  }

  /** Finish the current session, then close. */
  stop(): void {
    this.stopping = true;
    this.wake();
  }

  /** Give up now: close the socket and abandon whatever is in flight. */
  kill(): void {
    this.killed = true;
    this.stopping = true;
    this.wake();
    this.waiting?.resolve({ kind: 'closed' });
    this.socket?.terminate();
  }

  async run(): Promise<void> {
    try {
      await this.wait(Math.floor(this.random() * this.options.ramp_ms));
      if (this.stopping) return;
      await this.call('BootNotification', boot_notification(this.protocol, this.id));
      await this.call('StatusNotification', status_notification(this.protocol, 1, 'Available', this.sim_ms));
      if (this.options.pace === 'hold') {
        while (!this.stopping) {
          await this.wait(this.options.interval_ms);
          if (!this.stopping) await this.call('Heartbeat', {});
        }
        return;
      }
      while (!this.stopping && this.sim_ms < this.options.sim_end_ms) {
        await this.session();
        if (!this.stopping) await this.idle();
      }
    } catch (error) {
      if (!(error instanceof ChargerStopped)) {
        this.counters.chargers_failed++;
        throw error;
      }
    } finally {
      await this.close();
    }
  }

  /** Closes the connection and waits (boundedly) for the close handshake, so counts are final. */
  private async close(): Promise<void> {
    const socket = this.socket;
    if (socket === undefined || socket.readyState === WebSocket.CLOSED) return;
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.close();
    const timer = new Promise<void>((resolve) => setTimeout(resolve, 2000));
    await Promise.race([closed, timer]);
    socket.terminate(); // no-op once closed
  }

  private async session(): Promise<void> {
    const o = this.options;
    const car = new_car_session(this.random, this.register_wh);
    const connector_id = 1;
    const id_tag = `TAG${this.index % 10_000}`;
    this.sim_ms += 60_000; // the driver plugs in a minute after arriving
    await this.call(
      'StatusNotification',
      status_notification(this.protocol, connector_id, 'Preparing', this.sim_ms),
    );
    await this.call('Authorize', authorize(this.protocol, id_tag));
    let seq_no = 0;
    const own_transaction_id = `${this.id}-${this.next_id}`;
    const start = transaction_started(
      this.protocol,
      {
        connector_id,
        id_tag,
        transaction_id: own_transaction_id,
        seq_no: seq_no++,
        reading: reading_of(this.profile, car, this.sim_ms, 0),
      },
      o.sampled_values_per_meter_value,
    );
    const started = await this.call(start.action, start.payload, start.sampled_values_total);
    const transaction_id = this.protocol === 'ocpp1.6' ? String(started.transactionId) : own_transaction_id;
    this.counters.sessions_started++;
    await this.call(
      'StatusNotification',
      status_notification(this.protocol, connector_id, 'Charging', this.sim_ms),
    );
    const reconnect_at =
      this.random() < o.reconnect_per_session ? Math.floor(this.random() * 20) : Number.POSITIVE_INFINITY;
    const offline_at =
      this.random() < o.offline_per_session ? Math.floor(this.random() * 20) : Number.POSITIVE_INFINITY;
    const next_meter_value = () => {
      this.sim_ms += o.sim_interval_s * 1000;
      const reading = charge_step(this.profile, car, this.sim_ms, o.sim_interval_s);
      return meter_values(
        this.protocol,
        { connector_id, transaction_id, seq_no: seq_no++, reading },
        o.sampled_values_per_meter_value,
      );
    };
    let steps = 0;
    while (
      !session_done(car, steps, o.session_meter_values_max) &&
      !this.stopping &&
      this.sim_ms < o.sim_end_ms
    ) {
      if (o.pace === 'interval') await this.wait(o.interval_ms);
      if (steps === offline_at) {
        // Offline burst: the charger keeps metering into its buffer and sends the backlog later.
        this.counters.offline_bursts++;
        this.socket?.close();
        const backlog = [];
        for (let b = 0; b < o.offline_meter_values && this.sim_ms < o.sim_end_ms; b++) {
          backlog.push(next_meter_value());
          if (b > 0 && o.pace === 'interval') await this.wait(o.interval_ms);
        }
        if (o.pace === 'closed') await this.wait(300);
        for (const mv of backlog) await this.call(mv.action, mv.payload, mv.sampled_values_total, true);
        steps += backlog.length;
        continue;
      }
      const mv = next_meter_value();
      await this.call(mv.action, mv.payload, mv.sampled_values_total, true);
      steps++;
      if (steps === reconnect_at) {
        this.counters.reconnects_planned++;
        this.socket?.close();
      }
    }
    this.sim_ms += o.sim_interval_s * 1000;
    const end_reading: MeterReading = reading_of(this.profile, car, this.sim_ms, 0);
    const end = transaction_ended(this.protocol, {
      connector_id,
      id_tag,
      transaction_id,
      seq_no: seq_no++,
      reading: end_reading,
    });
    await this.call(end.action, end.payload, end.sampled_values_total);
    this.counters.sessions_stopped++;
    this.register_wh = car.energy_wh;
    await this.call(
      'StatusNotification',
      status_notification(this.protocol, connector_id, 'Available', this.sim_ms),
    );
  }

  private async idle(): Promise<void> {
    const idle_sim_ms = (5 + Math.floor(this.random() * 115)) * 60_000;
    this.sim_ms += idle_sim_ms;
    if (this.options.pace === 'interval') {
      const compression = (this.options.sim_interval_s * 1000) / this.options.interval_ms;
      await this.wait(Math.min(idle_sim_ms / compression, 5 * this.options.interval_ms));
    }
    if (!this.stopping) await this.call('Heartbeat', {});
  }

  /** Resolves after ms, or at once when the charger is told to stop. */
  private wait(ms: number): Promise<void> {
    if (this.stopping || ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.sleeping = resolve;
      if (this.timer !== undefined && this.timer_ms === ms) {
        this.timer.refresh();
      } else {
        clearTimeout(this.timer);
        this.timer = setTimeout(this.on_timer, ms);
        this.timer_ms = ms;
      }
    });
  }

  private wake(): void {
    const resolve = this.sleeping;
    this.sleeping = undefined;
    if (this.stopping && this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    resolve?.();
  }

  private async call(
    action: string,
    payload: Record<string, unknown>,
    sampled_values_total = 0,
    is_meter_value = false,
  ): Promise<Record<string, unknown>> {
    for (let attempt = 0; attempt < call_attempts_max; attempt++) {
      if (this.killed) throw new ChargerStopped();
      await this.connected();
      // A new message id per attempt: the server keys retries by connection and id.
      const id = `${this.next_id++}`;
      const sent_at = performance.now();
      const outcome = await this.send_and_wait(id, JSON.stringify([2, id, action, payload]));
      if (outcome.kind === 'result') {
        this.counters.calls_answered++;
        this.counters.sampled_values_answered += sampled_values_total;
        if (is_meter_value) {
          this.counters.meter_value_calls_answered++;
          this.answer_ms.record(performance.now() - sent_at);
        }
        return outcome.payload;
      }
      if (outcome.kind === 'error') {
        this.counters.call_errors++;
        await this.wait(100 * (attempt + 1));
      } else if (outcome.kind === 'timeout') {
        this.counters.call_timeouts++;
        this.socket?.terminate();
      } else {
        this.counters.calls_resent++;
      }
    }
    this.counters.calls_abandoned++;
    throw new ChargerStopped();
  }

  private send_and_wait(id: string, text: string): Promise<Outcome> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => finish({ kind: 'timeout' }), this.options.call_timeout_ms);
      const finish = (outcome: Outcome) => {
        clearTimeout(timer);
        if (this.waiting?.id === id) this.waiting = undefined;
        resolve(outcome);
      };
      this.waiting = { id, resolve: finish };
      this.counters.calls_sent++;
      this.socket!.send(text);
    });
  }

  private async connected(): Promise<void> {
    let backoff_ms = 50;
    while (this.socket === undefined || this.socket.readyState !== WebSocket.OPEN) {
      if (this.killed) throw new ChargerStopped();
      try {
        await this.open();
      } catch {
        this.counters.connect_failures++;
        await new Promise((r) => setTimeout(r, backoff_ms));
        backoff_ms = Math.min(connect_backoff_ms_max, backoff_ms * 2);
      }
    }
  }

  private open(): Promise<void> {
    const socket = new WebSocket(`${this.options.url_base}/${this.id}`, this.protocol, {
      localAddress: source_address_of(this.index, this.options.chargers_per_source_address),
      perMessageDeflate: false,
      handshakeTimeout: 10_000,
      // A load generator's own costs come out of the server's 2 cores. RFC 6455 section 10.3's
      // unpredictable mask guards proxies' caches, and there is no proxy on loopback: a zero mask
      // lets ws skip masking. Answers are the server's JSON, checked by JSON.parse anyway.
      generateMask: (mask: Buffer) => mask.fill(0),
      skipUTF8Validation: true,
    });
    this.socket = socket;
    return new Promise<void>((resolve, reject) => {
      socket.once('open', () => {
        this.counters.connects_total++;
        this.counters.connections_open++;
        socket.once('close', () => {
          this.counters.connections_open--;
          if (this.socket === socket) this.waiting?.resolve({ kind: 'closed' });
        });
        resolve();
      });
      socket.on('error', reject);
      socket.once('unexpected-response', (_req, res) => {
        socket.terminate();
        reject(new Error(`handshake refused: ${res.statusCode}`));
      });
      socket.on('message', (data) => {
        const frame = JSON.parse(data.toString()) as unknown[];
        if (frame[0] === 2) {
          socket.send(JSON.stringify(answer_server_call(frame)));
          this.counters.server_calls_answered++;
          return;
        }
        if (this.waiting === undefined || String(frame[1]) !== this.waiting.id) return;
        if (frame[0] === 3)
          this.waiting.resolve({ kind: 'result', payload: frame[2] as Record<string, unknown> });
        else if (frame[0] === 4) this.waiting.resolve({ kind: 'error', code: String(frame[2]) });
      });
    });
  }
}
