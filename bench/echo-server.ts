/**
 * The floor: an OCPP-J server that answers every CALL at once and does nothing else (no schema
 * check, no event, no NATS). Driven with the latency scenario's load, its answer times are what
 * the load generator, the loopback and the machine add to every answer evrate gives. Run as its
 * own process by the harness:
 *
 *   node dist/bench/echo-server.js     (prints "echo OCPP server: ws://127.0.0.1:PORT/ocpp")
 */
import uWS from 'uWebSockets.js';

let next_transaction_id = 1;

/** The least answer each action the simulator sends must get (the simulator reads only these). */
function answer_of(action: unknown, payload: Record<string, unknown>): Record<string, unknown> {
  const now = new Date().toISOString();
  switch (action) {
    case 'BootNotification':
      return { status: 'Accepted', currentTime: now, interval: 300 };
    case 'Heartbeat':
      return { currentTime: now };
    case 'Authorize':
      return 'idTag' in payload
        ? { idTagInfo: { status: 'Accepted' } }
        : { idTokenInfo: { status: 'Accepted' } };
    case 'StartTransaction':
      return { transactionId: next_transaction_id++, idTagInfo: { status: 'Accepted' } };
    case 'StopTransaction':
      return { idTagInfo: { status: 'Accepted' } };
    case 'TransactionEvent':
      return payload.idToken === undefined ? {} : { idTokenInfo: { status: 'Accepted' } };
    default:
      return {};
  }
}

const app = uWS.App().ws<Record<string, never>>('/ocpp/*', {
  maxPayloadLength: 65_536,
  idleTimeout: 0,
  upgrade: (res, req, context) => {
    const offered = req.getHeader('sec-websocket-protocol').split(',')[0]?.trim() ?? '';
    res.upgrade(
      {},
      req.getHeader('sec-websocket-key'),
      offered,
      req.getHeader('sec-websocket-extensions'),
      context,
    );
  },
  message: (ws, message) => {
    const frame = JSON.parse(Buffer.from(message).toString('utf8')) as unknown[];
    if (frame[0] !== 2) return; // answers to our CALLs: there are none
    ws.send(JSON.stringify([3, frame[1], answer_of(frame[2], frame[3] as Record<string, unknown>)]), false);
  },
});

app.listen('127.0.0.1', 0, (listen_socket) => {
  if (listen_socket === false) {
    process.stderr.write('echo server: cannot listen\n');
    process.exit(1);
  }
  process.stdout.write(`echo OCPP server: ws://127.0.0.1:${uWS.us_socket_local_port(listen_socket)}/ocpp\n`);
});
process.on('SIGTERM', () => process.exit(0));
