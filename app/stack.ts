import path from 'node:path';
import { migrate } from '../analytics/migrations.js';
import { open_store } from '../analytics/open.js';
import { insert_tariff_version } from '../analytics/sessions.js';
import { Sink } from '../analytics/sink.js';
import type { Store } from '../analytics/store.js';
import { analytics_routes } from '../api/analytics-routes.js';
import { billing_routes } from '../api/billing-routes.js';
import { collection_routes } from '../api/collection-routes.js';
import { command_routes } from '../api/command-routes.js';
import { type DisputeRouteDeps, dispute_routes } from '../api/dispute-routes.js';
import type { Route } from '../api/http.js';
import {
  type CdrMapping,
  CdrPusher,
  type OcpiContext,
  ocpi_authenticator,
  ocpi_error_body,
  ocpi_routes,
  open_sessions_bucket,
  PartnerRegistry,
} from '../api/ocpi/index.js';
import { openapi_route } from '../api/openapi.js';
import { operator_routes } from '../api/operator-routes.js';
import { open_pay_pages } from '../api/pages/index.js';
import { payment_routes } from '../api/payment-routes.js';
import { pricing_routes } from '../api/pricing-routes.js';
import { rerate_routes } from '../api/rerate-routes.js';
import { ApiServer } from '../api/server.js';
import { token_routes } from '../api/token-routes.js';
import { start_billing_event_shipper } from '../billing/analytics/shipper.js';
import { start_collection_schedule } from '../billing/collection/index.js';
import { apply_chargeback_event } from '../billing/disputes/chargeback.js';
import { parse_deadline_rules } from '../billing/disputes/index.js';
import {
  type Ledger,
  migrate_ledger,
  open_ledger,
  RatedFeedConsumer,
  rated_feed_defaults,
} from '../billing/index.js';
import type { PaymentProvider } from '../billing/payments/provider.js';
import { payment_provider_of } from '../billing/payments/setup.js';
import { start_payment_sweeps } from '../billing/payments/sweep.js';
import { ChargePointRegistry } from '../core/charge-points.js';
import { type Config, redact_config } from '../core/config.js';
import type { Logger } from '../core/log.js';
import { connect_nats } from '../core/nats.js';
import { start_nats_server } from '../core/nats-server.js';
import { Shutdown } from '../core/shutdown.js';
import { TokenStore } from '../core/tokens.js';
import { EventPublisher } from '../ingest/publisher.js';
import { RemoteCommands } from '../ingest/remote.js';
import { IngestServer } from '../ingest/server.js';
import { TransactionIdAllocator } from '../ingest/txid.js';
import { default_tariff } from '../rating/default-tariff.js';
import { PlanStore } from '../rating/plans.js';
import { PricingPool } from '../rating/pool.js';
import { RatingService } from '../rating/service.js';
import type { SessionRules } from '../rating/session.js';
import { TariffStore } from '../rating/tariff-store.js';
import { WhatIfPool } from '../rating/what-if.js';

export interface RunningStack {
  /** '' when this process does not run the ingest role. */
  ocpp_url: string;
  /** '' when this process does not run the api role. */
  api_url: string;
  /** The API's routes in matching order (empty without the api role). */
  api_routes: readonly Route[];
  nats_url: string;
  /** Undefined in an ingest-only process, which does not open ClickHouse. */
  store: Store | undefined;
  /** The billing ledger, when this process runs billing (or the API with DATABASE_URL). */
  ledger: Ledger | undefined;
  /** The rated feed consumer, when this process runs billing. */
  billing_feed: RatedFeedConsumer | undefined;
  shutdown: Shutdown;
  stop(): Promise<void>;
}

export function rating_rules(config: Config): SessionRules {
  return {
    idle_power_w: config.rating_idle_power_w,
    clock_skew_ms_max: config.rating_clock_skew_max_s * 1000,
    clock_behind_ms_max: config.rating_clock_behind_max_s * 1000,
    silence_ms: config.rating_silence_s * 1000,
    power_w_max: config.rating_power_max_w,
  };
}

function local_url(host: string, port: number, scheme: string): string {
  const shown = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  return `${scheme}://${shown}:${port}`;
}

/**
 * The composition root: starts every stage in dependency order and registers each for shutdown,
 * which runs in reverse (front doors first, then the pipeline, then the stores and servers).
 */
export async function start_stack(
  config: Config,
  log: Logger,
  extras: { payment_provider?: PaymentProvider } = {},
): Promise<RunningStack> {
  log.info({ config: redact_config(config) }, 'effective configuration');
  const shutdown = new Shutdown(log);
  try {
    let nats_url = config.nats_url;
    if (nats_url === undefined) {
      const server = await start_nats_server({
        store_dir: path.join(config.data_dir, 'nats'),
        port: config.nats_port,
        log,
      });
      shutdown.add('nats-server', () => server.stop());
      nats_url = server.url;
    }
    const nats = await connect_nats(config, nats_url, log);
    shutdown.add('nats', () => nats.close());

    // Only rating and the API read or write ClickHouse: an ingest-only process neither opens it
    // (no embedded chdb, its threads and memory, beside the sockets) nor needs to reach it.
    let store: Store | undefined;
    if (
      config.roles.has('rating') ||
      config.roles.has('api') ||
      // A billing process ships its ledger's events to a ClickHouse server; the embedded engine
      // belongs to the process that runs rating or the API (one process per chdb directory).
      (config.roles.has('billing') &&
        config.billing_events_ship_interval_ms > 0 &&
        config.clickhouse_url !== undefined)
    ) {
      const opened = await open_store(config);
      store = opened;
      shutdown.add('store', () => opened.close());
      const applied = await migrate(opened, { raw_retention_days: config.analytics_raw_retention_days });
      log.info(
        { transport: opened.transport, server_version: opened.server_version, applied },
        'clickhouse ready',
      );
    }
    const with_store = (): Store => {
      if (store === undefined) throw new Error('this role needs ClickHouse, which was not opened');
      return store;
    };

    const tariffs = await TariffStore.open(nats);
    const charge_points = await ChargePointRegistry.open(nats);
    const tokens = await TokenStore.open(nats);
    const plans = await PlanStore.open(nats);
    // Seeded by a process that can also record the version in ClickHouse.
    if (store !== undefined && (await tariffs.current(config.default_tariff_id)) === undefined) {
      const seeded = await tariffs.put(default_tariff(config));
      await insert_tariff_version(store, seeded);
      log.info({ tariff_id: seeded.tariff_id }, 'default tariff seeded');
    }

    if (config.roles.has('rating')) {
      const pool = new PricingPool(config.rating_workers);
      shutdown.add('pricing-pool', () => pool.close());
      const sink = new Sink(with_store(), {
        flush_rows_max: config.sink_flush_rows_max,
        flush_bytes_max: config.sink_flush_bytes_max,
        flush_interval_ms: config.sink_flush_interval_ms,
        pending_rows_max: config.sink_pending_rows_max,
      });
      // Closed after the rating service (closers run in reverse): what it wrote is flushed first.
      shutdown.add('sink', () => sink.close());
      const rating = await RatingService.start(
        {
          nats,
          sink,
          pool,
          tariffs,
          log: log.child({ component: 'rating' }),
          site_of: (charge_point_id) => charge_points.cached_profile(charge_point_id),
          plan_of_token: async (id_tag) => {
            const plan_id = (await tokens.lookup(id_tag))?.plan_id;
            return plan_id === undefined ? undefined : plans.get(plan_id);
          },
        },
        {
          process_id: config.node_id,
          partitions: config.rating_partitions,
          fetch_batch_max: config.rating_fetch_batch_max,
          default_tariff_id: config.default_tariff_id,
          default_time_zone: config.default_time_zone,
          sessions_cached_max: 1_000_000,
          rules: rating_rules(config),
          lease_ttl_ms: config.rating_lease_ttl_ms,
          cost_subject_prefix: config.nats_subject_prefix,
        },
        config.nats_stream,
      );
      shutdown.add('rating', () => rating.close());
    }

    // PGlite is one connection in one process: an API process opens the ledger only when it is a
    // server (DATABASE_URL) or when the same process runs billing.
    let ledger: Ledger | undefined;
    let billing_feed: RatedFeedConsumer | undefined;
    if (config.roles.has('billing') || (config.roles.has('api') && config.database_url !== undefined)) {
      const opened = await open_ledger({
        database_url: config.database_url,
        data_dir: path.join(config.data_dir, 'billing'),
      });
      ledger = opened;
      shutdown.add('ledger', () => opened.close());
      const applied = await migrate_ledger(opened);
      log.info({ ledger: opened.kind, applied }, 'billing ledger ready');
    }
    if (config.roles.has('billing') && ledger !== undefined) {
      const feed = await RatedFeedConsumer.start(
        nats,
        ledger,
        { ...rated_feed_defaults, batch_max: config.billing_feed_batch_max },
        log.child({ component: 'billing' }),
      );
      billing_feed = feed;
      shutdown.add('billing-feed', () => feed.close());
      const provider = payment_provider_of(config);
      if (provider !== undefined && config.payments_sweep_interval_ms > 0) {
        const sweeps = start_payment_sweeps(
          { ledger, provider },
          config.payments_sweep_interval_ms,
          log.child({ component: 'payments' }),
        );
        shutdown.add('payment-sweeps', () => sweeps.stop());
      }
      const collection = start_collection_schedule(ledger, tokens, config, log);
      shutdown.add('collection-schedule', () => collection.close());
      if (store !== undefined && config.billing_events_ship_interval_ms > 0) {
        const shipper = start_billing_event_shipper(
          ledger,
          store,
          config.billing_events_ship_interval_ms,
          log,
          {
            deadline_rules: parse_deadline_rules(config.dispute_deadline_working_days),
          },
        );
        shutdown.add('billing-events-shipper', () => shipper.stop());
      }
    }

    let ocpp_port = 0;
    if (config.roles.has('ingest')) {
      const publisher = new EventPublisher(
        nats,
        {
          node_id: config.node_id,
          linger_ms: config.ingest_batch_linger_ms,
          batch_events_max: config.ingest_batch_events_max,
          batch_bytes_max: config.ingest_batch_bytes_max,
          pending_events_max: config.ingest_pending_events_max,
          partitions: config.rating_partitions,
        },
        log.child({ component: 'publisher' }),
      );
      shutdown.add('publisher', () => publisher.close());
      const ingest = new IngestServer(
        {
          host: config.ocpp_host,
          port: config.ocpp_port,
          frame_bytes_max: config.ocpp_frame_bytes_max,
          node_id: config.node_id,
          heartbeat_interval_s: config.heartbeat_interval_s,
          in_flight_calls_max: 16,
          allow_unknown_charge_points: config.ocpp_allow_unknown,
          accept_unknown_tokens: config.ocpp_accept_unknown_tokens,
          calls_per_s_max: config.ocpp_calls_per_s_max,
          backpressure_bytes_max: config.ocpp_backpressure_bytes_max,
          tls: config.ocpp_tls,
        },
        publisher,
        await TransactionIdAllocator.open(nats),
        charge_points,
        tokens,
        log.child({ component: 'ingest' }),
      );
      ocpp_port = await ingest.listen();
      shutdown.add('ingest', () => ingest.close());
      const remote = new RemoteCommands(
        nats,
        ingest,
        {
          subject_prefix: config.nats_subject_prefix,
          answer_timeout_ms_max: config.ocpp_command_timeout_s * 1000,
          cost_updates: config.ocpp_cost_updates,
        },
        log.child({ component: 'remote' }),
      );
      shutdown.add('remote-commands', () => remote.close());
    }

    let api_port = 0;
    let api_routes: readonly Route[] = [];
    if (config.roles.has('api')) {
      const store = with_store();
      const partners = await PartnerRegistry.open(nats);
      const open_sessions = await open_sessions_bucket(nats);
      const ocpi_context: OcpiContext = {
        partners,
        base_url: () => config.ocpi_base_url ?? local_url(config.api_host, api_port, 'http'),
        our_roles: [
          {
            role: 'CPO',
            business_details: { name: config.ocpi_business_name },
            country_code: config.ocpi_country_code,
            party_id: config.ocpi_party_id,
          },
        ],
        client: {
          timeout_ms: 10_000,
          response_bytes_max: 4 * 1024 * 1024,
          allow_private_addresses: config.ocpi_allow_private_addresses,
        },
      };
      const provider = extras.payment_provider ?? payment_provider_of(config);
      const pay =
        ledger === undefined || provider === undefined
          ? undefined
          : await open_pay_pages(config, {
              ledger,
              provider,
              nats,
              store,
              tariffs,
              charge_points,
              tokens,
              log,
            });
      if (pay !== undefined) shutdown.add('pay-at-charger', () => pay.close());
      const cdr_mapping: CdrMapping = {
        cpo: { country_code: config.ocpi_country_code, party_id: config.ocpi_party_id },
        location_country: config.ocpi_location_country,
      };
      const what_if_pool = new WhatIfPool(config.rating_workers);
      shutdown.add('what-if', () => what_if_pool.close());
      const pricing = pricing_routes({
        store,
        pool: what_if_pool,
        rules: rating_rules(config),
        cpo: { country_code: config.ocpi_country_code, party_id: config.ocpi_party_id },
      });
      const disputes: DisputeRouteDeps | undefined =
        ledger === undefined
          ? undefined
          : {
              ledger,
              store,
              tariffs,
              max_power_w_of: async (id) => (await charge_points.cached_profile(id))?.max_power_w,
              power_w_max: config.rating_power_max_w,
              rules: parse_deadline_rules(config.dispute_deadline_working_days),
              default_time_zone: config.default_time_zone,
              payment_provider: payment_provider_of(config),
              nats,
              on_error: (error, what) => log.warn({ err: error }, `${what} failed`),
            };
      const api: ApiServer = new ApiServer(
        {
          host: config.api_host,
          port: config.api_port,
          operator_token: config.operator_token,
          operator_tokens_previous: config.operator_tokens_previous,
          metrics_token: config.metrics_token,
          body_bytes_max: config.api_body_bytes_max,
          operator_requests_per_s_max: config.api_operator_requests_per_s_max,
          authenticate_ocpi: ocpi_authenticator(partners, {
            rate_limit_per_s: config.ocpi_rate_limit_per_s,
            rate_limit_burst: config.ocpi_rate_limit_burst,
          }),
          error_bodies: [{ path_prefix: '/ocpi/', body: ocpi_error_body }],
          // transport_and_format "Unique message IDs": a response carries the request's IDs.
          echo_headers: [{ path_prefix: '/ocpi/', names: ['x-request-id', 'x-correlation-id'] }],
        },
        [
          ...operator_routes({
            store,
            tariffs,
            charge_points,
            open_sessions,
            cpo: { country_code: config.ocpi_country_code, party_id: config.ocpi_party_id },
          }),
          ...ocpi_routes(ocpi_context, {
            store,
            tariffs,
            tokens,
            open_sessions,
            mapping: cdr_mapping,
            page_limit_max: config.ocpi_page_limit_max,
          }),
          openapi_route(() => api.route_list),
          ...analytics_routes({ store }),
          ...rerate_routes({ store, tariffs, rules: rating_rules(config), nats }),
          ...pricing.routes,
          ...command_routes({
            nats,
            subject_prefix: config.nats_subject_prefix,
            answer_timeout_ms: config.ocpp_command_timeout_s * 1000,
          }),
          ...token_routes({
            tokens,
            plans,
            tariffs,
            own_party: { country_code: config.ocpi_country_code, party_id: config.ocpi_party_id },
          }),
          ...(ledger === undefined
            ? []
            : billing_routes({ ledger, plans, log: log.child({ component: 'billing-api' }) })),
          ...(ledger === undefined
            ? []
            : payment_routes({
                ledger,
                provider: payment_provider_of(config),
                log: log.child({ component: 'payments-api' }),
                after_event: (event) => apply_chargeback_event(disputes!, event),
              })),
          ...(pay?.routes ?? []),
          ...(ledger === undefined ? [] : collection_routes({ ledger, tokens, config })),
          ...(disputes === undefined ? [] : dispute_routes(disputes)),
        ],
        log.child({ component: 'api' }),
      );
      api_port = await api.listen();
      shutdown.add('api', () => api.close());
      api_routes = api.route_list;
      if (config.ocpi_cdr_push_interval_ms > 0) {
        const pusher = await CdrPusher.open(
          nats,
          {
            store,
            partners,
            mapping: cdr_mapping,
            client: ocpi_context.client,
            log: log.child({ component: 'ocpi-push' }),
          },
          {
            interval_ms: config.ocpi_cdr_push_interval_ms,
            batch_max: 500,
            attempts_max: 5,
            backoff_ms_initial: 500,
            backoff_ms_max: 30_000,
            settle_ms: config.ocpi_cdr_push_settle_s * 1000,
          },
        );
        pusher.start();
        shutdown.add('ocpi-cdr-push', () => pusher.close());
      }
    }

    const stack: RunningStack = {
      ocpp_url: config.roles.has('ingest')
        ? `${local_url(config.ocpp_host, ocpp_port, config.ocpp_tls === undefined ? 'ws' : 'wss')}/ocpp/{chargePointId}`
        : '',
      api_url: config.roles.has('api') ? local_url(config.api_host, api_port, 'http') : '',
      api_routes,
      nats_url,
      store,
      ledger,
      billing_feed,
      shutdown,
      stop: () => shutdown.run('stop'),
    };
    return stack;
  } catch (error) {
    await shutdown.run('start failed');
    throw error;
  }
}
