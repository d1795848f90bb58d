// The public surface of payments: the provider interface, the Stripe adapter, card payments on the
// ledger (holds, captures, refunds), invoice collection by card, credit note payouts, provider
// events and the sweep that resumes what a crash left pending.
export type { PaymentRow } from './apply.js';
export {
  account_credit_minor,
  type CollectionResult,
  collect_invoice,
  get_payment_customer,
  invoices_to_collect,
  type PaymentCustomer,
  save_payment_method,
  set_credit_note_choice,
} from './collect.js';
export { invoices_with_excess, type SettlementResult, settle_invoice_excess } from './credit-notes.js';
export { EventNotReadyError, type EventOutcome, process_provider_event } from './events.js';
export {
  type OperationOutcome,
  type PaymentsContext,
  resume_pending_operations,
} from './operations.js';
export {
  cancel_payment,
  capture_payment,
  create_hold,
  type HoldRequest,
  PaymentUnavailableError,
  type RefundRequest,
  refund_payment,
} from './payments.js';
export {
  apply_payout,
  get_payout,
  list_payouts,
  type PayoutReport,
  type PayoutView,
  payout_report,
  reconcile_payout,
  record_payment_fees,
  sync_payouts,
} from './payouts.js';
export * from './provider.js';
export { get_payment, type PaymentView, payments_of_account, payments_of_invoice } from './query.js';
export { record_payment } from './record.js';
export type { PaymentState } from './states.js';
export { StripeProvider, type StripeProviderOptions } from './stripe.js';
export { type SweepCounts, start_payment_sweeps, sweep_payments } from './sweep.js';
