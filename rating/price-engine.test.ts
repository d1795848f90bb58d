import { describe, expect, it } from 'vitest';
import { price_session } from './price.js';
import type { Tariff } from './tariff.js';

const tariff: Tariff = {
  country_code: 'NL',
  party_id: 'EVR',
  id: 'e2e',
  currency: 'EUR',
  elements: [
    {
      price_components: [{ type: 'ENERGY', price: 9, vat: 19, step_size: 1 }],
      restrictions: { start_time: '00:00', end_time: '00:00' },
    },
    {
      price_components: [
        { type: 'FLAT', price: 1, vat: 19, step_size: 1 },
        { type: 'ENERGY', price: 0.35, vat: 19, step_size: 1 },
      ],
    },
  ],
  last_updated: '2026-01-01T00:00:00Z',
};

describe('price_session on the OCPI engine', () => {
  it('skips restricted elements and keeps the element index of the tariff', () => {
    // 12.345 kWh x 0.35 = 4.32075 + 1.00 flat = 5.32075 -> 5.32; x 1.19 = 6.3316925 -> 6.33
    const priced = price_session(tariff, {
      energy_wh: 12_345,
      started_at_ms: 0,
      stopped_at_ms: 3_600_500,
    });
    expect(priced).toMatchObject({ total_excl_vat: '5.32', total_incl_vat: '6.33', duration_s: 3600 });
    expect(priced.breakdown.map((l) => [l.dimension, l.element_index])).toEqual([
      ['FLAT', 1],
      ['ENERGY', 1],
    ]);
  });
});
