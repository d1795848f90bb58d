import { describe, expect, it } from 'vitest';
import { ConfigError, load_config, redact_config } from './config.js';

describe('load_config', () => {
  it('applies the documented defaults', () => {
    const config = load_config({});
    expect(config).toMatchObject({
      ocpp_port: 9220,
      api_port: 9221,
      default_tariff_id: 'default',
      nats_url: undefined,
    });
    expect(config.operator_token_generated).toBe(true);
    expect(config.operator_token.length).toBeGreaterThanOrEqual(16);
  });

  it('names the variable that is wrong', () => {
    expect(() => load_config({ OCPP_PORT: 'http' })).toThrow(/OCPP_PORT: expected an integer/);
    expect(() => load_config({ API_PORT: '70000' })).toThrow(ConfigError);
    expect(() => load_config({ NATS_URL: 'http://x' })).toThrow(/NATS_URL: scheme/);
    expect(() => load_config({ DEFAULT_TARIFF_PRICE_PER_KWH: '0,30' })).toThrow(
      /DEFAULT_TARIFF_PRICE_PER_KWH/,
    );
    expect(() => load_config({ OPERATOR_TOKEN: 'short' })).toThrow(/OPERATOR_TOKEN/);
    expect(() => load_config({ OCPP_TLS_CERT_FILE: '/nonexistent/cert.pem' })).toThrow(
      /OCPP_TLS_KEY_FILE: required/,
    );
    expect(() =>
      load_config({ OCPP_TLS_CERT_FILE: '/nonexistent/cert.pem', OCPP_TLS_KEY_FILE: '/nonexistent/key.pem' }),
    ).toThrow(/OCPP_TLS_CERT_FILE: file not found/);
    expect(() => load_config({ OCPP_ALLOW_UNKNOWN: 'yes' })).toThrow(
      /OCPP_ALLOW_UNKNOWN: expected true or false/,
    );
    expect(() => load_config({ OCPP_ACCEPT_UNKNOWN_TOKENS: 'yes' })).toThrow(/OCPP_ACCEPT_UNKNOWN_TOKENS/);
    expect(() => load_config({ OCPP_CALLS_PER_S_MAX: '0' })).toThrow(/OCPP_CALLS_PER_S_MAX: must be between/);
    expect(() => load_config({ OCPP_COMMAND_TIMEOUT_S: 'soon' })).toThrow(/OCPP_COMMAND_TIMEOUT_S/);
    expect(() => load_config({ OCPI_COUNTRY_CODE: 'nl' })).toThrow(/OCPI_COUNTRY_CODE: expected two capital/);
    expect(() => load_config({ OCPI_PARTY_ID: 'EVRATE' })).toThrow(/OCPI_PARTY_ID/);
    expect(load_config({ OCPP_COST_UPDATES: 'false', OCPI_PARTY_ID: 'AB1' })).toMatchObject({
      ocpp_cost_updates: false,
      ocpi_party_id: 'AB1',
      ocpp_calls_per_s_max: 500,
    });
  });

  it('reads the replicas of streams and buckets: 1, 3 or 5', () => {
    expect(load_config({}).nats_replicas).toBe(1);
    expect(load_config({ NATS_REPLICAS: '3' }).nats_replicas).toBe(3);
    expect(() => load_config({ NATS_REPLICAS: '2' })).toThrow(/NATS_REPLICAS: must be 1, 3 or 5/);
    expect(() => load_config({ NATS_REPLICAS: '7' })).toThrow(/NATS_REPLICAS: must be between/);
  });

  it('reads the working days a dispute case may stay in each state', () => {
    expect(load_config({}).dispute_deadline_working_days).toBe(
      'open=1,investigating=5,proposed_resolution=10,escalated=30',
    );
    expect(
      load_config({ DISPUTE_DEADLINE_WORKING_DAYS: 'investigating=3' }).dispute_deadline_working_days,
    ).toBe('investigating=3');
    expect(() => load_config({ DISPUTE_DEADLINE_WORKING_DAYS: 'resolved=2' })).toThrow(
      /DISPUTE_DEADLINE_WORKING_DAYS/,
    );
    expect(() => load_config({ DISPUTE_DEADLINE_WORKING_DAYS: 'open=x' })).toThrow(
      /DISPUTE_DEADLINE_WORKING_DAYS/,
    );
  });

  it('never logs secrets', () => {
    const config = load_config({
      OPERATOR_TOKEN: 'secret-secret-secret',
      CLICKHOUSE_URL: 'http://user:pw@ch:8123',
      CLICKHOUSE_PASSWORD: 'pw',
    });
    const shown = JSON.stringify(redact_config(config));
    expect(shown).not.toContain('secret-secret-secret');
    expect(shown).not.toContain(':pw@');
    expect(shown).not.toContain('"pw"');
  });

  it('reads the billing events shipment interval: 5 s by default, 0 turns it off', () => {
    expect(load_config({}).billing_events_ship_interval_ms).toBe(5000);
    expect(load_config({ BILLING_EVENTS_SHIP_INTERVAL_MS: '0' }).billing_events_ship_interval_ms).toBe(0);
    expect(load_config({ BILLING_EVENTS_SHIP_INTERVAL_MS: '250' }).billing_events_ship_interval_ms).toBe(250);
    expect(() => load_config({ BILLING_EVENTS_SHIP_INTERVAL_MS: '-1' })).toThrow(
      /BILLING_EVENTS_SHIP_INTERVAL_MS/,
    );
    expect(() => load_config({ BILLING_EVENTS_SHIP_INTERVAL_MS: 'soon' })).toThrow(
      /BILLING_EVENTS_SHIP_INTERVAL_MS/,
    );
  });

  it('reads the Stripe settings: a secret key needs its webhook secret; secrets are not logged', () => {
    expect(load_config({})).toMatchObject({
      stripe_secret_key: undefined,
      stripe_webhook_secret: undefined,
      stripe_api_base: undefined,
      payments_sweep_interval_ms: 60_000,
    });
    const config = load_config({
      STRIPE_SECRET_KEY: 'sk_test_abcdefgh12345678',
      STRIPE_WEBHOOK_SECRET: 'whsec_abcdefgh12345678',
      STRIPE_API_BASE: 'http://127.0.0.1:12111',
      PAYMENTS_SWEEP_INTERVAL_MS: '0',
    });
    expect(config).toMatchObject({
      stripe_secret_key: 'sk_test_abcdefgh12345678',
      stripe_webhook_secret: 'whsec_abcdefgh12345678',
      stripe_api_base: 'http://127.0.0.1:12111',
      payments_sweep_interval_ms: 0,
    });
    const shown = JSON.stringify(redact_config(config));
    expect(shown).not.toContain('sk_test_abcdefgh12345678');
    expect(shown).not.toContain('whsec_abcdefgh12345678');
    expect(() => load_config({ STRIPE_SECRET_KEY: 'sk_test_abcdefgh12345678' })).toThrow(
      /STRIPE_WEBHOOK_SECRET: required/,
    );
    expect(() => load_config({ STRIPE_SECRET_KEY: 'pk_test_abcdefgh12345678' })).toThrow(/STRIPE_SECRET_KEY/);
    expect(() => load_config({ STRIPE_WEBHOOK_SECRET: 'secret' })).toThrow(/STRIPE_WEBHOOK_SECRET: expected/);
    expect(() => load_config({ STRIPE_API_BASE: 'ftp://x' })).toThrow(/STRIPE_API_BASE: scheme/);
  });

  it('reads the pay-at-charger settings and names a bad one', () => {
    expect(load_config({})).toMatchObject({
      pay_public_base_url: undefined,
      pay_provider_js_url: 'https://js.stripe.com/v3/',
      pay_hold_duration_max_min: 120,
      pay_no_power_timeout_s: 300,
      pay_cost_cap_margin_percent: 5,
      pay_requests_per_s_max: 5,
      pay_terminal_grace_min: 2880,
    });
    expect(load_config({ PAY_TERMINAL_GRACE_MIN: '30' }).pay_terminal_grace_min).toBe(30);
    expect(() => load_config({ PAY_TERMINAL_GRACE_MIN: '-1' })).toThrow(/PAY_TERMINAL_GRACE_MIN/);
    expect(
      load_config({ PAY_PUBLIC_BASE_URL: 'https://pay.example/', PAY_PROVIDER_PUBLISHABLE_KEY: 'pk_test_1' }),
    ).toMatchObject({
      pay_public_base_url: 'https://pay.example',
      pay_provider_publishable_key: 'pk_test_1',
    });
    expect(() => load_config({ PAY_PUBLIC_BASE_URL: 'ftp://x' })).toThrow(/PAY_PUBLIC_BASE_URL/);
    expect(() => load_config({ PAY_PROVIDER_PUBLISHABLE_KEY: 'sk_live_1' })).toThrow(
      /PAY_PROVIDER_PUBLISHABLE_KEY/,
    );
    expect(() => load_config({ PAY_COST_CAP_MARGIN_PERCENT: '80' })).toThrow(/PAY_COST_CAP_MARGIN_PERCENT/);
  });

  it('reads the dunning days and collection retries, in order', () => {
    expect(load_config({})).toMatchObject({
      dunning_reminder_days: 7,
      dunning_second_reminder_days: 14,
      dunning_suspend_days: 30,
      collection_retry_days: 5,
      collection_retries_max: 2,
      collection_schedule_interval_s: 3600,
    });
    expect(
      load_config({
        DUNNING_REMINDER_DAYS: '3',
        DUNNING_SECOND_REMINDER_DAYS: '10',
        DUNNING_SUSPEND_DAYS: '20',
      }),
    ).toMatchObject({ dunning_reminder_days: 3, dunning_second_reminder_days: 10, dunning_suspend_days: 20 });
    expect(() => load_config({ DUNNING_REMINDER_DAYS: '20' })).toThrow(
      /DUNNING_SECOND_REMINDER_DAYS: must not be less than DUNNING_REMINDER_DAYS/,
    );
    expect(() => load_config({ DUNNING_SUSPEND_DAYS: '10' })).toThrow(/DUNNING_SUSPEND_DAYS/);
    expect(() => load_config({ COLLECTION_RETRY_DAYS: '0' })).toThrow(
      /COLLECTION_RETRY_DAYS: must be between/,
    );
  });
});
