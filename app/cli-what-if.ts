import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

/** A mistake in what the user gave `evrate what-if` (or an answer naming one): exit code 2. */
export class WhatIfUsageError extends Error {}

export const what_if_usage = `  what-if   re-price a past period under candidate tariffs (not published), through the running
            API; a progress bar on stderr, the scenario's results as JSON on stdout
              --from TIME --to TIME   sessions started in [from, to) (RFC 3339, required)
              --tariff FILE       a candidate OCPI tariff (JSON); repeat for several candidates
              --name NAME         the scenario's name (shown in Grafana)
              --station ID, --charge-point ID, --evse CP/EVSE, --payment-method M, --party CC*PID
                                  only these sessions (each repeatable)
              --api URL           the operator API (default: EVRATE_API_URL or http://127.0.0.1:9221)
            the operator token comes from OPERATOR_TOKEN
`;

function message_of(status: number, text: string): string {
  try {
    const parsed = JSON.parse(text) as { error?: string; field?: string };
    let message = String(parsed.error);
    if (parsed.field !== undefined && !message.startsWith(`${parsed.field}:`))
      message = `${parsed.field}: ${message}`;
    return `${status}: ${message}`;
  } catch {
    return `${status}: ${text}`;
  }
}

function bar(done: number, total: number): string {
  const width = 30;
  const filled = total === 0 ? width : Math.min(width, Math.floor((done / total) * width));
  const percent = total === 0 ? 100 : Math.floor((done / total) * 100);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${percent}% ${done}/${total} sessions`;
}

export async function what_if_command(
  argv: string[],
  options: { poll_ms?: number; stderr?: NodeJS.WritableStream } = {},
): Promise<void> {
  let values: Record<string, string | string[] | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        from: { type: 'string' },
        to: { type: 'string' },
        tariff: { type: 'string', multiple: true },
        name: { type: 'string' },
        station: { type: 'string', multiple: true },
        'charge-point': { type: 'string', multiple: true },
        evse: { type: 'string', multiple: true },
        'payment-method': { type: 'string', multiple: true },
        party: { type: 'string', multiple: true },
        api: { type: 'string' },
      },
      strict: true,
    }));
  } catch (error) {
    throw new WhatIfUsageError((error as Error).message);
  }
  const files = (values.tariff as string[] | undefined) ?? [];
  if (files.length === 0) throw new WhatIfUsageError('what-if: --tariff FILE is required');
  if (values.from === undefined || values.to === undefined)
    throw new WhatIfUsageError('what-if: --from and --to are required');
  const tariffs = files.map((file) => {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      throw new WhatIfUsageError(
        `--tariff ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
      );
    }
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new WhatIfUsageError(`--tariff ${file}: not valid JSON`);
    }
  });
  const token = process.env.OPERATOR_TOKEN;
  if (token === undefined || token === '')
    throw new WhatIfUsageError('what-if: set OPERATOR_TOKEN to the operator token');
  const api = (
    (values.api as string | undefined) ??
    process.env.EVRATE_API_URL ??
    'http://127.0.0.1:9221'
  ).replace(/\/$/, '');
  const list = (name: string) => values[name] as string[] | undefined;
  const body = {
    from: values.from,
    to: values.to,
    tariffs,
    ...(values.name === undefined ? {} : { name: values.name }),
    ...(list('station') === undefined ? {} : { station_ids: list('station') }),
    ...(list('charge-point') === undefined ? {} : { charge_point_ids: list('charge-point') }),
    ...(list('evse') === undefined ? {} : { evses: list('evse') }),
    ...(list('payment-method') === undefined ? {} : { payment_methods: list('payment-method') }),
    ...(list('party') === undefined ? {} : { parties: list('party') }),
  };
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  const call = async (url: string, init: RequestInit) => {
    try {
      const response = await fetch(url, init);
      return { status: response.status, ok: response.ok, text: await response.text() };
    } catch (error) {
      throw new WhatIfUsageError(`what-if: cannot reach the API at ${api}: ${(error as Error).message}`);
    }
  };
  const started = await call(`${api}/v1/pricing/what-if`, {
    method: 'POST',
    headers,
    body: JSON.stringify(body),
  });
  if (!started.ok) {
    const message = message_of(started.status, started.text);
    // A candidate that does not validate names the file it came from.
    const m = /tariffs\[(\d+)\]/.exec(message);
    throw new WhatIfUsageError(`what-if: ${m === null ? '' : `${files[Number(m[1])]}: `}${message}`);
  }
  const { scenario_id } = JSON.parse(started.text) as { scenario_id: string };
  const stderr = options.stderr ?? process.stderr;
  const poll_ms = options.poll_ms ?? 250;
  for (;;) {
    const answer = await call(`${api}/v1/pricing/what-if/${encodeURIComponent(scenario_id)}`, { headers });
    if (!answer.ok) throw new WhatIfUsageError(`what-if: ${message_of(answer.status, answer.text)}`);
    const scenario = JSON.parse(answer.text) as {
      state: string;
      error?: string;
      progress: { sessions_total: number; sessions_done: number };
    };
    stderr.write(`\r${bar(scenario.progress.sessions_done, scenario.progress.sessions_total)}`);
    if (scenario.state === 'done') {
      stderr.write('\n');
      process.stdout.write(`${JSON.stringify(scenario, null, 2)}\n`);
      return;
    }
    if (scenario.state === 'failed') {
      stderr.write('\n');
      throw new Error(`what-if ${scenario_id} failed: ${scenario.error ?? ''}`);
    }
    await new Promise((r) => setTimeout(r, poll_ms));
  }
}
