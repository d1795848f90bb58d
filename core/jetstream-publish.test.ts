import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { start_test_nats } from '../test/helpers/nats.js';
import { JetStreamPublishError, JetStreamPublisher } from './jetstream-publish.js';

describe('JetStreamPublisher (real NATS JetStream)', () => {
  let env: Awaited<ReturnType<typeof start_test_nats>>;
  let publisher: JetStreamPublisher;
  const data = new TextEncoder().encode('payload');

  beforeAll(async () => {
    env = await start_test_nats();
    publisher = new JetStreamPublisher(env.nats.nc, 10_000);
    await env.nats.jsm.streams.add({
      name: 'PUBTEST',
      subjects: ['pubtest.>'],
      duplicate_window: 60_000_000_000,
    });
    await env.nats.jsm.streams.add({
      name: 'PUBFULL',
      subjects: ['pubfull.>'],
      max_msgs: 1,
      discard: 'new' as const,
    });
  });
  afterAll(async () => {
    publisher.close();
    await env.dispose();
  });

  it('resolves with the stream and sequence once stored; a repeated message id is a duplicate', async () => {
    const first = await publisher.publish('pubtest.a', data, 'id-1');
    expect(first).toEqual({ stream: 'PUBTEST', seq: 1, duplicate: false });
    const many = await Promise.all(
      Array.from({ length: 50 }, (_, i) => publisher.publish(`pubtest.${i % 3}`, data, `id-many-${i}`)),
    );
    expect(many.map((a) => a.seq).sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i + 2));
    const again = await publisher.publish('pubtest.a', data, 'id-1');
    expect(again).toEqual({ stream: 'PUBTEST', seq: 1, duplicate: true });
    expect((await env.nats.jsm.streams.info('PUBTEST')).state.messages).toBe(51);
    expect(publisher.in_flight).toBe(0);
  });

  it('rejects when no stream takes the subject', async () => {
    await expect(publisher.publish('nostream.x', data, 'id-x')).rejects.toThrow(/no responders/);
  });

  it("rejects with JetStream's reason when the stream refuses", async () => {
    await publisher.publish('pubfull.a', data, 'full-1');
    const refused = await publisher.publish('pubfull.a', data, 'full-2').catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(JetStreamPublishError);
    expect((refused as JetStreamPublishError).message).toMatch(/maximum messages/);
    expect((refused as JetStreamPublishError).err_code).toBe(10077);
  });

  it('rejects when nobody acknowledges in time, and when the answer is not an acknowledgement', async () => {
    const silent = env.nats.nc.subscribe('silent.x', { callback: () => {} });
    const odd = env.nats.nc.subscribe('odd.x', {
      callback: (_e, msg) => {
        msg.respond('not json');
      },
    });
    const short = new JetStreamPublisher(env.nats.nc, 200);
    try {
      const started = performance.now();
      await expect(short.publish('silent.x', data, 's-1')).rejects.toThrow(/within 200 ms/);
      expect(performance.now() - started).toBeGreaterThanOrEqual(200);
      await expect(short.publish('odd.x', data, 'o-1')).rejects.toThrow(/unreadable publish acknowledgement/);
      expect(short.in_flight).toBe(0);
    } finally {
      short.close();
      silent.unsubscribe();
      odd.unsubscribe();
    }
  });

  it('rejects what is in flight when closed', async () => {
    const silent = env.nats.nc.subscribe('silent.y', { callback: () => {} });
    const closing = new JetStreamPublisher(env.nats.nc, 10_000);
    const in_flight = closing.publish('silent.y', data, 'c-1');
    await env.nats.nc.flush();
    closing.close();
    await expect(in_flight).rejects.toThrow(/closed/);
    silent.unsubscribe();
  });

  it('rejects what is in flight at once when the connection closes', async () => {
    const silent = env.nats.nc.subscribe('silent.z', { callback: () => {} });
    await env.nats.nc.flush();
    const nc = await connect({ servers: env.url });
    const own = new JetStreamPublisher(nc, 60_000);
    const in_flight = own.publish('silent.z', data, 'z-1');
    await nc.flush();
    await nc.close();
    await expect(in_flight).rejects.toThrow(/connection closed/);
    silent.unsubscribe();
  });
});
