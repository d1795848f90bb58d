import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Validation of an EN 16931 UBL 2.1 e-invoice (billing/documents/ubl.ts) by the standard artifacts,
 * unmodified: the OASIS UBL 2.1 XML schemas with `xmllint --schema` (Debian libxml2-utils), and the
 * CEN/TC 434 EN 16931 schematron rules for UBL, compiled to XSLT by CEN, run by Saxon-JS (`xslt3`).
 * The schematron's output is SVRL: each `failed-assert` is a broken rule (flag="fatal": an error,
 * flag="warning": a warning). The artifacts are not in this repository; they are found in a
 * directory laid out as below (schemas/README.md says where they come from), and each file is
 * checked against its sha256 before it is used, so only the exact published files validate.
 */
export const einvoice_artifacts: readonly { path: string; sha256: string }[] = [
  // OASIS UBL 2.1 OS (04 November 2013), runtime schemas (xsdrt/): the two maindocs and every
  // common schema they import, directly or through others.
  {
    path: 'ubl-2.1/maindoc/UBL-Invoice-2.1.xsd',
    sha256: '3a5aacd823f0e5b8f25ae7b5191c2002d5333ba351d87de9371ed62dca2b2b0c',
  },
  {
    path: 'ubl-2.1/maindoc/UBL-CreditNote-2.1.xsd',
    sha256: '1e117b6c1ab713604b29b0d685442a81a0c78a82575445ee8c43e6050cda7454',
  },
  {
    path: 'ubl-2.1/common/CCTS_CCT_SchemaModule-2.1.xsd',
    sha256: 'dd546e4809df86b6445589f69f0d6c9df162840ae386574ddfc1da7638103e15',
  },
  {
    path: 'ubl-2.1/common/UBL-CommonAggregateComponents-2.1.xsd',
    sha256: '580b5af6f68f7f556bd15945ba0e819cbf561442c81694f9b9468036ebedec4d',
  },
  {
    path: 'ubl-2.1/common/UBL-CommonBasicComponents-2.1.xsd',
    sha256: 'a3b349bf92e5cff26e303d2f05b7e00c884dcafcfd9e12755fb80289abf5e22e',
  },
  {
    path: 'ubl-2.1/common/UBL-CommonExtensionComponents-2.1.xsd',
    sha256: 'ad7a4e490978adfbcfc5ec0bb20941cf11ac960ccf0c4de8791a7c731a8dbe87',
  },
  {
    path: 'ubl-2.1/common/UBL-CommonSignatureComponents-2.1.xsd',
    sha256: '4fa9e2370100040fe14c43e135ef77e2eb66b21cb8dbfc2ffb8d82ae991fe92e',
  },
  {
    path: 'ubl-2.1/common/UBL-ExtensionContentDataType-2.1.xsd',
    sha256: 'fcee77a11870208e6377ea6311b9f2a050bca24bdad8606ea02d71e9f9e72f8d',
  },
  {
    path: 'ubl-2.1/common/UBL-QualifiedDataTypes-2.1.xsd',
    sha256: '7dcb156e610239c97ae70940cf4653b88e48c3595bf5f56a2204a32e2893e6cf',
  },
  {
    path: 'ubl-2.1/common/UBL-SignatureAggregateComponents-2.1.xsd',
    sha256: '9234c2ca48dbfa9a22a786112bb075c5922a305170920eaab1e3c04fa0b7344b',
  },
  {
    path: 'ubl-2.1/common/UBL-SignatureBasicComponents-2.1.xsd',
    sha256: '0fbe2d7afff0c1e11164b8ec83e13f18801021c3c87e390a9d76f9cf862f6a64',
  },
  {
    path: 'ubl-2.1/common/UBL-UnqualifiedDataTypes-2.1.xsd',
    sha256: '09052d406b4293e2a5f9c2bfee6df10ad4d8d5f0b36e24a6349d7f7936d89eb6',
  },
  {
    path: 'ubl-2.1/common/UBL-XAdESv132-2.1.xsd',
    sha256: 'a4f726bcf8cc3f7d9ffa4dab99e005535a8e8b60dced1e5d94578d2e05afa96e',
  },
  {
    path: 'ubl-2.1/common/UBL-XAdESv141-2.1.xsd',
    sha256: '1fa4625e9cefcb7a9abb5ac1b64315547450031eece8a55bd584e4ba4b79dbc1',
  },
  {
    path: 'ubl-2.1/common/UBL-xmldsig-core-schema-2.1.xsd',
    sha256: '101909c9f06456d61ddcc4fb982f1d40dc357b439f393b1a2eb46e42acd60809',
  },
  // CEN/TC 434 EN 16931 validation artifacts 1.3.16 (2026-04-10), UBL, schematron compiled to XSLT.
  {
    path: 'en16931/EN16931-UBL-validation.xslt',
    sha256: '39f9d282867f1a49e7708d9e29a53da89643e1ee56f10cec1ebcf1277595fcbd',
  },
];

const xslt_path = 'en16931/EN16931-UBL-validation.xslt';

/** Where the artifacts are looked for when no directory is given: the repository's schemas/, then shared/ beside it. */
export function einvoice_artifact_candidates(): string[] {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
  // From dist/billing/documents as from billing/documents: the repository is the first parent with package.json.
  const repo = existsSync(path.join(root, 'package.json')) ? root : path.resolve(root, '..');
  return [path.join(repo, 'schemas'), path.join(repo, '..', 'shared', 'reference', 'einvoice')];
}

export class ArtifactsMissing extends Error {}

function sha256_of(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

/**
 * The directory holding every artifact with its published content: `dir` if given, else the first
 * candidate that holds them all. Throws ArtifactsMissing naming what is absent or different.
 */
export function einvoice_artifacts_dir(dir?: string): string {
  const candidates = dir === undefined ? einvoice_artifact_candidates() : [dir];
  const problems: string[] = [];
  for (const candidate of candidates) {
    const missing = einvoice_artifacts.filter((a) => !existsSync(path.join(candidate, a.path)));
    const differing = einvoice_artifacts.filter(
      (a) => !missing.includes(a) && sha256_of(path.join(candidate, a.path)) !== a.sha256,
    );
    if (missing.length === 0 && differing.length === 0) return candidate;
    const parts = [
      missing.length === einvoice_artifacts.length
        ? 'none of the files'
        : missing.length > 0
          ? `missing ${missing.map((a) => a.path).join(', ')}`
          : '',
      differing.length > 0
        ? `not the published file (sha256): ${differing.map((a) => a.path).join(', ')}`
        : '',
    ];
    problems.push(`${candidate}: ${parts.filter((p) => p !== '').join('; ')}`);
  }
  throw new ArtifactsMissing(`EN 16931 / UBL 2.1 validation artifacts not found (${problems.join('; ')})`);
}

export interface RuleFailure {
  /** Rule id of the EN 16931 schematron (BR-CO-10, UBL-SR-12, ...), or "XSD" for a schema error. */
  id: string;
  flag: 'fatal' | 'warning';
  /** XPath of the node the rule fired on (schematron), or the line (XSD). */
  location: string;
  message: string;
}

export interface EInvoiceReport {
  /** XML schema (UBL 2.1) errors. */
  xsd: RuleFailure[];
  /** EN 16931 failed assertions with flag="fatal". */
  fatal: RuleFailure[];
  /** EN 16931 failed assertions with flag="warning". */
  warnings: RuleFailure[];
  /** No XSD error and no fatal EN 16931 rule broken. */
  valid: boolean;
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[], timeout_ms: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { maxBuffer: 64 * 1024 * 1024, timeout: timeout_ms }, (error, stdout, stderr) => {
      if (error !== null && typeof error.code !== 'number') reject(error);
      else resolve({ code: error === null ? 0 : Number(error.code), stdout, stderr });
    });
  });
}

/** The UBL 2.1 schema check: xmllint's "validity error" lines, one failure each. */
export async function validate_ubl_xsd(file: string, artifacts_dir: string): Promise<RuleFailure[]> {
  const xml = readFileSync(file, 'utf8');
  const root = /<(?:[A-Za-z_][\w.-]*:)?(Invoice|CreditNote)[\s>]/.exec(xml.replace(/<\?[\s\S]*?\?>/g, ''));
  if (root === null)
    return [
      { id: 'XSD', flag: 'fatal', location: '/', message: 'root element is neither Invoice nor CreditNote' },
    ];
  const schema = path.join(artifacts_dir, `ubl-2.1/maindoc/UBL-${root[1]}-2.1.xsd`);
  const result = await run('xmllint', ['--noout', '--nonet', '--schema', schema, file], 120_000);
  const failures = result.stderr
    .split('\n')
    .filter((line) => /(validity|parser) error/.test(line))
    .map((line) => {
      const at = /^[^:]*:(\d+):/.exec(line);
      return {
        id: 'XSD',
        flag: 'fatal' as const,
        location: at === null ? '' : `line ${at[1]}`,
        message: line.replace(/^[^:]*:\d+:\s*/, ''),
      };
    });
  if (result.code !== 0 && failures.length === 0)
    failures.push({ id: 'XSD', flag: 'fatal', location: '', message: result.stderr.trim() });
  return failures;
}

const xslt3_js = createRequire(import.meta.url).resolve('xslt3/xslt3.js');

/**
 * The compiled form (SEF) of the EN 16931 stylesheet, made once per stylesheet content (Saxon-JS
 * compiles the 900 kB stylesheet in tens of seconds) and kept in `cache_dir`.
 */
export async function en16931_sef(artifacts_dir: string, cache_dir: string): Promise<string> {
  const xslt = path.join(artifacts_dir, xslt_path);
  const sha = sha256_of(xslt);
  const sef = path.join(cache_dir, `EN16931-UBL-validation-${sha.slice(0, 16)}.sef.json`);
  if (existsSync(sef)) return sef;
  mkdirSync(cache_dir, { recursive: true });
  const partial = `${sef}.${process.pid}.${Date.now()}.tmp`;
  const result = await run(
    process.execPath,
    [xslt3_js, `-xsl:${xslt}`, `-export:${partial}`, '-nogo'],
    15 * 60_000,
  );
  if (result.code !== 0 || !existsSync(partial))
    throw new Error(`compiling ${xslt} failed: ${result.stderr.trim()}`);
  renameSync(partial, sef);
  return sef;
}

function xml_unescape(text: string): string {
  return text
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&#(\d+);/g, (_, n: string) => String.fromCodePoint(Number(n)))
    .replace(/&#x([0-9a-fA-F]+);/g, (_, n: string) => String.fromCodePoint(Number.parseInt(n, 16)))
    .replace(/&amp;/g, '&');
}

/** The failed assertions of an SVRL report (ISO Schematron, annex D). */
export function parse_svrl(svrl: string): RuleFailure[] {
  const failures: RuleFailure[] = [];
  const element = /<(?:svrl:)?failed-assert\b([^>]*)>([\s\S]*?)<\/(?:svrl:)?failed-assert>/g;
  for (const match of svrl.matchAll(element)) {
    const attributes = new Map<string, string>();
    for (const a of match[1]!.matchAll(/([\w:-]+)\s*=\s*"([^"]*)"/g))
      attributes.set(a[1]!, xml_unescape(a[2]!));
    const text = /<(?:svrl:)?text\b[^>]*>([\s\S]*?)<\/(?:svrl:)?text>/.exec(match[2]!);
    failures.push({
      id: attributes.get('id') ?? '',
      flag: attributes.get('flag') === 'warning' ? 'warning' : 'fatal',
      location: attributes.get('location') ?? '',
      message: xml_unescape((text?.[1] ?? '').replace(/<[^>]*>/g, ''))
        .replace(/\s+/g, ' ')
        .trim(),
    });
  }
  return failures;
}

/** The EN 16931 rules: the CEN stylesheet over the document, its SVRL parsed. */
export async function validate_en16931(
  file: string,
  artifacts_dir: string,
  cache_dir: string,
): Promise<RuleFailure[]> {
  const sef = await en16931_sef(artifacts_dir, cache_dir);
  const out_dir = mkdtempSync(path.join(tmpdir(), 'evrate-svrl-'));
  try {
    const out = path.join(out_dir, 'report.svrl');
    const result = await run(process.execPath, [xslt3_js, `-xsl:${sef}`, `-s:${file}`, `-o:${out}`], 300_000);
    if (result.code !== 0 || !existsSync(out))
      throw new Error(`EN 16931 stylesheet failed on ${file}: ${result.stderr.trim()}`);
    return parse_svrl(readFileSync(out, 'utf8'));
  } finally {
    rmSync(out_dir, { recursive: true, force: true });
  }
}

export interface ValidateOptions {
  /** Directory of the artifacts; default: the first of einvoice_artifact_candidates() holding them. */
  artifacts_dir?: string;
  /** Where the compiled stylesheet is kept; default: evrate-en16931 in the system temp directory. */
  cache_dir?: string;
}

/** An e-invoice (UBL 2.1 XML text) checked by the UBL 2.1 XSD and the EN 16931 rules. */
export async function validate_einvoice(xml: string, options: ValidateOptions = {}): Promise<EInvoiceReport> {
  const artifacts_dir = einvoice_artifacts_dir(options.artifacts_dir);
  const cache_dir = options.cache_dir ?? path.join(tmpdir(), 'evrate-en16931');
  const dir = mkdtempSync(path.join(tmpdir(), 'evrate-einvoice-'));
  try {
    const file = path.join(dir, 'document.xml');
    writeFileSync(file, xml);
    const [xsd, rules] = await Promise.all([
      validate_ubl_xsd(file, artifacts_dir),
      validate_en16931(file, artifacts_dir, cache_dir),
    ]);
    const fatal = rules.filter((r) => r.flag === 'fatal');
    const warnings = rules.filter((r) => r.flag === 'warning');
    return { xsd, fatal, warnings, valid: xsd.length === 0 && fatal.length === 0 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One line per failure, for a person. */
export function format_einvoice_report(report: EInvoiceReport): string {
  const line = (kind: string, f: RuleFailure) => `${kind} ${f.id} ${f.location}: ${f.message}`;
  return [
    ...report.xsd.map((f) => line('error', f)),
    ...report.fatal.map((f) => line('error', f)),
    ...report.warnings.map((f) => line('warning', f)),
  ].join('\n');
}
