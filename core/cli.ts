#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { RateCdrError, rate_cdr } from '../rating/cli-rate.js';
import { ConfigError, load_config } from './config.js';
import { create_logger } from './log.js';
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
                                  unless each CDR carries cdr_location.time_zone
`;

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
  const options = values['time-zone'] === undefined ? {} : { time_zone: values['time-zone'] };
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
    `  ClickHouse:              ${stack.store.transport} ${stack.store.server_version}`,
    config.operator_token_generated
      ? `  operator token (generated, set OPERATOR_TOKEN to keep one): ${config.operator_token}`
      : '  operator token: from OPERATOR_TOKEN',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
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
    else if (error instanceof UsageError) {
      process.stderr.write(`evrate: ${error.message}\n`);
      process.exit(2);
    } else process.stderr.write(`evrate: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
