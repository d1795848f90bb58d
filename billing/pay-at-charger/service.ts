import { createHash, randomBytes } from 'node:crypto';
import { AckPolicy, DeliverPolicy, type JsMsg } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import type { RatedSessionRow } from '../../analytics/sessions.js';
import type { ChargePointRegistry } from '../../core/charge-points.js';
import { type CommandResult, request_command } from '../../core/commands.js';
import { FieldError } from '../../core/field-error.js';
import type { Logger } from '../../core/log.js';
import { type Nats, open_kv } from '../../core/nats.js';
import { partition_of } from '../../core/partitions.js';
import { ensure_rated_stream, rated_feed_names } from '../../core/rated-feed.js';
import type { TokenStore } from '../../core/tokens.js';
import type { TariffStore, TariffVersion } from '../../rating/tariff-store.js';
import { minor_of, vat_key } from '../amounts.js';
import { type BillingEvent, record_billing_events } from '../events.js';
import { post_entry, revenue_account, vat_payable_account } from '../journal.js';
import type { Ledger, Queryable } from '../ledger.js';
import type { PaymentProvider, ProviderPayment } from '../payments/provider.js';
import { session_vat_parts } from '../rated-versions.js';
import { type Hold, hold_of } from './hold.js';
import {
  active_on_evse,
  active_pay_sessions,
  type PaySession,
  type PayStatus,
  pay_session,
  pay_session_by_tag,
  site_hold,
  transition,
} from './store.js';

/**
 * Pay at the charger, from the hold to the capture. One entry point per step the driver or the
 * network takes (create, confirm, stop; the rated feed's final version settles), and one poll
 * loop that follows the sessions holding money: it binds the charging session started with the
 * payment's ad-hoc token, copies its energy and running cost (the rating service's open-session
 * state in NATS KV), stops it at the cost cap or when the car draws nothing, and releases holds
 * whose start never came.
 *
 * Every provider call carries an idempotency key derived from the pay session
 * (`pay:<id>:authorize|capture|cancel`) and is preceded by the ledger row that asks for it, so a
 * crash between the two is finished by repeating the same call. Status changes are conditional
 * updates (`transition`): two API processes polling the same sessions move each one once.
 */

export interface PayAtChargerOptions {
  subject_prefix: string;
  command_timeout_ms: number;
  /** RATING_PARTITIONS: the open-session keys of the rating service are per partition. */
  rating_partitions: number;
  default_tariff_id: string;
  default_time_zone: string;
  hold_duration_max_min: number;
  hold_power_default_w: number;
  no_power_timeout_ms: number;
  cost_cap_margin_percent: number;
  poll_interval_ms: number;
  /** Sessions holding money followed at once by one process; past it the oldest go first. */
  active_sessions_max: number;
  /** The party of the ad-hoc tokens (our own). */
  own_party: { country_code: string; party_id: string };
}

export interface PayAtChargerDeps {
  ledger: Ledger;
  provider: PaymentProvider;
  nats: Nats;
  tariffs: TariffStore;
  charge_points: ChargePointRegistry;
  tokens: TokenStore;
  log: Logger;
}

/** What a page needs to show an EVSE before paying. */
export interface EvseOffer {
  charge_point_id: string;
  evse_id: number;
  tariff: TariffVersion;
  time_zone: string;
  power_w: number;
  hold: Hold;
}

/** The part of the rating service's open-session record read here (rating/service.ts StoredSession). */
interface OpenSession {
  session_id: string;
  id_tag: string;
  transaction_id?: string;
  meta?: { transaction_id?: string };
  started_at_ms: number;
  energy_wh: number;
  running_cost: { excl_vat: string; incl_vat: string } | null;
}

/** Ad-hoc tokens: "PAY" and 16 base32 characters, within OCPP 1.6's idTag CiString20Type. */
const token_prefix = 'PAY';

export function capability_digest(capability: string): string {
  return createHash('sha256').update(capability).digest('hex');
}

function b64(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64url');
}

function random_base32(chars: number): string {
  const alphabet = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';
  const bytes = randomBytes(chars);
  let out = '';
  for (const byte of bytes) out += alphabet[byte % 32];
  return out;
}

export class PayAtCharger {
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> = Promise.resolve();
  private feed_loop: Promise<void> = Promise.resolve();
  private running = true;

  private constructor(
    private readonly deps: PayAtChargerDeps,
    private readonly options: PayAtChargerOptions,
    private readonly open_sessions: KV,
    private readonly connectors: KV,
  ) {}

  static async start(deps: PayAtChargerDeps, options: PayAtChargerOptions): Promise<PayAtCharger> {
    const service = new PayAtCharger(
      deps,
      options,
      await open_kv(deps.nats, 'evrate_sessions_open'),
      await open_kv(deps.nats, 'evrate_connectors'),
    );
    await service.start_feed();
    service.timer = setInterval(() => {
      service.ticking = service.ticking.then(() => service.tick()).catch(() => undefined);
    }, options.poll_interval_ms);
    return service;
  }

  get ledger(): Ledger {
    return this.deps.ledger;
  }

  /** Where each charge point's settings live (its tariff, power, payment terminal). */
  get charge_points(): ChargePointRegistry {
    return this.deps.charge_points;
  }

  get provider_name(): string {
    return this.deps.provider.name;
  }

  /** The tariff, power and hold of an EVSE as a driver would pay for it now. */
  async offer(charge_point_id: string, evse_id: number, now_ms = Date.now()): Promise<EvseOffer> {
    const profile = await this.deps.charge_points.cached_profile(charge_point_id);
    const tariff_id = profile?.tariff_id ?? this.options.default_tariff_id;
    const tariff = await this.deps.tariffs.current(tariff_id);
    if (tariff === undefined) throw new FieldError('charge_point_id', `its tariff ${tariff_id} is not known`);
    const time_zone = profile?.time_zone ?? this.options.default_time_zone;
    const power_w = profile?.max_power_w ?? this.options.hold_power_default_w;
    const station_id = profile?.station_id ?? charge_point_id;
    const hold = hold_of({
      tariff: tariff.tariff,
      site_hold: await site_hold(this.deps.ledger, station_id),
      power_w,
      duration_max_min: this.options.hold_duration_max_min,
      time_zone,
      now_ms,
    });
    return { charge_point_id, evse_id, tariff, time_zone, power_w, hold };
  }

  /** The charging session on the EVSE now, if the rating service knows one (occupied). */
  async evse_session(charge_point_id: string, evse_id: number): Promise<string | undefined> {
    const entry = await this.connectors.get(`c.${b64(`${charge_point_id}/${evse_id}`)}`);
    if (entry === null || entry.operation !== 'PUT') return undefined;
    const state = entry.json<{ session_id: string | null; status: string }>();
    return state.session_id ?? undefined;
  }

  /** Paid sessions that hold an EVSE (created, not yet ended). */
  async paid_session_on(charge_point_id: string, evse_id: number): Promise<PaySession | undefined> {
    return await active_on_evse(this.deps.ledger, charge_point_id, evse_id);
  }

  /**
   * Opens a payment for an EVSE: the row first (with the hold the driver was shown), then the
   * provider's payment for the hold, which the browser confirms with the provider's card element
   * (the card never reaches us). Returns the capability the caller puts in the payer's cookie.
   */
  async create(
    charge_point_id: string,
    evse_id: number,
    return_url: (id: string) => string,
    now_ms = Date.now(),
  ): Promise<{ session: PaySession; capability: string; payment: ProviderPayment }> {
    const offer = await this.offer(charge_point_id, evse_id, now_ms);
    const id = random_base32(20);
    const capability = randomBytes(32).toString('base64url');
    const id_tag = `${token_prefix}${random_base32(16)}`;
    await this.deps.ledger.query(
      `INSERT INTO pay_sessions (id, charge_point_id, evse_id, capability_sha256, id_tag, currency, hold_minor,
         hold_source, tariff_id, tariff_version, provider, status, created_at_ms, updated_at_ms)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'awaiting_payment', $12, $12)`,
      [
        id,
        charge_point_id,
        evse_id,
        capability_digest(capability),
        id_tag,
        offer.hold.currency,
        offer.hold.hold_minor,
        offer.hold.source,
        offer.tariff.tariff_id,
        offer.tariff.version,
        this.deps.provider.name,
        now_ms,
      ],
    );
    const payment = await this.deps.provider.authorize({
      idempotency_key: `pay:${id}:authorize`,
      amount_minor: offer.hold.hold_minor,
      currency: offer.hold.currency,
      description: `Charging at ${charge_point_id} EVSE ${evse_id}`,
      metadata: { pay_session_id: id, charge_point_id, evse_id: String(evse_id) },
      return_url: return_url(id),
    });
    await this.deps.ledger.query(
      'UPDATE pay_sessions SET provider_payment_id = $2, updated_at_ms = $3 WHERE id = $1',
      [id, payment.provider_payment_id, now_ms],
    );
    const session = (await pay_session(this.deps.ledger, id))!;
    return { session, capability, payment };
  }

  /** The provider's payment of a session (its client secret for the payer's browser). */
  async payment_of(session: PaySession): Promise<ProviderPayment | undefined> {
    if (session.provider_payment_id === null) return undefined;
    return await this.deps.provider.retrieve(session.provider_payment_id);
  }

  /**
   * After the browser confirmed the card with the provider: the provider's word (never the
   * browser's) decides. An authorized hold starts the charger; a declined card ends here.
   */
  async confirm(id: string, now_ms = Date.now()): Promise<PaySession> {
    const session = await pay_session(this.deps.ledger, id);
    if (session === undefined) throw new FieldError('id', 'is not a known payment');
    if (session.status !== 'awaiting_payment' || session.provider_payment_id === null) return session;
    const payment = await this.deps.provider.retrieve(session.provider_payment_id);
    if (payment.status === 'authorized') {
      const moved = await this.deps.ledger.transaction(async (tx) => {
        const row = await transition(
          tx,
          id,
          ['awaiting_payment'],
          'authorized',
          { authorized_at_ms: now_ms },
          now_ms,
        );
        if (row !== undefined)
          await record_billing_events(tx, [this.event(row, 'payment_authorized', row.hold_minor, now_ms)]);
        return row;
      });
      if (moved !== undefined) return await this.remote_start(moved, now_ms);
    } else if (payment.status === 'failed') {
      // A declined attempt leaves the provider's payment open for another card; this one is done
      // (the page starts a new payment), so it is cancelled rather than left to expire.
      await this.deps.provider
        .cancel({ idempotency_key: `pay:${id}:cancel`, provider_payment_id: session.provider_payment_id })
        .catch((error: unknown) =>
          this.deps.log.warn({ err: error, pay_session_id: id }, 'declined payment not cancelled'),
        );
      await this.deps.ledger.transaction(async (tx) => {
        const row = await transition(
          tx,
          id,
          ['awaiting_payment'],
          'declined',
          { reason: payment.failure_code ?? 'declined' },
          now_ms,
        );
        if (row !== undefined)
          await record_billing_events(tx, [
            this.event(row, 'payment_failed', 0, now_ms, {
              failure_code: payment.failure_code ?? 'declined',
            }),
          ]);
      });
    }
    return (await pay_session(this.deps.ledger, id))!;
  }

  /**
   * The remote start with the payment's ad-hoc token (OCPP 2.0.1 RequestStartTransaction, 1.6
   * RemoteStartTransaction). The token is registered first so that the charger's start (and its
   * Authorize, if it asks) is accepted by ingest. A charger that is offline or refuses gets the
   * hold released at once.
   */
  private async remote_start(session: PaySession, now_ms: number): Promise<PaySession> {
    await this.deps.tokens.put({
      uid: session.id_tag,
      type: 'AD_HOC_USER',
      contract_id: session.id_tag,
      country_code: this.options.own_party.country_code,
      party_id: this.options.own_party.party_id,
      valid: true,
      whitelist: 'ALLOWED',
      source: 'operator',
      last_updated: new Date(now_ms).toISOString(),
    });
    const starting = await transition(this.deps.ledger, session.id, ['authorized'], 'starting', {}, now_ms);
    if (starting === undefined) return (await pay_session(this.deps.ledger, session.id))!;
    let result: CommandResult;
    try {
      result = await request_command(
        this.deps.nats,
        this.options.subject_prefix,
        session.charge_point_id,
        {
          command: 'start',
          id_tag: session.id_tag,
          connector_id: session.evse_id,
          remote_start_id: Number.parseInt(
            createHash('sha256').update(session.id).digest('hex').slice(0, 7),
            16,
          ),
        },
        this.options.command_timeout_ms,
      );
    } catch (error) {
      this.deps.log.warn({ err: error, pay_session_id: session.id }, 'remote start failed');
      result = { status: 'timeout', action: 'start' };
    }
    const accepted =
      result.status === 'answered' &&
      (result.response as { status?: string } | undefined)?.status === 'Accepted';
    if (!accepted) {
      const reason = result.status === 'not_connected' ? 'charger_offline' : 'start_refused';
      await this.release(starting, reason, Date.now());
    }
    return (await pay_session(this.deps.ledger, session.id))!;
  }

  /** The driver's stop from the page, or the service's own (cost cap, no power). */
  async stop(id: string, by: 'driver' | 'cost_cap' | 'no_power', now_ms = Date.now()): Promise<PaySession> {
    const session = await pay_session(this.deps.ledger, id);
    if (session === undefined) throw new FieldError('id', 'is not a known payment');
    if (session.status === 'starting' && session.transaction_id === null) {
      // Nothing runs yet: the start is abandoned and the hold goes back.
      await this.release(session, by === 'driver' ? 'stopped_before_start' : by, now_ms);
      return (await pay_session(this.deps.ledger, id))!;
    }
    if (session.status !== 'charging' || session.transaction_id === null) return session;
    const moved = await transition(
      this.deps.ledger,
      id,
      ['charging'],
      'stopping',
      { stop_requested_by: by },
      now_ms,
    );
    if (moved === undefined) return (await pay_session(this.deps.ledger, id))!;
    const result = await request_command(
      this.deps.nats,
      this.options.subject_prefix,
      session.charge_point_id,
      { command: 'stop', transaction_id: session.transaction_id },
      this.options.command_timeout_ms,
    ).catch((error: unknown) => {
      this.deps.log.warn({ err: error, pay_session_id: id }, 'remote stop failed');
      return undefined;
    });
    if (result?.status !== 'answered') {
      // Still charging: back to `charging`, and the next poll (cost cap) or the driver tries again.
      await transition(
        this.deps.ledger,
        id,
        ['stopping'],
        'charging',
        { stop_requested_by: null },
        Date.now(),
      );
    }
    return (await pay_session(this.deps.ledger, id))!;
  }

  /** Releases the hold (nothing taken): the provider first, then the row and its event. */
  private async release(session: PaySession, reason: string, now_ms: number): Promise<void> {
    if (session.provider_payment_id !== null) {
      await this.deps.provider.cancel({
        idempotency_key: `pay:${session.id}:cancel`,
        provider_payment_id: session.provider_payment_id,
      });
    }
    await this.deps.ledger.transaction(async (tx) => {
      const row = await transition(
        tx,
        session.id,
        ['authorized', 'starting', 'charging', 'stopping'],
        'released',
        { reason, captured_minor: 0 },
        now_ms,
      );
      if (row !== undefined)
        await record_billing_events(tx, [this.event(row, 'payment_cancelled', 0, now_ms, { reason })]);
    });
  }

  private event(
    row: PaySession,
    kind: string,
    amount_minor: number,
    now_ms: number,
    attributes: Record<string, string> = {},
  ): BillingEvent {
    return {
      kind,
      occurred_at_ms: now_ms,
      amount_minor,
      currency: row.currency,
      attributes: {
        method: 'pay_at_charger',
        pay_session_id: row.id,
        provider: row.provider,
        station_id: row.charge_point_id,
        ...(row.session_id === null ? {} : { session_id: row.session_id }),
        ...attributes,
      },
    };
  }

  /** One pass over the sessions holding money. */
  async tick(now_ms = Date.now()): Promise<void> {
    if (!this.running) return;
    const sessions = await active_pay_sessions(this.deps.ledger, this.options.active_sessions_max);
    for (const session of sessions) {
      try {
        await this.follow(session, now_ms);
      } catch (error) {
        this.deps.log.warn({ err: error, pay_session_id: session.id }, 'pay session not followed');
      }
    }
  }

  private async open_session(charge_point_id: string, session_id: string): Promise<OpenSession | undefined> {
    const key = `s.p${partition_of(charge_point_id, this.options.rating_partitions)}.${b64(session_id)}`;
    const entry = await this.open_sessions.get(key);
    if (entry === null || entry.operation !== 'PUT') return undefined;
    return entry.json<OpenSession>();
  }

  private async follow(session: PaySession, now_ms: number): Promise<void> {
    const since_ms = session.authorized_at_ms ?? session.created_at_ms;
    if (session.status === 'starting') {
      const session_id = await this.evse_session(session.charge_point_id, session.evse_id);
      const open =
        session_id === undefined ? undefined : await this.open_session(session.charge_point_id, session_id);
      if (open !== undefined && open.id_tag === session.id_tag) {
        const transaction_id = session_id!.slice(session.charge_point_id.length + 1);
        await transition(
          this.deps.ledger,
          session.id,
          ['starting'],
          'charging',
          { session_id: session_id!, transaction_id, started_at_ms: open.started_at_ms },
          now_ms,
        );
        return;
      }
      // The charger accepted but no session came (the driver never plugged in).
      if (now_ms - since_ms >= this.options.no_power_timeout_ms)
        await this.release(session, 'no_session', now_ms);
      return;
    }
    if (session.status !== 'charging' || session.session_id === null) return;
    const open = await this.open_session(session.charge_point_id, session.session_id);
    if (open === undefined) return; // closed: the rated feed settles it
    const running_minor =
      open.running_cost === null ? 0 : minor_of(open.running_cost.incl_vat, session.currency);
    if (running_minor !== session.running_incl_vat_minor || open.energy_wh !== session.energy_wh) {
      await this.deps.ledger.query(
        `UPDATE pay_sessions SET energy_wh = $2, running_incl_vat_minor = $3, updated_at_ms = $4
         WHERE id = $1 AND status = 'charging'`,
        [session.id, Math.round(open.energy_wh), running_minor, now_ms],
      );
    }
    // The cost cap: stop before the running cost reaches the hold, so nothing above it is due.
    if (running_minor * 100 >= session.hold_minor * (100 - this.options.cost_cap_margin_percent)) {
      await this.stop(session.id, 'cost_cap', now_ms);
      return;
    }
    // Counted from the hold, on our clock (the charger's timestamps may be off).
    if (open.energy_wh <= 0 && now_ms - since_ms >= this.options.no_power_timeout_ms) {
      await this.stop(session.id, 'no_power', now_ms);
    }
  }

  /** A durable consumer of its own on the rated feed: the final version of a paid session settles it. */
  private async start_feed(): Promise<void> {
    const nats = this.deps.nats;
    await ensure_rated_stream(nats);
    const { stream } = rated_feed_names(nats);
    try {
      await nats.jsm.consumers.info(stream, 'pay_at_charger');
    } catch (error) {
      if (!(error instanceof Error && /not found/i.test(error.message))) throw error;
      // New versions only: a pay session exists before its session is rated.
      await nats.jsm.consumers.add(stream, {
        durable_name: 'pay_at_charger',
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.New,
        ack_wait: 60_000 * 1_000_000,
        max_ack_pending: 500,
      });
    }
    this.feed_loop = this.run_feed(stream);
  }

  private async run_feed(stream: string): Promise<void> {
    const decoder = new TextDecoder();
    while (this.running) {
      try {
        const consumer = await this.deps.nats.js.consumers.get(stream, 'pay_at_charger');
        const fetched = await consumer.fetch({ max_messages: 500, expires: 1000 });
        const messages: JsMsg[] = [];
        try {
          for await (const message of fetched) messages.push(message);
        } catch (error) {
          if (messages.length === 0) throw error;
        }
        for (const message of messages) {
          const row = JSON.parse(decoder.decode(message.data)) as RatedSessionRow;
          if (row.id_tag.startsWith(token_prefix) && row.provisional !== 1) await this.settle(row);
          message.ack();
        }
      } catch (error) {
        if (!this.running) break;
        this.deps.log.warn({ err: error }, 'pay-at-charger rated feed batch failed; retrying');
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
  }

  /**
   * The final rated version settles the payment: capture exactly the rated total incl. VAT (never
   * more than the hold: an overrun past the cost cap is written off, the driver pays at most what
   * was agreed), the rest of the hold returns. A session that drew no energy is released.
   */
  async settle(row: RatedSessionRow, now_ms = Date.now()): Promise<void> {
    const session = await pay_session_by_tag(this.deps.ledger, row.id_tag);
    if (session === undefined) return;
    if (session.status === 'settled' || session.status === 'released') {
      if (session.rated_version !== null && row.version > session.rated_version)
        this.deps.log.warn(
          { pay_session_id: session.id, version: row.version },
          'paid session re-rated after settlement',
        );
      return;
    }
    const total_incl = minor_of(row.total_incl_vat, row.currency);
    const total_excl = minor_of(row.total_excl_vat, row.currency);
    // The intent, with the figures, before the provider is asked.
    const from: PayStatus[] = ['starting', 'charging', 'stopping'];
    const noted = await transition(
      this.deps.ledger,
      session.id,
      from,
      'stopping',
      {
        session_id: row.session_id,
        transaction_id: row.transaction_id,
        energy_wh: row.energy_wh,
        total_excl_vat_minor: total_excl,
        total_incl_vat_minor: total_incl,
        // The receipt names the rate of the session's largest part (its VAT figure is the rated one).
        vat_percent: session_vat_parts(row, total_excl).reduce((a, b) => (b.net_minor > a.net_minor ? b : a))
          .vat_percent,
        rated_version: row.version,
        breakdown: row.breakdown,
        started_at_ms: row.started_at_ms,
        stopped_at_ms: row.stopped_at_ms,
      },
      now_ms,
    );
    if (noted === undefined) return;
    if (row.energy_wh <= 0 || total_incl === 0) {
      await this.release(noted, row.energy_wh <= 0 ? 'no_power' : 'nothing_due', now_ms);
      return;
    }
    const capture_minor = Math.min(total_incl, noted.hold_minor);
    const payment = await this.deps.provider.capture({
      idempotency_key: `pay:${noted.id}:capture`,
      provider_payment_id: noted.provider_payment_id!,
      amount_minor: capture_minor,
    });
    if (payment.amount_captured_minor !== capture_minor) {
      throw new Error(
        `pay session ${noted.id}: captured ${payment.amount_captured_minor}, asked ${capture_minor}`,
      );
    }
    await this.deps.ledger.transaction(async (tx) => {
      const settled = await transition(
        tx,
        noted.id,
        ['stopping'],
        'settled',
        { captured_minor: capture_minor, settled_at_ms: now_ms },
        now_ms,
      );
      if (settled === undefined) return;
      await book_capture(tx, settled, capture_minor, now_ms);
      await record_billing_events(tx, [
        this.event(settled, 'payment_captured', capture_minor, now_ms),
        this.event(settled, 'payment_received', capture_minor, now_ms),
      ]);
    });
  }

  async close(): Promise<void> {
    this.running = false;
    if (this.timer !== undefined) clearInterval(this.timer);
    await this.ticking;
    await this.feed_loop;
  }
}

/**
 * The sale in the journal: cash at the provider (debit) against revenue and VAT of the session's
 * rate (credit). The receipt is the document; there is no receivable. An overrun past the hold
 * (the cost cap stops before it, a late meter value may still cross it) is a write-off line.
 */
async function book_capture(
  tx: Queryable,
  session: PaySession,
  captured_minor: number,
  now_ms: number,
): Promise<void> {
  const incl = session.total_incl_vat_minor!;
  const excl = session.total_excl_vat_minor!;
  const rate = vat_key(session.vat_percent ?? '0');
  await post_entry(tx, {
    kind: 'payment_received',
    source_id: `pay_at_charger:${session.id}`,
    currency: session.currency,
    posted_at_ms: now_ms,
    description: `pay at the charger ${session.id} (${session.session_id ?? ''})`,
    lines: [
      { ledger_account: 'cash', debit_minor: captured_minor, credit_minor: 0 },
      ...(incl > captured_minor
        ? [{ ledger_account: 'pay_at_charger_overrun', debit_minor: incl - captured_minor, credit_minor: 0 }]
        : []),
      { ledger_account: revenue_account(rate), debit_minor: 0, credit_minor: excl },
      { ledger_account: vat_payable_account(rate), debit_minor: 0, credit_minor: incl - excl },
    ],
  });
}
