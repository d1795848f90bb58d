/**
 * The baseline: what a user would build instead — a plain OCPP server on ocpp-rpc (a popular npm
 * OCPP-J library) that validates each CALL against the official schemas (strict mode, as our
 * ingest does) and answers it, writing nothing anywhere. Run as its own process by the harness:
 *
 *   node dist/bench/baseline-server.js     (prints "baseline OCPP server: ws://127.0.0.1:PORT/ocpp")
 */
import { RPCServer } from 'ocpp-rpc';

let next_transaction_id = 1;

const server = new RPCServer({
  protocols: ['ocpp2.0.1', 'ocpp1.6'],
  strictMode: true,
  // The same bound on CALLs in flight per charger as OCPP-J requires of chargers.
  callConcurrency: 1,
});

server.on('client', (client) => {
  const now = () => new Date().toISOString();
  client.handle('BootNotification', () => ({ status: 'Accepted', currentTime: now(), interval: 300 }));
  client.handle('Heartbeat', () => ({ currentTime: now() }));
  client.handle('StatusNotification', () => ({}));
  client.handle('MeterValues', () => ({}));
  if (client.protocol === 'ocpp1.6') {
    client.handle('Authorize', () => ({ idTagInfo: { status: 'Accepted' } }));
    client.handle('StartTransaction', () => ({
      transactionId: next_transaction_id++,
      idTagInfo: { status: 'Accepted' },
    }));
    client.handle('StopTransaction', () => ({ idTagInfo: { status: 'Accepted' } }));
  } else {
    client.handle('Authorize', () => ({ idTokenInfo: { status: 'Accepted' } }));
    client.handle('TransactionEvent', ({ params }: { params: { idToken?: unknown } }) =>
      params.idToken === undefined ? {} : { idTokenInfo: { status: 'Accepted' } },
    );
  }
});

const http = await server.listen(0, '127.0.0.1');
const address = http.address();
if (address === null || typeof address === 'string') throw new Error('baseline server has no port');
process.stdout.write(`baseline OCPP server: ws://127.0.0.1:${address.port}/ocpp\n`);
process.on('SIGTERM', () => {
  void server.close({ force: true }).then(() => process.exit(0));
});
