import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { BenchResult } from '../bench/result.js';
import { built_module, project_root } from '../core/paths.js';

/**
 * Every benchmark scenario for a few seconds with a handful of chargers, through the built CLI
 * as a user runs it. Asserts what the harness promises (honesty counts, files written), never
 * a rate or a latency: this machine is shared.
 */
const out_root = mkdtempSync(path.join(tmpdir(), 'evrate-bench-smoke-'));
afterAll(() => rmSync(out_root, { recursive: true, force: true }));

function bench(name: string, args: string[]): { code: number | null; result: BenchResult; stdout: string } {
  const out = path.join(out_root, name);
  const run = spawnSync(process.execPath, [built_module('bench/run.js'), '--out', out, ...args], {
    cwd: project_root,
    encoding: 'utf8',
    timeout: 110_000,
  });
  const result = JSON.parse(readFileSync(path.join(out, 'result.json'), 'utf8')) as BenchResult;
  return { code: run.status, result, stdout: `${run.stdout}\n${run.stderr}` };
}

const small = [
  '--seconds',
  '3',
  '--chargers',
  '12',
  '--ramp-s',
  '0.5',
  '--settle-s',
  '60',
  '--drain-s',
  '10',
];

function expect_honest(result: BenchResult): void {
  const h = result.honesty!;
  expect(h.meter_values_sent).toBe(h.meter_values_stored);
  expect(h.sessions_finished).toBe(h.sessions_priced);
  expect(result.failures).toEqual([]);
  // A CALLERROR would mean the simulator sent something the ingest refuses: a bench bug.
  expect(result.load!.call_errors).toBe(0);
  expect(result.ok).toBe(true);
}

describe('npm run bench (smoke)', () => {
  it('throughput: every meter value answered is stored and every finished session priced', () => {
    const { code, result, stdout } = bench('throughput', ['--scenario', 'throughput', ...small]);
    expect(code, stdout).toBe(0);
    expect_honest(result);
    expect(result.honesty!.meter_values_sent).toBeGreaterThan(0);
    expect(result.honesty!.sessions_finished).toBeGreaterThan(0);
    expect(result.processes.map((p) => p.name)).toEqual(
      expect.arrayContaining(['ingest', 'rating', 'nats', 'clickhouse', 'load generator']),
    );
    for (const file of ['summary.md', 'chart.svg']) {
      expect(readFileSync(path.join(out_root, 'throughput', file), 'utf8').length).toBeGreaterThan(100);
    }
  });

  it('reports failure when stored meter values are missing', () => {
    const { code, result } = bench('loss', [
      '--scenario',
      'throughput',
      ...small,
      '--settle-s',
      '20',
      '--drop-stored-charger',
      'SIM-0',
    ]);
    expect(code).toBe(1);
    expect(result.ok).toBe(false);
    expect(result.honesty!.meter_values_stored).toBeLessThan(result.honesty!.meter_values_sent);
    expect(result.failures.join('\n')).toMatch(/answered as durable/);
  });

  it('--stack ingest: every meter value answered is in the JetStream stream, counted back once', () => {
    const { code, result, stdout } = bench('ingest', [
      '--scenario',
      'throughput',
      '--stack',
      'ingest',
      ...small,
    ]);
    expect(code, stdout).toBe(0);
    expect_honest(result);
    expect(result.honesty!.meter_values_sent).toBeGreaterThan(0);
    expect(result.processes.map((p) => p.name).sort()).toEqual([
      'harness',
      'ingest',
      'load generator',
      'nats',
    ]);
    expect(result.figures).toHaveProperty('steady_answer_latency_ms_p99');
  });

  it("--stack ingest: reports failure when a charger's values are missing from the stream", () => {
    const { code, result } = bench('ingest-loss', [
      '--scenario',
      'throughput',
      '--stack',
      'ingest',
      ...small,
      '--settle-s',
      '5',
      '--drop-stored-charger',
      'SIM-0',
    ]);
    expect(code).toBe(1);
    expect(result.honesty!.meter_values_stored).toBeLessThan(result.honesty!.meter_values_sent);
    expect(result.failures.join('\n')).toMatch(/answered as durable/);
  });

  it('latency: a fixed offered rate, answer time and freshness percentiles, nothing lost', () => {
    const { code, result, stdout } = bench('latency', ['--scenario', 'latency', ...small, '--rate', '400']);
    expect(code, stdout).toBe(0);
    expect_honest(result);
    expect(result.figures).toHaveProperty('answer_latency_ms_p99');
    expect(result.figures).toHaveProperty('freshness_ms_p99');
  });

  it('connections: every charger held at once, memory per connection reported', () => {
    const { code, result, stdout } = bench('connections', [
      '--scenario',
      'connections',
      ...small,
      '--heartbeat-s',
      '1',
    ]);
    expect(code, stdout).toBe(0);
    expect(result.figures.connections_held).toBe(12);
    expect(result.figures).toHaveProperty('ingest_kb_per_connection');
  });

  it('rating: the engine prices every session it is given', () => {
    const { code, result, stdout } = bench('rating', ['--scenario', 'rating', '--sessions', '300']);
    expect(code, stdout).toBe(0);
    expect(result.figures.sessions_priced).toBe(300);
  });

  it('baseline: the same load against evrate and a plain ocpp-rpc server, as a ratio', () => {
    const { code, result, stdout } = bench('baseline', ['--scenario', 'baseline', ...small]);
    expect(code, stdout).toBe(0);
    expect_honest(result);
    expect(result.figures.ratio_meter_values_answered).toBeGreaterThan(0);
    expect(result.series.some((p) => p.target === 'baseline')).toBe(true);
  });

  it('floor: the latency load against a server that only answers', () => {
    const { code, result, stdout } = bench('floor', ['--scenario', 'floor', ...small, '--rate', '500']);
    expect(code, stdout).toBe(0);
    expect(result.ok).toBe(true);
    expect(result.honesty).toBeUndefined();
    expect(result.load!.call_errors).toBe(0);
    expect(result.load!.meter_value_calls_answered).toBeGreaterThan(0);
    expect(result.figures.answer_latency_ms_p99).toBeGreaterThan(0);
    expect(result.processes.map((p) => p.name)).toEqual(
      expect.arrayContaining(['echo server', 'load generator']),
    );
  });
});
