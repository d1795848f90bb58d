import { type ChildProcess, spawn } from 'node:child_process';
import { built_module, project_root } from '../../core/paths.js';

export interface EvrateProcess {
  child: ChildProcess;
  output(): string;
  /** Resolves with the exit code (null when killed by a signal). */
  exited: Promise<number | null>;
  api_url: string;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Runs `evrate start` (the built CLI) as a child process and waits until it is up. `node_args`
 * go to node itself (e.g. --cpu-prof, which NODE_OPTIONS refuses).
 */
export async function start_evrate(
  env: Record<string, string>,
  timeout_ms = 90_000,
  node_args: string[] = [],
): Promise<EvrateProcess> {
  const child = spawn(process.execPath, [...node_args, built_module('app/cli.js'), 'start'], {
    cwd: project_root,
    env: { ...process.env, LOG_LEVEL: 'info', OCPP_PORT: '0', API_PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const deadline = Date.now() + timeout_ms;
  while (!/evrate is running/.test(output)) {
    if (Date.now() > deadline || child.exitCode !== null || child.signalCode !== null) {
      child.kill('SIGKILL');
      throw new Error(`evrate did not come up:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    child,
    output: () => output,
    exited,
    api_url: /operator API: +(http:\/\/\S+)\/v1\/sessions/.exec(output)?.[1] ?? '',
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}

export interface CliProcess {
  child: ChildProcess;
  /** Resolves with the exit code (null when killed by a signal). */
  exited: Promise<number | null>;
  /** Everything it wrote to stdout and stderr so far. */
  output(): string;
}

/** Runs one `evrate` subcommand (the built CLI) as a child process, with LOG_LEVEL=warn. */
export function run_cli(args: string[], env: Record<string, string>): CliProcess {
  const child = spawn(process.execPath, [built_module('app/cli.js'), ...args], {
    cwd: project_root,
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (c: Buffer) => {
    output += c.toString();
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, exited, output: () => output };
}
