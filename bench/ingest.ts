/**
 * Ingest benchmark: meter values per second accepted and durable (answered after the JetStream
 * ack), and answer latency percentiles, with the whole stack in a child process and the load
 * generator here. Prints figures; asserts nothing.
 *
 *   node dist/bench/ingest.js [--chargers 200] [--seconds 10] [--in-flight 1] [--samples 4]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { project_root } from '../core/paths.js';

const { values } = parseArgs({
  options: {
    chargers: { type: 'string', default: '200' },
    seconds: { type: 'string', default: '10' },
    samples: { type: 'string', default: '4' },
  },
});
const chargers_total = Number(values.chargers);
const duration_ms = Number(values.seconds) * 1000;
const sampled_values_per_message = Number(values.samples);

async function start_stack(dir: string): Promise<{ ocpp: string; stop: () => Promise<void> }> {
  const child = spawn(process.execPath, [path.join(project_root, 'dist', 'core', 'cli.js'), 'start'], {
    env: {
      ...process.env,
      DATA_DIR: dir,
      OCPP_PORT: '0',
      API_PORT: '0',
      LOG_LEVEL: 'warn',
      OCPP_ALLOW_UNKNOWN: 'true',
      OCPP_ACCEPT_UNKNOWN_TOKENS: 'true',
      // A simulated charger with one call always outstanding sends far more than a real one.
      OCPP_CALLS_PER_S_MAX: '1000000',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const deadline = Date.now() + 60_000;
  while (!/operator token/.test(output)) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`stack did not start:\n${output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const ocpp = /charge points: +(ws:\/\/\S+)\/ocpp\//.exec(output)![1]!;
  return {
    ocpp,
    stop: async () => {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'evrate-bench-'));
  const stack = await start_stack(dir);
  const latencies_ms: number[] = [];
  let answered = 0;
  let errors = 0;
  let running = true;
  const sockets: WebSocket[] = [];
  for (let c = 0; c < chargers_total; c++) {
    const ws = new WebSocket(`${stack.ocpp}/ocpp/BENCH-${c}`, 'ocpp1.6');
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    sockets.push(ws);
  }
  const started = Date.now();
  setTimeout(() => {
    running = false;
  }, duration_ms);
  const sample = (i: number) => ({
    value: String(i),
    measurand: 'Energy.Active.Import.Register',
    unit: 'Wh',
  });
  // Each charger keeps one MeterValues CALL outstanding, as OCPP-J requires.
  await Promise.all(
    sockets.map(
      (ws, c) =>
        new Promise<void>((resolve) => {
          let n = 0;
          let sent_at = 0;
          const send = () => {
            if (!running) {
              resolve();
              return;
            }
            n++;
            sent_at = performance.now();
            ws.send(
              JSON.stringify([
                2,
                `${c}-${n}`,
                'MeterValues',
                {
                  connectorId: 1,
                  transactionId: c + 1,
                  meterValue: [
                    {
                      timestamp: new Date().toISOString(),
                      sampledValue: Array.from({ length: sampled_values_per_message }, (_, i) =>
                        sample(n * 10 + i),
                      ),
                    },
                  ],
                },
              ]),
            );
          };
          ws.on('message', (data) => {
            const frame = JSON.parse(data.toString()) as unknown[];
            if (frame[0] === 3) {
              answered++;
              latencies_ms.push(performance.now() - sent_at);
            } else errors++;
            send();
          });
          send();
        }),
    ),
  );
  const elapsed_s = (Date.now() - started) / 1000;
  for (const ws of sockets) ws.close();
  await stack.stop();
  rmSync(dir, { recursive: true, force: true });
  latencies_ms.sort((a, b) => a - b);
  const result = {
    chargers: chargers_total,
    seconds: Number(elapsed_s.toFixed(1)),
    meter_value_messages_per_s: Math.round(answered / elapsed_s),
    sampled_values_per_s: Math.round((answered * sampled_values_per_message) / elapsed_s),
    answer_latency_ms: {
      p50: Number(percentile(latencies_ms, 50).toFixed(2)),
      p99: Number(percentile(latencies_ms, 99).toFixed(2)),
      max: Number((latencies_ms.at(-1) ?? Number.NaN).toFixed(2)),
    },
    callerrors: errors,
  };
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${(error as Error).stack}\n`);
  process.exit(1);
});
