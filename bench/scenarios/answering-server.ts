/** A server the load is compared with (baseline, echo), started as its own process. */
import { type ChildProcess, spawn } from 'node:child_process';
import { built_module } from '../../core/paths.js';
import type { ChargerCounters } from '../sim/charger.js';

export interface AnsweringServer {
  child: ChildProcess;
  url_base: string;
  stop(): Promise<void>;
}

/** Starts `node dist/<module>` and waits for its line "<name> OCPP server: ws://...". */
export async function start_answering_server(module: string, name: string): Promise<AnsweringServer> {
  const child = spawn(process.execPath, [built_module(module)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const banner = new RegExp(`${name} OCPP server: (ws://\\S+)`);
  const deadline = Date.now() + 30_000;
  for (;;) {
    const match = banner.exec(output);
    if (match !== null) {
      return {
        child,
        url_base: match[1]!,
        async stop() {
          if (child.exitCode === null) child.kill('SIGTERM');
          await exited;
        },
      };
    }
    if (Date.now() > deadline || child.exitCode !== null) {
      child.kill('SIGKILL');
      throw new Error(`${name} server did not start:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * A server that only answers must have done all the work evrate did for the comparison to be
 * fair: every CALL accepted and answered, every session finished.
 */
export function answering_server_failures(name: string, c: ChargerCounters): string[] {
  const failures: string[] = [];
  if (c.call_errors > 0)
    failures.push(`${name}: ${c.call_errors} CALLERRORs (it refused what evrate accepts)`);
  if (c.calls_abandoned > 0) failures.push(`${name}: ${c.calls_abandoned} CALLs abandoned without an answer`);
  if (c.sessions_started !== c.sessions_stopped)
    failures.push(`${name}: ${c.sessions_started} sessions started, ${c.sessions_stopped} finished`);
  return failures;
}
