import { createHash, timingSafeEqual } from 'node:crypto';
import type http from 'node:http';
import QRCode from 'qrcode';
import { ident, sql } from '../../analytics/sql.js';
import type { Store } from '../../analytics/store.js';
import { minor_of } from '../../billing/amounts.js';
import {
  type Bundle,
  type DisputeDeps,
  DisputeStateError,
  generate_bundle,
  NotFoundError,
  stored_bundle,
} from '../../billing/disputes/index.js';
import { open_pay_dispute, pay_dispute_case } from '../../billing/pay-at-charger/dispute.js';
import {
  type PayAtCharger,
  type PaySession,
  pay_session,
  put_site_hold,
  receipt_of,
  receipt_pdf,
} from '../../billing/pay-at-charger/index.js';
import { request_command } from '../../core/commands.js';
import { FieldError } from '../../core/field-error.js';
import type { Logger } from '../../core/log.js';
import type { Nats } from '../../core/nats.js';
import { RateLimiter } from '../../core/rate-limit.js';
import { HttpError, type Route, type RouteContext, read_body, send_json } from '../http.js';
import { client_script } from './client-script.js';
import { page, send_html } from './html.js';
import { type Lang, lang_of, words } from './i18n.js';
import { terminal_routes } from './terminal-routes.js';
import {
  type EvseState,
  ended_body,
  evse_body,
  live_body,
  live_figures,
  other_browser_body,
  pay_body,
  receipt_body,
} from './views.js';

export interface PayPagesDeps {
  pay: PayAtCharger;
  store: Store;
  nats: Nats;
  subject_prefix: string;
  command_timeout_ms: number;
  /** Public base URL of the pages (QR codes); undefined: from the request's Host. */
  public_base_url: string | undefined;
  provider_js_url: string;
  publishable_key: string;
  hold_duration_max_min: number;
  requests_per_s_max: number;
  /** The disputes module (billing/disputes) the receipt's dispute button opens cases in. */
  disputes: DisputeDeps;
  log: Logger;
}

/** Live streams open at once over all payers; past it a new one is refused (the page still reloads). */
const event_streams_max = 10_000;
const stream_poll_ms = 1000;
const stream_heartbeat_ms = 15_000;
const cookie_max_age_s = 2 * 24 * 3600;
const dispute_message_max = 2000;
/** The claimant API's cookie (api/dispute-routes.ts dispute_token_cookie). */
const dispute_cookie = 'evrate_dispute';

// Loose in the pattern, checked in the handler: a bad evse_id is a 400 naming it, not a router 404.
const cp_part = '([^/]{1,48})';
const evse_part = '([^/]{1,12})';
const id_part = '([^/]{1,40})';

/** `/pay/<cp>/<evse>` and what hangs under it. */
function evse_path(charge_point_id: string, evse_id: number): string {
  return `/pay/${encodeURIComponent(charge_point_id)}/${evse_id}`;
}

function session_path(s: Pick<PaySession, 'charge_point_id' | 'evse_id' | 'id'>): string {
  return `${evse_path(s.charge_point_id, s.evse_id)}/sessions/${s.id}`;
}

function with_lang(path: string, lang: Lang): string {
  return `${path}?lang=${lang}`;
}

function cookies_of(req: http.IncomingMessage): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (req.headers.cookie ?? '').split(';').slice(0, 100)) {
    const eq = part.indexOf('=');
    if (eq > 0) out.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  return out;
}

/** The payer's capability for this session, compared as digests in constant time. */
function holds_capability(req: http.IncomingMessage, session: PaySession): boolean {
  const given = cookies_of(req).get(`pay_${session.id}`);
  if (given === undefined || given.length > 100) return false;
  const a = createHash('sha256').update(given).digest();
  const b = Buffer.from(session.capability_sha256, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}

function is_tls(req: http.IncomingMessage, public_base_url: string | undefined): boolean {
  return (
    (req.socket as { encrypted?: boolean }).encrypted === true ||
    req.headers['x-forwarded-proto'] === 'https' ||
    public_base_url?.startsWith('https:') === true
  );
}

function redirect(
  res: http.ServerResponse,
  location: string,
  headers: Record<string, string | string[]> = {},
): void {
  res.writeHead(303, { ...headers, location, 'cache-control': 'no-store', 'content-length': '0' });
  res.end();
}

function evse_id_of(text: string): number {
  const evse_id = /^\d{1,5}$/.test(text) ? Number(text) : 0;
  if (evse_id < 1) throw new HttpError(400, 'evse_id must be an integer from 1 to 99999', 'evse_id');
  return evse_id;
}

/**
 * The driver's pages (pay at the charger) and the operator's routes around them. Every public
 * route is rate-limited per client address. The URL carries no secret: what a payer sees of a
 * session is bound to the browser that paid by an HttpOnly cookie holding a capability whose
 * digest the ledger keeps; anyone else sees only whether the EVSE is free.
 */
export class PayPages {
  private readonly limiter: RateLimiter;
  private readonly streams = new Set<http.ServerResponse>();
  private readonly provider_origin: string;

  constructor(private readonly deps: PayPagesDeps) {
    this.limiter = new RateLimiter({
      per_s: deps.requests_per_s_max,
      burst: deps.requests_per_s_max * 2,
      keys_max: 100_000,
    });
    this.provider_origin = new URL(deps.provider_js_url).origin;
  }

  /** Ends the live streams (before the API server closes, which waits for open responses). */
  close(): void {
    for (const res of this.streams) res.end();
    this.streams.clear();
  }

  private limit(ctx: RouteContext): void {
    const wait_s = this.limiter.take(ctx.req.socket.remoteAddress ?? '');
    if (wait_s > 0) {
      throw new HttpError(429, words(lang_of(ctx.req, ctx.url)).too_many, undefined, {
        'retry-after': String(wait_s),
      });
    }
  }

  private base_url(req: http.IncomingMessage): string {
    if (this.deps.public_base_url !== undefined) return this.deps.public_base_url;
    const host = /^[A-Za-z0-9.:[\]-]{1,255}$/.test(req.headers.host ?? '') ? req.headers.host : 'localhost';
    return `${is_tls(req, undefined) ? 'https' : 'http'}://${host}`;
  }

  private html(
    ctx: RouteContext,
    status: number,
    lang: Lang,
    title: string,
    body: string,
    scripts: string[] = [],
    headers: Record<string, string> = {},
  ): void {
    const w = words(lang);
    const other: Lang = lang === 'de' ? 'en' : 'de';
    const url = `${ctx.url.pathname}?lang=${other}`;
    send_html(
      ctx.res,
      status,
      page({ lang, title, body, other_lang_url: url, other_lang_label: w.language, scripts }),
      this.provider_origin,
      headers,
    );
  }

  /** Whether the charger holds a connection now (the latest connection event ingest recorded). */
  private async connected(charge_point_id: string): Promise<boolean> {
    const rows = await this.deps.store.query<{ is_connected: number | string }>(
      sql`SELECT argMax(connected, at_ms) AS is_connected FROM ${ident(this.deps.store.database)}.charger_connections
        WHERE charge_point_id = ${charge_point_id}`.text,
    );
    return rows.length > 0 && Number(rows[0]!.is_connected) === 1;
  }

  private async evse_state(charge_point_id: string, evse_id: number): Promise<EvseState> {
    if (!(await this.connected(charge_point_id))) return 'offline';
    if ((await this.deps.pay.paid_session_on(charge_point_id, evse_id)) !== undefined) return 'occupied';
    if ((await this.deps.pay.evse_session(charge_point_id, evse_id)) !== undefined) return 'occupied';
    return 'free';
  }

  /** The session of the URL, checked against its EVSE; 404 otherwise. */
  private async session_of(ctx: RouteContext): Promise<PaySession> {
    const session = await pay_session(this.deps.pay.ledger, ctx.params[2]!);
    if (
      session === undefined ||
      session.charge_point_id !== ctx.params[0] ||
      session.evse_id !== evse_id_of(ctx.params[1]!)
    ) {
      throw new HttpError(404, 'not found');
    }
    return session;
  }

  /** The session, if this browser paid for it; else the "another browser" page is sent (403). */
  private async own_session(ctx: RouteContext, lang: Lang): Promise<PaySession | undefined> {
    const session = await this.session_of(ctx);
    if (holds_capability(ctx.req, session)) return session;
    const w = words(lang);
    const state = await this.evse_state(session.charge_point_id, session.evse_id);
    this.html(
      ctx,
      403,
      lang,
      w.other_browser,
      other_browser_body({
        charge_point_id: session.charge_point_id,
        evse_id: session.evse_id,
        state,
        w,
        evse_url: with_lang(evse_path(session.charge_point_id, session.evse_id), lang),
      }),
    );
    return undefined;
  }

  routes(): Route[] {
    const evse = new RegExp(`^/pay/${cp_part}/${evse_part}`);
    const session = `${evse.source}/sessions/${id_part}`;
    const pub = (
      method: Route['method'],
      path: string,
      summary: string,
      handle: (ctx: RouteContext) => Promise<void>,
      extra: Partial<Route['doc']> = {},
    ): Route => ({
      method,
      path: new RegExp(`${path}$`),
      auth: 'self',
      param_names: ['charge_point_id', 'evse_id', 'id'],
      handle: async (ctx) => {
        this.limit(ctx);
        await handle(ctx);
      },
      doc: {
        path: path
          .replace(evse.source, '/pay/{charge_point_id}/{evse_id}')
          .replace(id_part, '{id}')
          .replace(/\\\./g, '.')
          .replace(/^\^/, ''),
        summary,
        tags: ['pay at the charger'],
        responses: {
          '200': { description: 'an HTML page' },
          '429': { description: 'rate limit; Retry-After' },
        },
        ...extra,
      },
    });
    return [
      pub('GET', '^/pay/assets/pay\\.js', "The pages' script (card field, live figures)", async ({ res }) => {
        res.writeHead(200, {
          'content-type': 'text/javascript; charset=utf-8',
          'cache-control': 'public, max-age=300',
          'x-content-type-options': 'nosniff',
        });
        res.end(client_script);
      }),
      pub(
        'GET',
        evse.source,
        "An EVSE's public page: state, tariff in words, the hold; the QR code points here",
        (ctx) => this.evse_page(ctx),
      ),
      pub('GET', `${evse.source}/qr\\.svg`, "The EVSE page's QR code as SVG", (ctx) => this.qr(ctx, 'svg')),
      pub('GET', `${evse.source}/qr\\.png`, "The EVSE page's QR code as PNG", (ctx) => this.qr(ctx, 'png')),
      pub(
        'POST',
        `${evse.source}/sessions`,
        'Opens a payment for the EVSE (sets the capability cookie)',
        (ctx) => this.create(ctx),
      ),
      pub('GET', session, "The payer's session page (payment, live figures, outcome)", (ctx) =>
        this.session_page(ctx),
      ),
      pub(
        'POST',
        `${session}/confirm`,
        "After the provider's card confirmation: the provider's answer decides",
        (ctx) => this.confirm(ctx),
      ),
      pub('POST', `${session}/stop`, 'The payer stops the session', (ctx) => this.stop(ctx)),
      pub('GET', `${session}/events`, 'Live figures of the session (Server-Sent Events)', (ctx) =>
        this.events(ctx),
      ),
      pub('GET', `${session}/receipt`, 'The receipt page', (ctx) => this.receipt(ctx, 'html')),
      pub('GET', `${session}/receipt\\.pdf`, 'The receipt as PDF', (ctx) => this.receipt(ctx, 'pdf')),
      pub(
        'GET',
        `${session}/meter-data`,
        "The charger's meter values of the session, signed ones verbatim (JSON)",
        (ctx) => this.meter_data(ctx),
      ),
      pub(
        'POST',
        `${session}/dispute`,
        "The payer disputes the charge: opens a dispute case (billing/disputes) on their own session, from the form's reason, amount and message",
        (ctx) => this.dispute(ctx),
        {
          responses: {
            '303': { description: 'opened (or opened before): to the receipt, which shows the case' },
            '400': { description: 'bad field (reason, amount, message), named' },
            '403': { description: 'not the browser that paid' },
            '409': { description: 'the charge is not settled yet' },
          },
        },
      ),
      pub(
        'GET',
        `${session}/dispute/bundle\\.pdf`,
        "The evidence bundle of the payer's disputed session (PDF)",
        (ctx) => this.dispute_bundle(ctx, 'pdf'),
      ),
      pub(
        'GET',
        `${session}/dispute/bundle\\.json`,
        "The evidence bundle of the payer's disputed session (JSON with its SHA-256 manifest)",
        (ctx) => this.dispute_bundle(ctx, 'json'),
      ),
      ...this.operator_routes(),
    ];
  }

  private async evse_page(ctx: RouteContext): Promise<void> {
    const lang = lang_of(ctx.req, ctx.url);
    const w = words(lang);
    const charge_point_id = ctx.params[0]!;
    const evse_id = evse_id_of(ctx.params[1]!);
    const now_ms = Date.now();
    let offer: Awaited<ReturnType<PayAtCharger['offer']>>;
    try {
      offer = await this.deps.pay.offer(charge_point_id, evse_id, now_ms);
    } catch (error) {
      if (error instanceof FieldError) throw new HttpError(404, error.rule, error.field);
      throw error;
    }
    const state = await this.evse_state(charge_point_id, evse_id);
    const active = await this.deps.pay.paid_session_on(charge_point_id, evse_id);
    const own = active !== undefined && holds_capability(ctx.req, active) ? active : undefined;
    this.html(
      ctx,
      200,
      lang,
      `${w.title_evse} · ${charge_point_id} ${evse_id}`,
      evse_body({
        offer,
        state,
        lang,
        w,
        now_ms,
        duration_max_min: this.deps.hold_duration_max_min,
        create_url: with_lang(`${evse_path(charge_point_id, evse_id)}/sessions`, lang),
        own_session_url: own === undefined ? undefined : with_lang(session_path(own), lang),
      }),
    );
  }

  private async qr(ctx: RouteContext, format: 'svg' | 'png'): Promise<void> {
    const charge_point_id = ctx.params[0]!;
    const evse_id = evse_id_of(ctx.params[1]!);
    const url = `${this.base_url(ctx.req)}${evse_path(charge_point_id, evse_id)}`;
    if (format === 'svg') {
      const svg = await QRCode.toString(url, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
      ctx.res.writeHead(200, { 'content-type': 'image/svg+xml', 'cache-control': 'public, max-age=3600' });
      ctx.res.end(svg);
    } else {
      const png = await QRCode.toBuffer(url, {
        type: 'png',
        errorCorrectionLevel: 'M',
        margin: 2,
        width: 512,
      });
      ctx.res.writeHead(200, { 'content-type': 'image/png', 'cache-control': 'public, max-age=3600' });
      ctx.res.end(png);
    }
  }

  private async create(ctx: RouteContext): Promise<void> {
    const lang = lang_of(ctx.req, ctx.url);
    const charge_point_id = ctx.params[0]!;
    const evse_id = evse_id_of(ctx.params[1]!);
    const state = await this.evse_state(charge_point_id, evse_id);
    if (state !== 'free') {
      // The EVSE page says why (offline, occupied); nothing is reserved.
      redirect(ctx.res, with_lang(evse_path(charge_point_id, evse_id), lang));
      return;
    }
    const base = this.base_url(ctx.req);
    const { session, capability } = await this.deps.pay.create(
      charge_point_id,
      evse_id,
      (id) => `${base}${session_path({ charge_point_id, evse_id, id })}`,
    );
    const cookie = [
      `pay_${session.id}=${capability}`,
      'Path=/pay/',
      `Max-Age=${cookie_max_age_s}`,
      'HttpOnly',
      // Lax: sent when the driver comes back by a link or the QR code, never with another site's POST.
      'SameSite=Lax',
      ...(is_tls(ctx.req, this.deps.public_base_url) ? ['Secure'] : []),
    ].join('; ');
    redirect(ctx.res, with_lang(session_path(session), lang), { 'set-cookie': [cookie] });
  }

  private async session_page(ctx: RouteContext): Promise<void> {
    const lang = lang_of(ctx.req, ctx.url);
    const w = words(lang);
    const session = await this.own_session(ctx, lang);
    if (session === undefined) return;
    const path = session_path(session);
    const scripts = ['/pay/assets/pay.js'];
    switch (session.status) {
      case 'awaiting_payment': {
        const payment = await this.deps.pay.payment_of(session);
        const declined = ctx.url.searchParams.get('declined') ?? undefined;
        this.html(
          ctx,
          200,
          lang,
          w.title_pay,
          pay_body({
            session,
            lang,
            w,
            client_secret: payment?.client_secret ?? '',
            publishable_key: this.deps.publishable_key,
            confirm_url: with_lang(`${path}/confirm`, lang),
            declined_message: declined,
          }),
          [this.deps.provider_js_url, ...scripts],
        );
        return;
      }
      case 'authorized':
      case 'starting':
      case 'charging':
      case 'stopping':
        this.html(
          ctx,
          200,
          lang,
          w.title_session,
          live_body({
            session,
            lang,
            w,
            now_ms: Date.now(),
            events_url: with_lang(`${path}/events`, lang),
            stop_url: with_lang(`${path}/stop`, lang),
          }),
          scripts,
        );
        return;
      case 'settled':
        redirect(ctx.res, with_lang(`${path}/receipt`, lang));
        return;
      default:
        this.html(
          ctx,
          200,
          lang,
          session.status === 'declined' ? w.declined : w.released_title,
          ended_body({
            session,
            lang,
            w,
            evse_url: with_lang(evse_path(session.charge_point_id, session.evse_id), lang),
          }),
        );
    }
  }

  private async confirm(ctx: RouteContext): Promise<void> {
    const lang = lang_of(ctx.req, ctx.url);
    const session = await this.own_session(ctx, lang);
    if (session === undefined) return;
    const after = await this.deps.pay.confirm(session.id);
    let target = with_lang(session_path(after), lang);
    if (after.status === 'awaiting_payment') {
      // Declined but retryable (the provider keeps the payment open for another card).
      const payment = await this.deps.pay.payment_of(after);
      if (payment?.failure_code !== undefined)
        target += `&declined=${encodeURIComponent(payment.failure_code)}`;
    }
    redirect(ctx.res, target);
  }

  private async stop(ctx: RouteContext): Promise<void> {
    const lang = lang_of(ctx.req, ctx.url);
    const session = await this.own_session(ctx, lang);
    if (session === undefined) return;
    await this.deps.pay.stop(session.id, 'driver');
    redirect(ctx.res, with_lang(session_path(session), lang));
  }

  private async events(ctx: RouteContext): Promise<void> {
    const lang = lang_of(ctx.req, ctx.url);
    const w = words(lang);
    const first = await this.session_of(ctx);
    if (!holds_capability(ctx.req, first)) throw new HttpError(403, w.other_browser);
    if (this.streams.size >= event_streams_max)
      throw new HttpError(503, 'too many live streams; reload later');
    const { res } = ctx;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
    });
    this.streams.add(res);
    let last = '';
    let last_write_ms = Date.now();
    let closed = false;
    const send = async () => {
      const session = await pay_session(this.deps.pay.ledger, first.id);
      if (session === undefined || closed) return;
      const text = JSON.stringify(live_figures(session, lang, w, Date.now()));
      if (text !== last) {
        last = text;
        last_write_ms = Date.now();
        res.write(`event: session\ndata: ${text}\n\n`);
      } else if (Date.now() - last_write_ms >= stream_heartbeat_ms) {
        last_write_ms = Date.now();
        res.write(': heartbeat\n\n');
      }
    };
    res.write('retry: 2000\n\n');
    await send();
    const timer = setInterval(() => {
      send().catch((error: unknown) => this.deps.log.warn({ err: error }, 'live stream read failed'));
    }, stream_poll_ms);
    const end = () => {
      closed = true;
      clearInterval(timer);
      this.streams.delete(res);
    };
    res.on('close', end);
    ctx.req.on('close', end);
  }

  private async receipt(ctx: RouteContext, format: 'html' | 'pdf'): Promise<void> {
    const lang = lang_of(ctx.req, ctx.url);
    const w = words(lang);
    const session = await this.own_session(ctx, lang);
    if (session === undefined) return;
    const receipt = receipt_of(session);
    if (receipt === undefined) {
      redirect(ctx.res, with_lang(session_path(session), lang));
      return;
    }
    const path = session_path(session);
    if (format === 'pdf') {
      const pdf = await receipt_pdf(receipt, {
        title: w.title_receipt,
        charger: w.charger,
        period: w.period,
        energy: w.energy,
        lines: w.receipt_lines,
        net: w.net,
        vat: w.vat,
        total: w.total,
        captured: w.captured,
        released: w.released_rest,
        tariff: w.tariff_version,
      });
      ctx.res.writeHead(200, {
        'content-type': 'application/pdf',
        'content-length': String(pdf.length),
        'content-disposition': `attachment; filename="receipt-${session.id}.pdf"`,
        'cache-control': 'no-store',
      });
      ctx.res.end(pdf);
      return;
    }
    const dispute = await pay_dispute_case(this.deps.pay.ledger, session.id);
    this.html(
      ctx,
      200,
      lang,
      `${w.title_receipt} ${session.id}`,
      receipt_body({
        receipt,
        session,
        lang,
        w,
        pdf_url: with_lang(`${path}/receipt.pdf`, lang),
        meter_url: `${path}/meter-data`,
        dispute_url: with_lang(`${path}/dispute`, lang),
        dispute:
          dispute === undefined
            ? undefined
            : {
                case: dispute,
                bundle_pdf_url: `${path}/dispute/bundle.pdf`,
                bundle_json_url: `${path}/dispute/bundle.json`,
              },
      }),
    );
  }

  private async meter_data(ctx: RouteContext): Promise<void> {
    const lang = lang_of(ctx.req, ctx.url);
    const session = await this.own_session(ctx, lang);
    if (session === undefined) return;
    if (session.transaction_id === null) throw new HttpError(404, 'the session has no meter data yet');
    const rows = await this.deps.store.query<Record<string, unknown>>(
      sql`SELECT timestamp_ms, measurand, phase, location, unit, context, format, value, signed_data
        FROM ${ident(this.deps.store.database)}.meter_values FINAL
        WHERE charge_point_id = ${session.charge_point_id} AND transaction_id = ${session.transaction_id}
        ORDER BY timestamp_ms, measurand, format LIMIT 100000`.text,
    );
    const body = JSON.stringify(
      {
        charge_point_id: session.charge_point_id,
        evse_id: session.evse_id,
        transaction_id: session.transaction_id,
        meter_values: rows.map((r) => ({ ...r, timestamp_ms: Number(r.timestamp_ms) })),
      },
      null,
      2,
    );
    ctx.res.writeHead(200, {
      'content-type': 'application/json; charset=utf-8',
      'content-disposition': `attachment; filename="meter-data-${session.id}.json"`,
      'cache-control': 'no-store',
    });
    ctx.res.end(body);
  }

  private async dispute(ctx: RouteContext): Promise<void> {
    const lang = lang_of(ctx.req, ctx.url);
    const session = await this.own_session(ctx, lang);
    if (session === undefined) return;
    const form = new URLSearchParams(await read_body(ctx.req, 16 * 1024));
    const message = form.get('message') ?? '';
    if (message.length > dispute_message_max)
      throw new HttpError(400, `message must be at most ${dispute_message_max} characters`, 'message');
    if (session.status !== 'settled') throw new HttpError(409, 'only a settled charge can be disputed', 'id');
    let opened: Awaited<ReturnType<typeof open_pay_dispute>>;
    try {
      opened = await open_pay_dispute(this.deps.disputes, session, {
        reason: form.get('reason') ?? '',
        amount: form.get('amount') ?? '',
        message,
      });
    } catch (error) {
      if (error instanceof NotFoundError) throw new HttpError(409, error.message, error.field);
      if (error instanceof DisputeStateError) throw new HttpError(409, error.message, error.field);
      if (error instanceof FieldError) throw new HttpError(400, error.message, error.field);
      throw error;
    }
    const headers: Record<string, string[]> = {};
    if (opened.access_token !== undefined) {
      // The case's claimant token, for the claimant API (/v1/claimant/disputes/<id>) in this browser only.
      headers['set-cookie'] = [
        `${dispute_cookie}=${opened.access_token}; Path=/v1/claimant/disputes/${opened.case.id}; HttpOnly; Secure; SameSite=Strict; Max-Age=31536000`,
      ];
    }
    redirect(ctx.res, with_lang(`${session_path(session)}/receipt`, lang), headers);
  }

  private async dispute_bundle(ctx: RouteContext, format: 'pdf' | 'json'): Promise<void> {
    const lang = lang_of(ctx.req, ctx.url);
    const session = await this.own_session(ctx, lang);
    if (session === undefined) return;
    const found = await pay_dispute_case(this.deps.pay.ledger, session.id);
    if (found === undefined) throw new HttpError(404, 'this charge has no dispute case', 'id');
    const bundle: Bundle =
      (await stored_bundle(this.deps.pay.ledger, found.id)) ??
      (await generate_bundle(this.deps.disputes, found.id, { kind: 'claimant', id: `pay:${session.id}` }));
    const name = `dispute-${found.id}-evidence-${bundle.manifest.version}`;
    if (format === 'pdf') {
      const pdf = Buffer.from(bundle.parts['bundle.pdf'] ?? '', 'base64');
      ctx.res.writeHead(200, {
        'content-type': 'application/pdf',
        'content-length': String(pdf.length),
        'content-disposition': `attachment; filename="${name}.pdf"`,
        'x-manifest-sha256': bundle.manifest_sha256,
        'cache-control': 'no-store',
      });
      ctx.res.end(pdf);
      return;
    }
    send_json(ctx.res, 200, bundle, {
      'content-disposition': `attachment; filename="${name}.json"`,
      'cache-control': 'no-store',
    });
  }

  private operator_routes(): Route[] {
    return [
      {
        method: 'POST',
        path: new RegExp(`^/v1/pay-at-charger/charge-points/${cp_part}/evses/${evse_part}/display-qr$`),
        param_names: ['charge_point_id', 'evse_id'],
        auth: 'operator',
        doc: {
          path: '/v1/pay-at-charger/charge-points/{charge_point_id}/evses/{evse_id}/display-qr',
          summary:
            "Shows the EVSE page's URL on the charger's display as a QR code (OCPP 2.0.1 SetDisplayMessage)",
          tags: ['pay at the charger'],
          responses: {
            '200': { description: "the charger's answer" },
            '400': { description: 'the charger speaks OCPP 1.6 (no display messages)' },
            '409': { description: 'the charger is not connected' },
          },
        },
        handle: async ({ req, res, params }) => {
          const charge_point_id = params[0]!;
          const evse_id = evse_id_of(params[1]!);
          const url = `${this.base_url(req)}${evse_path(charge_point_id, evse_id)}`;
          const result = await request_command(
            this.deps.nats,
            this.deps.subject_prefix,
            charge_point_id,
            { command: 'display', message_id: evse_id, format: 'URI', content: url, evse_id },
            this.deps.command_timeout_ms,
          );
          if (result.status === 'invalid')
            throw new HttpError(400, `${result.field}: ${result.rule}`, result.field);
          const status = {
            answered: 200,
            rejected: 502,
            timeout: 504,
            disconnected: 503,
            not_connected: 409,
          }[result.status];
          send_json(res, status, { charge_point_id, url, ...result });
        },
      },
      {
        method: 'PUT',
        path: /^\/v1\/pay-at-charger\/sites\/([^/]{1,64})\/hold$/,
        param_names: ['station_id'],
        auth: 'operator',
        doc: {
          path: '/v1/pay-at-charger/sites/{station_id}/hold',
          summary: "Sets the hold drivers pay at a site's chargers ({amount, currency})",
          tags: ['pay at the charger'],
          request_body: {
            type: 'object',
            required: ['amount', 'currency'],
            properties: { amount: { type: 'string', example: '50.00' }, currency: { type: 'string' } },
          },
          responses: { '200': { description: 'the hold as stored' }, '400': { description: 'bad field' } },
        },
        handle: async ({ res, params, json_body }) => {
          const body = (await json_body()) as { amount?: unknown; currency?: unknown };
          if (typeof body?.currency !== 'string' || !/^[A-Z]{3}$/.test(body.currency))
            throw new HttpError(400, 'currency must be an ISO 4217 code', 'currency');
          if (typeof body.amount !== 'string' || !/^\d{1,9}(\.\d{1,4})?$/.test(body.amount))
            throw new HttpError(400, 'amount must be a decimal text like 50.00', 'amount');
          const hold_minor = minor_of(body.amount, body.currency);
          if (hold_minor <= 0) throw new HttpError(400, 'amount must be more than 0', 'amount');
          await put_site_hold(this.deps.pay.ledger, params[0]!, body.currency, hold_minor, Date.now());
          send_json(res, 200, { station_id: params[0], amount: body.amount, currency: body.currency });
        },
      },
      {
        method: 'GET',
        path: new RegExp(`^/v1/pay-at-charger/sessions/${id_part}$`),
        param_names: ['id'],
        auth: 'operator',
        doc: {
          path: '/v1/pay-at-charger/sessions/{id}',
          summary: 'A pay-at-charger payment as the ledger holds it (hold, session, capture)',
          tags: ['pay at the charger'],
          responses: { '200': { description: 'the payment' }, '404': { description: 'unknown' } },
        },
        handle: async ({ res, params }) => {
          const session = await pay_session(this.deps.pay.ledger, params[0]!);
          if (session === undefined) throw new HttpError(404, 'not found', 'id');
          const { capability_sha256: _, ...shown } = session;
          send_json(res, 200, shown);
        },
      },
      ...terminal_routes({
        ledger: this.deps.pay.ledger,
        charge_points: this.deps.pay.charge_points,
        limit: (ctx) => this.limit(ctx),
      }),
    ];
  }
}
