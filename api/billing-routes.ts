import {
  close_account,
  create_billing_run,
  create_credit_note,
  type DocumentView,
  execute_billing_run,
  get_account,
  get_billing_run,
  get_document,
  issue_draft,
  journal_csv,
  journal_export_lines_max,
  journal_lines,
  type Ledger,
  list_accounts,
  list_billing_runs,
  list_documents,
  list_legal_entities,
  pdf_document,
  put_account,
  put_legal_entity,
  record_payment,
  ubl_document,
  validate_account,
  validate_legal_entity,
} from '../billing/index.js';
import { parse_period } from '../billing/period.js';
import { FieldError } from '../core/field-error.js';
import type { Logger } from '../core/log.js';
import type { PlanStore } from '../rating/plans.js';
import { HttpError, int_param, object_body, type Route, type RouteContext, send_json } from './http.js';

/**
 * Operator billing endpoints: legal entities, accounts, billing runs, invoices, credit notes,
 * payments, documents (PDF, UBL) and the journal export. Bad input is a 400 naming the field
 * (409 for a token another account owns, 404 for what does not exist) and changes nothing.
 */
export interface BillingRouteDeps {
  ledger: Ledger;
  /** Membership fees of plans named without a fee are read from here. */
  plans?: PlanStore;
  log: Logger;
}

type Json = Record<string, unknown>;

/** Runs the handler and turns a FieldError from billing into the API's 400 (or 409/404). */
async function guarded(work: () => Promise<void>): Promise<void> {
  try {
    await work();
  } catch (error) {
    if (error instanceof FieldError) {
      const status = error.name === 'ConflictError' ? 409 : error.name === 'NotFoundError' ? 404 : 400;
      throw new HttpError(status, error.message, error.field);
    }
    throw error;
  }
}

function id_param(value: string, field: string): number {
  if (!/^[1-9]\d{0,15}$/.test(value)) throw new HttpError(404, `${field}: no such document`, field);
  return Number(value);
}

function optional_query(url: URL, name: string, pattern: RegExp, rule: string): string | undefined {
  const value = url.searchParams.get(name);
  if (value === null) return undefined;
  if (!pattern.test(value)) throw new HttpError(400, `${name}: ${rule}`, name);
  return value;
}

function check_query(url: URL, allowed: readonly string[]): void {
  for (const key of url.searchParams.keys()) {
    if (!allowed.includes(key)) throw new HttpError(400, `${key}: is not a parameter of this endpoint`, key);
  }
}

const id_pattern = /^[\x21-\x7e]{1,64}$/;
const page_parameters = [
  { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } },
  { name: 'offset', in: 'query', schema: { type: 'integer', minimum: 0, default: 0 } },
];
const id_path = (name: string, type = 'string') => ({ name, in: 'path', required: true, schema: { type } });

async function document_of(ledger: Ledger, id: number, kind: DocumentView['kind']): Promise<DocumentView> {
  const doc = await get_document(ledger, id);
  if (doc === undefined || doc.kind !== kind)
    throw new HttpError(404, `id: no such ${kind.replace('_', ' ')}`, 'id');
  return doc;
}

async function credited_number(ledger: Ledger, doc: DocumentView): Promise<string | undefined> {
  if (doc.credited_invoice_id === null) return undefined;
  return (await get_document(ledger, doc.credited_invoice_id))?.number ?? undefined;
}

function document_routes(deps: BillingRouteDeps, kind: DocumentView['kind'], base: string): Route[] {
  const { ledger } = deps;
  const pattern = (suffix: string) => new RegExp(`^\\/v1\\/${base}\\/([^/]+)${suffix}$`);
  const send_document = async (ctx: RouteContext, format: 'pdf' | 'ubl') => {
    const doc = await document_of(ledger, id_param(ctx.params[0]!, 'id'), kind);
    if (doc.number === null)
      throw new HttpError(409, 'id: a draft has no document yet; issue it first', 'id');
    const credited = await credited_number(ledger, doc);
    const body =
      format === 'pdf' ? await pdf_document(doc, credited) : Buffer.from(ubl_document(doc, credited));
    ctx.res.writeHead(200, {
      'content-type': format === 'pdf' ? 'application/pdf' : 'application/xml; charset=utf-8',
      'content-length': String(body.length),
      'content-disposition': `attachment; filename="${doc.number}.${format === 'pdf' ? 'pdf' : 'xml'}"`,
    });
    ctx.res.end(body);
  };
  const name = kind === 'invoice' ? 'invoice' : 'credit note';
  return [
    {
      method: 'GET',
      path: new RegExp(`^\\/v1\\/${base}$`),
      auth: 'operator',
      doc: {
        path: `/v1/${base}`,
        summary: `${name}s, oldest first, with totals as exact decimal text`,
        tags: ['billing'],
        parameters: [
          { name: 'account_id', in: 'query', schema: { type: 'string' } },
          ...(kind === 'invoice'
            ? [
                { name: 'period', in: 'query', schema: { type: 'string', pattern: '^\\d{4}-\\d{2}$' } },
                {
                  name: 'status',
                  in: 'query',
                  schema: { type: 'string', enum: ['draft', 'issued', 'partly_paid', 'paid', 'void'] },
                },
              ]
            : [{ name: 'invoice_id', in: 'query', schema: { type: 'integer' } }]),
          ...page_parameters,
        ],
        responses: {
          '200': { description: `{${base.replace('-', '_')}, limit, offset}` },
          '400': { description: 'invalid parameter' },
        },
      },
      async handle(ctx) {
        await guarded(async () => {
          const url = ctx.url;
          check_query(url, ['account_id', 'period', 'status', 'invoice_id', 'limit', 'offset']);
          if (kind === 'credit_note' && (url.searchParams.has('period') || url.searchParams.has('status'))) {
            throw new HttpError(
              400,
              'period, status: filter invoices, not credit notes',
              url.searchParams.has('period') ? 'period' : 'status',
            );
          }
          const period = optional_query(url, 'period', /^\d{4}-\d{2}$/, 'must be YYYY-MM');
          if (period !== undefined) parse_period(period);
          const invoice_id = optional_query(url, 'invoice_id', /^[1-9]\d{0,15}$/, 'must be an invoice id');
          const limit = int_param(url.searchParams, 'limit', 100, 1, 1000);
          const offset = int_param(url.searchParams, 'offset', 0, 0, 1_000_000_000);
          const filter = {
            kind,
            limit,
            offset,
            ...(url.searchParams.has('account_id')
              ? { account_id: optional_query(url, 'account_id', id_pattern, 'must be an account id')! }
              : {}),
            ...(period === undefined ? {} : { period }),
            ...(url.searchParams.has('status')
              ? {
                  status: optional_query(
                    url,
                    'status',
                    /^(draft|issued|partly_paid|paid|void)$/,
                    'must be draft, issued, partly_paid, paid or void',
                  )!,
                }
              : {}),
            ...(invoice_id === undefined ? {} : { invoice_id: Number(invoice_id) }),
          };
          const docs = await list_documents(ledger, filter);
          send_json(ctx.res, 200, {
            [base.replace('-', '_')]: docs.map(({ lines: _, vat_breakdown: __, ...d }) => d),
            limit,
            offset,
          });
        });
      },
    },
    {
      method: 'GET',
      path: pattern(''),
      auth: 'operator',
      param_names: ['id'],
      doc: {
        path: `/v1/${base}/{id}`,
        summary: `One ${name} with its lines and VAT breakdown`,
        tags: ['billing'],
        parameters: [id_path('id', 'integer')],
        responses: { '200': { description: `the ${name}` }, '404': { description: `unknown ${name}` } },
      },
      async handle(ctx) {
        send_json(ctx.res, 200, await document_of(ledger, id_param(ctx.params[0]!, 'id'), kind));
      },
    },
    {
      method: 'GET',
      path: pattern('\\/pdf'),
      auth: 'operator',
      param_names: ['id'],
      doc: {
        path: `/v1/${base}/{id}/pdf`,
        summary: `The ${name} as PDF`,
        tags: ['billing'],
        parameters: [id_path('id', 'integer')],
        responses: {
          '200': { description: 'application/pdf' },
          '404': { description: `unknown ${name}` },
          '409': { description: 'a draft' },
        },
      },
      handle: (ctx) => send_document(ctx, 'pdf'),
    },
    {
      method: 'GET',
      path: pattern('\\/ubl'),
      auth: 'operator',
      param_names: ['id'],
      doc: {
        path: `/v1/${base}/{id}/ubl`,
        summary: `The ${name} as an EN 16931 e-invoice in UBL 2.1`,
        tags: ['billing'],
        parameters: [id_path('id', 'integer')],
        responses: {
          '200': { description: 'application/xml' },
          '404': { description: `unknown ${name}` },
          '409': { description: 'a draft' },
        },
      },
      handle: (ctx) => send_document(ctx, 'ubl'),
    },
  ];
}

export function billing_routes(deps: BillingRouteDeps): Route[] {
  const { ledger, log } = deps;
  return [
    {
      method: 'PUT',
      path: /^\/v1\/legal-entities\/([^/]+)$/,
      auth: 'operator',
      param_names: ['id'],
      doc: {
        path: '/v1/legal-entities/{id}',
        summary:
          'Create or change a legal entity that invoices accounts (its invoice and credit note series are created with it)',
        tags: ['billing'],
        parameters: [id_path('id')],
        request_body: {
          type: 'object',
          required: ['name', 'vat_id', 'address', 'country_code', 'time_zone', 'fee_vat_percent'],
        },
        responses: { '200': { description: 'the legal entity' }, '400': { description: 'invalid field' } },
      },
      async handle(ctx) {
        await guarded(async () => {
          const entity = validate_legal_entity(ctx.params[0]!, await ctx.json_body());
          await put_legal_entity(ledger, entity);
          send_json(ctx.res, 200, entity);
        });
      },
    },
    {
      method: 'GET',
      path: /^\/v1\/legal-entities$/,
      auth: 'operator',
      doc: {
        path: '/v1/legal-entities',
        summary: 'Legal entities',
        tags: ['billing'],
        responses: { '200': { description: '{legal_entities}' } },
      },
      async handle(ctx) {
        send_json(ctx.res, 200, { legal_entities: await list_legal_entities(ledger) });
      },
    },
    {
      method: 'PUT',
      path: /^\/v1\/accounts\/([^/]+)$/,
      auth: 'operator',
      param_names: ['id'],
      doc: {
        path: '/v1/accounts/{id}',
        summary:
          'Create or replace a billing account (driver or company with cost centres), its tokens and memberships',
        tags: ['billing'],
        parameters: [id_path('id')],
        request_body: {
          type: 'object',
          required: ['kind', 'name', 'legal_entity_id', 'currency', 'address'],
          properties: {
            kind: { enum: ['driver', 'company'] },
            billing_period: { enum: ['monthly', 'per_session'] },
            payment_terms_days: { type: 'integer', minimum: 0, maximum: 365 },
            tokens: { type: 'array' },
            memberships: { type: 'array' },
          },
        },
        responses: {
          '200': { description: 'replaced' },
          '201': { description: 'created' },
          '400': { description: 'invalid field' },
          '409': { description: 'a token is owned by another account' },
        },
      },
      async handle(ctx) {
        await guarded(async () => {
          const body = object_body(await ctx.json_body());
          // A membership naming only its plan takes the plan's monthly fee and currency.
          if (Array.isArray(body.memberships) && deps.plans !== undefined) {
            for (const [i, m] of body.memberships.entries()) {
              if (typeof m !== 'object' || m === null || (m as Json).monthly_fee !== undefined) continue;
              const plan_id = (m as Json).plan_id;
              const plan = typeof plan_id === 'string' ? await deps.plans.get(plan_id) : undefined;
              if (plan === undefined)
                throw new FieldError(`memberships[${i}].plan_id`, 'is not a known plan');
              (m as Json).monthly_fee = String(plan.monthly_fee_excl_vat ?? 0);
              (m as Json).currency ??= plan.currency;
            }
          }
          const account = validate_account(ctx.params[0]!, body);
          const { created } = await put_account(ledger, account);
          send_json(ctx.res, created ? 201 : 200, await get_account(ledger, account.id));
        });
      },
    },
    {
      method: 'GET',
      path: /^\/v1\/accounts\/([^/]+)$/,
      auth: 'operator',
      param_names: ['id'],
      doc: {
        path: '/v1/accounts/{id}',
        summary: 'One billing account',
        tags: ['billing'],
        parameters: [id_path('id')],
        responses: { '200': { description: 'the account' }, '404': { description: 'unknown account' } },
      },
      async handle(ctx) {
        const account = await get_account(ledger, ctx.params[0]!);
        if (account === undefined) throw new HttpError(404, 'id: no such account', 'id');
        send_json(ctx.res, 200, account);
      },
    },
    {
      method: 'DELETE',
      path: /^\/v1\/accounts\/([^/]+)$/,
      auth: 'operator',
      param_names: ['id'],
      doc: {
        path: '/v1/accounts/{id}',
        summary: 'Close a billing account (its tokens are released; its invoices and journal stay)',
        tags: ['billing'],
        parameters: [id_path('id')],
        responses: { '204': { description: 'closed' }, '404': { description: 'unknown account' } },
      },
      async handle(ctx) {
        if (!(await close_account(ledger, ctx.params[0]!)))
          throw new HttpError(404, 'id: no such account', 'id');
        ctx.res.writeHead(204).end();
      },
    },
    {
      method: 'GET',
      path: /^\/v1\/accounts$/,
      auth: 'operator',
      doc: {
        path: '/v1/accounts',
        summary: 'Billing accounts by id',
        tags: ['billing'],
        parameters: [
          { name: 'legal_entity_id', in: 'query', schema: { type: 'string' } },
          ...page_parameters,
        ],
        responses: {
          '200': { description: '{accounts, limit, offset}' },
          '400': { description: 'invalid parameter' },
        },
      },
      async handle(ctx) {
        check_query(ctx.url, ['legal_entity_id', 'limit', 'offset']);
        const limit = int_param(ctx.url.searchParams, 'limit', 100, 1, 1000);
        const offset = int_param(ctx.url.searchParams, 'offset', 0, 0, 1_000_000_000);
        const entity = optional_query(ctx.url, 'legal_entity_id', id_pattern, 'must be a legal entity id');
        const accounts = await list_accounts(ledger, {
          limit,
          offset,
          ...(entity === undefined ? {} : { legal_entity_id: entity }),
        });
        send_json(ctx.res, 200, { accounts, limit, offset });
      },
    },
    ...document_routes(deps, 'invoice', 'invoices'),
    {
      method: 'POST',
      path: /^\/v1\/invoices\/([^/]+)\/issue$/,
      auth: 'operator',
      param_names: ['id'],
      doc: {
        path: '/v1/invoices/{id}/issue',
        summary: 'Issue a draft invoice: it gets the next number of its series and is booked',
        tags: ['billing'],
        parameters: [id_path('id', 'integer')],
        responses: {
          '200': { description: 'the issued invoice' },
          '404': { description: 'unknown invoice' },
          '409': { description: 'not a draft' },
        },
      },
      async handle(ctx) {
        const id = id_param(ctx.params[0]!, 'id');
        const doc = await document_of(ledger, id, 'invoice');
        if (doc.status !== 'draft')
          throw new HttpError(409, `id: the invoice is ${doc.status}, not a draft`, 'id');
        await ledger.transaction((tx) => issue_draft(tx, id, Date.now()));
        send_json(ctx.res, 200, await document_of(ledger, id, 'invoice'));
      },
    },
    {
      method: 'POST',
      path: /^\/v1\/invoices\/([^/]+)\/payments$/,
      auth: 'operator',
      param_names: ['id'],
      doc: {
        path: '/v1/invoices/{id}/payments',
        summary: 'Record a payment received (idempotent by reference)',
        tags: ['billing'],
        parameters: [id_path('id', 'integer')],
        request_body: {
          type: 'object',
          required: ['amount', 'reference'],
          properties: { amount: { type: 'string' }, reference: { type: 'string' } },
        },
        responses: { '200': { description: '{status, paid}' }, '400': { description: 'invalid field' } },
      },
      async handle(ctx) {
        await guarded(async () => {
          const body = object_body(await ctx.json_body());
          const id = id_param(ctx.params[0]!, 'id');
          await document_of(ledger, id, 'invoice');
          send_json(
            ctx.res,
            200,
            await record_payment(ledger, {
              invoice_id: id,
              amount: body.amount as string,
              reference: body.reference as string,
            }),
          );
        });
      },
    },
    ...document_routes(deps, 'credit_note', 'credit-notes'),
    {
      method: 'POST',
      path: /^\/v1\/credit-notes$/,
      auth: 'operator',
      doc: {
        path: '/v1/credit-notes',
        summary:
          'Credit an issued invoice, whole (no amount) or partly (a net amount at one of its VAT rates); never more than remains of it',
        tags: ['billing'],
        request_body: {
          type: 'object',
          required: ['invoice_id', 'reason'],
          properties: {
            invoice_id: { type: 'integer' },
            amount: { type: 'string', description: 'net excl. VAT, decimal text' },
            vat_percent: { type: 'string' },
            reason: { type: 'string', maxLength: 500 },
          },
        },
        responses: { '201': { description: 'the credit note' }, '400': { description: 'invalid field' } },
      },
      async handle(ctx) {
        await guarded(async () => {
          const body = object_body(await ctx.json_body());
          for (const key of Object.keys(body)) {
            if (!['invoice_id', 'amount', 'vat_percent', 'reason'].includes(key))
              throw new FieldError(key, 'is not a known field');
          }
          if (typeof body.invoice_id !== 'number' || !Number.isSafeInteger(body.invoice_id)) {
            throw new FieldError('invoice_id', 'must be an invoice id');
          }
          const id = await create_credit_note(ledger, {
            invoice_id: body.invoice_id,
            reason: body.reason as string,
            ...(body.amount === undefined ? {} : { amount: body.amount as string }),
            ...(body.vat_percent === undefined ? {} : { vat_percent: body.vat_percent as string }),
          });
          send_json(ctx.res, 201, await get_document(ledger, id));
        });
      },
    },
    {
      method: 'POST',
      path: /^\/v1\/billing\/runs$/,
      auth: 'operator',
      doc: {
        path: '/v1/billing/runs',
        summary: 'Start a billing run closing a period (YYYY-MM) for all or some accounts; idempotent',
        tags: ['billing'],
        request_body: {
          type: 'object',
          required: ['period'],
          properties: {
            period: { type: 'string', pattern: '^\\d{4}-\\d{2}$' },
            account_ids: { type: 'array', items: { type: 'string' } },
            draft: { type: 'boolean', description: 'leave the invoices as drafts' },
          },
        },
        responses: { '202': { description: 'the run, running' }, '400': { description: 'invalid field' } },
      },
      async handle(ctx) {
        await guarded(async () => {
          const body = object_body(await ctx.json_body());
          for (const key of Object.keys(body)) {
            if (!['period', 'account_ids', 'draft'].includes(key))
              throw new FieldError(key, 'is not a known field');
          }
          if (body.draft !== undefined && typeof body.draft !== 'boolean')
            throw new FieldError('draft', 'must be true or false');
          if (
            body.account_ids !== undefined &&
            (!Array.isArray(body.account_ids) || body.account_ids.some((a) => typeof a !== 'string'))
          ) {
            throw new FieldError('account_ids', 'must be an array of account ids');
          }
          const id = await create_billing_run(ledger, {
            period: body.period as string,
            ...(body.account_ids === undefined ? {} : { account_ids: body.account_ids as string[] }),
          });
          // The run goes on after the answer; GET /v1/billing/runs/{id} follows it.
          execute_billing_run(ledger, id, { issue: body.draft !== true }).catch((error: unknown) =>
            log.error({ err: error, billing_run_id: id }, 'billing run failed'),
          );
          send_json(ctx.res, 202, await get_billing_run(ledger, id));
        });
      },
    },
    {
      method: 'GET',
      path: /^\/v1\/billing\/runs\/([^/]+)$/,
      auth: 'operator',
      param_names: ['id'],
      doc: {
        path: '/v1/billing/runs/{id}',
        summary: 'Status of a billing run: accounts done of total, invoices created',
        tags: ['billing'],
        parameters: [id_path('id', 'integer')],
        responses: { '200': { description: 'the run' }, '404': { description: 'unknown run' } },
      },
      async handle(ctx) {
        const run = /^[1-9]\d{0,15}$/.test(ctx.params[0]!)
          ? await get_billing_run(ledger, Number(ctx.params[0]))
          : undefined;
        if (run === undefined) throw new HttpError(404, 'id: no such billing run', 'id');
        send_json(ctx.res, 200, run);
      },
    },
    {
      method: 'GET',
      path: /^\/v1\/billing\/runs$/,
      auth: 'operator',
      doc: {
        path: '/v1/billing/runs',
        summary: 'Billing runs, newest first',
        tags: ['billing'],
        parameters: [page_parameters[0]],
        responses: { '200': { description: '{runs}' } },
      },
      async handle(ctx) {
        check_query(ctx.url, ['limit']);
        send_json(ctx.res, 200, {
          runs: await list_billing_runs(ledger, int_param(ctx.url.searchParams, 'limit', 100, 1, 1000)),
        });
      },
    },
    {
      method: 'GET',
      path: /^\/v1\/billing\/journal$/,
      auth: 'operator',
      doc: {
        path: '/v1/billing/journal',
        summary: 'Accounting export: journal lines posted in [from, to), as CSV or JSON, paged by entry id',
        tags: ['billing'],
        parameters: [
          { name: 'from', in: 'query', required: true, schema: { type: 'string', format: 'date-time' } },
          { name: 'to', in: 'query', required: true, schema: { type: 'string', format: 'date-time' } },
          { name: 'format', in: 'query', schema: { type: 'string', enum: ['json', 'csv'], default: 'json' } },
          { name: 'after_entry_id', in: 'query', schema: { type: 'integer', minimum: 0, default: 0 } },
          {
            name: 'limit',
            in: 'query',
            schema: { type: 'integer', minimum: 1, maximum: journal_export_lines_max },
          },
        ],
        responses: {
          '200': { description: '{lines} or text/csv' },
          '400': { description: 'invalid parameter' },
        },
      },
      async handle(ctx) {
        const url = ctx.url;
        check_query(url, ['from', 'to', 'format', 'after_entry_id', 'limit']);
        const time = (name: string) => {
          const value = url.searchParams.get(name);
          const ms = value === null ? Number.NaN : Date.parse(value);
          if (value === null || !/^\d{4}-\d{2}-\d{2}T/.test(value) || Number.isNaN(ms)) {
            throw new HttpError(400, `${name}: must be an RFC 3339 date-time`, name);
          }
          return ms;
        };
        const from_ms = time('from');
        const to_ms = time('to');
        if (to_ms <= from_ms) throw new HttpError(400, 'to: must be after from', 'to');
        const format = url.searchParams.get('format') ?? 'json';
        if (format !== 'json' && format !== 'csv')
          throw new HttpError(400, 'format: must be json or csv', 'format');
        const lines = await journal_lines(ledger, {
          from_ms,
          to_ms,
          after_entry_id: int_param(url.searchParams, 'after_entry_id', 0, 0, Number.MAX_SAFE_INTEGER),
          limit: int_param(url.searchParams, 'limit', journal_export_lines_max, 1, journal_export_lines_max),
        });
        if (format === 'json') {
          send_json(ctx.res, 200, { lines });
          return;
        }
        const text = journal_csv(lines);
        ctx.res.writeHead(200, {
          'content-type': 'text/csv; charset=utf-8',
          'content-length': String(Buffer.byteLength(text)),
        });
        ctx.res.end(text);
      },
    },
  ];
}
