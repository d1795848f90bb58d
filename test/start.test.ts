import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { project_root } from '../core/paths.js';
import { TestCharger } from './helpers/charger.js';

const dir = mkdtempSync(path.join(tmpdir(), 'evrate-start-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('npm start runs the stack, answers a charger, and drains on SIGTERM', async () => {
  const child = spawn('npm', ['start', '--silent'], {
    cwd: project_root,
    env: {
      ...process.env,
      DATA_DIR: dir,
      OCPP_PORT: '0',
      API_PORT: '0',
      LOG_LEVEL: 'info',
      NATS_URL: '',
      CLICKHOUSE_URL: '',
      OCPP_ALLOW_UNKNOWN: 'true',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    const deadline = Date.now() + 90_000;
    while (!/operator token \(generated/.test(output)) {
      if (Date.now() > deadline || child.exitCode !== null)
        throw new Error(`npm start did not come up:\n${output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const ocpp = /charge points: +(ws:\/\/\S+)\/ocpp\/\{chargePointId\}/.exec(output)?.[1];
    const api = /operator API: +(http:\/\/\S+)\/v1\/sessions/.exec(output)?.[1];
    const token = /operator token \(generated[^)]*\): (\S+)/.exec(output)?.[1];
    expect(ocpp).toBeDefined();
    const charger = await TestCharger.connect(`${ocpp}/ocpp/CP-START-1`);
    const boot = await charger.call('BootNotification', { chargePointVendor: 'Acme', chargePointModel: 'S' });
    expect(boot.status).toBe('Accepted');
    // A made-up action is refused and counted as "other": chargers cannot add metric series.
    const made_up = await charger.raw('[2,"m1","MadeUpAction",{}]', 'm1');
    expect(made_up.slice(0, 3)).toEqual([4, 'm1', 'NotImplemented']);
    charger.close();
    const sessions = await fetch(`${api}/v1/sessions`, { headers: { authorization: `Bearer ${token}` } });
    expect(sessions.status).toBe(200);
    const metrics = await (await fetch(`${api}/metrics`)).text();
    expect(metrics).toContain('evrate_ingest_calls_total{action="BootNotification"} 1');
    expect(metrics).toContain('evrate_ingest_calls_total{action="other"} 1');
    expect(metrics).not.toContain('MadeUpAction');
    const pid = Number(/evrate is running \(pid (\d+)/.exec(output)?.[1]);
    process.kill(pid, 'SIGTERM');
    expect(await exited).toBe(0);
    expect(output).toContain('shutdown complete');
  } finally {
    if (child.exitCode === null) process.kill(-child.pid!, 'SIGKILL');
  }
  expect(output).not.toMatch(/"level":(50|60)/);
});

it('Ctrl-C to the whole process group stops evrate cleanly, its local nats-server last', async () => {
  // A terminal's Ctrl-C sends SIGINT to every process of the foreground group. evrate starts its
  // nats-server in a group of its own and stops it after the drain: no error, no 40 s wait for a
  // NATS that died first.
  const group_dir = mkdtempSync(path.join(tmpdir(), 'evrate-ctrl-c-'));
  const child = spawn(process.execPath, [path.join(project_root, 'dist/app/cli.js'), 'start'], {
    cwd: project_root,
    env: {
      ...process.env,
      DATA_DIR: group_dir,
      OCPP_PORT: '0',
      API_PORT: '0',
      LOG_LEVEL: 'info',
      NATS_URL: '',
      CLICKHOUSE_URL: '',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // its own group, as a terminal would give it
  });
  let output = '';
  const keep = (chunk: Buffer) => {
    output += chunk.toString();
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    const deadline = Date.now() + 90_000;
    while (!/evrate is running/.test(output)) {
      if (Date.now() > deadline || child.exitCode !== null)
        throw new Error(`evrate did not come up:\n${output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const nats_pid = Number(/"nats_server_pid":(\d+)/.exec(output)?.[1] ?? Number.NaN);
    process.kill(-child.pid!, 'SIGINT');
    const stop_wait_ms = 20_000; // the wait for a hang, not a speed figure: it took 46 s before
    const code = await Promise.race([
      exited,
      new Promise<'hung'>((r) => setTimeout(() => r('hung'), stop_wait_ms)),
    ]);
    expect(code, output).toBe(0);
    expect(output).toContain('shutdown complete');
    expect(output).not.toMatch(/"level":(50|60)/);
    if (Number.isInteger(nats_pid)) expect(() => process.kill(nats_pid, 0)).toThrow();
  } finally {
    if (child.exitCode === null) process.kill(-child.pid!, 'SIGKILL');
    rmSync(group_dir, { recursive: true, force: true });
  }
});
