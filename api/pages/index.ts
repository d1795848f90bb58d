import type { Store } from '../../analytics/store.js';
import { parse_deadline_rules } from '../../billing/disputes/index.js';
import type { Ledger } from '../../billing/ledger.js';
import { PayAtCharger } from '../../billing/pay-at-charger/index.js';
import type { PaymentProvider } from '../../billing/payments/provider.js';
import type { ChargePointRegistry } from '../../core/charge-points.js';
import type { Config } from '../../core/config.js';
import type { Logger } from '../../core/log.js';
import type { Nats } from '../../core/nats.js';
import type { TokenStore } from '../../core/tokens.js';
import type { TariffStore } from '../../rating/tariff-store.js';
import type { Route } from '../http.js';
import { PayPages } from './pay-routes.js';

export { PayPages } from './pay-routes.js';

/** The drivers' pay-at-charger pages and the service behind them, from the configuration. */
export async function open_pay_pages(
  config: Config,
  deps: {
    ledger: Ledger;
    provider: PaymentProvider;
    nats: Nats;
    store: Store;
    tariffs: TariffStore;
    charge_points: ChargePointRegistry;
    tokens: TokenStore;
    log: Logger;
  },
): Promise<{ routes: Route[]; close(): Promise<void> }> {
  const pay = await PayAtCharger.start(deps, {
    subject_prefix: config.nats_subject_prefix,
    command_timeout_ms: config.ocpp_command_timeout_s * 1000,
    rating_partitions: config.rating_partitions,
    default_tariff_id: config.default_tariff_id,
    default_time_zone: config.default_time_zone,
    hold_duration_max_min: config.pay_hold_duration_max_min,
    hold_power_default_w: config.pay_hold_power_default_w,
    no_power_timeout_ms: config.pay_no_power_timeout_s * 1000,
    cost_cap_margin_percent: config.pay_cost_cap_margin_percent,
    poll_interval_ms: 500,
    active_sessions_max: 10_000,
    own_party: { country_code: config.ocpi_country_code, party_id: config.ocpi_party_id },
  });
  const pages = new PayPages({
    pay,
    store: deps.store,
    nats: deps.nats,
    subject_prefix: config.nats_subject_prefix,
    command_timeout_ms: config.ocpp_command_timeout_s * 1000,
    public_base_url: config.pay_public_base_url,
    provider_js_url: config.pay_provider_js_url,
    publishable_key: config.pay_provider_publishable_key,
    hold_duration_max_min: config.pay_hold_duration_max_min,
    requests_per_s_max: config.pay_requests_per_s_max,
    disputes: {
      ledger: deps.ledger,
      store: deps.store,
      tariffs: deps.tariffs,
      max_power_w_of: async (id) => (await deps.charge_points.cached_profile(id))?.max_power_w,
      power_w_max: config.rating_power_max_w,
      rules: parse_deadline_rules(config.dispute_deadline_working_days),
      default_time_zone: config.default_time_zone,
      on_error: (error, what) => deps.log.warn({ err: error }, `${what} failed`),
    },
    log: deps.log,
  });
  return {
    routes: pages.routes(),
    async close() {
      pages.close();
      await pay.close();
    },
  };
}
