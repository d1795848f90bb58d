#!/usr/bin/env node
import { ConfigError, load_config } from './config.js';
import { create_logger } from './log.js';
import { start_stack } from './stack.js';

const usage = `usage: evrate <command>

commands:
  start     run the whole stack: OCPP ingest, rating, ClickHouse sink, operator API
            (configuration from environment variables; see README.md)
`;

async function start(): Promise<void> {
  const config = load_config();
  const log = create_logger(config.log_level, { node_id: config.node_id });
  const stack = await start_stack(config, log);
  stack.shutdown.on_signals();
  const lines = [
    `evrate is running (pid ${process.pid}; SIGTERM or Ctrl-C drains and stops it)`,
    `  OCPP charge points:      ${stack.ocpp_url}  (subprotocols ocpp2.0.1, ocpp1.6)`,
    `  operator API:            ${stack.api_url}/v1/sessions`,
    `  metrics:                 ${stack.api_url}/metrics`,
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
    else process.stderr.write(`evrate: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
