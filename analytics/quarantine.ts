import { Counter } from 'prom-client';
import { metrics_registry } from '../core/metrics.js';
import type { Store } from './store.js';

const quarantined_rows = new Counter({
  name: 'evrate_store_quarantined_rows_total',
  help: 'Rows the store refused for their content, kept in quarantined_rows',
  labelNames: ['table'],
  registers: [metrics_registry],
});

/**
 * ClickHouse error codes that say "this data cannot go in" (parse, type, range), as opposed to
 * "the server cannot take anything now" (unreachable, overloaded, out of memory): retrying the
 * first kind can never succeed, retrying the second kind will.
 */
const data_error_codes = new Set([
  6, // CANNOT_PARSE_TEXT
  26, // CANNOT_PARSE_QUOTED_STRING
  27, // CANNOT_PARSE_INPUT_ASSERTION_FAILED
  38, // CANNOT_PARSE_DATE
  41, // CANNOT_PARSE_DATETIME
  53, // TYPE_MISMATCH
  69, // ARGUMENT_OUT_OF_BOUND
  70, // CANNOT_CONVERT_TYPE
  72, // CANNOT_PARSE_NUMBER
  117, // INCORRECT_DATA
  131, // TOO_LARGE_STRING_SIZE
  321, // VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
  407, // DECIMAL_OVERFLOW
]);

export function is_data_error(error: unknown): boolean {
  const text =
    error instanceof Error
      ? `${error.message} ${String((error as { cause?: unknown }).cause ?? '')}`
      : String(error);
  const match = /Code: (\d+)/.exec(text);
  return match !== null && data_error_codes.has(Number(match[1]));
}

/**
 * Inserts rows; when the store refuses the batch for its content, finds the refused rows by
 * bisection, inserts the others, and keeps each refused row verbatim in quarantined_rows with the
 * error. Any other failure (store unreachable) is thrown, for the caller to retry.
 * Returns the number of rows quarantined.
 */
export async function insert_or_quarantine(
  store: Store,
  table: string,
  rows: readonly string[],
): Promise<number> {
  if (rows.length === 0) return 0;
  try {
    await store.insert_json_rows(table, rows);
    return 0;
  } catch (error) {
    if (!is_data_error(error)) throw error;
    if (rows.length === 1) {
      const at_ms = Date.now();
      await store.insert_json_rows('quarantined_rows', [
        JSON.stringify({
          table_name: table,
          row_json: rows[0],
          error: (error as Error).message.slice(0, 2000),
          at: Math.floor(at_ms / 1000),
          at_ms,
        }),
      ]);
      quarantined_rows.inc({ table });
      return 1;
    }
    const middle = Math.ceil(rows.length / 2);
    return (
      (await insert_or_quarantine(store, table, rows.slice(0, middle))) +
      (await insert_or_quarantine(store, table, rows.slice(middle)))
    );
  }
}
