import type { KV } from '@nats-io/kv';
import type { Decimal } from 'decimal.js';
import { FieldError } from '../core/field-error.js';
import { Money } from '../core/money.js';
import { type Nats, open_kv } from '../core/nats.js';

/**
 * Membership and subscription plans, beyond OCPI: what a driver's plan changes in the price of a
 * session. A plan can price members with another tariff, take a percentage and/or a fixed amount
 * off each session, and cap a session; a monthly fee is recorded for billing, not charged here.
 * The plan in force when a session starts is copied into the session, so a later change of the
 * plan never changes sessions already priced (as with tariff versions).
 */
export interface Plan {
  id: string;
  name: string;
  currency: string;
  tariff_id?: string;
  discount_percent?: number;
  discount_fixed_excl_vat?: number;
  session_cap_excl_vat?: number;
  monthly_fee_excl_vat?: number;
}

export class PlanValidationError extends FieldError {}

function fail(field: string, rule: string): never {
  throw new PlanValidationError(field, rule);
}

const plan_fields = new Set([
  'id',
  'name',
  'currency',
  'tariff_id',
  'discount_percent',
  'discount_fixed_excl_vat',
  'session_cap_excl_vat',
  'monthly_fee_excl_vat',
]);

export function validate_plan(value: unknown): Plan {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    fail('(body)', 'must be a JSON object');
  const o = value as Record<string, unknown>;
  for (const key of Object.keys(o)) if (!plan_fields.has(key)) fail(key, 'is not a plan field');
  if (typeof o.id !== 'string' || !/^[\x21-\x7e]{1,36}$/.test(o.id))
    fail('id', 'must be 1 to 36 printable ASCII characters');
  if (typeof o.name !== 'string' || o.name.length === 0 || o.name.length > 100)
    fail('name', 'must be 1 to 100 characters');
  if (typeof o.currency !== 'string' || !/^[A-Z]{3}$/.test(o.currency))
    fail('currency', 'must be an ISO 4217 code');
  if (
    o.tariff_id !== undefined &&
    (typeof o.tariff_id !== 'string' || !/^[\x21-\x7e]{1,36}$/.test(o.tariff_id))
  ) {
    fail('tariff_id', 'must be a tariff id (1 to 36 printable ASCII characters)');
  }
  const amount = (key: string, max: number) => {
    const v = o[key];
    if (v === undefined) return;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > max)
      fail(key, `must be a number from 0 to ${max}`);
  };
  amount('discount_percent', 100);
  amount('discount_fixed_excl_vat', 1_000_000);
  amount('session_cap_excl_vat', 1_000_000);
  amount('monthly_fee_excl_vat', 1_000_000);
  return o as unknown as Plan;
}

/** One line explaining what the plan did to the session's price. */
export interface PlanLine {
  plan_id: string;
  rule: 'discount_percent' | 'discount_fixed' | 'session_cap';
  /** Amount taken off (positive), excl. and incl. VAT, unrounded. */
  amount_excl_vat: string;
  amount_incl_vat: string;
}

export interface PlanCost {
  excl: Decimal;
  incl: Decimal;
}

/**
 * The plan's rules in a fixed order: percentage, then fixed amount (never below zero), then the
 * cap. VAT follows the excl. VAT amount proportionally (the session's own VAT mix).
 */
export function apply_plan(
  cost: PlanCost,
  currency: string,
  plan: Plan | undefined,
): { cost: PlanCost; lines: PlanLine[] } {
  if (plan === undefined) return { cost, lines: [] };
  const has_amounts = plan.discount_fixed_excl_vat !== undefined || plan.session_cap_excl_vat !== undefined;
  if (has_amounts && plan.currency !== currency) {
    // An amount in another currency has no exact meaning here: refuse rather than convert.
    throw new PlanValidationError(
      'currency',
      `plan ${plan.id} is in ${plan.currency}, the tariff in ${currency}`,
    );
  }
  const lines: PlanLine[] = [];
  let { excl, incl } = cost;
  const ratio = excl.isZero() ? new Money(1) : incl.div(excl);
  const take = (rule: PlanLine['rule'], amount_excl: Decimal) => {
    if (amount_excl.lte(0)) return;
    const amount_incl = amount_excl.mul(ratio);
    excl = excl.minus(amount_excl);
    incl = incl.minus(amount_incl);
    lines.push({
      plan_id: plan.id,
      rule,
      amount_excl_vat: amount_excl.toString(),
      amount_incl_vat: amount_incl.toString(),
    });
  };
  if (plan.discount_percent !== undefined)
    take('discount_percent', excl.mul(String(plan.discount_percent)).div(100));
  if (plan.discount_fixed_excl_vat !== undefined)
    take('discount_fixed', Money.min(excl, String(plan.discount_fixed_excl_vat)));
  if (plan.session_cap_excl_vat !== undefined)
    take('session_cap', excl.minus(String(plan.session_cap_excl_vat)));
  return { cost: { excl, incl }, lines };
}

function key_of(plan_id: string): string {
  return `p.${Buffer.from(plan_id, 'utf8').toString('base64url')}`;
}

/** Plans by id in NATS KV (every process sees the same ones). */
export class PlanStore {
  private readonly cache = new Map<string, { plan: Plan | undefined; at_ms: number }>();

  private constructor(private readonly kv: KV) {}

  static async open(nats: Nats): Promise<PlanStore> {
    return new PlanStore(await open_kv(nats, 'evrate_plans'));
  }

  async put(plan: Plan): Promise<void> {
    await this.kv.put(key_of(plan.id), JSON.stringify(plan));
    this.cache.delete(plan.id);
  }

  async get(plan_id: string): Promise<Plan | undefined> {
    const cached = this.cache.get(plan_id);
    if (cached !== undefined && Date.now() - cached.at_ms < 10_000) return cached.plan;
    const entry = await this.kv.get(key_of(plan_id));
    const plan = entry !== null && entry.operation === 'PUT' ? entry.json<Plan>() : undefined;
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(plan_id, { plan, at_ms: Date.now() });
    return plan;
  }

  async list(): Promise<Plan[]> {
    const plans: Plan[] = [];
    for await (const key of await this.kv.keys('p.>')) {
      const entry = await this.kv.get(key);
      if (entry !== null && entry.operation === 'PUT') plans.push(entry.json<Plan>());
    }
    return plans;
  }
}
