import { headers } from '@nats-io/transport-node';
import type { RatedSessionRow } from '../analytics/sessions.js';
import type { Nats } from './nats.js';
import { partition_of } from './partitions.js';

/**
 * The rated feed: every rated version of every session (final and provisional), as the rating
 * service stored it in ClickHouse, on a JetStream stream that billing consumes with a durable
 * consumer. One message per version, JSON of the RatedSessionRow, message id
 * `${session_id}#${version}`: a version published again (a redelivered rating batch) within the
 * duplicate window is dropped by JetStream, and past it by billing's unique (session_id, version).
 * A session's versions land on one subject, in the order they were rated.
 */
export const rated_feed_partitions = 16;
/** Publishes in flight at once for one call (each awaits its PubAck). */
const publishes_in_flight_max = 256;
const rated_duplicate_window_ms = 120_000;

export interface RatedFeedNames {
  stream: string;
  /** Subjects are `${subject}.p<N>`. */
  subject: string;
}

/** `<prefix>.rated` and `<PREFIX>_RATED`, the prefix being the events subject's (NATS_SUBJECT_PREFIX). */
export function rated_feed_names(nats: Pick<Nats, 'events_subject'>): RatedFeedNames {
  const prefix = nats.events_subject.replace(/\.events$/, '');
  return {
    stream: `${prefix.replace(/[^A-Za-z0-9_-]/g, '_').toUpperCase()}_RATED`,
    subject: `${prefix}.rated`,
  };
}

const ensured = new WeakMap<Nats, Promise<void>>();

/** Creates the stream once per connection (and again after a failed attempt). */
export function ensure_rated_stream(nats: Nats): Promise<void> {
  let done = ensured.get(nats);
  if (done === undefined) {
    const { stream, subject } = rated_feed_names(nats);
    done = (async () => {
      const config = {
        name: stream,
        subjects: [`${subject}.>`],
        num_replicas: nats.replicas,
        storage: 'file' as const,
        duplicate_window: rated_duplicate_window_ms * 1_000_000,
      };
      try {
        await nats.jsm.streams.info(stream);
      } catch (error) {
        if (!(error instanceof Error && /not found/i.test(error.message))) throw error;
        await nats.jsm.streams.add(config);
      }
    })();
    done.catch(() => ensured.delete(nats));
    ensured.set(nats, done);
  }
  return done;
}

export function rated_message_id(row: Pick<RatedSessionRow, 'session_id' | 'version'>): string {
  return `${row.session_id}#${row.version}`;
}

/** Publishes the versions and resolves when JetStream has stored every one of them. */
export async function publish_rated_versions(nats: Nats, rows: readonly RatedSessionRow[]): Promise<void> {
  if (rows.length === 0) return;
  await ensure_rated_stream(nats);
  const { subject } = rated_feed_names(nats);
  const encoder = new TextEncoder();
  for (let start = 0; start < rows.length; start += publishes_in_flight_max) {
    await Promise.all(
      rows.slice(start, start + publishes_in_flight_max).map(async (row) => {
        const partition = partition_of(row.session_id, rated_feed_partitions);
        const h = headers();
        h.set('Nats-Msg-Id', rated_message_id(row));
        await nats.js.publish(`${subject}.p${partition}`, encoder.encode(JSON.stringify(row)), {
          headers: h,
        });
      }),
    );
  }
}
