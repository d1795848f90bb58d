// The public surface of billing: the ledger, accounts, the rated feed consumer, billing runs,
// invoices, credit notes, payments and documents.
export {
  type Account,
  close_account,
  get_account,
  get_legal_entity,
  type LegalEntity,
  list_accounts,
  list_legal_entities,
  put_account,
  put_legal_entity,
  validate_account,
  validate_legal_entity,
} from './accounts.js';
export { document_totals, minor_of, text_of_minor } from './amounts.js';
export { create_credit_note } from './credit-notes/create.js';
export { journal_csv, journal_export_lines_max, journal_lines } from './documents/journal-export.js';
export { pdf_document } from './documents/pdf.js';
export { ubl_document } from './documents/ubl.js';
export { type BillingEvent, record_billing_event, record_billing_events } from './events.js';
export { RatedFeedConsumer, type RatedFeedOptions, rated_feed_defaults } from './feed-consumer.js';
export { issue_draft } from './invoices/issue.js';
export { type DocumentView, get_document, list_documents } from './invoices/query.js';
export {
  type BillingRunRequest,
  type BillingRunStatus,
  create_billing_run,
  execute_billing_run,
  get_billing_run,
  list_billing_runs,
  run_billing,
} from './invoices/run.js';
export { type Ledger, open_ledger } from './ledger.js';
export { type LedgerMigration, migrate_ledger } from './migrations.js';
export { record_payment } from './payments/record.js';
export { record_rated_versions } from './rated-versions.js';
