import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { create_logger } from '../../core/log.js';
import { connect_nats, type Nats } from '../../core/nats.js';
import { start_nats_server } from '../../core/nats-server.js';

/** A private nats-server with JetStream on a free port and a temp store, and a connection to it. */
export async function start_test_nats(): Promise<{ nats: Nats; url: string; dispose(): Promise<void> }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'evrate-nats-'));
  const server = await start_nats_server({ store_dir: dir, port: 0 });
  const nats = await connect_nats(
    { nats_stream: 'EVRATE_EVENTS', nats_subject_prefix: 'evrate', node_id: 'test' },
    server.url,
    create_logger('warn'),
  );
  return {
    nats,
    url: server.url,
    async dispose() {
      await nats.close();
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
