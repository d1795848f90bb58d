import type { Store } from '../analytics/store.js';
import type { SessionRules } from '../rating/session.js';
import type { CpoParty } from '../rating/tariff.js';
import {
  parse_what_if_request,
  WhatIfJobs,
  type WhatIfPool,
  WhatIfRequestError,
  WhatIfTariffError,
} from '../rating/what-if.js';
import { HttpError, type Route, send_json } from './http.js';

export interface PricingDeps {
  store: Store;
  pool: WhatIfPool;
  rules: SessionRules;
  /** Owner of OCPI 2.1.1 candidate tariffs without country_code/party_id. */
  cpo: CpoParty;
}

const what_if_schema = {
  type: 'object',
  required: ['from', 'to', 'tariffs'],
  properties: {
    name: { type: 'string', maxLength: 100, description: 'the scenario name shown in Grafana' },
    from: { type: 'string', format: 'date-time', description: 'sessions started at or after' },
    to: { type: 'string', format: 'date-time', description: 'sessions started before' },
    tariffs: {
      type: 'array',
      minItems: 1,
      maxItems: 8,
      description: 'candidate OCPI 2.2.1 (or 2.1.1) Tariff objects; not published, not stored as tariffs',
      items: { type: 'object' },
    },
    station_ids: { type: 'array', items: { type: 'string' } },
    charge_point_ids: { type: 'array', items: { type: 'string' } },
    evses: { type: 'array', items: { type: 'string', description: '"<charge point id>/<EVSE id>"' } },
    payment_methods: { type: 'array', items: { type: 'string' } },
    parties: { type: 'array', items: { type: 'string', description: '"CC*PID" of the token issuer' } },
  },
  additionalProperties: false,
};

/**
 * POST /v1/pricing/what-if starts a scenario (202 and its id); GET /v1/pricing/what-if/{id}
 * answers its progress and, when done, the results (rating/what-if.ts).
 */
export function pricing_routes(deps: PricingDeps): { routes: Route[]; jobs: WhatIfJobs } {
  const jobs = new WhatIfJobs(deps);
  const routes: Route[] = [
    {
      method: 'POST',
      path: /^\/v1\/pricing\/what-if$/,
      auth: 'operator',
      doc: {
        path: '/v1/pricing/what-if',
        summary:
          'Re-price a past period under candidate tariffs (a named scenario); rated sessions are not changed',
        tags: ['pricing'],
        request_body: what_if_schema,
        responses: {
          '202': { description: 'the scenario was started: { scenario_id, state, progress }' },
          '400': { description: 'invalid request, naming the field' },
          '422': { description: 'a candidate tariff does not validate, naming the field (tariffs[i]....)' },
          '429': { description: 'too many scenarios waiting' },
        },
      },
      async handle({ res, json_body }) {
        let request: ReturnType<typeof parse_what_if_request>;
        try {
          request = parse_what_if_request(await json_body(), deps.cpo);
        } catch (error) {
          if (error instanceof WhatIfTariffError) throw new HttpError(422, error.message, error.field);
          if (error instanceof WhatIfRequestError) throw new HttpError(400, error.message, error.field);
          throw error;
        }
        const job = jobs.start(request);
        if (job === undefined) {
          throw new HttpError(
            429,
            `${WhatIfJobs.pending_max} scenarios are waiting; retry later`,
            undefined,
            {
              'retry-after': '10',
            },
          );
        }
        send_json(
          res,
          202,
          { scenario_id: job.scenario_id, name: job.name, state: job.state, progress: job.progress },
          { location: `/v1/pricing/what-if/${job.scenario_id}` },
        );
      },
    },
    {
      method: 'GET',
      path: /^\/v1\/pricing\/what-if\/([^/]+)$/,
      auth: 'operator',
      param_names: ['scenario_id'],
      doc: {
        path: '/v1/pricing/what-if/{id}',
        summary:
          'A what-if scenario: state and progress; when done, revenue and price per kWh before/after in total and by station, weekday x hour, payment method and plan, the largest changes and the share hitting min_price/max_price',
        tags: ['pricing'],
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
        responses: {
          '200': { description: 'the scenario' },
          '404': { description: 'no such scenario' },
        },
      },
      async handle({ res, params }) {
        const answer = await jobs.status(params[0]!);
        if (answer === undefined) throw new HttpError(404, 'no such scenario', 'id');
        send_json(res, 200, answer);
      },
    },
  ];
  return { routes, jobs };
}
