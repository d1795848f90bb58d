import {
  createInbox,
  headers,
  type Msg,
  type NatsConnection,
  type Subscription,
} from '@nats-io/transport-node';

/** What JetStream answers a publish with (the "PubAck"). */
export interface PublishAck {
  stream: string;
  seq: number;
  /** The message id was seen within the stream's duplicate window: nothing new was stored. */
  duplicate: boolean;
}

export class JetStreamPublishError extends Error {
  constructor(
    message: string,
    /** JetStream's own error code (e.g. 10077 "maximum messages exceeded"), when it gave one. */
    readonly err_code?: number,
  ) {
    super(message);
    this.name = 'JetStreamPublishError';
  }
}

interface Pending {
  resolve: (ack: PublishAck) => void;
  reject: (error: Error) => void;
  deadline_ms: number;
}

/**
 * JetStream publishes with acknowledgements, on one wildcard reply subscription.
 *
 * The same protocol as nats.js `js.publish` (a core publish with a reply subject and a
 * `Nats-Msg-Id` header, answered with a PubAck or an error), without what that costs per message
 * on the ingest hot path: a request object, a timer, and an Error with a stack trace made for
 * every successful request when it is settled. Deadlines are checked by one sweep instead.
 */
export class JetStreamPublisher {
  private readonly inbox = createInbox();
  private readonly pending = new Map<number, Pending>();
  private next_token = 0;
  private readonly subscription: Subscription;
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly nc: NatsConnection,
    private readonly timeout_ms = 10_000,
  ) {
    this.subscription = nc.subscribe(`${this.inbox}.*`, {
      callback: (error, msg) => {
        if (error === null) this.settle(msg);
      },
    });
    this.sweeper = setInterval(() => this.expire(), Math.max(10, Math.min(1000, timeout_ms / 4)));
    this.sweeper.unref();
    // No acknowledgement can come once the connection is closed: say so at once.
    void nc.closed().then(() => this.close('NATS connection closed'));
  }

  /** In flight: sent and not yet acknowledged, refused or timed out. */
  get in_flight(): number {
    return this.pending.size;
  }

  /** Resolves with the stream's acknowledgement; rejects when JetStream refuses or says nothing in time. */
  publish(subject: string, data: Uint8Array, msg_id: string): Promise<PublishAck> {
    const token = ++this.next_token;
    const h = headers();
    h.set('Nats-Msg-Id', msg_id);
    return new Promise<PublishAck>((resolve, reject) => {
      this.pending.set(token, { resolve, reject, deadline_ms: performance.now() + this.timeout_ms });
      try {
        this.nc.publish(subject, data, { reply: `${this.inbox}.${token}`, headers: h });
      } catch (error) {
        this.pending.delete(token);
        reject(error as Error);
      }
    });
  }

  private settle(msg: Msg): void {
    const token = Number(msg.subject.slice(this.inbox.length + 1));
    const waiting = this.pending.get(token);
    if (waiting === undefined) return; // timed out already
    this.pending.delete(token);
    if (msg.headers?.code === 503) {
      waiting.reject(new JetStreamPublishError('no stream takes this subject (no responders)'));
      return;
    }
    let answer: {
      stream?: unknown;
      seq?: unknown;
      duplicate?: unknown;
      error?: { code?: number; err_code?: number; description?: string };
    };
    try {
      answer = msg.json();
    } catch {
      waiting.reject(
        new JetStreamPublishError(`unreadable publish acknowledgement: ${msg.string().slice(0, 200)}`),
      );
      return;
    }
    if (answer.error !== undefined) {
      const e = answer.error;
      waiting.reject(
        new JetStreamPublishError(
          `JetStream refused the publish: ${e.description ?? 'unknown error'} (${e.err_code ?? e.code})`,
          e.err_code,
        ),
      );
      return;
    }
    if (typeof answer.stream !== 'string' || answer.stream === '' || typeof answer.seq !== 'number') {
      waiting.reject(
        new JetStreamPublishError(`invalid publish acknowledgement: ${msg.string().slice(0, 200)}`),
      );
      return;
    }
    waiting.resolve({ stream: answer.stream, seq: answer.seq, duplicate: answer.duplicate === true });
  }

  /** Pending entries are in the order sent, so their deadlines are in order too. */
  private expire(): void {
    const now = performance.now();
    for (const [token, waiting] of this.pending) {
      if (waiting.deadline_ms > now) break;
      this.pending.delete(token);
      waiting.reject(new JetStreamPublishError(`no publish acknowledgement within ${this.timeout_ms} ms`));
    }
  }

  /** Stops listening; whatever is still in flight is rejected. */
  close(reason = 'publisher closed'): void {
    clearInterval(this.sweeper);
    if (!this.subscription.isClosed()) this.subscription.unsubscribe();
    for (const waiting of this.pending.values()) waiting.reject(new JetStreamPublishError(reason));
    this.pending.clear();
  }
}
