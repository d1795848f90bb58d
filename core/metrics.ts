import { collectDefaultMetrics, Registry } from 'prom-client';

/** One registry per process; each folder registers its own metrics on it. */
export const metrics_registry = new Registry();
collectDefaultMetrics({ register: metrics_registry, prefix: 'evrate_process_' });
