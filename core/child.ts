import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { Logger } from './log.js';

/** A server process the project started itself and must stop. */
export interface ChildServer {
  readonly pid: number;
  stop(): Promise<void>;
  /** SIGKILL, for tests that crash it on purpose. */
  kill(): Promise<void>;
}

export function require_binary(binary: string, debian_package: string): void {
  if (!existsSync(binary)) {
    throw new Error(
      `${binary} not found: install the Debian package ${debian_package} (npm start and npm test do it as root)`,
    );
  }
}

/**
 * Spawns a server, keeps the last lines of its output for error messages, and stops it with
 * SIGTERM (then SIGKILL after grace_ms). The server runs in a process group of its own: Ctrl-C in
 * a terminal signals the whole foreground group, and a server in ours would die first, leaving
 * our drain to wait for a NATS that is gone; in its own group it is stopped by us, after the
 * drain, and never outlives us when we exit (the exit hook kills it).
 */
export function spawn_server(
  binary: string,
  args: string[],
  log: Logger | undefined,
  grace_ms = 10_000,
): { child: ChildProcess; server: ChildServer; output: () => string } {
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const tail: string[] = [];
  const keep = (chunk: Buffer) => {
    tail.push(chunk.toString('utf8'));
    if (tail.length > 50) tail.shift();
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('exit', (code, signal) => log?.debug({ binary, code, signal }, 'server exited'));
  const signal_and_wait = async (signal: NodeJS.Signals, wait_ms: number) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill(signal);
    const timer = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), wait_ms).unref());
    if ((await Promise.race([exited, timer])) === 'timeout') {
      child.kill('SIGKILL');
      await exited;
    }
  };
  const server: ChildServer = {
    pid: child.pid ?? -1,
    stop: () => signal_and_wait('SIGTERM', grace_ms),
    kill: () => signal_and_wait('SIGKILL', grace_ms),
  };
  // A parent that exits without stopping its servers must not leave them behind.
  const on_exit = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  process.once('exit', on_exit);
  child.once('exit', () => process.removeListener('exit', on_exit));
  return { child, server, output: () => tail.join('') };
}
