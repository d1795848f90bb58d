import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import {
  ArtifactsMissing,
  type EInvoiceReport,
  format_einvoice_report,
  validate_einvoice,
} from './documents/einvoice-validate.js';

export const invoice_usage = `  invoice   e-invoices (UBL 2.1, as GET /v1/invoices/{id}/ubl writes them)
              validate FILE...    check each against the UBL 2.1 XSD and the EN 16931 rules;
                                  prints errors and warnings with their rule ids; exit 1 if any
                                  document has an error (see schemas/README.md for the artifacts)
              --artifacts DIR     the artifacts' directory (default: schemas/, then shared/reference/einvoice)
              --json              print the reports as JSON
`;

/** `evrate invoice validate FILE... [--artifacts DIR] [--json]`; returns the exit code. */
export async function invoice_command(argv: string[]): Promise<number> {
  let parsed: { values: { artifacts?: string; json?: boolean }; positionals: string[] };
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { artifacts: { type: 'string' }, json: { type: 'boolean' } },
    });
  } catch (error) {
    process.stderr.write(`evrate invoice: ${(error as Error).message}\n${invoice_usage}`);
    return 2;
  }
  const [sub, ...files] = parsed.positionals;
  if (sub !== 'validate' || files.length === 0) {
    process.stderr.write(`evrate invoice: expected "validate FILE..."\n${invoice_usage}`);
    return 2;
  }
  const reports: { file: string; report: EInvoiceReport }[] = [];
  for (const file of files) {
    let xml: string;
    try {
      xml = readFileSync(file, 'utf8');
    } catch (error) {
      process.stderr.write(`evrate invoice: ${file}: ${(error as NodeJS.ErrnoException).code}\n`);
      return 2;
    }
    try {
      const options = parsed.values.artifacts === undefined ? {} : { artifacts_dir: parsed.values.artifacts };
      reports.push({ file, report: await validate_einvoice(xml, options) });
    } catch (error) {
      if (!(error instanceof ArtifactsMissing)) throw error;
      process.stderr.write(`evrate invoice: ${error.message}\n`);
      return 2;
    }
  }
  if (parsed.values.json) process.stdout.write(`${JSON.stringify(reports, null, 2)}\n`);
  else {
    for (const { file, report } of reports) {
      const status = report.valid ? 'valid' : 'INVALID';
      const details = format_einvoice_report(report);
      process.stdout.write(
        `${file}: ${status} (${report.xsd.length + report.fatal.length} errors, ${report.warnings.length} warnings)\n${details === '' ? '' : `${details}\n`}`,
      );
    }
  }
  return reports.every((r) => r.report.valid) ? 0 : 1;
}
