import PDFDocument from 'pdfkit';
import { Money } from '../../core/money.js';
import { minor_of, text_of_minor } from '../amounts.js';
import type { PaySession } from './store.js';

/**
 * The receipt of a settled pay-at-charger session, as one view model for the HTML page and the
 * PDF: every figure is the ledger's (the rated version that was captured), nothing is recomputed
 * but the sum of VAT (incl - excl, both rated).
 */
export interface ReceiptLine {
  /** energy | time | parking | fixed */
  kind: 'energy' | 'time' | 'parking' | 'fixed';
  /** kWh for energy, hours for time and parking, '' for fixed. */
  volume: string;
  excl_vat: string;
}

export interface Receipt {
  id: string;
  charge_point_id: string;
  evse_id: number;
  session_id: string;
  currency: string;
  started_at_ms: number;
  stopped_at_ms: number;
  energy_kwh: string;
  lines: ReceiptLine[];
  vat_percent: string;
  total_excl_vat: string;
  vat: string;
  total_incl_vat: string;
  captured: string;
  hold: string;
  released: string;
  tariff_id: string;
  tariff_version: number;
}

interface Breakdown {
  total_energy?: string;
  total_time?: string;
  total_parking_time?: string;
  total_energy_cost?: { excl_vat: string };
  total_time_cost?: { excl_vat: string };
  total_parking_cost?: { excl_vat: string };
  total_fixed_cost?: { excl_vat: string };
}

export function receipt_of(session: PaySession): Receipt | undefined {
  if (session.status !== 'settled' || session.total_incl_vat_minor === null) return undefined;
  const c = session.currency;
  const b = (
    typeof session.breakdown === 'string' ? JSON.parse(session.breakdown) : session.breakdown
  ) as Breakdown;
  const money = (text: string | undefined) => text_of_minor(minor_of(text ?? '0', c), c);
  const lines: ReceiptLine[] = [];
  const add = (kind: ReceiptLine['kind'], volume: string, cost: { excl_vat: string } | undefined) => {
    if (cost === undefined || new Money(cost.excl_vat).isZero()) return;
    lines.push({ kind, volume, excl_vat: money(cost.excl_vat) });
  };
  const hours = (text: string | undefined) => new Money(text ?? '0').toDecimalPlaces(2).toFixed(2);
  add('energy', new Money(b.total_energy ?? '0').toDecimalPlaces(3).toFixed(3), b.total_energy_cost);
  add('time', hours(b.total_time), b.total_time_cost);
  add('parking', hours(b.total_parking_time), b.total_parking_cost);
  add('fixed', '', b.total_fixed_cost);
  const captured = session.captured_minor ?? 0;
  return {
    id: session.id,
    charge_point_id: session.charge_point_id,
    evse_id: session.evse_id,
    session_id: session.session_id ?? '',
    currency: c,
    started_at_ms: session.started_at_ms ?? session.created_at_ms,
    stopped_at_ms: session.stopped_at_ms ?? session.updated_at_ms,
    energy_kwh: new Money(session.energy_wh).div(1000).toFixed(3),
    lines,
    vat_percent: new Money(session.vat_percent ?? '0').toString(),
    total_excl_vat: text_of_minor(session.total_excl_vat_minor!, c),
    vat: text_of_minor(session.total_incl_vat_minor - session.total_excl_vat_minor!, c),
    total_incl_vat: text_of_minor(session.total_incl_vat_minor, c),
    captured: text_of_minor(captured, c),
    hold: text_of_minor(session.hold_minor, c),
    released: text_of_minor(session.hold_minor - captured, c),
    tariff_id: session.tariff_id,
    tariff_version: session.tariff_version,
  };
}

/** Words of the PDF, in the page's language (the caller passes them). */
export interface ReceiptWords {
  title: string;
  charger: string;
  period: string;
  energy: string;
  lines: Record<ReceiptLine['kind'], string>;
  net: string;
  vat: string;
  total: string;
  captured: string;
  released: string;
  tariff: string;
}

/** The PDF receipt (pdfkit's Helvetica, nothing embedded); dated by the session's stop, so the same receipt renders the same bytes. */
export async function receipt_pdf(receipt: Receipt, words: ReceiptWords): Promise<Buffer> {
  const at = new Date(receipt.stopped_at_ms);
  const pdf = new PDFDocument({
    size: 'A5',
    margin: 36,
    info: { Title: `${words.title} ${receipt.id}`, CreationDate: at, ModDate: at },
  });
  const chunks: Buffer[] = [];
  pdf.on('data', (chunk: Buffer) => chunks.push(chunk));
  const done = new Promise<Buffer>((resolve, reject) => {
    pdf.on('end', () => resolve(Buffer.concat(chunks)));
    pdf.on('error', reject);
  });
  const c = receipt.currency;
  const row = (label: string, value: string) => {
    const y = pdf.y;
    pdf.text(label, 36, y, { width: 240 });
    pdf.text(value, 280, y, { width: 140, align: 'right' });
  };
  pdf.fontSize(16).text(`${words.title} ${receipt.id}`);
  pdf.moveDown(0.5).fontSize(10);
  row(words.charger, `${receipt.charge_point_id} / ${receipt.evse_id}`);
  row(
    words.period,
    `${new Date(receipt.started_at_ms).toISOString().slice(0, 16).replace('T', ' ')} - ${at.toISOString().slice(11, 16)} UTC`,
  );
  row(words.energy, `${receipt.energy_kwh} kWh`);
  pdf.moveDown();
  for (const line of receipt.lines) {
    row(`${words.lines[line.kind]}${line.volume === '' ? '' : ` (${line.volume})`}`, `${line.excl_vat} ${c}`);
  }
  row(words.net, `${receipt.total_excl_vat} ${c}`);
  row(`${words.vat} ${receipt.vat_percent} %`, `${receipt.vat} ${c}`);
  pdf.font('Helvetica-Bold');
  row(words.total, `${receipt.total_incl_vat} ${c}`);
  pdf.font('Helvetica').moveDown();
  row(words.captured, `${receipt.captured} ${c}`);
  row(words.released, `${receipt.released} ${c}`);
  row(words.tariff, `${receipt.tariff_id} v${receipt.tariff_version}`);
  pdf.end();
  return await done;
}
