import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';

/**
 * Every setting of the process, read from environment variables. Defaults are written here and
 * nowhere else; README.md lists the same table for users.
 */
export type Role = 'ingest' | 'rating' | 'api' | 'billing';
const roles_all: readonly Role[] = ['ingest', 'rating', 'api', 'billing'];
/** Billing is opt-in: it opens the ledger (PGlite's first open takes seconds). */
const roles_default: readonly Role[] = ['ingest', 'rating', 'api'];

export interface Config {
  /** What this process runs; several processes with different roles share NATS and ClickHouse. */
  roles: Set<Role>;
  data_dir: string;
  log_level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  node_id: string;

  /** Unset: a local nats-server is started with its store under data_dir. */
  nats_url: string | undefined;
  /** Port of the local nats-server; 0 picks a free one. */
  nats_port: number;
  nats_stream: string;
  nats_subject_prefix: string;
  /** Replicas of every JetStream stream and KV bucket evrate creates: 1, 3 or 5 (a cluster). */
  nats_replicas: number;

  /** Unset: the embedded engine (chdb) with its data under data_dir. */
  clickhouse_url: string | undefined;
  clickhouse_user: string;
  clickhouse_password: string;
  clickhouse_database: string;

  /** PostgreSQL server of the billing ledger; unset: embedded PGlite with its data under data_dir/billing. */
  database_url: string | undefined;
  /** Rated versions per billing feed batch (one ledger transaction) at most. */
  billing_feed_batch_max: number;
  /** Dunning: days after an invoice's due date for each state (billing/collection/dunning.ts). */
  dunning_reminder_days: number;
  dunning_second_reminder_days: number;
  dunning_suspend_days: number;
  /** A returned SEPA debit is collected again this many days after the return, at most this often. */
  collection_retry_days: number;
  collection_retries_max: number;
  /** Pause between dunning and retry passes of the billing process; 0 turns the schedule off. */
  collection_schedule_interval_s: number;

  /** Stripe secret key (sk_live_... / sk_test_...); unset: no card payments. */
  stripe_secret_key: string | undefined;
  /** Signing secret of the Stripe webhook endpoint (whsec_...); required with the secret key. */
  stripe_webhook_secret: string | undefined;
  /** Base URL of the Stripe API (a local emulator in tests); unset: https://api.stripe.com. */
  stripe_api_base: string | undefined;
  /** Pause between payment sweeps (pending calls resent, credit notes paid out, cards charged); 0 off. */
  payments_sweep_interval_ms: number;
  /** Pause between shipments of the ledger's billing events to ClickHouse (billing/analytics); 0 off. */
  billing_events_ship_interval_ms: number;

  ocpp_host: string;
  ocpp_port: number;
  ocpp_frame_bytes_max: number;
  heartbeat_interval_s: number;
  /** Accept charge points that are not registered, without a password. */
  ocpp_allow_unknown: boolean;
  /** Accept idTags / idTokens the token store does not know (free-vend sites). */
  ocpp_accept_unknown_tokens: boolean;
  /** Sustained CALLs per second per charger (bursts of twice that). */
  ocpp_calls_per_s_max: number;
  /** Bytes queued for a charger that does not read before its connection is closed. */
  ocpp_backpressure_bytes_max: number;
  /** How long a remote command waits for the charger's answer. */
  ocpp_command_timeout_s: number;
  /** Send running costs to chargers (2.0.1 CostUpdated, 1.6 DataTransfer RunningCost). */
  ocpp_cost_updates: boolean;
  /** PEM certificate chain and key: TLS terminated by the OCPP server (security profile 2). */
  ocpp_tls: { cert_file: string; key_file: string } | undefined;

  api_host: string;
  /** Operator API requests per second (bursts of twice that). */
  api_operator_requests_per_s_max: number;
  /** This CPO's OCPI identity: operator tokens and CDRs carry it (ISO 3166-1 alpha-2, 3 characters). */
  ocpi_country_code: string;
  ocpi_party_id: string;
  api_port: number;
  api_body_bytes_max: number;
  operator_token: string;
  /** True when operator_token was generated because OPERATOR_TOKEN was unset. */
  operator_token_generated: boolean;
  /** The tokens after the first in OPERATOR_TOKEN: still accepted while clients move to the first. */
  operator_tokens_previous: string[];
  /** Bearer token /metrics asks for; undefined: /metrics is open (scraped on a private network). */
  metrics_token: string | undefined;

  /** Public base URL of the API for OCPI URLs (versions, Link headers); unset: the local API URL. */
  ocpi_base_url: string | undefined;
  ocpi_business_name: string;
  /** ISO 3166-1 alpha-3 country of our locations, for CdrLocation.country. */
  ocpi_location_country: string;
  /** Largest OCPI page (X-Limit). */
  ocpi_page_limit_max: number;
  /** Requests per second and burst allowed to each OCPI partner. */
  ocpi_rate_limit_per_s: number;
  ocpi_rate_limit_burst: number;
  /** Pause between CDR push passes; 0 turns push off. */
  ocpi_cdr_push_interval_ms: number;
  /** CDRs are pushed once their last_updated is this old (late ratings do not pass the cursor). */
  ocpi_cdr_push_settle_s: number;
  /** Call partner URLs that resolve to loopback, private or link-local addresses (default false). */
  ocpi_allow_private_addresses: boolean;

  default_tariff_id: string;
  default_tariff_currency: string;
  default_tariff_price_per_kwh: string;
  default_tariff_vat_percent: string;

  ingest_batch_linger_ms: number;
  ingest_batch_events_max: number;
  ingest_batch_bytes_max: number;
  ingest_pending_events_max: number;

  rating_workers: number;
  rating_fetch_batch_max: number;
  /** Partitions of the event stream (by charge point); rating processes share them. */
  rating_partitions: number;
  /** A session silent this long is closed provisionally. */
  rating_silence_s: number;
  /** Below this average power an interval is idle (PARKING_TIME), W. */
  rating_idle_power_w: number;
  rating_clock_skew_max_s: number;
  rating_clock_behind_max_s: number;
  rating_power_max_w: number;
  /** A dead rating process's partitions move to the others after this long. */
  rating_lease_ttl_ms: number;
  /** IANA zone of locations without their own (tariff restrictions are in local time). */
  default_time_zone: string;
  /** Days of raw meter values kept; 0 keeps them forever. */
  analytics_raw_retention_days: number;
  /** Working days a dispute case may stay in each state, `state=days,...` (billing/disputes/workflow.ts). */
  dispute_deadline_working_days: string;
  sink_flush_rows_max: number;
  sink_flush_bytes_max: number;
  sink_flush_interval_ms: number;
  sink_pending_rows_max: number;

  /** Pay at the charger (api/pages, billing/pay-at-charger). Public base URL of the pages in QR codes; unset: the request's host. */
  pay_public_base_url: string | undefined;
  /** The payment provider's browser script (its card element) and the publishable key it takes. */
  pay_provider_js_url: string;
  pay_provider_publishable_key: string;
  /** The hold estimate without a site hold or max_price: the EVSE's power over this many minutes. */
  pay_hold_duration_max_min: number;
  /** The power assumed for an EVSE whose profile has no max_power_w, W. */
  pay_hold_power_default_w: number;
  /** A paid session whose car has drawn no energy this long after the start is stopped, its hold released. */
  pay_no_power_timeout_s: number;
  /** The session is stopped when its running cost reaches the hold less this percentage. */
  pay_cost_cap_margin_percent: number;
  /** Requests per second per client address on the public pay pages (bursts of twice that). */
  pay_requests_per_s_max: number;
  /** A terminal session no terminal provider confirmed this long after its stop is listed as unconfirmed. */
  pay_terminal_grace_min: number;
}

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

const log_levels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

function read_string(env: Env, name: string, fallback: string): string {
  const value = env[name];
  return value === undefined || value === '' ? fallback : value;
}

function read_pattern(env: Env, name: string, fallback: string, pattern: RegExp, rule: string): string {
  const value = read_string(env, name, fallback);
  if (!pattern.test(value)) throw new ConfigError(name, `expected ${rule}, got ${JSON.stringify(value)}`);
  return value;
}

function read_optional(env: Env, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value === '' ? undefined : value;
}

function read_time_zone(env: Env, name: string, fallback: string): string {
  const zone = read_string(env, name, fallback);
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
  } catch {
    throw new ConfigError(name, `unknown IANA time zone "${zone}" (e.g. Europe/Amsterdam)`);
  }
  return zone;
}

function read_int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^-?\d+$/.test(raw)) throw new ConfigError(name, `expected an integer, got ${JSON.stringify(raw)}`);
  const value = Number(raw);
  if (value < min || value > max) {
    throw new ConfigError(name, `must be between ${min} and ${max}, got ${value}`);
  }
  return value;
}

function read_bool(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (raw === 'true' || raw === '1') return true;
  if (raw === 'false' || raw === '0') return false;
  throw new ConfigError(name, `expected true or false, got ${JSON.stringify(raw)}`);
}

function read_decimal(env: Env, name: string, fallback: string): string {
  const raw = read_string(env, name, fallback);
  if (!/^\d+(\.\d+)?$/.test(raw)) {
    throw new ConfigError(
      name,
      `expected a non-negative decimal number like 0.30, got ${JSON.stringify(raw)}`,
    );
  }
  return raw;
}

function read_url(env: Env, name: string, schemes: readonly string[]): string | undefined {
  const raw = read_optional(env, name);
  if (raw === undefined) return undefined;
  for (const part of raw.split(',')) {
    let url: URL;
    try {
      url = new URL(part.trim());
    } catch {
      throw new ConfigError(name, `not a valid URL: ${JSON.stringify(part)}`);
    }
    if (!schemes.includes(url.protocol)) {
      throw new ConfigError(name, `scheme must be one of ${schemes.join(', ')}, got ${url.protocol}`);
    }
  }
  return raw;
}

function read_tls(env: Env): Config['ocpp_tls'] {
  const cert_file = read_optional(env, 'OCPP_TLS_CERT_FILE');
  const key_file = read_optional(env, 'OCPP_TLS_KEY_FILE');
  if (cert_file === undefined && key_file === undefined) return undefined;
  if (cert_file === undefined)
    throw new ConfigError('OCPP_TLS_CERT_FILE', 'required when OCPP_TLS_KEY_FILE is set');
  if (key_file === undefined)
    throw new ConfigError('OCPP_TLS_KEY_FILE', 'required when OCPP_TLS_CERT_FILE is set');
  for (const [name, file] of [
    ['OCPP_TLS_CERT_FILE', cert_file],
    ['OCPP_TLS_KEY_FILE', key_file],
  ] as const) {
    if (!existsSync(file)) throw new ConfigError(name, `file not found: ${file}`);
  }
  return { cert_file: path.resolve(cert_file), key_file: path.resolve(key_file) };
}

/** NATS_REPLICAS: JetStream replicates over an odd number of servers (a quorum), at most 5. */
function read_replicas(env: Env): number {
  const replicas = read_int(env, 'NATS_REPLICAS', 1, 1, 5);
  if (replicas % 2 === 0) throw new ConfigError('NATS_REPLICAS', 'must be 1, 3 or 5 (a quorum of servers)');
  return replicas;
}

export function load_config(env: Env = process.env): Config {
  const log_level = read_string(env, 'LOG_LEVEL', 'info');
  if (!(log_levels as readonly string[]).includes(log_level)) {
    throw new ConfigError('LOG_LEVEL', `must be one of ${log_levels.join(', ')}`);
  }
  // A comma list during a rotation: the first is current, the others are still accepted.
  const operator_token_list = read_optional(env, 'OPERATOR_TOKEN')
    ?.split(',')
    .map((token) => token.trim());
  for (const [index, token] of (operator_token_list ?? []).entries()) {
    if (token.length < 16) {
      throw new ConfigError(
        'OPERATOR_TOKEN',
        operator_token_list!.length === 1
          ? 'must be at least 16 characters'
          : `token ${index + 1} of the comma list must be at least 16 characters`,
      );
    }
  }
  const operator_token = operator_token_list?.[0];
  const metrics_token = read_optional(env, 'METRICS_TOKEN');
  if (metrics_token !== undefined && !/^[\x21-\x7e]{16,}$/.test(metrics_token)) {
    throw new ConfigError('METRICS_TOKEN', 'must be at least 16 printable characters, no spaces');
  }
  const currency = read_string(env, 'DEFAULT_TARIFF_CURRENCY', 'EUR');
  if (!/^[A-Z]{3}$/.test(currency)) {
    throw new ConfigError('DEFAULT_TARIFF_CURRENCY', 'must be an ISO 4217 code like EUR');
  }
  const stripe_secret_key = read_optional(env, 'STRIPE_SECRET_KEY');
  if (stripe_secret_key !== undefined && !/^(sk|rk)_(live|test)_[A-Za-z0-9_]{8,}$/.test(stripe_secret_key)) {
    throw new ConfigError('STRIPE_SECRET_KEY', 'expected a Stripe secret key like sk_test_...');
  }
  const stripe_webhook_secret = read_optional(env, 'STRIPE_WEBHOOK_SECRET');
  if (stripe_webhook_secret !== undefined && !/^whsec_[A-Za-z0-9]{8,}$/.test(stripe_webhook_secret)) {
    throw new ConfigError('STRIPE_WEBHOOK_SECRET', 'expected a webhook signing secret like whsec_...');
  }
  if (stripe_secret_key !== undefined && stripe_webhook_secret === undefined) {
    throw new ConfigError(
      'STRIPE_WEBHOOK_SECRET',
      'required when STRIPE_SECRET_KEY is set (webhooks are verified)',
    );
  }
  const stream = read_string(env, 'NATS_STREAM', 'EVRATE_EVENTS');
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(stream)) {
    throw new ConfigError('NATS_STREAM', 'letters, digits, _ and - only');
  }
  const prefix = read_string(env, 'NATS_SUBJECT_PREFIX', 'evrate');
  if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(prefix)) {
    throw new ConfigError('NATS_SUBJECT_PREFIX', 'dot-separated tokens of letters, digits, _ and -');
  }
  const database = read_string(env, 'CLICKHOUSE_DATABASE', 'evrate');
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(database)) {
    throw new ConfigError('CLICKHOUSE_DATABASE', 'must be an identifier (letters, digits, _)');
  }
  const default_tariff_id = read_string(env, 'DEFAULT_TARIFF_ID', 'default');
  if (!/^[\x21-\x7e]{1,36}$/.test(default_tariff_id)) {
    throw new ConfigError(
      'DEFAULT_TARIFF_ID',
      'must be 1 to 36 printable ASCII characters (OCPI CiString(36))',
    );
  }

  const dunning_reminder_days = read_int(env, 'DUNNING_REMINDER_DAYS', 7, 0, 365);
  const dunning_second_reminder_days = read_int(env, 'DUNNING_SECOND_REMINDER_DAYS', 14, 0, 365);
  const dunning_suspend_days = read_int(env, 'DUNNING_SUSPEND_DAYS', 30, 0, 365);
  if (dunning_second_reminder_days < dunning_reminder_days) {
    throw new ConfigError('DUNNING_SECOND_REMINDER_DAYS', 'must not be less than DUNNING_REMINDER_DAYS');
  }
  if (dunning_suspend_days < dunning_second_reminder_days) {
    throw new ConfigError('DUNNING_SUSPEND_DAYS', 'must not be less than DUNNING_SECOND_REMINDER_DAYS');
  }

  const roles = new Set<Role>();
  for (const role of read_string(env, 'ROLES', roles_default.join(',')).split(',')) {
    const name = role.trim();
    if (!(roles_all as readonly string[]).includes(name)) {
      throw new ConfigError('ROLES', `unknown role "${name}" (use a comma list of ${roles_all.join(', ')})`);
    }
    roles.add(name as Role);
  }

  return {
    roles,
    data_dir: path.resolve(read_string(env, 'DATA_DIR', './var')),
    log_level: log_level as Config['log_level'],
    node_id: read_string(env, 'NODE_ID', `${hostname()}-${process.pid}`),

    nats_url: read_url(env, 'NATS_URL', ['nats:', 'tls:']),
    nats_port: read_int(env, 'NATS_PORT', 0, 0, 65535),
    nats_stream: stream,
    nats_subject_prefix: prefix,
    nats_replicas: read_replicas(env),

    clickhouse_url: read_url(env, 'CLICKHOUSE_URL', ['http:', 'https:']),
    clickhouse_user: read_string(env, 'CLICKHOUSE_USER', 'default'),
    clickhouse_password: read_string(env, 'CLICKHOUSE_PASSWORD', ''),
    clickhouse_database: database,

    database_url: read_url(env, 'DATABASE_URL', ['postgres:', 'postgresql:']),
    billing_feed_batch_max: read_int(env, 'BILLING_FEED_BATCH_MAX', 1000, 1, 10_000),
    stripe_secret_key,
    stripe_webhook_secret,
    stripe_api_base: read_url(env, 'STRIPE_API_BASE', ['http:', 'https:']),
    payments_sweep_interval_ms: read_int(env, 'PAYMENTS_SWEEP_INTERVAL_MS', 60_000, 0, 86_400_000),
    billing_events_ship_interval_ms: read_int(env, 'BILLING_EVENTS_SHIP_INTERVAL_MS', 5000, 0, 3_600_000),
    dunning_reminder_days,
    dunning_second_reminder_days,
    dunning_suspend_days,
    collection_retry_days: read_int(env, 'COLLECTION_RETRY_DAYS', 5, 1, 60),
    collection_retries_max: read_int(env, 'COLLECTION_RETRIES_MAX', 2, 0, 10),
    collection_schedule_interval_s: read_int(env, 'COLLECTION_SCHEDULE_INTERVAL_S', 3600, 0, 86_400),

    ocpp_host: read_string(env, 'OCPP_HOST', '0.0.0.0'),
    ocpp_port: read_int(env, 'OCPP_PORT', 9220, 0, 65535),
    ocpp_frame_bytes_max: read_int(env, 'OCPP_FRAME_BYTES_MAX', 65536, 1024, 16 * 1024 * 1024),
    heartbeat_interval_s: read_int(env, 'HEARTBEAT_INTERVAL_S', 300, 1, 86400),
    ocpp_allow_unknown: read_bool(env, 'OCPP_ALLOW_UNKNOWN', false),
    ocpp_accept_unknown_tokens: read_bool(env, 'OCPP_ACCEPT_UNKNOWN_TOKENS', false),
    ocpp_calls_per_s_max: read_int(env, 'OCPP_CALLS_PER_S_MAX', 500, 1, 1_000_000),
    ocpp_backpressure_bytes_max: read_int(
      env,
      'OCPP_BACKPRESSURE_BYTES_MAX',
      1024 * 1024,
      4096,
      256 * 1024 * 1024,
    ),
    ocpp_command_timeout_s: read_int(env, 'OCPP_COMMAND_TIMEOUT_S', 30, 1, 600),
    ocpp_cost_updates: read_bool(env, 'OCPP_COST_UPDATES', true),
    ocpp_tls: read_tls(env),

    api_host: read_string(env, 'API_HOST', '0.0.0.0'),
    api_operator_requests_per_s_max: read_int(env, 'API_OPERATOR_REQUESTS_PER_S_MAX', 200, 1, 1_000_000),
    ocpi_country_code: read_pattern(
      env,
      'OCPI_COUNTRY_CODE',
      'NL',
      /^[A-Z]{2}$/,
      'two capital letters (ISO 3166-1)',
    ),
    ocpi_party_id: read_pattern(
      env,
      'OCPI_PARTY_ID',
      'EVR',
      /^[A-Z0-9]{3}$/,
      'three capital letters or digits',
    ),
    api_port: read_int(env, 'API_PORT', 9221, 0, 65535),
    api_body_bytes_max: read_int(env, 'API_BODY_BYTES_MAX', 1024 * 1024, 1024, 64 * 1024 * 1024),
    operator_token: operator_token ?? randomBytes(24).toString('base64url'),
    operator_token_generated: operator_token === undefined,
    operator_tokens_previous: operator_token_list?.slice(1) ?? [],
    metrics_token,

    ocpi_base_url: read_url(env, 'OCPI_BASE_URL', ['http:', 'https:'])?.replace(/\/+$/, ''),
    ocpi_business_name: read_pattern(
      env,
      'OCPI_BUSINESS_NAME',
      'evrate',
      /^[\x20-\x7e]{1,100}$/,
      '1 to 100 printable characters',
    ),
    ocpi_location_country: read_pattern(
      env,
      'OCPI_LOCATION_COUNTRY',
      'NLD',
      /^[A-Z]{3}$/,
      'three capital letters (ISO 3166-1 alpha-3)',
    ),
    ocpi_page_limit_max: read_int(env, 'OCPI_PAGE_LIMIT_MAX', 1000, 1, 10_000),
    ocpi_rate_limit_per_s: read_int(env, 'OCPI_RATE_LIMIT_PER_S', 20, 1, 1_000_000),
    ocpi_rate_limit_burst: read_int(env, 'OCPI_RATE_LIMIT_BURST', 40, 1, 1_000_000),
    ocpi_cdr_push_interval_ms: read_int(env, 'OCPI_CDR_PUSH_INTERVAL_MS', 5000, 0, 3_600_000),
    ocpi_cdr_push_settle_s: read_int(env, 'OCPI_CDR_PUSH_SETTLE_S', 60, 0, 86_400),
    ocpi_allow_private_addresses: read_bool(env, 'OCPI_ALLOW_PRIVATE_ADDRESSES', false),

    default_tariff_id,
    default_tariff_currency: currency,
    default_tariff_price_per_kwh: read_decimal(env, 'DEFAULT_TARIFF_PRICE_PER_KWH', '0.30'),
    default_tariff_vat_percent: read_decimal(env, 'DEFAULT_TARIFF_VAT_PERCENT', '20'),

    ingest_batch_linger_ms: read_int(env, 'INGEST_BATCH_LINGER_MS', 2, 0, 1000),
    ingest_batch_events_max: read_int(env, 'INGEST_BATCH_EVENTS_MAX', 1000, 1, 100_000),
    ingest_batch_bytes_max: read_int(env, 'INGEST_BATCH_BYTES_MAX', 512 * 1024, 1024, 8 * 1024 * 1024),
    ingest_pending_events_max: read_int(env, 'INGEST_PENDING_EVENTS_MAX', 100_000, 1, 10_000_000),

    rating_workers: read_int(env, 'RATING_WORKERS', 1, 1, 64),
    rating_fetch_batch_max: read_int(env, 'RATING_FETCH_BATCH_MAX', 256, 1, 10_000),
    rating_partitions: read_int(env, 'RATING_PARTITIONS', 8, 1, 1024),
    rating_silence_s: read_int(env, 'RATING_SILENCE_S', 24 * 3600, 5, 30 * 24 * 3600),
    rating_idle_power_w: read_int(env, 'RATING_IDLE_POWER_W', 50, 0, 100_000),
    rating_clock_skew_max_s: read_int(env, 'RATING_CLOCK_SKEW_MAX_S', 300, 0, 86_400),
    rating_clock_behind_max_s: read_int(env, 'RATING_CLOCK_BEHIND_MAX_S', 31 * 86_400, 3600, 366 * 86_400),
    rating_power_max_w: read_int(env, 'RATING_POWER_MAX_W', 500_000, 1000, 10_000_000),
    rating_lease_ttl_ms: read_int(env, 'RATING_LEASE_TTL_MS', 10_000, 1000, 600_000),
    default_time_zone: read_time_zone(env, 'DEFAULT_TIME_ZONE', 'UTC'),
    analytics_raw_retention_days: read_int(env, 'ANALYTICS_RAW_RETENTION_DAYS', 0, 0, 36_500),
    dispute_deadline_working_days: read_pattern(
      env,
      'DISPUTE_DEADLINE_WORKING_DAYS',
      'open=1,investigating=5,proposed_resolution=10,escalated=30',
      /^(open|investigating|proposed_resolution|escalated)=\d{1,3}(,(open|investigating|proposed_resolution|escalated)=\d{1,3})*$/,
      'a list of state=working days, states open, investigating, proposed_resolution, escalated',
    ),
    sink_flush_rows_max: read_int(env, 'SINK_FLUSH_ROWS_MAX', 10_000, 1, 1_000_000),
    sink_flush_bytes_max: read_int(env, 'SINK_FLUSH_BYTES_MAX', 8 * 1024 * 1024, 1024, 256 * 1024 * 1024),
    sink_flush_interval_ms: read_int(env, 'SINK_FLUSH_INTERVAL_MS', 20, 0, 60_000),
    sink_pending_rows_max: read_int(env, 'SINK_PENDING_ROWS_MAX', 200_000, 1, 10_000_000),

    pay_public_base_url: read_url(env, 'PAY_PUBLIC_BASE_URL', ['http:', 'https:'])?.replace(/\/+$/, ''),
    pay_provider_js_url:
      read_url(env, 'PAY_PROVIDER_JS_URL', ['http:', 'https:']) ?? 'https://js.stripe.com/v3/',
    pay_provider_publishable_key: read_pattern(
      env,
      'PAY_PROVIDER_PUBLISHABLE_KEY',
      'pk_test_unset',
      /^pk_[A-Za-z0-9_]{1,200}$/,
      'a publishable key pk_...',
    ),
    pay_hold_duration_max_min: read_int(env, 'PAY_HOLD_DURATION_MAX_MIN', 120, 1, 24 * 60),
    pay_hold_power_default_w: read_int(env, 'PAY_HOLD_POWER_DEFAULT_W', 22_000, 1000, 1_000_000),
    pay_no_power_timeout_s: read_int(env, 'PAY_NO_POWER_TIMEOUT_S', 300, 1, 3600),
    pay_cost_cap_margin_percent: read_int(env, 'PAY_COST_CAP_MARGIN_PERCENT', 5, 0, 50),
    pay_requests_per_s_max: read_int(env, 'PAY_REQUESTS_PER_S_MAX', 5, 1, 10_000),
    pay_terminal_grace_min: read_int(env, 'PAY_TERMINAL_GRACE_MIN', 48 * 60, 0, 31 * 24 * 60),
  };
}

/** The effective configuration as logged at start: secrets are replaced by their length. */
export function redact_config(config: Config): Record<string, unknown> {
  const redacted: Record<string, unknown> = { ...config, roles: [...config.roles] };
  redacted.operator_token = config.operator_token_generated ? '(generated)' : '(set)';
  redacted.operator_tokens_previous = config.operator_tokens_previous.map(() => '(set)');
  redacted.metrics_token = config.metrics_token === undefined ? '(unset)' : '(set)';
  redacted.clickhouse_password = config.clickhouse_password === '' ? '' : '(set)';
  redacted.stripe_secret_key = config.stripe_secret_key === undefined ? '(unset)' : '(set)';
  redacted.stripe_webhook_secret = config.stripe_webhook_secret === undefined ? '(unset)' : '(set)';
  for (const key of ['nats_url', 'clickhouse_url', 'database_url'] as const) {
    const value = config[key];
    if (value !== undefined) redacted[key] = value.replace(/\/\/[^@/]*@/g, '//***@');
  }
  return redacted;
}
