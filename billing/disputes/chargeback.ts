import { FieldError } from '../../core/field-error.js';
import type { ProviderEvent } from '../payments/provider.js';
import { local_date } from '../period.js';
import { generate_bundle } from './bundle.js';
import {
  type Actor,
  append_audit,
  type CaseView,
  type DisputeDeps,
  get_case,
  lock_case,
  NotFoundError,
  open_case,
  publish_fact,
} from './cases.js';
import { resolve_case } from './resolve.js';
import type { DisputeReason } from './workflow.js';

/**
 * Card chargebacks as dispute cases. The money of a chargeback moves in billing/payments when its
 * verified webhook is applied (events.ts: dispute.opened charges the payment back, dispute.closed
 * won restores it); after that, this module keeps the case: a `chargeback` case opens on the
 * payment's invoice when the provider reports the dispute, and is resolved chargeback_won or
 * chargeback_lost when the provider closes it. Both are idempotent (one case per provider dispute,
 * unique in the ledger; a resolved case stays as it is), because the webhook route calls them for
 * a redelivered event too: a crash between the payment's event and the case is mended by the
 * provider's next delivery.
 *
 * The operator's answer to a chargeback is the evidence bundle: its findings, signature checks and
 * manifest digest go to the provider as the dispute's evidence (Stripe "Update a dispute", text
 * fields), with one idempotency key per case so a retried submission is the same request.
 */

/** Stripe's dispute reasons (docs "Dispute reasons") to ours. */
const reasons: Record<string, DisputeReason> = {
  duplicate: 'duplicate_charge',
  fraudulent: 'not_my_session',
  unrecognized: 'not_my_session',
  product_not_received: 'failed_session',
  product_unacceptable: 'failed_session',
  credit_not_processed: 'other',
  subscription_canceled: 'other',
  general: 'other',
};

const provider_actor = (provider: string): Actor => ({ kind: 'provider', id: provider });

async function chargeback_case(
  deps: DisputeDeps,
  provider_dispute_id: string,
): Promise<CaseView | undefined> {
  const [row] = await deps.ledger.query<{ id: number }>(
    "SELECT id FROM dispute_cases WHERE source = 'chargeback' AND payment_reference = $1",
    [provider_dispute_id],
  );
  return row === undefined ? undefined : await get_case(deps.ledger, row.id);
}

function unique_violation(error: unknown): boolean {
  return (error as { code?: string } | null)?.code === '23505';
}

/**
 * A provider event after the payments module applied it (or found it a duplicate): opens or
 * resolves the chargeback's case. Returns the case touched, if any.
 */
export async function apply_chargeback_event(
  deps: DisputeDeps,
  event: ProviderEvent,
  now_ms = Date.now(),
): Promise<CaseView | undefined> {
  const provider = deps.payment_provider?.name ?? 'stripe';
  const dispute = event.dispute;
  if (dispute === undefined || (event.type !== 'dispute.opened' && event.type !== 'dispute.closed'))
    return undefined;
  const existing = await chargeback_case(deps, dispute.provider_dispute_id);
  if (event.type === 'dispute.opened') {
    if (existing !== undefined) return existing;
    const [payment] = await deps.ledger.query<{ id: number; invoice_id: number | null }>(
      'SELECT id, invoice_id FROM payments WHERE provider = $1 AND provider_payment_id = $2',
      [provider, dispute.provider_payment_id],
    );
    // A chargeback of a payment the ledger does not hold, or of a hold without an invoice, has no
    // bill to answer for: payments keeps it for reconciliation.
    if (payment?.invoice_id == null) return undefined;
    const reason = dispute.reason ?? 'general';
    try {
      const opened = await open_case(
        deps,
        {
          subject: {
            kind: 'payment',
            invoice_id: payment.invoice_id,
            reference: dispute.provider_dispute_id,
          },
          source: 'chargeback',
          reason: reasons[reason] ?? 'other',
          amount_disputed_minor: dispute.amount_minor,
          message: `Card chargeback ${dispute.provider_dispute_id} (${reason}) of payment ${payment.id}, reported by ${provider}`,
        },
        provider_actor(provider),
        now_ms,
      );
      return opened.case;
    } catch (error) {
      // Two deliveries at once: the other one opened it (one case per provider dispute).
      if (unique_violation(error)) return await chargeback_case(deps, dispute.provider_dispute_id);
      throw error;
    }
  }
  if (existing === undefined || existing.state === 'resolved') return existing;
  if (dispute.status !== 'won' && dispute.status !== 'lost') return existing;
  const resolved = await resolve_case(
    deps,
    existing.id,
    {
      outcome: dispute.status === 'won' ? 'chargeback_won' : 'chargeback_lost',
      reason:
        dispute.status === 'won'
          ? `The card issuer decided chargeback ${dispute.provider_dispute_id} for the operator: the payment is restored`
          : `The card issuer decided chargeback ${dispute.provider_dispute_id} for the cardholder: the payment stays charged back and the invoice is open again`,
    },
    provider_actor(provider),
    now_ms,
  );
  return resolved.case;
}

export interface EvidenceSubmission {
  case: CaseView;
  manifest_sha256: string;
  provider_status: string;
  evidence: Record<string, string>;
}

/** Stripe's limit on all evidence text together (docs "Update a dispute"). */
const evidence_chars_max = 150_000;

/**
 * Generates the case's evidence bundle and submits it as the chargeback's evidence. The intent (the
 * evidence and its key) is in the audit trail before the call; a retry after a failed or lost
 * answer sends the same evidence with the same key.
 */
export async function submit_chargeback_evidence(
  deps: DisputeDeps,
  id: number,
  actor: Actor,
  now_ms = Date.now(),
): Promise<EvidenceSubmission> {
  const provider = deps.payment_provider;
  const before = await get_case(deps.ledger, id);
  if (before === undefined) throw new NotFoundError('id', 'no such dispute case');
  if (before.source !== 'chargeback')
    throw new FieldError('id', 'only a chargeback case has evidence to submit to the payment provider');
  if (before.state === 'resolved') throw new FieldError('state', `case ${id} is resolved`);
  if (provider?.submit_dispute_evidence === undefined)
    throw new FieldError('id', 'no payment provider with chargeback evidence is configured');
  const [intent] = await deps.ledger.query<{
    changes: { evidence: Record<string, string>; key: string; manifest_sha256: string };
  }>(
    `SELECT changes FROM dispute_audit WHERE case_id = $1 AND action = 'evidence_submission' ORDER BY id DESC LIMIT 1`,
    [id],
  );
  let evidence: Record<string, string>;
  let manifest_sha256: string;
  const key = `dispute:${id}:evidence`;
  if (intent !== undefined) {
    ({ evidence, manifest_sha256 } = intent.changes);
  } else {
    const bundle = await generate_bundle(deps, id, actor, now_ms);
    manifest_sha256 = bundle.manifest_sha256;
    // The findings as the bundle states them now (the investigation run again for it).
    const findings =
      (
        JSON.parse(bundle.parts['findings.json'] ?? '{}') as {
          now?: { check: string; status: string; detail?: string }[];
        }
      ).now ?? [];
    const pricing = JSON.parse(bundle.parts['pricing.json'] ?? '{}') as {
      latest?: {
        energy_wh?: number;
        started_at_ms?: number;
        stopped_at_ms?: number;
        total_incl_vat?: string;
        currency?: string;
        tariff_id?: string;
        tariff_version?: number;
      };
    };
    const latest = pricing.latest ?? {};
    evidence = {
      product_description: [
        `EV charging session ${before.session_id} at station ${before.station_id}`,
        latest.energy_wh === undefined ? '' : `${latest.energy_wh / 1000} kWh`,
        latest.started_at_ms === undefined
          ? ''
          : `from ${new Date(latest.started_at_ms).toISOString()} to ${new Date(latest.stopped_at_ms ?? latest.started_at_ms).toISOString()}`,
        latest.tariff_id === undefined ? '' : `tariff ${latest.tariff_id} version ${latest.tariff_version}`,
        latest.total_incl_vat === undefined ? '' : `${latest.total_incl_vat} ${latest.currency} incl. VAT`,
      ]
        .filter((p) => p !== '')
        .join(', '),
      ...(latest.stopped_at_ms === undefined
        ? {}
        : { service_date: local_date(latest.stopped_at_ms, before.time_zone) }),
      uncategorized_text: [
        `Evidence bundle ${bundle.manifest.version} of dispute case ${id}, manifest SHA-256 ${manifest_sha256}.`,
        'Every part is listed with its SHA-256 in the manifest: meter values as received with their signed data and signature checks, status timeline, tariff text, price breakdown and re-ratings, payment records and the OCPP messages of the session.',
        'Parts:',
        ...bundle.manifest.parts.map((p) => `- ${p.name}: ${p.sha256}`),
        'Findings:',
        ...findings.map((f) => `- ${f.check}: ${f.status}${f.detail === undefined ? '' : ` (${f.detail})`}`),
      ]
        .join('\n')
        .slice(0, evidence_chars_max / 2),
    };
    await deps.ledger.transaction(async (tx) => {
      const current = await lock_case(tx, id);
      if (current.state === 'resolved') throw new FieldError('state', `case ${id} is resolved`);
      await append_audit(
        tx,
        id,
        actor,
        'evidence_submission',
        { key, provider_dispute_id: current.payment_reference, manifest_sha256, evidence },
        now_ms,
      );
    });
  }
  const answer = await provider.submit_dispute_evidence({
    idempotency_key: key,
    provider_dispute_id: before.payment_reference,
    evidence,
    metadata: { case_id: String(id), manifest_sha256 },
  });
  await deps.ledger.transaction(async (tx) => {
    await lock_case(tx, id);
    await append_audit(
      tx,
      id,
      actor,
      'evidence_submitted',
      {
        key,
        provider_dispute_id: answer.provider_dispute_id,
        provider_status: answer.status,
        manifest_sha256,
      },
      now_ms,
    );
  });
  const view = (await get_case(deps.ledger, id))!;
  await publish_fact(deps, view);
  return { case: view, manifest_sha256, provider_status: answer.status, evidence };
}
