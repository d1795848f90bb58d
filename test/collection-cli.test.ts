import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { camt054_file } from './helpers/bank-files.js';

/**
 * The collection commands of the built CLI (dist/app/cli.js) on an embedded ledger in a temporary
 * DATA_DIR: a bad bank file is refused naming the file, line and element (exit 2) and changes
 * nothing; a good one is applied and shows in the day's reconciliation report.
 */
const dir = mkdtempSync(path.join(tmpdir(), 'evrate-collection-cli-'));
const env = { ...process.env, DATA_DIR: dir, LOG_LEVEL: 'warn', NATS_URL: '', DATABASE_URL: '' };

function evrate(...args: string[]) {
  const result = spawnSync('node', ['dist/app/cli.js', ...args], { env, encoding: 'utf8', timeout: 60_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('evrate sepa-return, sepa-file, reconciliation', () => {
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('refuses a bad bank file naming its line and element, then applies a good one and reports it', () => {
    const good = camt054_file('CAMT-CLI-1', [
      { direction: 'CRDT', amount: '12.50', booked_on: '2026-12-01', unstructured: 'no reference here' },
    ]);
    const bad_file = path.join(dir, 'bad.xml');
    writeFileSync(
      bad_file,
      good.replace(
        '<Amt Ccy="EUR">12.50</Amt>\n        <CdtDbtInd>',
        '<Amt Ccy="EUR">12,50</Amt>\n        <CdtDbtInd>',
      ),
    );
    const bad = evrate('sepa-return', bad_file);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(
      `evrate: sepa-return: ${bad_file}: line 14: Ntry/Amt: must be a decimal amount`,
    );
    const empty = JSON.parse(evrate('reconciliation', '--day', '2026-12-01').stdout);
    expect(empty).toMatchObject({ lines_total: 0, items: [] });

    const good_file = path.join(dir, 'good.xml');
    writeFileSync(good_file, good);
    const applied = evrate('sepa-return', good_file);
    expect(applied.code).toBe(0);
    expect(JSON.parse(applied.stdout)).toMatchObject({
      message_type: 'camt.054.001.02',
      lines: [{ kind: 'transfer_credit', status: 'unmatched', amount: '12.50' }],
    });
    const report = JSON.parse(evrate('reconciliation', '--day', '2026-12-01').stdout);
    expect(report).toMatchObject({
      lines_total: 1,
      lines_matched: 0,
      items: [{ status: 'unmatched', amount: '12.50' }],
    });
    expect(evrate('reconciliation', '--day', '1 Dec').stderr).toContain(
      'reconciliation: day: must be a date YYYY-MM-DD',
    );
    const no_run = evrate('sepa-file', '--run', '99');
    expect(no_run.code).toBe(2);
    expect(no_run.stderr).toContain('billing_run_id: is not a known billing run');
  });
});
