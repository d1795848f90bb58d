import {
  apply_bank_file,
  collect_billing_run,
  collection_policy,
  get_collection_file,
  get_creditor,
  get_dunning,
  invoice_payment_reference,
  list_collection_files,
  list_mandates,
  put_creditor,
  put_mandate,
  reconciliation_report,
  revoke_mandate,
  run_collection_pass,
  type TokenAccess,
  validate_creditor,
  validate_mandate,
} from '../billing/collection/index.js';
import type { Ledger } from '../billing/ledger.js';
import type { Config } from '../core/config.js';
import { FieldError } from '../core/field-error.js';
import { HttpError, int_param, type Route, type RouteContext, read_body, send_json } from './http.js';

/**
 * Collection without a gateway, for the operator: SEPA creditor identities and mandates, the
 * pain.008 collection file of a billing run (and retry files), bank files fed back (pain.002,
 * camt.054), an invoice's RF payment reference, dunning and the reconciliation report of a day.
 * Bad input is a 400 naming the field (a bank file: the XML line and element) and changes nothing.
 */
export interface CollectionRouteDeps {
  ledger: Ledger;
  /** The token store: suspended accounts' tokens are blocked there. */
  tokens: TokenAccess;
  /** Dunning days, retries (collection_policy) and the API body limit. */
  config: Config;
}

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

function text_param(value: string, field: string): string {
  if (!/^[\x21-\x7e]{1,64}$/.test(value))
    throw new HttpError(400, `${field}: must be 1 to 64 printable ASCII characters`, field);
  return value;
}

function id_param(value: string, field: string, what: string): number {
  if (!/^[1-9]\d{0,15}$/.test(value)) throw new HttpError(404, `${field}: no such ${what}`, field);
  return Number(value);
}

function send_xml(ctx: RouteContext, xml: string, filename: string): void {
  const body = Buffer.from(xml, 'utf8');
  ctx.res.writeHead(200, {
    'content-type': 'application/xml; charset=utf-8',
    'content-length': String(body.length),
    'content-disposition': `attachment; filename="${filename}"`,
  });
  ctx.res.end(body);
}

const path_param = (name: string, type = 'string') => ({
  name,
  in: 'path',
  required: true,
  schema: { type },
});
const json = (description: string) => ({ description, content: { 'application/json': {} } });
const xml = (description: string) => ({ description, content: { 'application/xml': {} } });
const tags = ['collection'];

export function collection_routes(deps: CollectionRouteDeps): Route[] {
  const { ledger } = deps;
  const policy = collection_policy(deps.config);
  return [
    {
      method: 'PUT',
      path: /^\/v1\/legal-entities\/([^/]+)\/sepa-creditor$/,
      param_names: ['id'],
      auth: 'operator',
      doc: {
        path: '/v1/legal-entities/{id}/sepa-creditor',
        summary: "Set a legal entity's SEPA creditor identifier and the account collections are credited to",
        tags,
        parameters: [path_param('id')],
        request_body: {
          type: 'object',
          additionalProperties: false,
          required: ['creditor_id', 'name', 'iban', 'bic'],
          properties: {
            creditor_id: { type: 'string', description: 'SEPA creditor identifier, e.g. DE98ZZZ09999999999' },
            name: { type: 'string', maxLength: 70 },
            iban: { type: 'string' },
            bic: { type: 'string' },
          },
        },
        responses: {
          '200': json('the creditor'),
          '400': json('a field is not valid'),
          '404': json('no such legal entity'),
        },
      },
      async handle(ctx) {
        await guarded(async () => {
          const creditor = validate_creditor(text_param(ctx.params[0]!, 'id'), await ctx.json_body());
          await put_creditor(ledger, creditor);
          send_json(ctx.res, 200, creditor);
        });
      },
    },
    {
      method: 'GET',
      path: /^\/v1\/legal-entities\/([^/]+)\/sepa-creditor$/,
      param_names: ['id'],
      auth: 'operator',
      doc: {
        path: '/v1/legal-entities/{id}/sepa-creditor',
        summary: "A legal entity's SEPA creditor identity",
        tags,
        parameters: [path_param('id')],
        responses: { '200': json('the creditor'), '404': json('none set') },
      },
      async handle(ctx) {
        const creditor = await get_creditor(ledger, text_param(ctx.params[0]!, 'id'));
        if (creditor === undefined)
          throw new HttpError(404, 'id: no SEPA creditor for this legal entity', 'id');
        send_json(ctx.res, 200, creditor);
      },
    },
    {
      method: 'PUT',
      path: /^\/v1\/accounts\/([^/]+)\/mandates\/([^/]+)$/,
      param_names: ['id', 'mandate_id'],
      auth: 'operator',
      doc: {
        path: '/v1/accounts/{id}/mandates/{mandate_id}',
        summary:
          "Create a SEPA mandate of a company account (it becomes the account's active one) or change one not yet collected from",
        tags,
        parameters: [path_param('id'), path_param('mandate_id')],
        request_body: {
          type: 'object',
          additionalProperties: false,
          required: ['debtor_name', 'iban', 'bic', 'signed_on'],
          properties: {
            debtor_name: { type: 'string', maxLength: 70 },
            iban: { type: 'string', description: 'checked by its ISO 13616 mod-97 check digits' },
            bic: { type: 'string' },
            signed_on: { type: 'string', format: 'date' },
            scheme: { enum: ['CORE', 'B2B'], default: 'CORE' },
          },
        },
        responses: {
          '200': json('the mandate, changed'),
          '201': json('the mandate, created'),
          '400': json('a field is not valid'),
          '404': json('no such account'),
          '409': json('the mandate belongs to another account, is revoked, or was collected from'),
        },
      },
      async handle(ctx) {
        await guarded(async () => {
          const mandate = validate_mandate(
            text_param(ctx.params[0]!, 'id'),
            ctx.params[1]!,
            await ctx.json_body(),
          );
          const { created } = await put_mandate(ledger, mandate);
          send_json(ctx.res, created ? 201 : 200, mandate);
        });
      },
    },
    {
      method: 'GET',
      path: /^\/v1\/accounts\/([^/]+)\/mandates$/,
      param_names: ['id'],
      auth: 'operator',
      doc: {
        path: '/v1/accounts/{id}/mandates',
        summary: "An account's SEPA mandates, active and revoked",
        tags,
        parameters: [path_param('id')],
        responses: { '200': json('{mandates}') },
      },
      async handle(ctx) {
        send_json(ctx.res, 200, { mandates: await list_mandates(ledger, text_param(ctx.params[0]!, 'id')) });
      },
    },
    {
      method: 'DELETE',
      path: /^\/v1\/accounts\/([^/]+)\/mandates\/([^/]+)$/,
      param_names: ['id', 'mandate_id'],
      auth: 'operator',
      doc: {
        path: '/v1/accounts/{id}/mandates/{mandate_id}',
        summary: 'Revoke a mandate: nothing more is collected with it (collections already submitted stay)',
        tags,
        parameters: [path_param('id'), path_param('mandate_id')],
        responses: { '204': { description: 'revoked' }, '404': json('no such active mandate') },
      },
      async handle(ctx) {
        const revoked = await revoke_mandate(ledger, text_param(ctx.params[0]!, 'id'), ctx.params[1]!);
        if (!revoked)
          throw new HttpError(404, 'mandate_id: no such active mandate of this account', 'mandate_id');
        ctx.res.writeHead(204).end();
      },
    },
    {
      method: 'POST',
      path: /^\/v1\/billing\/runs\/([^/]+)\/sepa-file$/,
      param_names: ['id'],
      auth: 'operator',
      doc: {
        path: '/v1/billing/runs/{id}/sepa-file',
        summary:
          'Create the pain.008.001.02 collection file of a finished billing run: every open invoice of an account with an active mandate, for what remains; once per run',
        tags,
        parameters: [path_param('id', 'integer')],
        responses: {
          '200': json(
            '{file, skipped}: the file (the one created before, if any) and the invoices left out, with why',
          ),
          '400': json('the run is not finished'),
          '404': json('no such run'),
        },
      },
      async handle(ctx) {
        await guarded(async () => {
          const run_id = id_param(ctx.params[0]!, 'id', 'billing run');
          send_json(ctx.res, 200, await collect_billing_run(ledger, run_id));
        });
      },
    },
    {
      method: 'GET',
      path: /^\/v1\/billing\/runs\/([^/]+)\/sepa-file$/,
      param_names: ['id'],
      auth: 'operator',
      doc: {
        path: '/v1/billing/runs/{id}/sepa-file',
        summary: "Download a billing run's pain.008.001.02 collection file",
        tags,
        parameters: [path_param('id', 'integer')],
        responses: { '200': xml('the pain.008 XML'), '404': json('the run has no collection file') },
      },
      async handle(ctx) {
        const run_id = id_param(ctx.params[0]!, 'id', 'billing run');
        const [file] = await list_collection_files(ledger, { billing_run_id: run_id, limit: 1 });
        const full = file === undefined ? undefined : await get_collection_file(ledger, file.id);
        if (full === undefined) throw new HttpError(404, 'id: the run has no collection file', 'id');
        send_xml(ctx, full.xml, `${full.message_id}.xml`);
      },
    },
    {
      method: 'GET',
      path: /^\/v1\/sepa-files$/,
      auth: 'operator',
      doc: {
        path: '/v1/sepa-files',
        summary: 'Collection files, newest first (run files and retry files)',
        tags,
        parameters: [
          {
            name: 'limit',
            in: 'query',
            schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
          },
        ],
        responses: { '200': json('{files}') },
      },
      async handle(ctx) {
        const limit = int_param(ctx.url.searchParams, 'limit', 100, 1, 1000);
        send_json(ctx.res, 200, { files: await list_collection_files(ledger, { limit }) });
      },
    },
    {
      method: 'GET',
      path: /^\/v1\/sepa-files\/([^/]+)$/,
      param_names: ['id'],
      auth: 'operator',
      doc: {
        path: '/v1/sepa-files/{id}',
        summary: 'Download a collection file (pain.008.001.02)',
        tags,
        parameters: [path_param('id', 'integer')],
        responses: { '200': xml('the pain.008 XML'), '404': json('no such file') },
      },
      async handle(ctx) {
        const file = await get_collection_file(ledger, id_param(ctx.params[0]!, 'id', 'collection file'));
        if (file === undefined) throw new HttpError(404, 'id: no such collection file', 'id');
        send_xml(ctx, file.xml, `${file.message_id}.xml`);
      },
    },
    {
      method: 'POST',
      path: /^\/v1\/bank-files$/,
      auth: 'operator',
      doc: {
        path: '/v1/bank-files',
        summary:
          'Feed back a bank file, the XML as the body (application/xml): a pain.002 status report or a camt.054 notification. Rejected and returned debits reopen their invoices and start dunning; RF-referenced transfers pay invoices; the same file twice changes nothing',
        tags,
        responses: {
          '200': json('{file_id, message_type, already_applied, lines: what each line matched}'),
          '400': json(
            'the file is not a pain.002 or camt.054, or a line lacks a field: {field: "line N: path"}',
          ),
        },
      },
      async handle(ctx) {
        await guarded(async () => {
          const text = await read_body(ctx.req, deps.config.api_body_bytes_max);
          const applied = await apply_bank_file(ledger, text, policy);
          // The accounts touched move through dunning now (a payment ends a suspension at once).
          const touched = new Set(applied.dunning_started);
          if (applied.lines.some((l) => l.kind === 'transfer_credit' && l.status === 'matched')) {
            const ids = applied.lines.filter((l) => l.invoice_id !== null).map((l) => l.invoice_id!);
            const owners = await ledger.query<{ account_id: string }>(
              'SELECT DISTINCT account_id FROM invoices WHERE id = ANY($1::int8[])',
              [ids],
            );
            for (const o of owners) touched.add(o.account_id);
          }
          const pass =
            touched.size === 0
              ? undefined
              : await run_collection_pass(ledger, deps.tokens, policy, Date.now(), [...touched]);
          send_json(ctx.res, 200, { ...applied, dunning: pass?.transitions ?? [] });
        });
      },
    },
    {
      method: 'GET',
      path: /^\/v1\/invoices\/([^/]+)\/payment-reference$/,
      param_names: ['id'],
      auth: 'operator',
      doc: {
        path: '/v1/invoices/{id}/payment-reference',
        summary:
          "An invoice's structured payment reference for bank transfers (ISO 11649 RF creditor reference)",
        tags,
        parameters: [path_param('id', 'integer')],
        responses: { '200': json('{invoice_id, reference, creditor}'), '404': json('no such invoice') },
      },
      async handle(ctx) {
        const id = id_param(ctx.params[0]!, 'id', 'invoice');
        const [invoice] = await ledger.query<{ legal_entity_id: string }>(
          `SELECT legal_entity_id FROM invoices WHERE id = $1 AND kind = 'invoice'`,
          [id],
        );
        if (invoice === undefined) throw new HttpError(404, 'id: no such invoice', 'id');
        const creditor = await get_creditor(ledger, invoice.legal_entity_id);
        send_json(ctx.res, 200, {
          invoice_id: id,
          reference: invoice_payment_reference(id),
          creditor:
            creditor === undefined ? null : { name: creditor.name, iban: creditor.iban, bic: creditor.bic },
        });
      },
    },
    {
      method: 'GET',
      path: /^\/v1\/accounts\/([^/]+)\/dunning$/,
      param_names: ['id'],
      auth: 'operator',
      doc: {
        path: '/v1/accounts/{id}/dunning',
        summary:
          "An account's dunning state (none, reminder, second_reminder, suspended), its changes and its blocked tokens",
        tags,
        parameters: [path_param('id')],
        responses: { '200': json('{state, since_ms, history, blocked_tokens}') },
      },
      async handle(ctx) {
        send_json(ctx.res, 200, await get_dunning(ledger, text_param(ctx.params[0]!, 'id')));
      },
    },
    {
      method: 'POST',
      path: /^\/v1\/dunning\/run$/,
      auth: 'operator',
      doc: {
        path: '/v1/dunning/run',
        summary:
          'Run the collection pass now (it also runs on COLLECTION_SCHEDULE_INTERVAL_S): retry files for returned debits due again, dunning, token blocks',
        tags,
        responses: { '200': json('{retry_file, transitions, tokens_blocked, tokens_unblocked}') },
      },
      async handle(ctx) {
        send_json(ctx.res, 200, await run_collection_pass(ledger, deps.tokens, policy));
      },
    },
    {
      method: 'GET',
      path: /^\/v1\/reconciliation$/,
      auth: 'operator',
      doc: {
        path: '/v1/reconciliation',
        summary:
          'The reconciliation of a day: bank file lines that matched nothing, another amount, or repeated one; collections not yet confirmed; bank charges; card gateway payouts arriving that day against their balance transactions and the ledger, balance transactions that matched no ledger payment, provider fees',
        tags,
        parameters: [
          { name: 'day', in: 'query', required: true, schema: { type: 'string', format: 'date' } },
        ],
        responses: { '200': json('the report'), '400': json('day is not a date') },
      },
      async handle(ctx) {
        await guarded(async () => {
          send_json(
            ctx.res,
            200,
            await reconciliation_report(ledger, ctx.url.searchParams.get('day') ?? undefined, {
              terminal: { grace_min: deps.config.pay_terminal_grace_min },
            }),
          );
        });
      },
    },
  ];
}
