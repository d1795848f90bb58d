import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type RunningStack, start_stack } from '../../app/stack.js';
import { type Config, load_config } from '../../core/config.js';
import { create_logger } from '../../core/log.js';

export const test_operator_token = 'test-operator-token-0123456789';

/**
 * The whole stack in this process on free ports, with its own nats-server and data directory.
 * clickhouse_url unset: the embedded engine.
 */
export async function start_test_stack(
  env: Record<string, string> = {},
): Promise<RunningStack & { dir: string; config: Config; dispose(): Promise<void> }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'evrate-stack-'));
  const config = load_config({
    DATA_DIR: dir,
    OCPP_PORT: '0',
    API_PORT: '0',
    OCPP_HOST: '127.0.0.1',
    API_HOST: '127.0.0.1',
    OPERATOR_TOKEN: test_operator_token,
    LOG_LEVEL: 'warn',
    OCPP_ALLOW_UNKNOWN: 'true',
    ...env,
  });
  const stack = await start_stack(config, create_logger(config.log_level));
  return {
    ...stack,
    dir,
    config,
    async dispose() {
      await stack.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function eventually<T>(probe: () => Promise<T | undefined>, timeout_ms = 30_000): Promise<T> {
  const deadline = Date.now() + timeout_ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeout_ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function api_get(
  stack: RunningStack,
  pathname: string,
): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${stack.api_url}${pathname}`, {
    headers: { authorization: `Bearer ${test_operator_token}` },
  });
  return { status: res.status, body: await res.json() };
}

export async function api_put(
  stack: RunningStack,
  pathname: string,
  body: string,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${stack.api_url}${pathname}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${test_operator_token}`, 'content-type': 'application/json' },
    body,
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}
