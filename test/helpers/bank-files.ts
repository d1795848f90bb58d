/**
 * Bank files as a bank sends them back (ISO 20022 pain.002.001.03 status report, camt.054.001.02
 * debit/credit notification), written out element by element for the collection tests.
 */
export interface Pain002Rejection {
  end_to_end_id: string;
  payment_info_id: string;
  reason: string;
  amount?: string;
}

export function pain002_file(original_message_id: string, rejections: readonly Pain002Rejection[]): string {
  const by_batch = new Map<string, Pain002Rejection[]>();
  for (const r of rejections)
    by_batch.set(r.payment_info_id, [...(by_batch.get(r.payment_info_id) ?? []), r]);
  const batches = [...by_batch.entries()].map(
    ([id, txs]) => `    <OrgnlPmtInfAndSts>
      <OrgnlPmtInfId>${id}</OrgnlPmtInfId>
      <PmtInfSts>PART</PmtInfSts>
${txs
  .map(
    (t, i) => `      <TxInfAndSts>
        <StsId>ST-${i + 1}</StsId>
        <OrgnlEndToEndId>${t.end_to_end_id}</OrgnlEndToEndId>
        <TxSts>RJCT</TxSts>
        <StsRsnInf><Rsn><Cd>${t.reason}</Cd></Rsn></StsRsnInf>
${t.amount === undefined ? '' : `        <OrgnlTxRef><Amt><InstdAmt Ccy="EUR">${t.amount}</InstdAmt></Amt></OrgnlTxRef>\n`}      </TxInfAndSts>`,
  )
  .join('\n')}
    </OrgnlPmtInfAndSts>`,
  );
  return `<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.03">
  <CstmrPmtStsRpt>
    <GrpHdr>
      <MsgId>STS-${original_message_id}</MsgId>
      <CreDtTm>2026-12-02T08:00:00</CreDtTm>
    </GrpHdr>
    <OrgnlGrpInfAndSts>
      <OrgnlMsgId>${original_message_id}</OrgnlMsgId>
      <OrgnlMsgNmId>pain.008.001.02</OrgnlMsgNmId>
      <GrpSts>PART</GrpSts>
    </OrgnlGrpInfAndSts>
${batches.join('\n')}
  </CstmrPmtStsRpt>
</Document>
`;
}

export interface CamtEntry {
  direction: 'CRDT' | 'DBIT';
  amount: string;
  booked_on: string;
  end_to_end_id?: string;
  /** A return's reason (camt RtrInf/Rsn/Cd). */
  return_reason?: string;
  /** Structured creditor reference (RF ...). */
  creditor_reference?: string;
  unstructured?: string;
  fee?: string;
}

export function camt054_file(message_id: string, entries: readonly CamtEntry[]): string {
  const ntry = entries.map(
    (e, i) => `      <Ntry>
        <NtryRef>${i + 1}</NtryRef>
        <Amt Ccy="EUR">${e.amount}</Amt>
        <CdtDbtInd>${e.direction}</CdtDbtInd>
        <Sts>BOOK</Sts>
        <BookgDt><Dt>${e.booked_on}</Dt></BookgDt>
        <ValDt><Dt>${e.booked_on}</Dt></ValDt>
        <AcctSvcrRef>BANK-${message_id}-${i + 1}</AcctSvcrRef>
        <BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>${e.end_to_end_id === undefined ? 'RCDT' : 'IDDT'}</Cd><SubFmlyCd>${e.return_reason === undefined ? 'ESCT' : 'UPDD'}</SubFmlyCd></Fmly></Domn></BkTxCd>
        <NtryDtls><TxDtls>
${e.end_to_end_id === undefined ? '' : `          <Refs><EndToEndId>${e.end_to_end_id}</EndToEndId></Refs>\n`}          <AmtDtls><TxAmt><Amt Ccy="EUR">${e.amount}</Amt></TxAmt></AmtDtls>
${e.fee === undefined ? '' : `          <Chrgs><Amt Ccy="EUR">${e.fee}</Amt></Chrgs>\n`}${
  e.creditor_reference === undefined && e.unstructured === undefined
    ? ''
    : `          <RmtInf>${e.unstructured === undefined ? '' : `<Ustrd>${e.unstructured}</Ustrd>`}${
        e.creditor_reference === undefined
          ? ''
          : `<Strd><CdtrRefInf><Tp><CdOrPrtry><Cd>SCOR</Cd></CdOrPrtry><Issr>ISO</Issr></Tp><Ref>${e.creditor_reference}</Ref></CdtrRefInf></Strd>`
      }</RmtInf>\n`
}${e.return_reason === undefined ? '' : `          <RtrInf><Rsn><Cd>${e.return_reason}</Cd></Rsn></RtrInf>\n`}        </TxDtls></NtryDtls>
      </Ntry>`,
  );
  return `<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.054.001.02">
  <BkToCstmrDbtCdtNtfctn>
    <GrpHdr>
      <MsgId>${message_id}</MsgId>
      <CreDtTm>2026-12-03T06:00:00</CreDtTm>
    </GrpHdr>
    <Ntfctn>
      <Id>N-${message_id}</Id>
      <CreDtTm>2026-12-03T06:00:00</CreDtTm>
      <Acct><Id><IBAN>DE89370400440532013000</IBAN></Id></Acct>
${ntry.join('\n')}
    </Ntfctn>
  </BkToCstmrDbtCdtNtfctn>
</Document>
`;
}
