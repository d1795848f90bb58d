// Pay at the charger: holds bound to charging sessions, their settlement, and receipts.
export {
  example_duration_ms,
  example_energy_wh,
  hold_of,
  price_parts,
  tariff_alt_text,
  worked_example,
} from './hold.js';
export { pay_at_charger_migrations } from './migrations.js';
export { type Receipt, type ReceiptWords, receipt_of, receipt_pdf } from './receipt.js';
export { capability_digest, type EvseOffer, PayAtCharger, type PayAtChargerOptions } from './service.js';
export { type PaySession, type PayStatus, pay_session, put_site_hold } from './store.js';
export {
  parse_terminal_confirmation,
  record_terminal_confirmation,
  type TerminalConfirmation,
} from './terminal.js';
