/**
 * What-if scenarios on the seeded week, for the what-if dashboard's picture: two candidate
 * tariffs replayed over the seeded sessions by the real path (rating/what-if.ts, priced on the
 * calling thread), stored as named scenarios in what_if_* as the API stores them.
 */
import type { Store } from '../analytics/store.js';
import { default_session_rules } from '../rating/session.js';
import { parse_what_if_request, WhatIfJobs, WhatIfPool } from '../rating/what-if.js';
import { seed_week } from './seed.js';

const cpo = { country_code: 'DE', party_id: 'EVR' };

/**
 * name -> candidate tariff (OCPI 2.2.1 Tariff), each over the whole seeded week: more per kWh with
 * a minimum, and a parking fee with a maximum, so both limits show.
 */
export const seed_what_if_scenarios: { name: string; tariff: Record<string, unknown> }[] = [
  {
    name: 'energy 0.45',
    tariff: {
      ...cpo,
      id: 'E45',
      currency: 'EUR',
      min_price: { excl_vat: 2.5, incl_vat: 2.98 },
      elements: [{ price_components: [{ type: 'ENERGY', price: 0.45, vat: 19, step_size: 1 }] }],
      last_updated: '2026-11-01T00:00:00Z',
    },
  },
  {
    name: 'parking 6/h',
    tariff: {
      ...cpo,
      id: 'P30',
      currency: 'EUR',
      max_price: { excl_vat: 15, incl_vat: 17.85 },
      elements: [
        {
          price_components: [
            { type: 'ENERGY', price: 0.3, vat: 19, step_size: 1 },
            { type: 'PARKING_TIME', price: 6, vat: 19, step_size: 60 },
          ],
        },
      ],
      last_updated: '2026-11-01T00:00:00Z',
    },
  },
];

export async function seed_what_if(store: Store): Promise<void> {
  const pool = new WhatIfPool(0);
  const jobs = new WhatIfJobs({ store, pool, rules: default_session_rules });
  try {
    for (const s of seed_what_if_scenarios) {
      const request = parse_what_if_request(
        {
          name: s.name,
          from: new Date(seed_week.from_ms).toISOString(),
          to: new Date(seed_week.to_ms).toISOString(),
          tariffs: [s.tariff],
        },
        cpo,
      );
      const job = jobs.start(request);
      await jobs.idle();
      const status = job === undefined ? undefined : await jobs.status(job.scenario_id);
      if (status?.state !== 'done') throw new Error(`what-if "${s.name}": ${JSON.stringify(status)}`);
    }
  } finally {
    await pool.close();
  }
}
