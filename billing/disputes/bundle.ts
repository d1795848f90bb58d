import { createHash } from 'node:crypto';
import PDFDocument from 'pdfkit';
import { FieldError } from '../../core/field-error.js';
import { text_of_minor } from '../amounts.js';
import type { Queryable } from '../ledger.js';
import {
  type Actor,
  append_audit,
  type CaseView,
  case_audit,
  case_messages,
  type DisputeDeps,
  get_case,
} from './cases.js';
import { investigate, verify_readings } from './investigate.js';
import { keys_for } from './meter-keys.js';
import { load_session_facts, type SessionFacts } from './session-facts.js';

/**
 * The evidence bundle of a case: named JSON parts and a PDF summary, with a manifest of the
 * SHA-256 of every part, itself hashed. A bundle is generated once and stored (append-only);
 * its manifest digest goes into the audit trail, so a part changed afterwards, in the ledger or
 * in a downloaded copy, no longer matches (verify_bundle).
 *
 * Parts: case.json, findings.json, meter_values.json (every raw value as received, its signed data
 * and its verification), status_timeline.json (connector statuses around the session), tariff.json
 * (the version applied, its text, and the versions created during the session), pricing.json (every
 * rated version: breakdown lines, re-ratings with the total each replaced), payments.json (the
 * invoice lines, documents and payment events of the ledger), ocpp_messages.json (the session's
 * OCPP frames as received, and the facts rating applied), bundle.pdf.
 */
export interface ManifestEntry {
  name: string;
  sha256: string;
  bytes: number;
}

export interface Manifest {
  case_id: number;
  version: number;
  generated_at: string;
  algorithm: 'SHA-256';
  parts: ManifestEntry[];
}

export interface Bundle {
  manifest: Manifest;
  manifest_sha256: string;
  /** JSON parts as text (hashed as UTF-8 bytes) and the PDF as base64 (hashed as its bytes). */
  parts: Record<string, string>;
}

export function sha256_hex(bytes: Buffer | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function part_bytes(name: string, text: string): Buffer {
  return name.endsWith('.pdf') ? Buffer.from(text, 'base64') : Buffer.from(text, 'utf8');
}

export function manifest_digest(manifest: Manifest): string {
  return sha256_hex(JSON.stringify(manifest));
}

/** Every part present and equal to its manifest line, and the manifest equal to its digest. */
export function verify_bundle(bundle: Bundle): { ok: boolean; problems: string[] } {
  const problems: string[] = [];
  if (manifest_digest(bundle.manifest) !== bundle.manifest_sha256)
    problems.push('manifest: digest does not match');
  for (const entry of bundle.manifest.parts) {
    const text = bundle.parts[entry.name];
    if (text === undefined) {
      problems.push(`${entry.name}: missing`);
      continue;
    }
    const bytes = part_bytes(entry.name, text);
    if (bytes.length !== entry.bytes || sha256_hex(bytes) !== entry.sha256)
      problems.push(`${entry.name}: SHA-256 does not match`);
  }
  for (const name of Object.keys(bundle.parts))
    if (!bundle.manifest.parts.some((p) => p.name === name)) problems.push(`${name}: not in the manifest`);
  return { ok: problems.length === 0, problems };
}

function json(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

async function ledger_records(tx: Queryable, view: CaseView) {
  const lines = await tx.query(
    `SELECT l.invoice_id, i.number_text, i.kind, l.line_no, l.kind AS line_kind, l.description, l.session_version, l.net_minor,
       trim_scale(l.vat_percent)::text AS vat_percent
     FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id WHERE l.session_id = $1 ORDER BY l.invoice_id, l.line_no`,
    [view.session_id],
  );
  const invoice_ids = [
    ...new Set([
      ...(lines as { invoice_id: number }[]).map((l) => l.invoice_id),
      ...(view.invoice_id === null ? [] : [view.invoice_id]),
    ]),
  ];
  const documents = await tx.query(
    `SELECT id, kind, number_text, status, currency, net_minor, vat_minor, total_minor, paid_minor, credited_minor,
       credited_invoice_id, issue_date::text AS issue_date, reason
     FROM invoices WHERE id = ANY($1::int8[]) OR credited_invoice_id = ANY($1::int8[]) ORDER BY id`,
    [invoice_ids],
  );
  const events = await tx.query(
    `SELECT id, kind, occurred_at_ms, invoice_id, amount_minor, currency, attributes FROM billing_events
     WHERE invoice_id = ANY($1::int8[]) AND (kind LIKE 'payment%' OR kind IN ('invoice_paid', 'credit_note_issued', 'invoice_issued'))
     ORDER BY id LIMIT 1000`,
    [invoice_ids],
  );
  const versions = await tx.query(
    `SELECT version, final, tariff_id, tariff_version, energy_wh, duration_s, total_excl_vat::text AS total_excl_vat,
       total_incl_vat::text AS total_incl_vat, net_minor, recorded_at_ms
     FROM session_versions WHERE session_id = $1 ORDER BY version`,
    [view.session_id],
  );
  return { invoice_lines: lines, documents, events, ledger_versions: versions };
}

function breakdown_of(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function pdf_summary(
  view: CaseView,
  version: number,
  generated_at: Date,
  facts: SessionFacts | undefined,
  verification_counts: Record<string, number>,
  findings: CaseView['findings'],
  entries: ManifestEntry[],
): Promise<Buffer> {
  const pdf = new PDFDocument({
    size: 'A4',
    margin: 40,
    info: {
      Title: `Dispute ${view.id} evidence ${version}`,
      CreationDate: generated_at,
      ModDate: generated_at,
    },
  });
  const chunks: Buffer[] = [];
  pdf.on('data', (chunk: Buffer) => chunks.push(chunk));
  const done = new Promise<Buffer>((resolve, reject) => {
    pdf.on('end', () => resolve(Buffer.concat(chunks)));
    pdf.on('error', reject);
  });
  pdf.font('Helvetica-Bold').fontSize(15).text(`Dispute ${view.id}: evidence bundle ${version}`);
  pdf.font('Helvetica').fontSize(9).moveDown(0.5);
  pdf.text(`Generated ${generated_at.toISOString()}`);
  pdf.text(
    `Session ${view.session_id} at ${view.charge_point_id} (station ${view.station_id}), EVSE ${view.evse_id ?? ''}`,
  );
  pdf.text(
    `Reason ${view.reason}; ${text_of_minor(view.amount_disputed_minor, view.currency)} ${view.currency} disputed; state ${view.state}${view.outcome === null ? '' : `, outcome ${view.outcome}`}`,
  );
  if (facts !== undefined) {
    const s = facts.latest;
    pdf.moveDown(0.5).font('Helvetica-Bold').text('Session');
    pdf.font('Helvetica');
    pdf.text(
      `${new Date(s.started_at_ms).toISOString()} to ${new Date(s.stopped_at_ms).toISOString()}, ${s.energy_wh} Wh (register ${s.meter_start_wh} to ${s.meter_stop_wh} Wh)`,
    );
    pdf.text(
      `Tariff ${s.tariff_id} version ${s.tariff_version}; rated version ${s.version}: ${s.total_excl_vat} excl. VAT, ${s.total_incl_vat} incl. VAT ${s.currency}`,
    );
    for (const v of facts.versions)
      pdf.text(
        `  version ${v.version} (${v.rated_reason || 'live'}): ${v.total_incl_vat} incl. VAT, replaced ${v.previous_total_incl_vat}`,
      );
  }
  pdf.moveDown(0.5).font('Helvetica-Bold').text('Signed readings');
  pdf.font('Helvetica').text(
    Object.entries(verification_counts)
      .map(([k, n]) => `${k}: ${n}`)
      .join('; ') || 'none',
  );
  pdf.moveDown(0.5).font('Helvetica-Bold').text('Findings');
  pdf.font('Helvetica');
  for (const f of findings) pdf.text(`${f.check} [${f.status}]: ${f.detail}`);
  pdf.moveDown(0.5).font('Helvetica-Bold').text('Manifest (SHA-256 of each part)');
  pdf.font('Courier').fontSize(7);
  for (const e of entries) pdf.text(`${e.sha256}  ${e.name} (${e.bytes} bytes)`);
  pdf.end();
  return done;
}

/** Generates, stores and returns a new bundle of the case (its version: the count so far + 1). */
export async function generate_bundle(
  deps: DisputeDeps,
  case_id: number,
  actor: Actor,
  now_ms = Date.now(),
): Promise<Bundle> {
  const view = await get_case(deps.ledger, case_id);
  if (view === undefined) throw new FieldError('id', 'no such dispute case');
  const facts =
    deps.store === undefined || view.session_id === ''
      ? undefined
      : await load_session_facts(deps.store, view.session_id);
  const keys =
    facts === undefined
      ? []
      : await keys_for(deps.ledger, facts.latest.charge_point_id, facts.latest.evse_id);
  const verifications = facts === undefined ? [] : verify_readings(facts, keys);
  const counts: Record<string, number> = {};
  for (const v of verifications) counts[v.status] = (counts[v.status] ?? 0) + 1;
  // The findings as of now (keys registered since opening count), beside those made at opening.
  const own = facts === undefined ? undefined : await deps.max_power_w_of?.(facts.latest.charge_point_id);
  const findings =
    facts === undefined
      ? view.findings
      : investigate(facts, {
          keys,
          max_power_w: own ?? deps.power_w_max,
          power_source: own === undefined ? 'the rating bound' : "the connector's registered power",
        });
  const records = await ledger_records(deps.ledger, view);
  const tariff_applied = facts?.tariff_versions.find((t) => t.version === facts.latest.tariff_version);
  const parts: Record<string, string> = {
    'case.json': json({
      case: view,
      messages: await case_messages(deps.ledger, case_id),
      audit: await case_audit(deps.ledger, case_id),
    }),
    'findings.json': json({ at_opening: view.findings, now: findings }),
    'meter_values.json': json(
      (facts?.meter_values ?? []).map((v, i) => ({ ...v, verification: verifications[i] })),
    ),
    'status_timeline.json': json(facts?.statuses ?? []),
    'tariff.json': json({
      tariff_id: facts?.latest.tariff_id ?? null,
      version_applied: facts?.latest.tariff_version ?? null,
      text: tariff_applied === undefined ? null : breakdown_of(tariff_applied.tariff_json),
      created_at_ms: tariff_applied?.created_at_ms ?? null,
      versions_created_during_session: (facts?.tariff_versions ?? [])
        .filter(
          (t) =>
            facts !== undefined &&
            t.created_at_ms > facts.latest.started_at_ms &&
            t.created_at_ms < facts.latest.stopped_at_ms,
        )
        .map((t) => ({
          version: t.version,
          created_at_ms: t.created_at_ms,
          text: breakdown_of(t.tariff_json),
        })),
    }),
    'pricing.json': json({
      latest:
        facts === undefined ? null : { ...facts.latest, breakdown: breakdown_of(facts.latest.breakdown) },
      versions: (facts?.versions ?? []).map((v) => ({ ...v, breakdown: breakdown_of(v.breakdown) })),
      ledger_versions: records.ledger_versions,
    }),
    'payments.json': json({
      invoice_lines: records.invoice_lines,
      documents: records.documents,
      events: records.events,
    }),
    'ocpp_messages.json': json({
      // The CALL frames as the charger sent them (kept within ANALYTICS_RAW_RETENTION_DAYS).
      frames: facts?.frames ?? [],
      // What rating applied, decoded, in its order.
      facts: (facts?.events ?? []).map((e) => ({
        seq: e.seq,
        idx: e.idx,
        received_at_ms: e.received_at_ms,
        kind: e.kind,
        fact: breakdown_of(e.fact),
      })),
    }),
  };
  return await deps.ledger.transaction(async (tx) => {
    await tx.query('SELECT id FROM dispute_cases WHERE id = $1 FOR UPDATE', [case_id]);
    const [{ n }] = (await tx.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM dispute_bundles WHERE case_id = $1',
      [case_id],
    )) as [{ n: number }];
    const version = n + 1;
    const generated_at = new Date(now_ms);
    const entries: ManifestEntry[] = Object.entries(parts).map(([name, text]) => {
      const bytes = part_bytes(name, text);
      return { name, sha256: sha256_hex(bytes), bytes: bytes.length };
    });
    const pdf = await pdf_summary(view, version, generated_at, facts, counts, findings, entries);
    const all = { ...parts, 'bundle.pdf': pdf.toString('base64') };
    entries.push({ name: 'bundle.pdf', sha256: sha256_hex(pdf), bytes: pdf.length });
    const manifest: Manifest = {
      case_id,
      version,
      generated_at: generated_at.toISOString(),
      algorithm: 'SHA-256',
      parts: entries,
    };
    const digest = manifest_digest(manifest);
    const { 'bundle.pdf': _pdf, ...json_parts } = all;
    await tx.query(
      `INSERT INTO dispute_bundles (case_id, version, generated_at_ms, manifest, manifest_sha256, parts, pdf_base64)
       VALUES ($1, $2, $3, $4, $5, $6, $7)`,
      [
        case_id,
        version,
        now_ms,
        JSON.stringify(manifest),
        digest,
        JSON.stringify(json_parts),
        all['bundle.pdf'],
      ],
    );
    await append_audit(
      tx,
      case_id,
      actor,
      'bundle_generated',
      { version, manifest_sha256: digest, verification: counts },
      now_ms,
    );
    return { manifest, manifest_sha256: digest, parts: all };
  });
}

export async function stored_bundle(
  q: Queryable,
  case_id: number,
  version?: number,
): Promise<Bundle | undefined> {
  const [row] = await q.query<{
    manifest: string;
    manifest_sha256: string;
    parts: string;
    pdf_base64: string;
  }>(
    `SELECT manifest, manifest_sha256, parts, pdf_base64 FROM dispute_bundles WHERE case_id = $1 AND ($2::int IS NULL OR version = $2)
     ORDER BY version DESC LIMIT 1`,
    [case_id, version ?? null],
  );
  if (row === undefined) return undefined;
  return {
    manifest: JSON.parse(row.manifest) as Manifest,
    manifest_sha256: row.manifest_sha256,
    parts: { ...(JSON.parse(row.parts) as Record<string, string>), 'bundle.pdf': row.pdf_base64 },
  };
}
