import { text_of_minor } from '../amounts.js';
import type { Queryable } from '../ledger.js';

/** Journal lines for an accounting export, oldest entry first; amounts as decimal text. */
export interface JournalExportLine {
  entry_id: number;
  kind: string;
  source_id: string;
  posted_at: string;
  currency: string;
  line_no: number;
  ledger_account: string;
  party: string;
  debit: string;
  credit: string;
  description: string;
}

/** Lines of one export at most; a larger range is asked for in pages (after_entry_id). */
export const journal_export_lines_max = 100_000;

export async function journal_lines(
  db: Queryable,
  filter: { from_ms: number; to_ms: number; after_entry_id: number; limit: number },
): Promise<JournalExportLine[]> {
  const rows = await db.query<{
    entry_id: number;
    kind: string;
    source_id: string;
    posted_at_ms: number;
    currency: string;
    line_no: number;
    ledger_account: string;
    party: string;
    debit_minor: number;
    credit_minor: number;
    description: string;
  }>(
    `SELECT e.id AS entry_id, e.kind, e.source_id, e.posted_at_ms, e.currency, l.line_no, l.ledger_account, l.party,
       l.debit_minor, l.credit_minor, e.description
     FROM journal_entries e JOIN journal_lines l ON l.entry_id = e.id
     WHERE e.posted_at_ms >= $1 AND e.posted_at_ms < $2 AND e.id > $3
     ORDER BY e.id, l.line_no LIMIT $4`,
    [filter.from_ms, filter.to_ms, filter.after_entry_id, Math.min(filter.limit, journal_export_lines_max)],
  );
  return rows.map((r) => ({
    entry_id: r.entry_id,
    kind: r.kind,
    source_id: r.source_id,
    posted_at: new Date(r.posted_at_ms).toISOString(),
    currency: r.currency,
    line_no: r.line_no,
    ledger_account: r.ledger_account,
    party: r.party,
    debit: text_of_minor(r.debit_minor, r.currency),
    credit: text_of_minor(r.credit_minor, r.currency),
    description: r.description,
  }));
}

const csv_columns: readonly (keyof JournalExportLine)[] = [
  'entry_id',
  'posted_at',
  'kind',
  'source_id',
  'currency',
  'line_no',
  'ledger_account',
  'party',
  'debit',
  'credit',
  'description',
];

/** RFC 4180: fields with a comma, quote or line break are quoted, quotes doubled; CRLF line ends. */
function csv_field(value: string | number): string {
  const text = String(value);
  // A leading =, +, - or @ would be a formula in a spreadsheet: prefixed with a quote.
  const safe = /^[=+\-@]/.test(text) && !/^-?\d+(\.\d+)?$/.test(text) ? `'${text}` : text;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

export function journal_csv(lines: readonly JournalExportLine[]): string {
  const out = [csv_columns.join(',')];
  for (const line of lines) out.push(csv_columns.map((c) => csv_field(line[c])).join(','));
  return `${out.join('\r\n')}\r\n`;
}
