// The public surface of collection without a gateway: SEPA Direct Debit (creditors, mandates,
// pain.008 files), bank files fed back (pain.002, camt.054), bank-transfer references, dunning
// with token blocking, and the reconciliation report.

export { BankFileError, parse_bank_file } from './bank-files.js';
export { type AppliedFile, apply_bank_file, type ReturnPolicy, retryable_reasons } from './bank-returns.js';
export {
  type CollectionFile,
  type CollectionResult,
  collect_billing_run,
  collect_retries,
  get_collection_file,
  list_collection_files,
} from './collect.js';
export {
  type DunningPolicy,
  type DunningState,
  get_dunning,
  run_dunning,
  sync_token_blocks,
  type TokenAccess,
} from './dunning.js';
export {
  invoice_of_payment_reference,
  invoice_payment_reference,
  is_rf_reference,
  validate_bic,
  validate_creditor_id,
  validate_iban,
} from './identifiers.js';
export {
  get_creditor,
  get_mandate,
  list_mandates,
  type Mandate,
  put_creditor,
  put_mandate,
  revoke_mandate,
  type SepaCreditor,
  validate_creditor,
  validate_mandate,
} from './mandates.js';
export { pain008_xml } from './pain008.js';
export { type ReconciliationReport, reconciliation_report } from './reconciliation.js';
export {
  type CollectionPolicy,
  CollectionSchedule,
  collection_policy,
  run_collection_pass,
  start_collection_schedule,
} from './schedule.js';
