import PDFDocument from 'pdfkit';
import type { Address } from '../accounts.js';
import { text_of_minor } from '../amounts.js';
import type { DocumentView } from '../invoices/query.js';

/**
 * The printable invoice or credit note (PDF, pdfkit's built-in Helvetica: nothing to embed).
 * Every figure comes from the ledger's document as stored; nothing is computed here but layout.
 * The PDF's dates are the document's issue date, so the same document renders the same bytes.
 */
function address_lines(p: Record<string, unknown>): string[] {
  const a = (p.address ?? {}) as Partial<Address>;
  return [
    String(p.name ?? ''),
    a.line1 ?? '',
    ...(a.line2 === undefined ? [] : [a.line2]),
    `${a.postal_code ?? ''} ${a.city ?? ''}`,
    a.country_code ?? '',
    ...(typeof p.vat_id === 'string' && p.vat_id !== '' ? [`VAT ${p.vat_id}`] : []),
  ];
}

function utc_day(ms: number | null): string {
  return ms === null ? '' : new Date(ms).toISOString().slice(0, 10);
}

export async function pdf_document(doc: DocumentView, credited_number?: string): Promise<Buffer> {
  const issued = doc.issue_date === null ? new Date(0) : new Date(`${doc.issue_date}T00:00:00Z`);
  const pdf = new PDFDocument({
    size: 'A4',
    margin: 40,
    info: {
      Title: `${doc.kind === 'invoice' ? 'Invoice' : 'Credit note'} ${doc.number ?? 'draft'}`,
      CreationDate: issued,
      ModDate: issued,
    },
  });
  const chunks: Buffer[] = [];
  pdf.on('data', (chunk: Buffer) => chunks.push(chunk));
  const done = new Promise<Buffer>((resolve, reject) => {
    pdf.on('end', () => resolve(Buffer.concat(chunks)));
    pdf.on('error', reject);
  });
  const c = doc.currency;
  pdf
    .font('Helvetica-Bold')
    .fontSize(16)
    .text(`${doc.kind === 'invoice' ? 'Invoice' : 'Credit note'} ${doc.number ?? '(draft)'}`);
  pdf.font('Helvetica').fontSize(9).moveDown(0.5);
  pdf.text(`Issue date: ${doc.issue_date ?? ''}`);
  if (doc.due_date !== null && doc.kind === 'invoice') pdf.text(`Due date: ${doc.due_date}`);
  if (doc.period !== null) pdf.text(`Period: ${doc.period}`);
  if (credited_number !== undefined) pdf.text(`Credits invoice: ${credited_number}`);
  if (doc.reason !== '') pdf.text(`Reason: ${doc.reason}`);
  pdf.text(`Account: ${doc.account_id}`);
  pdf.moveDown();
  const top = pdf.y;
  pdf.text('From:', 40, top).text(address_lines(doc.seller).join('\n'), 40, top + 12);
  pdf.text('To:', 320, top).text(address_lines(doc.buyer).join('\n'), 320, top + 12);
  pdf.moveDown(2);
  const columns = [
    { title: 'Date', x: 40, width: 60 },
    { title: 'Location / EVSE', x: 100, width: 150 },
    { title: 'kWh', x: 250, width: 50 },
    { title: 'Minutes', x: 300, width: 45 },
    { title: 'Tariff', x: 345, width: 90 },
    { title: 'VAT %', x: 435, width: 40 },
    { title: `Net ${c}`, x: 475, width: 80 },
  ];
  const row = (cells: string[], bold = false) => {
    if (pdf.y > 770) pdf.addPage();
    const y = pdf.y;
    pdf.font(bold ? 'Helvetica-Bold' : 'Helvetica');
    cells.forEach((cell, i) => {
      const col = columns[i]!;
      pdf.text(cell, col.x, y, { width: col.width, align: i >= 5 ? 'right' : 'left', lineBreak: false });
    });
    pdf.x = 40;
    pdf.y = y + 13;
  };
  pdf.x = 40;
  row(
    columns.map((col) => col.title),
    true,
  );
  for (const l of doc.lines) {
    if (l.kind === 'discount') {
      // A membership discount explains itself in a sentence: written across the columns, its figures below.
      if (pdf.y > 750) pdf.addPage();
      pdf.font('Helvetica').text(l.description, 100, pdf.y, { width: 375 });
      pdf.x = 40;
      row([
        '',
        '',
        l.energy_wh === null ? '' : (l.energy_wh / 1000).toFixed(3),
        '',
        '',
        l.vat_percent,
        l.net,
      ]);
      continue;
    }
    row(
      l.session_id === null
        ? ['', l.description, '', '', '', l.vat_percent, l.net]
        : [
            utc_day(l.stopped_at_ms),
            `${l.station_id ?? ''}${l.evse_id === null ? '' : ` / ${l.evse_id}`}`,
            ((l.energy_wh ?? 0) / 1000).toFixed(3),
            String(Math.round((l.duration_s ?? 0) / 60)),
            `${l.tariff_id} v${l.tariff_version}`,
            l.vat_percent,
            l.net,
          ],
    );
  }
  pdf.moveDown();
  row(['', 'VAT summary', '', '', 'Net', 'VAT %', 'VAT'], true);
  for (const v of doc.vat_breakdown) row(['', '', '', '', v.net, v.vat_percent, v.vat]);
  pdf.moveDown();
  row(['', `Total net ${c}`, '', '', '', '', text_of_minor(doc.net_minor, c)], true);
  row(['', `Total VAT ${c}`, '', '', '', '', text_of_minor(doc.vat_minor, c)], true);
  row(['', `Total ${c}`, '', '', '', '', text_of_minor(doc.total_minor, c)], true);
  pdf.end();
  return await done;
}
