import type { Address } from '../accounts.js';
import { text_of_minor } from '../amounts.js';
import type { DocumentView } from '../invoices/query.js';

/**
 * An invoice or credit note as an EN 16931 e-invoice in UBL 2.1 syntax (CustomizationID
 * urn:cen.eu:en16931:2017). Element order follows the UBL 2.1 schemas (Invoice-2 / CreditNote-2),
 * the business terms (BT-n) are named in comments where they are set. Each session is one line
 * of quantity 1 (unit C62) priced at its net: the kWh, duration and tariff are in the line's item
 * description, since EN 16931 fixes BT-131 = quantity x price and a kWh price with more digits
 * than the currency would not multiply back to the rounded line net. Amounts are the ledger's, written
 * with the currency's minor digits (BR-DEC-*), so BR-CO-10/13/14/15 and BR-S-08/BR-CO-17 hold by the
 * rounding rule of amounts.ts. Validated by the UBL 2.1 XSD and the EN 16931 rules in
 * einvoice-validate.ts (test/einvoice-validation.test.ts).
 */
function xml_text(text: string): string {
  return (
    text
      .replace(/&/g, '&amp;')
      .replace(/</g, '&lt;')
      .replace(/>/g, '&gt;')
      .replace(/"/g, '&quot;')
      // Characters XML 1.0 cannot carry at all.
      .split('')
      .filter((ch) => {
        const code = ch.charCodeAt(0);
        return code >= 0x20 || code === 0x09 || code === 0x0a || code === 0x0d;
      })
      .join('')
  );
}

function amount(tag: string, minor: number, currency: string): string {
  return `<cbc:${tag} currencyID="${xml_text(currency)}">${text_of_minor(minor, currency)}</cbc:${tag}>`;
}

function tax_category(tag: string, vat_percent: string): string {
  // BT-118 / BT-151: S standard rate, Z zero rated.
  const code = Number(vat_percent) === 0 ? 'Z' : 'S';
  return `<cac:${tag}><cbc:ID>${code}</cbc:ID><cbc:Percent>${xml_text(vat_percent)}</cbc:Percent><cac:TaxScheme><cbc:ID>VAT</cbc:ID></cac:TaxScheme></cac:${tag}>`;
}

function party(p: Record<string, unknown>): string {
  const address = (p.address ?? {}) as Partial<Address>;
  const vat_id = typeof p.vat_id === 'string' ? p.vat_id : '';
  return [
    '<cac:Party>',
    '<cac:PostalAddress>',
    `<cbc:StreetName>${xml_text(address.line1 ?? '')}</cbc:StreetName>`,
    address.line2 === undefined
      ? ''
      : `<cbc:AdditionalStreetName>${xml_text(address.line2)}</cbc:AdditionalStreetName>`,
    `<cbc:CityName>${xml_text(address.city ?? '')}</cbc:CityName>`,
    `<cbc:PostalZone>${xml_text(address.postal_code ?? '')}</cbc:PostalZone>`,
    // BT-40 / BT-55
    `<cac:Country><cbc:IdentificationCode>${xml_text(address.country_code ?? '')}</cbc:IdentificationCode></cac:Country>`,
    '</cac:PostalAddress>',
    // BT-31 / BT-48
    vat_id === ''
      ? ''
      : `<cac:PartyTaxScheme><cbc:CompanyID>${xml_text(vat_id)}</cbc:CompanyID><cac:TaxScheme><cbc:ID>VAT</cbc:ID></cac:TaxScheme></cac:PartyTaxScheme>`,
    // BT-27 / BT-44
    `<cac:PartyLegalEntity><cbc:RegistrationName>${xml_text(String(p.name ?? ''))}</cbc:RegistrationName></cac:PartyLegalEntity>`,
    '</cac:Party>',
  ].join('');
}

export function ubl_document(doc: DocumentView, credited_number?: string): string {
  if (doc.number === null || doc.issue_date === null) throw new Error(`document ${doc.id} is a draft`);
  const credit = doc.kind === 'credit_note';
  const root = credit ? 'CreditNote' : 'Invoice';
  const c = doc.currency;
  const lines = doc.lines.map((l) => {
    const details =
      l.session_id === null
        ? ''
        : ` | session ${l.session_id} v${l.session_version} | ${((l.energy_wh ?? 0) / 1000).toFixed(3)} kWh | ${Math.round((l.duration_s ?? 0) / 60)} min | tariff ${l.tariff_id} v${l.tariff_version}`;
    // BR-27: the item net price (BT-146) is never negative, so a negative line (a discount) is
    // quantity -1 at the positive price; BT-131 = BT-129 x BT-146 either way.
    const quantity = l.net_minor < 0 ? '-1' : '1';
    const quantity_tag = credit ? 'CreditedQuantity' : 'InvoicedQuantity';
    const name =
      l.session_id !== null
        ? 'EV charging session'
        : l.kind === 'fee'
          ? 'Membership fee'
          : l.kind === 'discount'
            ? 'Membership discount'
            : 'Credit';
    return [
      `<cac:${root}Line>`,
      `<cbc:ID>${l.line_no}</cbc:ID>`, // BT-126
      `<cbc:${quantity_tag} unitCode="C62">${quantity}</cbc:${quantity_tag}>`, // BT-129, BT-130
      amount('LineExtensionAmount', l.net_minor, c), // BT-131
      '<cac:Item>',
      `<cbc:Description>${xml_text(l.description + details)}</cbc:Description>`, // BT-154
      `<cbc:Name>${xml_text(name)}</cbc:Name>`, // BT-153
      tax_category('ClassifiedTaxCategory', l.vat_percent), // BT-151, BT-152
      '</cac:Item>',
      `<cac:Price>${amount('PriceAmount', Math.abs(l.net_minor), c)}</cac:Price>`, // BT-146
      `</cac:${root}Line>`,
    ].join('');
  });
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<${root} xmlns="urn:oasis:names:specification:ubl:schema:xsd:${root}-2" xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2" xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">`,
    '<cbc:CustomizationID>urn:cen.eu:en16931:2017</cbc:CustomizationID>', // BT-24
    `<cbc:ID>${xml_text(doc.number)}</cbc:ID>`, // BT-1
    `<cbc:IssueDate>${doc.issue_date}</cbc:IssueDate>`, // BT-2
    credit || doc.due_date === null ? '' : `<cbc:DueDate>${doc.due_date}</cbc:DueDate>`, // BT-9
    credit
      ? '<cbc:CreditNoteTypeCode>381</cbc:CreditNoteTypeCode>'
      : '<cbc:InvoiceTypeCode>380</cbc:InvoiceTypeCode>', // BT-3
    doc.reason === '' ? '' : `<cbc:Note>${xml_text(doc.reason)}</cbc:Note>`, // BT-22
    `<cbc:DocumentCurrencyCode>${xml_text(c)}</cbc:DocumentCurrencyCode>`, // BT-5
    `<cbc:BuyerReference>${xml_text(doc.account_id)}</cbc:BuyerReference>`, // BT-10
    credited_number === undefined
      ? ''
      : `<cac:BillingReference><cac:InvoiceDocumentReference><cbc:ID>${xml_text(credited_number)}</cbc:ID></cac:InvoiceDocumentReference></cac:BillingReference>`, // BT-25
    `<cac:AccountingSupplierParty>${party(doc.seller)}</cac:AccountingSupplierParty>`, // BG-4
    `<cac:AccountingCustomerParty>${party(doc.buyer)}</cac:AccountingCustomerParty>`, // BG-7
    '<cac:TaxTotal>',
    amount('TaxAmount', doc.vat_minor, c), // BT-110
    ...doc.vat_breakdown.map(
      (v) =>
        `<cac:TaxSubtotal>${amount('TaxableAmount', v.net_minor, c)}${amount('TaxAmount', v.vat_minor, c)}${tax_category('TaxCategory', v.vat_percent)}</cac:TaxSubtotal>`, // BG-23: BT-116, BT-117, BT-118, BT-119
    ),
    '</cac:TaxTotal>',
    '<cac:LegalMonetaryTotal>',
    amount('LineExtensionAmount', doc.net_minor, c), // BT-106
    amount('TaxExclusiveAmount', doc.net_minor, c), // BT-109
    amount('TaxInclusiveAmount', doc.total_minor, c), // BT-112
    amount('PayableAmount', doc.total_minor, c), // BT-115
    '</cac:LegalMonetaryTotal>',
    ...lines,
    `</${root}>`,
    '',
  ].join('\n');
}
