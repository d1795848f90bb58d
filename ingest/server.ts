import uWS from 'uWebSockets.js';
import { Counter, Gauge, Histogram } from 'prom-client';
import { type ChargePointRegistry, parse_basic_auth } from '../core/charge-points.js';
import { type Command, CommandError, type CommandResult } from '../core/commands.js';
import type { Logger } from '../core/log.js';
import { metrics_registry } from '../core/metrics.js';
import { TokenBucket } from '../core/rate-limit.js';
import type { TokenStore } from '../core/tokens.js';
import type { OcppEvent, OcppEventBody } from '../schemas/events.js';
import type { CallOutcome } from './call.js';
import { ocpp_call_of } from './commands.js';
import { handle_ocpp16_call, ocpp16_actions } from './ocpp16.js';
import { handle_ocpp201_call, ocpp201_actions } from './ocpp201.js';
import {
  CALL,
  CALLERROR,
  call_error,
  call_result,
  frame_id_of,
  OcppError,
  type OcppProtocol,
  parse_frame,
  text_fingerprint,
  unknown_message_id,
} from './ocppj.js';
import { decide_presented_token, type PresentedToken } from './payment-terminal.js';
import { type EventPublisher, PublishRejected } from './publisher.js';
import { RecentCalls } from './recent-calls.js';
import { type RemoteStartOptions, RemoteStarts, remote_start_defaults } from './remote-starts.js';
import type { TransactionIdAllocator } from './txid.js';

const connections = new Gauge({
  name: 'evrate_ingest_connections',
  help: 'Charge points connected to this ingest process',
  registers: [metrics_registry],
});
const calls = new Counter({
  name: 'evrate_ingest_calls_total',
  help: 'CALL frames received, by action',
  labelNames: ['action'],
  registers: [metrics_registry],
});
/**
 * The counter of each action, made once: a charger's made-up action names all count as "other",
 * so they cannot add series without bound, and a CALL costs no label lookup.
 */
const calls_by_action = new Map(
  [...new Set([...ocpp16_actions, ...ocpp201_actions])].map((action) => [action, calls.labels(action)]),
);
const calls_other_action = calls.labels('other');
const call_errors = new Counter({
  name: 'evrate_ingest_callerrors_total',
  help: 'CALLERROR frames sent, by error code',
  labelNames: ['code'],
  registers: [metrics_registry],
});
const handshakes_refused = new Counter({
  name: 'evrate_ingest_handshakes_refused_total',
  help: 'WebSocket handshakes refused, by reason',
  labelNames: ['reason'],
  registers: [metrics_registry],
});
const duplicate_calls = new Counter({
  name: 'evrate_ingest_duplicate_calls_total',
  help: 'CALLs repeated with a message id already seen on the connection: answered again, not re-published',
  registers: [metrics_registry],
});
const commands_sent = new Counter({
  name: 'evrate_ingest_commands_total',
  help: 'CALLs sent to chargers (remote commands, running costs), by action and outcome',
  labelNames: ['action', 'status'],
  registers: [metrics_registry],
});
const limited_calls = new Counter({
  name: 'evrate_ingest_limited_calls_total',
  help: 'CALLs refused by a per-connection limit, by limit',
  labelNames: ['limit'],
  registers: [metrics_registry],
});
const telemetry_dropped = new Counter({
  name: 'evrate_ingest_telemetry_dropped_total',
  help: 'Connection and rejection events not recorded because the publisher was more than half full',
  registers: [metrics_registry],
});
const answer_seconds = new Histogram({
  name: 'evrate_ingest_answer_seconds',
  help: 'Time from a CALL arriving to its CALLRESULT being sent (durable events included)',
  buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1],
  registers: [metrics_registry],
});

export interface IngestOptions {
  /** This process's name on connection and rejection events. */
  node_id: string;
  host: string;
  port: number;
  frame_bytes_max: number;
  heartbeat_interval_s: number;
  /** Bound on CALLs of one charger being processed at once (OCPP-J allows one; retries overlap). */
  in_flight_calls_max: number;
  /** Accept charge points that are not registered (no password check). */
  allow_unknown_charge_points: boolean;
  /** Accept tokens the token store does not know (free-vend sites). */
  accept_unknown_tokens: boolean;
  /** PEM files: TLS is terminated here (wss://, security profile 2). */
  tls: { cert_file: string; key_file: string } | undefined;
  /** Sustained CALLs per second one charger may send (a burst of twice that is allowed). */
  calls_per_s_max: number;
  /** Bytes queued for a charger that does not read; past it the connection is closed. */
  backpressure_bytes_max: number;
}

/** CALLs this server sends to one charger and awaits at once (commands, running costs). */
const outgoing_calls_max = 8;

/**
 * Bound on a drain's wait for the CALLs in flight to be answered: longer than the publisher's
 * publish timeout (10 s, ingest/publisher.ts), so every batch is acknowledged or given up first.
 */
const drain_wait_ms_max = 15_000;

interface Connection {
  charge_point_id: string;
  protocol: OcppProtocol;
  closed: boolean;
  in_flight: number;
  /** The last CALLs and their answers, to answer a retry again. */
  recent: RecentCalls;
  /** CALLs sent to the charger, by our message id, waiting for its CALLRESULT or CALLERROR. */
  outgoing: Map<string, (result: CommandResult) => void>;
  /** The per-connection call rate. */
  rate: TokenBucket;
}

/** In order of preference when a charger offers several (OCPP-J 1.6 3.1.2, 2.0.1 part 4 3.1.2). */
const supported_protocols: readonly OcppProtocol[] = ['ocpp2.0.1', 'ocpp1.6'];
const version_of: Record<OcppProtocol, string> = { 'ocpp1.6': '1.6', 'ocpp2.0.1': '2.0.1' };
/** OCPP 1.6 chargeBoxIdentity is CiString48; printable characters only. */
const charge_point_id_pattern = /^[\x21-\x7e]{1,48}$/;

/** An event as the stream carries it: who sent it, when it arrived, in which CALL. */
/** The CALLs whose frames are kept verbatim (analytics/ocpp-frames.ts). */
const raw_frame_actions: ReadonlySet<string> = new Set([
  'StartTransaction',
  'StopTransaction',
  'MeterValues',
  'TransactionEvent',
]);

function event_of(
  connection: Connection,
  message_id: string,
  received_at_ms: number,
  body: OcppEventBody,
  raw_frame?: string,
): OcppEvent {
  return {
    chargePointId: connection.charge_point_id,
    receivedAtMs: received_at_ms,
    ocppVersion: version_of[connection.protocol],
    messageId: message_id,
    ...(raw_frame === undefined ? {} : { rawFrame: raw_frame }),
    ...body,
  } as OcppEvent;
}

/**
 * The OCPP-J front door on uWebSockets.js: ws://HOST:PORT/ocpp/{chargePointId}, subprotocol
 * ocpp1.6. A CALL carrying an event is answered only after the event is durable in JetStream.
 */
export class IngestServer {
  private listen_socket: uWS.us_listen_socket | undefined;
  private readonly sockets = new Set<uWS.WebSocket<Connection>>();
  /** The socket of each connected charge point (the newest, when a charger reconnects). */
  private readonly by_charge_point = new Map<string, uWS.WebSocket<Connection>>();
  private outgoing_sequence = 0;
  /** Set by close(): CALLs that arrive from then on are neither published nor answered. */
  private draining = false;
  /** The answers being worked out (respond), awaited by a drain before the sockets close. */
  private readonly answers_in_flight = new Set<Promise<string | undefined>>();
  /** OCPP 1.6 remote starts sent from this node and accepted, to mark their transactions COMMAND. */
  private readonly remote_starts: RemoteStarts;
  port = 0;

  constructor(
    private readonly options: IngestOptions,
    private readonly publisher: EventPublisher,
    private readonly transaction_ids: TransactionIdAllocator,
    private readonly charge_points: ChargePointRegistry,
    private readonly tokens: TokenStore,
    private readonly log: Logger,
    remote_start_options: RemoteStartOptions = remote_start_defaults,
  ) {
    this.remote_starts = new RemoteStarts(remote_start_options);
  }

  async listen(): Promise<number> {
    const app =
      this.options.tls === undefined
        ? uWS.App()
        : uWS.SSLApp({
            cert_file_name: this.options.tls.cert_file,
            key_file_name: this.options.tls.key_file,
          });
    // Any path: the charge point id is its last segment (OCPP-J 1.6 section 3.1.1 appends the id to
    // the configured base URL, so ws://host/ocpp/CP1 and ws://host/any/base/CP1 are both served).
    app.ws<Connection>('/*', {
      compression: uWS.DISABLED,
      maxPayloadLength: this.options.frame_bytes_max,
      idleTimeout: Math.min(960, Math.max(8, this.options.heartbeat_interval_s * 2)),
      maxBackpressure: this.options.backpressure_bytes_max,
      closeOnBackpressureLimit: 1,
      upgrade: (res, req, context) => this.upgrade(res, req, context),
      open: (ws) => {
        this.sockets.add(ws);
        const data = ws.getUserData();
        this.by_charge_point.set(data.charge_point_id, ws);
        this.record(data, {
          body: 'connection',
          connection: { connected: true, protocol: data.protocol, nodeId: this.options.node_id },
        });
        connections.inc();
        this.log.debug({ charge_point_id: ws.getUserData().charge_point_id }, 'charge point connected');
      },
      message: (ws, message, is_binary) => this.on_message(ws, message, is_binary),
      close: (ws, code) => {
        const data = ws.getUserData();
        data.closed = true;
        this.sockets.delete(ws);
        if (this.by_charge_point.get(data.charge_point_id) === ws)
          this.by_charge_point.delete(data.charge_point_id);
        for (const settle of data.outgoing.values()) settle({ status: 'disconnected', action: '' });
        data.outgoing.clear();
        this.record(data, {
          body: 'connection',
          connection: { connected: false, protocol: data.protocol, nodeId: this.options.node_id },
        });
        connections.dec();
        this.log.debug({ charge_point_id: data.charge_point_id, code }, 'charge point disconnected');
      },
    });
    app.any('/*', (res) => {
      res.writeStatus('404 Not Found').end('OCPP-J endpoint is ws://HOST:PORT/ocpp/{chargePointId}\n');
    });
    await new Promise<void>((resolve, reject) => {
      app.listen(this.options.host, this.options.port, (socket) => {
        if (socket === false) {
          reject(
            new Error(`OCPP_PORT: cannot listen on ${this.options.host}:${this.options.port} (in use?)`),
          );
          return;
        }
        this.listen_socket = socket;
        this.port = uWS.us_socket_local_port(socket as unknown as uWS.us_socket);
        resolve();
      });
    });
    return this.port;
  }

  private upgrade(res: uWS.HttpResponse, req: uWS.HttpRequest, context: uWS.us_socket_context_t): void {
    const url = req.getUrl();
    const raw_id = url.slice(url.replace(/\/+$/, '').lastIndexOf('/') + 1).replace(/\/+$/, '');
    let charge_point_id: string;
    try {
      charge_point_id = decodeURIComponent(raw_id);
    } catch {
      charge_point_id = '';
    }
    if (!charge_point_id_pattern.test(charge_point_id)) {
      handshakes_refused.inc({ reason: 'bad_charge_point_id' });
      res.writeStatus('400 Bad Request').end('charge point id must be 1 to 48 printable characters\n');
      return;
    }
    // RFC 6455 section 4.2.1 item 4: the handshake's Connection header includes "Upgrade". Refused
    // here, synchronously: uWS marks a request whose Connection value is 5 characters long (
    // "close") to be closed once answered, and after the asynchronous upgrade below its cork()
    // applies that mark to the new WebSocket, dropping it (1006) right after `open`.
    if (!/(^|,)\s*upgrade\s*(,|$)/i.test(req.getHeader('connection'))) {
      handshakes_refused.inc({ reason: 'bad_handshake' });
      res.writeStatus('400 Bad Request').end('a WebSocket handshake says Connection: Upgrade\n');
      return;
    }
    const offered = req
      .getHeader('sec-websocket-protocol')
      .split(',')
      .map((p) => p.trim());
    const protocol = supported_protocols.find((p) => offered.includes(p));
    if (protocol === undefined) {
      // OCPP-J 1.6 section 3.1.2: the subprotocol must be agreed; we refuse the handshake outright.
      res
        .writeStatus('400 Bad Request')
        .end(`unsupported subprotocol; offer one of ${supported_protocols.join(', ')}\n`);
      return;
    }
    // Every header is read now: the request object is gone once this function returns.
    const websocket_key = req.getHeader('sec-websocket-key');
    const websocket_extensions = req.getHeader('sec-websocket-extensions');
    const authorization = req.getHeader('authorization');
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    this.authenticate(charge_point_id, authorization).then(
      (accepted) => {
        if (aborted) return;
        res.cork(() => {
          if (!accepted) {
            handshakes_refused.inc({ reason: 'unauthorized' });
            res
              .writeStatus('401 Unauthorized')
              .writeHeader('WWW-Authenticate', 'Basic realm="OCPP", charset="UTF-8"')
              .end('charge point unknown or wrong password\n');
            return;
          }
          res.upgrade<Connection>(
            {
              charge_point_id,
              protocol,
              closed: false,
              in_flight: 0,
              // A charger that keeps to OCPP-J has one CALL outstanding and retries only that one;
              // remembering as many as may be in flight covers one that pipelines.
              recent: new RecentCalls(this.options.in_flight_calls_max),
              outgoing: new Map(),
              rate: new TokenBucket(
                this.options.calls_per_s_max,
                this.options.calls_per_s_max * 2,
                Date.now(),
              ),
            },
            websocket_key,
            protocol,
            websocket_extensions,
            context,
          );
        });
      },
      (error: unknown) => {
        this.log.error({ err: error, charge_point_id }, 'charge point authentication failed');
        if (!aborted) res.cork(() => res.writeStatus('503 Service Unavailable').end('try again later\n'));
      },
    );
  }

  /**
   * Security profiles 1 and 2 (OCPP 1.6 security whitepaper A00.FR.203-205): HTTP Basic with the
   * charge point id as username. Unregistered charge points only when allowed by configuration.
   */
  private async authenticate(charge_point_id: string, authorization: string): Promise<boolean> {
    const credentials = authorization === '' ? undefined : parse_basic_auth(authorization);
    if (credentials !== undefined && credentials.username !== charge_point_id) return false;
    const verdict = await this.charge_points.verify(charge_point_id, credentials?.password);
    if (verdict === 'unknown') return this.options.allow_unknown_charge_points;
    return verdict === 'accepted';
  }

  private send(ws: uWS.WebSocket<Connection>, text: string): void {
    if (ws.getUserData().closed) return;
    ws.send(text, false);
  }

  private send_error(ws: uWS.WebSocket<Connection>, id: string, error: OcppError, action = ''): void {
    this.record_rejection(ws.getUserData(), action, error.code);
    this.send(ws, call_error(id, error, ws.getUserData().protocol));
  }

  /** Counts a CALLERROR and records it for analytics (best effort: it answers no charger). */
  private record_rejection(connection: Connection, action: string, code: string): void {
    call_errors.inc({ code });
    this.record(connection, {
      body: 'rejected',
      rejected: { action: action.slice(0, 64), errorCode: code, nodeId: this.options.node_id },
    });
  }

  /**
   * Telemetry events (connections, rejections) travel on the event stream like the rest, but
   * nothing waits for them: under overload they are the first to be dropped (counted by the
   * publisher), never a charger's answer.
   */
  private record(connection: Connection, body: OcppEventBody): void {
    if (!this.publisher.has_room_for_telemetry()) {
      telemetry_dropped.inc();
      return;
    }
    this.publisher.publish(event_of(connection, '', Date.now(), body), 64).catch(() => {});
  }

  private on_message(ws: uWS.WebSocket<Connection>, message: ArrayBuffer, is_binary: boolean): void {
    const started = performance.now();
    const connection = ws.getUserData();
    if (is_binary) {
      this.send_error(
        ws,
        unknown_message_id,
        new OcppError('FormationViolation', 'OCPP-J frames are text frames'),
      );
      return;
    }
    // The buffer is only valid during this callback: decode it now.
    const text = Buffer.from(message).toString('utf8');
    let frame: ReturnType<typeof parse_frame>;
    try {
      frame = parse_frame(text);
    } catch (error) {
      this.send_error(ws, frame_id_of(error), error as OcppError);
      return;
    }
    if (frame.type !== CALL) {
      const settle = connection.outgoing.get(frame.id);
      if (settle === undefined) {
        this.log.debug(
          { charge_point_id: connection.charge_point_id, id: frame.id },
          'reply to no CALL of ours ignored',
        );
        return;
      }
      connection.outgoing.delete(frame.id);
      settle(
        frame.type === CALLERROR
          ? { status: 'rejected', action: '', error: { code: frame.code, description: frame.description } }
          : { status: 'answered', action: '', response: frame.payload },
      );
      return;
    }
    const fingerprint = text_fingerprint(text);
    const seen = connection.recent.find(fingerprint, frame.id);
    if (seen !== undefined) {
      // A charger's retry of a CALL (OCPP-J 1.6 section 4.1.1): answer it again, publish nothing.
      duplicate_calls.inc();
      if (typeof seen === 'string') this.send(ws, seen);
      else
        seen.then(
          (reply) => {
            if (reply !== undefined) this.send(ws, reply);
          },
          () => {},
        );
      return;
    }
    if (this.draining) {
      // Shutting down: an event accepted now could be made durable with no socket left to answer
      // on, and the charger's retry elsewhere would store it twice. Unanswered and unpublished, the
      // CALL is retried by the charger (OCPP-J 1.6 section 4.1.1) and stored once.
      return;
    }
    if (connection.rate.take(Date.now()) > 0) {
      limited_calls.inc({ limit: 'rate' });
      this.send_error(
        ws,
        frame.id,
        new OcppError('GenericError', 'call rate limit exceeded; retry later'),
        frame.action,
      );
      return;
    }
    if (connection.in_flight >= this.options.in_flight_calls_max) {
      limited_calls.inc({ limit: 'in_flight' });
      this.send_error(
        ws,
        frame.id,
        new OcppError('GenericError', 'too many calls in flight on this connection'),
        frame.action,
      );
      return;
    }
    (calls_by_action.get(frame.action) ?? calls_other_action).inc();
    connection.in_flight++;
    const answer = this.respond(ws, connection, frame, text, started);
    this.answers_in_flight.add(answer);
    answer.then(
      () => this.answers_in_flight.delete(answer),
      () => this.answers_in_flight.delete(answer),
    );
    connection.recent.add(fingerprint, answer);
  }

  /**
   * Processes a CALL and sends its answer; resolves with the answer's text, or undefined when the
   * charger gets none or its retry must be processed again. One async function, not a chain of
   * promises: a chain costs a promise and closures per step, per CALL, all garbage for the
   * young-generation GC.
   */
  private async respond(
    ws: uWS.WebSocket<Connection>,
    connection: Connection,
    frame: { id: string; action: string; payload: Record<string, unknown> },
    raw: string,
    started: number,
  ): Promise<string | undefined> {
    try {
      let reply: string | undefined;
      /** An InternalError: answered, but not remembered, so the retry is processed afresh. */
      let failed_to_process = false;
      try {
        reply = await this.handle(connection, frame, raw);
      } catch (error) {
        reply = this.reply_to_failure(connection, frame, error);
        failed_to_process = !(error instanceof OcppError);
      }
      if (reply !== undefined) {
        this.send(ws, reply);
        answer_seconds.observe((performance.now() - started) / 1000);
      }
      // OCPP 1.6 section 3.7.1: a charger sends a transaction-related message again after a
      // "failure to process the message" (CALLERROR InternalError), with the same message id. A
      // failure of ours (NATS unreachable a moment) is transient: replaying the remembered error
      // to every retry would turn it into a permanent one.
      return failed_to_process ? undefined : reply;
    } finally {
      connection.in_flight--;
    }
  }

  /** The CALLERROR for a CALL that failed, or undefined when it must go unanswered. */
  private reply_to_failure(
    connection: Connection,
    frame: { id: string; action: string },
    error: unknown,
  ): string | undefined {
    if (error instanceof OcppError) {
      this.record_rejection(connection, frame.action, error.code);
      return call_error(frame.id, error, connection.protocol);
    }
    if (error instanceof PublishRejected) {
      // Not durable, so not answered: the charger retries the CALL (OCPP-J 1.6 section 4.1.1),
      // and the retry must be processed afresh (RecentCalls forgets a call without an answer).
      return undefined;
    }
    this.log.error({ err: error, charge_point_id: connection.charge_point_id }, 'call failed');
    this.record_rejection(connection, frame.action, 'InternalError');
    return call_error(frame.id, new OcppError('InternalError', 'internal error'), connection.protocol);
  }

  /** Whether this process holds the charger's socket. */
  holds(charge_point_id: string): boolean {
    return this.by_charge_point.has(charge_point_id);
  }

  /**
   * Sends a command to a charger connected here and resolves with its answer, or with `timeout`
   * when it gives none in `answer_timeout_ms`; undefined when the charger is not connected here.
   */
  async command(
    charge_point_id: string,
    command: Command,
    answer_timeout_ms: number,
  ): Promise<CommandResult | undefined> {
    const ws = this.by_charge_point.get(charge_point_id);
    if (ws === undefined) return undefined;
    const connection = ws.getUserData();
    let call: { action: string; payload: Record<string, unknown> };
    try {
      call = ocpp_call_of(command, connection.protocol);
    } catch (error) {
      if (error instanceof CommandError) return { status: 'invalid', field: error.field, rule: error.rule };
      throw error;
    }
    const { action } = call;
    if (connection.outgoing.size >= outgoing_calls_max) {
      commands_sent.inc({ action, status: 'busy' });
      return {
        status: 'rejected',
        action,
        error: { code: 'Busy', description: 'too many commands waiting for this charger' },
      };
    }
    this.outgoing_sequence = (this.outgoing_sequence + 1) % Number.MAX_SAFE_INTEGER;
    const id = `evr-${this.outgoing_sequence}`;
    const result = await new Promise<CommandResult>((resolve) => {
      const timer = setTimeout(() => {
        connection.outgoing.delete(id);
        resolve({ status: 'timeout', action });
      }, answer_timeout_ms);
      connection.outgoing.set(id, (answer) => {
        clearTimeout(timer);
        // Recorded before the charger's next frame is read: its StartTransaction follows the answer.
        if (command.command === 'start' && action === 'RemoteStartTransaction') {
          this.note_remote_start(connection.charge_point_id, command.id_tag, command.connector_id, answer);
        }
        resolve(answer);
      });
      this.send(ws, JSON.stringify([CALL, id, action, call.payload]));
    });
    const named = 'action' in result ? { ...result, action } : result;
    commands_sent.inc({ action, status: named.status });
    return named;
  }

  /** OCPP 1.6 section 5.11: only an Accepted RemoteStartTransaction.conf leads to a transaction. */
  private note_remote_start(
    charge_point_id: string,
    id_tag: string,
    connector_id: number | undefined,
    answer: CommandResult,
  ): void {
    if (answer.status !== 'answered') return;
    const response = answer.response as { status?: unknown } | null;
    if (response?.status !== 'Accepted') return;
    this.remote_starts.accepted(charge_point_id, id_tag, connector_id, Date.now());
  }

  private async handle(
    connection: Connection,
    frame: { id: string; action: string; payload: Record<string, unknown> },
    raw: string,
  ): Promise<string | undefined> {
    const bytes = raw.length;
    const context = {
      heartbeat_interval_s: this.options.heartbeat_interval_s,
      now_ms: Date.now,
      allocate_transaction_id: (start_key: string) =>
        this.transaction_ids.allocate_for(`${connection.charge_point_id}\u0000${frame.id}\u0000${start_key}`),
      authorize: (id_token: string, presented?: Omit<PresentedToken, 'id_token' | 'protocol'>) =>
        decide_presented_token(
          { id_token, protocol: connection.protocol, ...presented },
          {
            store_decision: (uid) => this.tokens.authorize(uid, false),
            terminal_of: async () =>
              (await this.charge_points.cached_profile(connection.charge_point_id))?.payment_terminal,
            accept_unknown: this.options.accept_unknown_tokens,
          },
        ),
      remote_start_taken: (id_tag: string, connector_id: number, start_key: string) =>
        this.remote_starts.take(connection.charge_point_id, id_tag, connector_id, start_key, Date.now()),
    };
    const outcome: CallOutcome =
      connection.protocol === 'ocpp1.6'
        ? await handle_ocpp16_call(frame.action, frame.payload, context)
        : await handle_ocpp201_call(frame.action, frame.payload, context);
    const events = outcome.events;
    if (events.length > 0) {
      const received_at_ms = Date.now();
      // Evidence for billing disputes: a transaction message as received, with its first event.
      const raw_frame = raw_frame_actions.has(frame.action) ? raw : undefined;
      // Most CALLs make one event: no Promise.all (an array and a promise per CALL) for them.
      if (events.length === 1)
        await this.publisher.publish(
          event_of(connection, frame.id, received_at_ms, events[0]!, raw_frame),
          bytes,
        );
      else
        await Promise.all(
          events.map((body, i) =>
            this.publisher.publish(
              event_of(connection, frame.id, received_at_ms, body, i === 0 ? raw_frame : undefined),
              bytes,
            ),
          ),
        );
    }
    return call_result(frame.id, outcome.payload);
  }

  /**
   * Drains: stops accepting connections and new CALLs, answers every CALL in flight once its
   * events are durable (or leaves it unanswered when they cannot be), then closes the sockets.
   * So every answered event is in JetStream and every unanswered one is retried and stored once.
   */
  async close(): Promise<void> {
    this.draining = true;
    if (this.listen_socket !== undefined) {
      uWS.us_listen_socket_close(this.listen_socket);
      this.listen_socket = undefined;
    }
    if (this.answers_in_flight.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled([...this.answers_in_flight]),
        new Promise((resolve) => {
          timer = setTimeout(resolve, drain_wait_ms_max);
        }),
      ]);
      clearTimeout(timer);
    }
    for (const ws of [...this.sockets]) ws.end(1001, 'server shutting down');
  }
}
