import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { project_root } from '../core/paths.js';

const run = promisify(execFile);
const cli = path.join(project_root, 'dist', 'app', 'cli.js');
const dir = mkdtempSync(path.join(tmpdir(), 'evrate-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const tariff = {
  country_code: 'DE',
  party_id: 'EVR',
  id: 'T1',
  currency: 'EUR',
  elements: [{ price_components: [{ type: 'ENERGY', price: 0.3, vat: 20, step_size: 1 }] }],
  last_updated: '2026-01-01T00:00:00Z',
};
const cdr = {
  start_date_time: '2026-11-20T10:00:00Z',
  end_date_time: '2026-11-20T11:00:00Z',
  currency: 'EUR',
  charging_periods: [
    { start_date_time: '2026-11-20T10:00:00Z', dimensions: [{ type: 'ENERGY', volume: 10 }] },
  ],
};

function file(name: string, text: string): string {
  const at = path.join(dir, name);
  writeFileSync(at, text);
  return at;
}

async function evrate(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [cli, ...args]);
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('evrate rate', () => {
  const tariff_file = file('tariff.json', JSON.stringify(tariff));

  it('prints the priced CDR: 10 kWh x 0.30 = 3.00, 3.60 with 20% VAT', async () => {
    const result = await evrate([
      'rate',
      '--tariff',
      tariff_file,
      '--cdr',
      file('cdr.json', JSON.stringify(cdr)),
      '--time-zone',
      'Europe/Berlin',
    ]);
    expect(result.code).toBe(0);
    const priced = JSON.parse(result.stdout) as { total_cost: unknown; total_energy_cost: unknown };
    expect(priced.total_cost).toEqual({ excl_vat: '3.00', incl_vat: '3.60' });
    expect(priced.total_energy_cost).toEqual({ excl_vat: '3.00', incl_vat: '3.60' });
  });

  it('prices NDJSON sessions, and names the file, line, field and rule of a bad one without printing the rest', async () => {
    const good = file('good.ndjson', `${JSON.stringify(cdr)}\n${JSON.stringify(cdr)}\n`);
    const ok = await evrate(['rate', '--tariff', tariff_file, '--sessions', good, '--time-zone', 'UTC']);
    expect(ok.stdout.trim().split('\n')).toHaveLength(2);
    const bad_cdr = { ...cdr, charging_periods: [{ start_date_time: 'noon', dimensions: [] }] };
    const bad = file('bad.ndjson', `${JSON.stringify(cdr)}\n${JSON.stringify(bad_cdr)}\n`);
    const failed = await evrate(['rate', '--tariff', tariff_file, '--sessions', bad, '--time-zone', 'UTC']);
    expect(failed.code).toBe(2);
    expect(failed.stdout).toBe('');
    expect(failed.stderr).toContain(`${bad} line 2: charging_periods[0].start_date_time`);
  });

  it('names the tariff field that breaks the OCPI rules', async () => {
    const broken = file('broken.json', JSON.stringify({ ...tariff, currency: 'euro' }));
    const result = await evrate(['rate', '--tariff', broken, '--cdr', file('c2.json', JSON.stringify(cdr))]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`${broken}: currency:`);
  });

  it('refuses unknown options and missing files with a one-line message', async () => {
    expect((await evrate(['rate', '--tarif', 'x'])).stderr).toMatch(/Unknown option '--tarif'/);
    expect((await evrate(['rate', '--tariff', path.join(dir, 'none.json'), '--cdr', 'x'])).stderr).toContain(
      'ENOENT',
    );
  });
});
