/**
 * One store interface, two transports: the embedded engine (chdb) and a ClickHouse server over
 * HTTP. Both run the same DDL and queries; rows travel as JSONEachRow text so that decimals are
 * written as exact digits (never through a binary float).
 */
export interface Store {
  readonly transport: 'chdb' | 'http';
  readonly database: string;
  /** Server version, e.g. "18.16.1" or "26.7.2.1". */
  readonly server_version: string;
  exec(sql: string): Promise<void>;
  query<T>(sql: string): Promise<T[]>;
  /**
   * Rows as arrays in the order of the SELECT's columns (format JSONCompact): for answers of many
   * thousand rows, where naming every field in every row costs more than the query.
   */
  query_arrays<T extends readonly unknown[]>(sql: string): Promise<T[]>;
  /**
   * The answer's bytes in a binary format (e.g. RowBinary, read with analytics/row-binary.ts),
   * owning their ArrayBuffer so that they can be transferred to a worker thread.
   */
  query_bytes(sql: string, format: 'RowBinary'): Promise<Uint8Array>;
  /** Inserts JSONEachRow lines (each a complete JSON object, no newline inside). */
  insert_json_rows(table: string, rows: readonly string[]): Promise<void>;
  close(): Promise<void>;
}

export class StoreError extends Error {
  constructor(
    message: string,
    readonly sql_head: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'StoreError';
  }
}

export function parse_json_rows<T>(text: string): T[] {
  const rows: T[] = [];
  for (const line of text.split('\n')) if (line.length > 0) rows.push(JSON.parse(line) as T);
  return rows;
}

export function version_at_least(version: string, major: number, minor = 0): boolean {
  const [a = 0, b = 0] = version.split('.').map(Number);
  return a > major || (a === major && b >= minor);
}

/** The `data` of a JSONCompact answer. */
export function parse_json_compact<T>(text: string): T[] {
  const parsed = JSON.parse(text) as { data?: T[] };
  if (!Array.isArray(parsed.data)) throw new TypeError('JSONCompact answer without data');
  return parsed.data;
}

/** Bytes that own their whole ArrayBuffer (transferable); copied when they are a view into a larger one. */
export function owned_bytes(bytes: Uint8Array): Uint8Array {
  if (
    bytes.byteOffset === 0 &&
    bytes.byteLength === bytes.buffer.byteLength &&
    !(bytes.buffer instanceof SharedArrayBuffer)
  )
    return bytes;
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return copy;
}
