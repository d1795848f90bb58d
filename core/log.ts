import { pino } from 'pino';

export type Logger = pino.Logger;

/** Structured JSON logs on stdout, one line per event, with the component that wrote it. */
export function create_logger(level: string, base: Record<string, unknown> = {}): Logger {
  return pino({ level, base: { ...base }, timestamp: pino.stdTimeFunctions.isoTime });
}
