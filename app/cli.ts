#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import {
  BillingEventsUsageError,
  billing_events_command,
  billing_events_usage,
} from '../billing/analytics/cli.js';
import { BillUsageError, bill_command } from '../billing/cli-bill.js';
import { invoice_command, invoice_usage } from '../billing/cli-einvoice.js';
import { collection_command, collection_commands, collection_usage } from '../billing/collection/cli.js';
import { payments_command } from '../billing/payments/cli-payments.js';
import { ConfigError, load_config } from '../core/config.js';
import { create_logger } from '../core/log.js';
import { RateCdrError, rate_cdr } from '../rating/cli-rate.js';
import { WhatIfUsageError, what_if_command, what_if_usage } from './cli-what-if.js';
import { start_stack } from './stack.js';

const usage = `usage: evrate <command>

commands:
  start     run the whole stack: OCPP ingest, rating, ClickHouse sink, operator API
            (configuration from environment variables; see README.md)
  rate      price OCPI 2.2.1 CDRs with an OCPI tariff and print the priced CDRs as JSON
              --tariff FILE       OCPI Tariff object (JSON)
              --cdr FILE          one OCPI CDR (its charging_periods, start and end)
              --sessions FILE     many CDRs, one JSON object per line (NDJSON); prints NDJSON
              --time-zone ZONE    IANA time zone of the location (e.g. Europe/Berlin); required
                                  unless each CDR's location carries a time_zone or a country
                                  with one zone (e.g. DEU, NLD, FRA)
  rerate    re-price finished sessions with a tariff version, through the running API; writes a
            new version of each session and prints old total, new total and difference as JSON
              --tariff ID         tariff id (required)
              --tariff-version N  a stored version (default: the current one)
              --session ID        one session ("<charge point id>/<transaction id>")
              --charge-point ID   every session of a charge point
              --from TIME --to TIME   sessions started in [from, to) (RFC 3339)
              --api URL           the operator API (default: EVRATE_API_URL or http://127.0.0.1:9221)
            the operator token comes from OPERATOR_TOKEN
  bill      close a billing period: invoice every account (or those named) and print the run as JSON;
            safe to run again or beside another run (DATABASE_URL, or the embedded ledger in DATA_DIR)
              --period YYYY-MM    the month, in each legal entity's time zone (required)
              --account ID        only this account (repeatable)
              --draft             leave the invoices as drafts
  payments  card payments with the configured gateway (STRIPE_*), against the same ledger as bill:
              sweep               resend pending provider calls with their keys (after a crash),
                                  pay out credit notes, charge new invoices of saved cards
              capture --payment ID [--amount-minor N]     capture a hold
              refund --payment ID [--amount-minor N] --reason TEXT
              collect --invoice ID                        account credit, then the saved card
${invoice_usage}${collection_usage}
${what_if_usage}
${billing_events_usage}`;

/** A mistake in what the user gave the CLI: printed as one line, exit code 2. */
class UsageError extends Error {}

function read_text(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw new UsageError(
      `${what} ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
}

function rate(argv: string[]): void {
  let values: { tariff?: string; cdr?: string; sessions?: string; 'time-zone'?: string };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        tariff: { type: 'string' },
        cdr: { type: 'string' },
        sessions: { type: 'string' },
        'time-zone': { type: 'string' },
      },
      strict: true,
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (values.tariff === undefined) throw new UsageError('rate: --tariff FILE is required');
  if ((values.cdr === undefined) === (values.sessions === undefined)) {
    throw new UsageError('rate: give exactly one of --cdr FILE or --sessions FILE');
  }
  const tariff = read_text(values.tariff, '--tariff');
  // The CPO party that owns an OCPI 2.1.1 tariff without country_code/party_id.
  const config = load_config();
  const cpo = { country_code: config.ocpi_country_code, party_id: config.ocpi_party_id };
  const options = values['time-zone'] === undefined ? { cpo } : { cpo, time_zone: values['time-zone'] };
  const describe = (error: unknown, file: string) =>
    error instanceof RateCdrError
      ? new UsageError(`${error.file === 'tariff' ? values.tariff : file}: ${error.field}: ${error.rule}`)
      : error;
  if (values.cdr !== undefined) {
    try {
      process.stdout.write(
        `${JSON.stringify(rate_cdr(tariff, read_text(values.cdr, '--cdr'), options), null, 2)}\n`,
      );
    } catch (error) {
      throw describe(error, values.cdr);
    }
    return;
  }
  const lines = read_text(values.sessions!, '--sessions').split('\n');
  const out: string[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    try {
      out.push(JSON.stringify(rate_cdr(tariff, line, options)));
    } catch (error) {
      throw describe(error, `${values.sessions} line ${i + 1}`);
    }
  });
  // Nothing is printed unless every line priced: a partial output would look complete.
  process.stdout.write(out.length === 0 ? '' : `${out.join('\n')}\n`);
}

async function start(): Promise<void> {
  const config = load_config();
  const log = create_logger(config.log_level, { node_id: config.node_id });
  const stack = await start_stack(config, log);
  stack.shutdown.on_signals();
  const lines = [
    `evrate is running (pid ${process.pid}; roles ${[...config.roles].join(', ')}; SIGTERM or Ctrl-C drains and stops it)`,
    ...(stack.ocpp_url === ''
      ? []
      : [`  OCPP charge points:      ${stack.ocpp_url}  (subprotocols ocpp2.0.1, ocpp1.6)`]),
    ...(stack.api_url === ''
      ? []
      : [
          `  operator API:            ${stack.api_url}/v1/sessions`,
          `  metrics:                 ${stack.api_url}/metrics`,
        ]),
    `  NATS:                    ${stack.nats_url}`,
    stack.store === undefined
      ? '  ClickHouse:              not used by this process (ingest only)'
      : `  ClickHouse:              ${stack.store.transport} ${stack.store.server_version}`,
    config.operator_token_generated
      ? `  operator token (generated, set OPERATOR_TOKEN to keep one): ${config.operator_token}`
      : '  operator token: from OPERATOR_TOKEN',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

async function rerate_command(argv: string[]): Promise<void> {
  let values: Record<string, string | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        tariff: { type: 'string' },
        'tariff-version': { type: 'string' },
        session: { type: 'string' },
        'charge-point': { type: 'string' },
        from: { type: 'string' },
        to: { type: 'string' },
        api: { type: 'string' },
      },
      strict: true,
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (values.tariff === undefined) throw new UsageError('rerate: --tariff ID is required');
  const version = values['tariff-version'];
  if (version !== undefined && !/^[1-9]\d{0,8}$/.test(version)) {
    throw new UsageError('rerate: --tariff-version must be a positive integer');
  }
  const token = process.env.OPERATOR_TOKEN;
  if (token === undefined || token === '')
    throw new UsageError('rerate: set OPERATOR_TOKEN to the operator token');
  const api = values.api ?? process.env.EVRATE_API_URL ?? 'http://127.0.0.1:9221';
  const body = {
    tariff_id: values.tariff,
    ...(version === undefined ? {} : { tariff_version: Number(version) }),
    ...(values.session === undefined ? {} : { session_id: values.session }),
    ...(values['charge-point'] === undefined ? {} : { charge_point_id: values['charge-point'] }),
    ...(values.from === undefined ? {} : { from: values.from }),
    ...(values.to === undefined ? {} : { to: values.to }),
  };
  let response: Response;
  try {
    response = await fetch(`${api.replace(/\/$/, '')}/v1/sessions/rerate`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  } catch (error) {
    throw new UsageError(`rerate: cannot reach the API at ${api}: ${(error as Error).message}`);
  }
  const text = await response.text();
  if (!response.ok) {
    let message = text;
    try {
      const parsed = JSON.parse(text) as { error?: string; field?: string };
      message = String(parsed.error);
      if (parsed.field !== undefined && !message.startsWith(`${parsed.field}:`))
        message = `${parsed.field}: ${message}`;
    } catch {}
    throw new UsageError(`rerate: ${response.status}: ${message}`);
  }
  process.stdout.write(`${JSON.stringify(JSON.parse(text), null, 2)}\n`);
}

async function main(argv: string[]): Promise<number> {
  const [command] = argv;
  if (command === 'start') {
    await start();
    return -1; // keeps running until a signal
  }
  if (command === 'rate') {
    rate(argv.slice(1));
    return 0;
  }
  if (command === 'rerate') {
    await rerate_command(argv.slice(1));
    return 0;
  }
  if (command === 'what-if') {
    await what_if_command(argv.slice(1));
    return 0;
  }
  if (command === 'bill') {
    await bill_command(argv.slice(1), load_config());
    return 0;
  }
  if (command === 'billing-events') {
    await billing_events_command(argv.slice(1), load_config());
    return 0;
  }
  if (command === 'invoice') return await invoice_command(argv.slice(1));
  if (command === 'payments') {
    await payments_command(argv.slice(1), load_config());
    return 0;
  }
  if ((collection_commands as readonly string[]).includes(command ?? '')) {
    await collection_command(command!, argv.slice(1), load_config());
    return 0;
  }
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(usage);
    return command === undefined ? 2 : 0;
  }
  process.stderr.write(`evrate: unknown command ${JSON.stringify(command)}\n${usage}`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof ConfigError) process.stderr.write(`evrate: configuration error: ${error.message}\n`);
    else if (
      error instanceof UsageError ||
      error instanceof BillUsageError ||
      error instanceof WhatIfUsageError ||
      error instanceof BillingEventsUsageError
    ) {
      process.stderr.write(`evrate: ${error.message}\n`);
      process.exit(2);
    } else process.stderr.write(`evrate: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
