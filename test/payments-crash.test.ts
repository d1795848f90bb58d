import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Ledger, open_pglite, open_server } from '../billing/ledger.js';
import { migrate_ledger } from '../billing/migrations.js';
import type { PaymentRow } from '../billing/payments/apply.js';
import type { PaymentsContext } from '../billing/payments/operations.js';
import { capture_payment, create_hold } from '../billing/payments/payments.js';
import { StripeProvider } from '../billing/payments/stripe.js';
import { start_test_postgres } from './helpers/postgres.js';
import { run_cli } from './helpers/process.js';
import { type StripeEmulator, start_stripe_emulator } from './helpers/stripe-emulator.js';

/**
 * SIGKILL of `evrate payments capture | refund` (the built CLI, a child process) at random points:
 * while its request waits at the gateway (the emulator's delay hook: the gateway still does the
 * work after the client is gone), right after the gateway answered (before or after the ledger's
 * commit, by a random few ms), with the answer held forever, or at a random time after start. Then
 * `evrate payments sweep` (the restart), repeated until nothing is pending, and the operator's
 * retry of the command if it never reached the ledger. Exactly one capture or refund exists at the
 * gateway (its own objects counted) and the ledger agrees to the cent. On PGlite (the data dir the
 * child opens) and on a PostgreSQL server.
 */

type KillPoint = 'at_gateway' | 'after_answer' | 'answer_held' | 'random_time';
const seed = Number(process.env.PAYMENTS_CRASH_SEED ?? Date.now() % 1_000_000);
let state = seed;
function random(n: number): number {
  state = (Math.imul(state, 1103515245) + 12345) >>> 0;
  return state % n;
}
/**
 * Each child start costs seconds: by default the two points the issue names (at the gateway, after
 * its answer) and one of the other two, by the seed; PAYMENTS_CRASH_ALL=1 runs all four.
 */
const kill_points: KillPoint[] =
  process.env.PAYMENTS_CRASH_ALL === '1'
    ? ['at_gateway', 'after_answer', 'answer_held', 'random_time']
    : ['at_gateway', 'after_answer', seed % 2 === 0 ? 'answer_held' : 'random_time'];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each(['pglite', 'server'] as const)('SIGKILL during a capture or a refund on %s', (backend) => {
  let emulator: StripeEmulator;
  let dir: string;
  let database_url: string | undefined;
  let dispose_server: (() => Promise<void>) | undefined;
  let ledger: Ledger | undefined;
  let ctx: PaymentsContext;

  async function open(): Promise<Ledger> {
    if (ledger !== undefined) return ledger;
    ledger =
      database_url === undefined
        ? await open_pglite(path.join(dir, 'billing'))
        : open_server(database_url, { connections_max: 4 });
    await migrate_ledger(ledger);
    ctx = { ledger, provider: ctx?.provider };
    return ledger;
  }
  /** PGlite is one process's: the test lets go of the data dir while a child runs. */
  async function let_go(): Promise<void> {
    if (database_url !== undefined || ledger === undefined) return;
    await ledger.close();
    ledger = undefined;
  }

  function cli(args: string[]) {
    return run_cli(['payments', ...args], {
      DATA_DIR: dir,
      ...(database_url !== undefined ? { DATABASE_URL: database_url } : {}),
      STRIPE_SECRET_KEY: emulator.secret_key,
      STRIPE_WEBHOOK_SECRET: emulator.webhook_secret,
      STRIPE_API_BASE: emulator.api_base,
    });
  }

  async function run_to_end(args: string[]): Promise<string> {
    const run = cli(args);
    const code = await run.exited;
    if (code !== 0) throw new Error(`evrate payments ${args.join(' ')} exited ${code}:\n${run.output()}`);
    return run.output();
  }

  /** The command, killed at `point`; resolves once the child is dead. */
  async function kill_during(args: string[], point: KillPoint, pattern: RegExp): Promise<string> {
    let trigger: Promise<unknown>;
    if (point === 'at_gateway') trigger = emulator.delay_requests(pattern, 400);
    else if (point === 'after_answer') trigger = emulator.answer_sent(pattern).then(() => sleep(random(15)));
    else if (point === 'answer_held') trigger = emulator.stall_answers(pattern);
    else trigger = sleep(200 + random(2500));
    const run = cli(args);
    const done = await Promise.race([trigger.then(() => 'trigger'), run.exited.then(() => 'exited')]);
    if (done === 'trigger') run.child.kill('SIGKILL');
    await run.exited;
    return `${point}: ${done}\n${run.output()}`;
  }

  /** The restart: sweeps until no operation is pending (a delayed call at the gateway answers 409 meanwhile). */
  async function recover(): Promise<void> {
    for (let round = 0; round < 10; round++) {
      await run_to_end(['sweep']);
      const db = await open();
      const [pending] = await db.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM payment_operations WHERE status = 'pending'",
      );
      await let_go();
      if (pending!.n === 0) return;
      await sleep(200);
    }
    throw new Error('operations still pending after 10 sweeps');
  }

  async function payment(id: number): Promise<PaymentRow> {
    const db = await open();
    const [row] = await db.query<PaymentRow>('SELECT * FROM payments WHERE id = $1', [id]);
    return row!;
  }

  async function hold(amount_minor: number): Promise<PaymentRow> {
    await open();
    const held = await create_hold(ctx, {
      amount_minor,
      currency: 'EUR',
      description: 'crash test hold',
      payment_method_id: 'pm_card_visa',
      actor: 'test',
    });
    expect(held.payment.state).toBe('authorized');
    return held.payment;
  }

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'evrate-payments-crash-'));
    if (backend === 'server') {
      const server = await start_test_postgres();
      database_url = server.url;
      dispose_server = server.dispose;
    }
    emulator = await start_stripe_emulator();
    ctx = {
      ledger: undefined as unknown as Ledger,
      provider: new StripeProvider({
        secret_key: emulator.secret_key,
        webhook_secret: emulator.webhook_secret,
        api_base: emulator.api_base,
        max_network_retries: 0,
      }),
    };
    await open();
  }, 120_000);

  afterAll(async () => {
    await ledger?.close();
    await emulator?.stop();
    await dispose_server?.();
    rmSync(dir, { recursive: true, force: true });
  });

  it.each(kill_points)(
    'capture killed %s: exactly one capture at the gateway, the ledger agrees',
    async (point) => {
      const held = await hold(4000 + random(5000));
      const amount = 1000 + random(3000);
      const pattern = new RegExp(`^POST /v1/payment_intents/${held.provider_payment_id}/capture$`);
      await let_go();
      const trace = await kill_during(
        ['capture', '--payment', String(held.id), '--amount-minor', String(amount)],
        point,
        pattern,
      );
      await recover();
      // The kill came before the intent row: the operator runs the command again.
      if ((await payment(held.id)).state === 'authorized') {
        await let_go();
        await run_to_end(['capture', '--payment', String(held.id), '--amount-minor', String(amount)]);
      }
      const after = await payment(held.id);
      const label = `seed ${seed} ${trace}`;
      expect(emulator.executed_count(pattern), label).toBe(1);
      const intent = emulator.payment_intents.get(held.provider_payment_id!)!;
      expect(intent.status, label).toBe('succeeded');
      expect(intent.amount_received, label).toBe(amount);
      expect(after, label).toMatchObject({ state: 'captured', captured_minor: amount, capturable_minor: 0 });
      const db = await open();
      const [cash] = await db.query<{ debit: number }>(
        `SELECT coalesce(sum(l.debit_minor), 0)::int8 AS debit FROM journal_entries e JOIN journal_lines l ON l.entry_id = e.id
       WHERE e.source_id = $1 AND l.ledger_account = 'cash'`,
        [`payment:${held.id}`],
      );
      expect(cash!.debit, label).toBe(amount);
    },
    120_000,
  );

  it.each(kill_points)(
    'refund killed %s: exactly one refund at the gateway, the ledger agrees',
    async (point) => {
      const held = await hold(6000);
      await capture_payment(ctx, held.id, { actor: 'test' });
      const amount = 500 + random(5000);
      const pattern = /^POST \/v1\/refunds$/;
      const refunds_before = emulator.refunds.size;
      await let_go();
      const trace = await kill_during(
        [
          'refund',
          '--payment',
          String(held.id),
          '--amount-minor',
          String(amount),
          '--reason',
          'requested_by_customer',
        ],
        point,
        pattern,
      );
      await recover();
      const db = await open();
      const [done] = await db.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM payment_refunds WHERE payment_id = $1 AND status = 'succeeded'",
        [held.id],
      );
      if (done!.n === 0) {
        await let_go();
        await run_to_end([
          'refund',
          '--payment',
          String(held.id),
          '--amount-minor',
          String(amount),
          '--reason',
          'requested_by_customer',
        ]);
      }
      const label = `seed ${seed} ${trace}`;
      const at_gateway = [...emulator.refunds.values()].filter(
        (r) => r.payment_intent === held.provider_payment_id,
      );
      expect(at_gateway.length, label).toBe(1);
      expect(emulator.refunds.size - refunds_before, label).toBe(1);
      expect(at_gateway[0]!.amount, label).toBe(amount);
      expect(emulator.net_received(held.provider_payment_id!), label).toBe(6000 - amount);
      const after = await payment(held.id);
      expect(after, label).toMatchObject({
        state: 'partly_refunded',
        captured_minor: 6000,
        refunded_minor: amount,
      });
      const rows = await (await open()).query<{
        status: string;
        amount_minor: number;
        provider_refund_id: string;
      }>('SELECT status, amount_minor, provider_refund_id FROM payment_refunds WHERE payment_id = $1', [
        held.id,
      ]);
      expect(
        rows.filter((r) => r.status !== 'failed'),
        label,
      ).toEqual([{ status: 'succeeded', amount_minor: amount, provider_refund_id: at_gateway[0]!.id }]);
    },
    120_000,
  );
});
