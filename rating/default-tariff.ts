import type { Config } from '../core/config.js';
import type { Tariff } from './tariff.js';

/** The tariff seeded under DEFAULT_TARIFF_ID when none is stored yet: one price per kWh. */
export function default_tariff(
  config: Pick<
    Config,
    | 'default_tariff_id'
    | 'default_tariff_currency'
    | 'default_tariff_price_per_kwh'
    | 'default_tariff_vat_percent'
  >,
): Tariff {
  return {
    country_code: 'DE',
    party_id: 'EVR',
    id: config.default_tariff_id,
    currency: config.default_tariff_currency,
    type: 'REGULAR',
    elements: [
      {
        price_components: [
          {
            type: 'ENERGY',
            price: Number(config.default_tariff_price_per_kwh),
            vat: Number(config.default_tariff_vat_percent),
            step_size: 1,
          },
        ],
      },
    ],
    last_updated: new Date(0).toISOString(),
  };
}
