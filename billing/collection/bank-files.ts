import { FieldError } from '../../core/field-error.js';
import { minor_units } from '../../core/money.js';
import { minor_of } from '../amounts.js';
import { all, at, child, parse_xml, type XmlElement, XmlError } from './xml.js';

/**
 * Bank files fed back to us, read into lines we can match: the pain.002 payment status report of
 * a collection file (rejected transactions, or a whole group or batch rejected) and the camt.054
 * debit/credit notification of our account (credits of collected debits, returned debits with
 * their reason code, incoming bank transfers with their remittance reference, and charges). A
 * file that is not one of these, or lacks a field a line needs, is refused naming the XML line and
 * the field: nothing of it is applied. Pure: no ledger here.
 */
export class BankFileError extends FieldError {}

export type BankLineKind = 'rejected' | 'returned' | 'collection_credit' | 'transfer_credit' | 'other';

export interface BankLine {
  /** The XML line the entry or transaction starts on (for the report and error messages). */
  source_line: number;
  kind: BankLineKind;
  /** YYYY-MM-DD: the booking date (camt.054) or the report's date (pain.002). */
  booked_on: string;
  /** Undefined when a pain.002 line does not repeat the amount (the collection's is used). */
  amount_minor: number | undefined;
  fee_minor: number;
  currency: string;
  /** Our EndToEndId, for lines about a collection. */
  end_to_end_id: string;
  /** A pain.002 group or batch rejected as a whole: its original message or payment info id. */
  original_message_id: string;
  original_payment_info_id: string;
  /** Remittance information of a credit: the RF reference when structured, else the free text. */
  remittance: string;
  /** ISO 20022 ExternalStatusReason1Code / ExternalReturnReason1Code (AM04, MD01 ...). */
  reason_code: string;
}

export interface BankFile {
  message_type: string;
  message_id: string;
  lines: BankLine[];
}

/** Lines of one file at most (a day's notification of a busy account fits many times). */
export const bank_file_lines_max = 100_000;

const pain002 = /^urn:iso:std:iso:20022:tech:xsd:(pain\.002\.001\.(0[3-9]|1\d))$/;
const camt054 = /^urn:iso:std:iso:20022:tech:xsd:(camt\.054\.001\.(0[2-9]|1\d))$/;

function fail(element: XmlElement | undefined, path: string, rule: string): never {
  throw new BankFileError(`line ${element?.line ?? 1}: ${path}`, rule);
}

function required(parent: XmlElement, path: string, where: string): XmlElement {
  const found = at(parent, path);
  if (found === undefined || (found.children.length === 0 && found.text === '')) {
    fail(parent, `${where}/${path}`, 'is required');
  }
  return found;
}

function day_of(element: XmlElement, path: string): string {
  const text = element.text;
  if (!/^\d{4}-\d{2}-\d{2}/.test(text) || Number.isNaN(Date.parse(text.slice(0, 10)))) {
    fail(element, path, 'must be an ISO date');
  }
  return text.slice(0, 10);
}

/** An ActiveOrHistoricCurrencyAndAmount: exact decimal text, at most the currency's minor digits. */
function amount_of(element: XmlElement, path: string): { minor: number; currency: string } {
  const currency = element.attributes.Ccy;
  if (currency === undefined || !/^[A-Z]{3}$/.test(currency))
    fail(element, `${path}/@Ccy`, 'must be an ISO 4217 code');
  const digits = minor_units(currency);
  const pattern = digits === 0 ? /^\d{1,15}$/ : new RegExp(`^\\d{1,15}(\\.\\d{1,${digits}})?$`);
  if (!pattern.test(element.text)) {
    fail(element, path, `must be a decimal amount with at most ${digits} decimals in ${currency}`);
  }
  return { minor: minor_of(element.text, currency), currency };
}

function text_at(parent: XmlElement | undefined, path: string): string {
  return at(parent, path)?.text ?? '';
}

function parse_pain002(root: XmlElement, message_type: string): BankFile {
  const report = required(root, 'CstmrPmtStsRpt', 'Document');
  const header = required(report, 'GrpHdr', 'CstmrPmtStsRpt');
  const message_id = required(header, 'MsgId', 'GrpHdr').text;
  const report_day = day_of(required(header, 'CreDtTm', 'GrpHdr'), 'GrpHdr/CreDtTm');
  const group = required(report, 'OrgnlGrpInfAndSts', 'CstmrPmtStsRpt');
  const original_message_id = required(group, 'OrgnlMsgId', 'OrgnlGrpInfAndSts').text;
  const lines: BankLine[] = [];
  const line = (element: XmlElement, fields: Partial<BankLine>): BankLine => ({
    source_line: element.line,
    kind: 'rejected',
    booked_on: report_day,
    amount_minor: undefined,
    fee_minor: 0,
    currency: '',
    end_to_end_id: '',
    original_message_id,
    original_payment_info_id: '',
    remittance: '',
    reason_code: '',
    ...fields,
  });
  const reason = (e: XmlElement) => text_at(e, 'StsRsnInf/Rsn/Cd') || text_at(e, 'StsRsnInf/Rsn/Prtry');
  const batches = all(report, 'OrgnlPmtInfAndSts');
  if (text_at(group, 'GrpSts') === 'RJCT' && batches.length === 0) {
    lines.push(line(group, { reason_code: reason(group) }));
  }
  for (const batch of batches) {
    const payment_info_id = required(batch, 'OrgnlPmtInfId', 'OrgnlPmtInfAndSts').text;
    const transactions = all(batch, 'TxInfAndSts');
    if (text_at(batch, 'PmtInfSts') === 'RJCT' && transactions.length === 0) {
      lines.push(line(batch, { original_payment_info_id: payment_info_id, reason_code: reason(batch) }));
    }
    for (const tx of transactions) {
      const status = text_at(tx, 'TxSts');
      // Only rejections change anything; an accepted or pending transaction is reported as such.
      if (status !== 'RJCT') continue;
      const amount = at(tx, 'OrgnlTxRef/Amt/InstdAmt');
      const parsed = amount === undefined ? undefined : amount_of(amount, 'OrgnlTxRef/Amt/InstdAmt');
      lines.push(
        line(tx, {
          end_to_end_id: required(tx, 'OrgnlEndToEndId', 'TxInfAndSts').text,
          original_payment_info_id: payment_info_id,
          amount_minor: parsed?.minor,
          currency: parsed?.currency ?? '',
          reason_code: reason(tx),
        }),
      );
    }
  }
  return { message_type, message_id, lines };
}

function fee_of(parent: XmlElement, currency: string): number {
  let fee = 0;
  for (const charges of all(parent, 'Chrgs')) {
    // camt.054.001.02 lists Chrgs/Amt; .04 and later group them as Chrgs/Rcrd/Amt.
    const amounts = [...all(charges, 'Amt'), ...all(charges, 'Rcrd').flatMap((r) => all(r, 'Amt'))];
    for (const a of amounts) {
      const parsed = amount_of(a, 'Chrgs/Amt');
      if (parsed.currency !== currency) fail(a, 'Chrgs/Amt/@Ccy', `must be the entry's currency ${currency}`);
      fee += parsed.minor;
    }
  }
  return fee;
}

function parse_camt054(root: XmlElement, message_type: string): BankFile {
  const notification_root = required(root, 'BkToCstmrDbtCdtNtfctn', 'Document');
  const header = required(notification_root, 'GrpHdr', 'BkToCstmrDbtCdtNtfctn');
  const message_id = required(header, 'MsgId', 'GrpHdr').text;
  const lines: BankLine[] = [];
  for (const notification of all(notification_root, 'Ntfctn')) {
    for (const entry of all(notification, 'Ntry')) {
      const { minor: entry_minor, currency } = amount_of(required(entry, 'Amt', 'Ntry'), 'Ntry/Amt');
      const direction_element = required(entry, 'CdtDbtInd', 'Ntry');
      const direction = direction_element.text;
      if (direction !== 'CRDT' && direction !== 'DBIT') {
        fail(direction_element, 'Ntry/CdtDbtInd', 'must be CRDT or DBIT');
      }
      const booking = child(entry, 'BookgDt');
      const booking_day = child(booking, 'Dt') ?? child(booking, 'DtTm');
      if (booking_day === undefined) fail(entry, 'Ntry/BookgDt/Dt', 'is required');
      const booked_on = day_of(booking_day, 'Ntry/BookgDt/Dt');
      const details = all(entry, 'NtryDtls').flatMap((d) => all(d, 'TxDtls'));
      const transactions = details.length === 0 ? [entry] : details;
      for (const tx of transactions) {
        const own_amount =
          tx === entry ? undefined : (at(tx, 'AmtDtls/TxAmt/Amt') ?? child(tx, 'Amt') ?? undefined);
        if (tx !== entry && own_amount === undefined && details.length > 1) {
          fail(tx, 'TxDtls/AmtDtls/TxAmt/Amt', 'is required when an entry has several transactions');
        }
        const parsed =
          own_amount === undefined ? { minor: entry_minor, currency } : amount_of(own_amount, 'TxDtls/Amt');
        if (parsed.currency !== currency)
          fail(own_amount, 'TxDtls/Amt/@Ccy', `must be the entry's currency ${currency}`);
        const end_to_end_id = text_at(tx, 'Refs/EndToEndId');
        const returned = child(tx, 'RtrInf');
        const structured = all(child(tx, 'RmtInf'), 'Strd')
          .map((s) => text_at(s, 'CdtrRefInf/Ref'))
          .find((r) => r !== '');
        const unstructured = all(child(tx, 'RmtInf'), 'Ustrd')
          .map((u) => u.text)
          .join(' ');
        const kind: BankLineKind =
          direction === 'DBIT'
            ? returned !== undefined || end_to_end_id.startsWith('EVR-')
              ? 'returned'
              : 'other'
            : end_to_end_id.startsWith('EVR-')
              ? 'collection_credit'
              : structured !== undefined || unstructured !== ''
                ? 'transfer_credit'
                : 'other';
        if (kind === 'returned' && end_to_end_id === '')
          fail(tx, 'TxDtls/Refs/EndToEndId', 'is required for a return');
        lines.push({
          source_line: tx.line,
          kind,
          booked_on,
          amount_minor: parsed.minor,
          // Charges of the entry itself go with its first transaction, so each is counted once.
          fee_minor: fee_of(tx, currency) + (tx !== entry && tx === details[0] ? fee_of(entry, currency) : 0),
          currency,
          end_to_end_id: end_to_end_id === 'NOTPROVIDED' ? '' : end_to_end_id,
          original_message_id: '',
          original_payment_info_id: '',
          remittance: structured ?? unstructured,
          reason_code: text_at(returned, 'Rsn/Cd') || text_at(returned, 'Rsn/Prtry'),
        });
        if (lines.length > bank_file_lines_max) fail(tx, 'Ntry', `more than ${bank_file_lines_max} lines`);
      }
    }
  }
  return { message_type, message_id, lines };
}

export function parse_bank_file(text: string): BankFile {
  let root: XmlElement;
  try {
    root = parse_xml(text);
  } catch (error) {
    if (error instanceof XmlError) throw new BankFileError(`line ${error.line}`, error.rule);
    throw error;
  }
  if (root.name !== 'Document') fail(root, root.name, 'the root must be an ISO 20022 Document');
  const namespace = root.attributes.xmlns ?? '';
  const p = pain002.exec(namespace);
  if (p !== null) return parse_pain002(root, p[1]!);
  const c = camt054.exec(namespace);
  if (c !== null) return parse_camt054(root, c[1]!);
  fail(root, 'Document/@xmlns', `must be a pain.002 or camt.054 namespace, got ${JSON.stringify(namespace)}`);
}
