import type { Config } from '../../core/config.js';
import type { PaymentProvider } from './provider.js';
import { StripeProvider } from './stripe.js';

/** The configured gateway: Stripe when STRIPE_SECRET_KEY is set (with its webhook secret), else none. */
export function payment_provider_of(config: Config): PaymentProvider | undefined {
  if (config.stripe_secret_key === undefined || config.stripe_webhook_secret === undefined) return undefined;
  return new StripeProvider({
    secret_key: config.stripe_secret_key,
    webhook_secret: config.stripe_webhook_secret,
    api_base: config.stripe_api_base,
  });
}
