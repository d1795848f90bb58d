import type { Logger } from './log.js';

type Closer = { name: string; close: () => Promise<void> | void };

/**
 * Graceful shutdown: closers run in the reverse order of registration, so the front door closes
 * first (no new work), then the pipeline drains, then the stores and servers under it stop.
 */
export class Shutdown {
  private readonly closers: Closer[] = [];
  private running: Promise<void> | undefined;

  constructor(private readonly log: Logger) {}

  add(name: string, close: () => Promise<void> | void): void {
    this.closers.push({ name, close });
  }

  run(reason: string): Promise<void> {
    if (this.running === undefined) this.running = this.close_all(reason);
    return this.running;
  }

  private async close_all(reason: string): Promise<void> {
    this.log.info({ reason }, 'shutting down');
    for (const closer of [...this.closers].reverse()) {
      try {
        await closer.close();
        this.log.debug({ component: closer.name }, 'closed');
      } catch (error) {
        this.log.error({ component: closer.name, err: error }, 'close failed');
      }
    }
    this.log.info('shutdown complete');
  }

  /** SIGINT/SIGTERM drain and exit 0; a second signal exits at once. */
  on_signals(exit: (code: number) => void = (code) => process.exit(code)): void {
    let signalled = false;
    const handler = (signal: NodeJS.Signals) => {
      if (signalled) exit(1);
      signalled = true;
      this.run(signal).then(
        () => exit(0),
        () => exit(1),
      );
    };
    process.on('SIGINT', handler);
    process.on('SIGTERM', handler);
  }
}
