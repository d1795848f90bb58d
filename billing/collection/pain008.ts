import { text_of_minor } from '../amounts.js';
import { escape_xml } from './xml.js';

/**
 * The ISO 20022 pain.008.001.02 CustomerDirectDebitInitiation message of a collection, as the
 * EPC SDD Core and B2B implementation guidelines use it, written as text: element order is the
 * XSD's (schemas/iso20022/pain.008.001.02.xsd), amounts are decimal text from minor units, every
 * text value escaped. A pure function of its input: the same collection gives the same bytes.
 */
export interface DirectDebit {
  end_to_end_id: string;
  amount_minor: number;
  mandate_id: string;
  /** YYYY-MM-DD. */
  mandate_signed_on: string;
  debtor_name: string;
  debtor_iban: string;
  debtor_bic: string;
  /** Unstructured remittance information, at most 140 characters. */
  remittance: string;
}

export interface DirectDebitBatch {
  payment_info_id: string;
  scheme: 'CORE' | 'B2B';
  sequence_type: 'FRST' | 'RCUR';
  /** YYYY-MM-DD. */
  requested_on: string;
  creditor: { name: string; iban: string; bic: string; creditor_id: string };
  debits: DirectDebit[];
}

export interface DirectDebitMessage {
  message_id: string;
  created_at_ms: number;
  initiating_party: string;
  currency: 'EUR';
  batches: DirectDebitBatch[];
}

export const pain008_namespace = 'urn:iso:std:iso:20022:tech:xsd:pain.008.001.02';

function sum_minor(debits: readonly DirectDebit[]): number {
  let sum = 0;
  for (const d of debits) {
    if (!Number.isSafeInteger(d.amount_minor) || d.amount_minor <= 0) {
      throw new RangeError(`${d.end_to_end_id}: amount ${d.amount_minor} is not a positive number of cents`);
    }
    sum += d.amount_minor;
  }
  if (!Number.isSafeInteger(sum)) throw new RangeError('control sum out of range');
  return sum;
}

export function control_sum_minor(message: DirectDebitMessage): number {
  return message.batches.reduce((total, b) => total + sum_minor(b.debits), 0);
}

export function transaction_count(message: DirectDebitMessage): number {
  return message.batches.reduce((total, b) => total + b.debits.length, 0);
}

export function pain008_xml(message: DirectDebitMessage): string {
  if (message.batches.length === 0 || message.batches.some((b) => b.debits.length === 0)) {
    throw new RangeError('a pain.008 message needs at least one batch of at least one debit');
  }
  const t = escape_xml;
  const amount = (minor: number) => text_of_minor(minor, message.currency);
  const out: string[] = [];
  const created = new Date(message.created_at_ms).toISOString().slice(0, 19);
  out.push(
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<Document xmlns="${pain008_namespace}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">`,
    '  <CstmrDrctDbtInitn>',
    '    <GrpHdr>',
    `      <MsgId>${t(message.message_id)}</MsgId>`,
    `      <CreDtTm>${created}</CreDtTm>`,
    `      <NbOfTxs>${transaction_count(message)}</NbOfTxs>`,
    `      <CtrlSum>${amount(control_sum_minor(message))}</CtrlSum>`,
    `      <InitgPty><Nm>${t(message.initiating_party)}</Nm></InitgPty>`,
    '    </GrpHdr>',
  );
  for (const batch of message.batches) {
    out.push(
      '    <PmtInf>',
      `      <PmtInfId>${t(batch.payment_info_id)}</PmtInfId>`,
      '      <PmtMtd>DD</PmtMtd>',
      '      <BtchBookg>true</BtchBookg>',
      `      <NbOfTxs>${batch.debits.length}</NbOfTxs>`,
      `      <CtrlSum>${amount(sum_minor(batch.debits))}</CtrlSum>`,
      '      <PmtTpInf>',
      '        <SvcLvl><Cd>SEPA</Cd></SvcLvl>',
      `        <LclInstrm><Cd>${batch.scheme}</Cd></LclInstrm>`,
      `        <SeqTp>${batch.sequence_type}</SeqTp>`,
      '      </PmtTpInf>',
      `      <ReqdColltnDt>${batch.requested_on}</ReqdColltnDt>`,
      `      <Cdtr><Nm>${t(batch.creditor.name)}</Nm></Cdtr>`,
      `      <CdtrAcct><Id><IBAN>${t(batch.creditor.iban)}</IBAN></Id></CdtrAcct>`,
      `      <CdtrAgt><FinInstnId><BIC>${t(batch.creditor.bic)}</BIC></FinInstnId></CdtrAgt>`,
      '      <ChrgBr>SLEV</ChrgBr>',
      '      <CdtrSchmeId><Id><PrvtId><Othr>',
      `        <Id>${t(batch.creditor.creditor_id)}</Id>`,
      '        <SchmeNm><Prtry>SEPA</Prtry></SchmeNm>',
      '      </Othr></PrvtId></Id></CdtrSchmeId>',
    );
    for (const d of batch.debits) {
      out.push(
        '      <DrctDbtTxInf>',
        `        <PmtId><EndToEndId>${t(d.end_to_end_id)}</EndToEndId></PmtId>`,
        `        <InstdAmt Ccy="${message.currency}">${amount(d.amount_minor)}</InstdAmt>`,
        '        <DrctDbtTx><MndtRltdInf>',
        `          <MndtId>${t(d.mandate_id)}</MndtId>`,
        `          <DtOfSgntr>${d.mandate_signed_on}</DtOfSgntr>`,
        '        </MndtRltdInf></DrctDbtTx>',
        `        <DbtrAgt><FinInstnId><BIC>${t(d.debtor_bic)}</BIC></FinInstnId></DbtrAgt>`,
        `        <Dbtr><Nm>${t(d.debtor_name)}</Nm></Dbtr>`,
        `        <DbtrAcct><Id><IBAN>${t(d.debtor_iban)}</IBAN></Id></DbtrAcct>`,
        `        <RmtInf><Ustrd>${t(d.remittance.slice(0, 140))}</Ustrd></RmtInf>`,
        '      </DrctDbtTxInf>',
      );
    }
    out.push('    </PmtInf>');
  }
  out.push('  </CstmrDrctDbtInitn>', '</Document>', '');
  return out.join('\n');
}
