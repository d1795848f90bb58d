import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { type KV, Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { Config } from './config.js';
import type { Logger } from './log.js';

export interface Nats {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  kvm: Kvm;
  /** Subject that ingest publishes event batches to. */
  events_subject: string;
  /** Replicas of the streams and KV buckets this connection creates (NATS_REPLICAS). */
  replicas: number;
  close(): Promise<void>;
}

/** Window in which JetStream drops a re-published batch with the same message id. */
export const events_duplicate_window_ms = 120_000;

export async function connect_nats(
  config: Pick<Config, 'nats_stream' | 'nats_subject_prefix' | 'node_id'> & { nats_replicas?: number },
  url: string,
  log: Logger,
): Promise<Nats> {
  const nc = await connect({
    servers: url.split(',').map((s) => s.trim()),
    name: `evrate-${config.node_id}`,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    // Every request (KV reads and writes, JetStream API calls) would otherwise build two Error
    // objects with stack traces up front, in case it fails. Ingest's event publishes do not go
    // through requests at all (core/jetstream-publish.ts).
    noAsyncTraces: true,
  });
  (async () => {
    for await (const status of nc.status()) {
      if (status.type === 'disconnect' || status.type === 'reconnect' || status.type === 'error') {
        log.warn({ nats_status: status.type }, 'nats connection status');
      }
    }
  })().catch(() => {});
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  const events_subject = `${config.nats_subject_prefix}.events`;
  const replicas = config.nats_replicas ?? 1;
  await ensure_events_stream(jsm, config.nats_stream, events_subject, replicas);
  return {
    nc,
    js,
    jsm,
    kvm: new Kvm(nc),
    events_subject,
    replicas,
    async close() {
      if (!nc.isClosed()) await nc.drain();
    },
  };
}

/**
 * The replayable log of every accepted OCPP event. Limits retention; `discard: new` so that a
 * full stream refuses publishes (chargers get no answer and retry) instead of dropping old events.
 */
async function ensure_events_stream(
  jsm: JetStreamManager,
  name: string,
  subject: string,
  replicas: number,
): Promise<void> {
  const config = {
    name,
    num_replicas: replicas,
    subjects: [subject, `${subject}.>`],
    storage: 'file' as const,
    discard: 'new' as const,
    duplicate_window: events_duplicate_window_ms * 1_000_000,
  };
  try {
    await jsm.streams.info(name);
    await jsm.streams.update(name, config);
  } catch (error) {
    if (!is_not_found(error)) throw error;
    await jsm.streams.add(config);
  }
}

function is_not_found(error: unknown): boolean {
  return error instanceof Error && /not found/i.test(error.message);
}

export async function open_kv(nats: Nats, bucket: string, options: { ttl_ms?: number } = {}): Promise<KV> {
  return await nats.kvm.create(bucket, {
    history: 1,
    replicas: nats.replicas,
    ...(options.ttl_ms === undefined ? {} : { ttl: options.ttl_ms }),
  });
}
