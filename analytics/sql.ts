/**
 * The one way a value enters SQL text. Strings are quoted with every byte that could end or
 * bend the literal escaped (quote, backslash, control characters), numbers must be finite, and
 * identifiers must match a strict pattern. Nothing else is ever concatenated into a query.
 */
export type SqlValue = string | number | bigint | boolean | Date | null | SqlFragment | readonly SqlValue[];

export class SqlFragment {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

export function sql_string(value: string): string {
  let out = "'";
  for (const ch of value) {
    const code = ch.codePointAt(0)!;
    if (ch === "'") out += "\\'";
    else if (ch === '\\') out += '\\\\';
    else if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return `${out}'`;
}

export function sql_literal(value: SqlValue): string {
  if (value instanceof SqlFragment) return value.text;
  if (value === null) return 'NULL';
  if (typeof value === 'string') return sql_string(value);
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'boolean') return value ? '1' : '0';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError(`SQL number must be finite, got ${value}`);
    return String(value);
  }
  if (value instanceof Date) {
    const ms = value.getTime();
    if (!Number.isFinite(ms)) throw new TypeError('SQL date is invalid');
    return `toDateTime(${Math.floor(ms / 1000)}, 'UTC')`;
  }
  if (Array.isArray(value)) return `(${value.map(sql_literal).join(', ')})`;
  throw new TypeError(`no SQL literal for ${typeof value}`);
}

const identifier_pattern = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/** A database, table or column name; only plain identifiers are allowed. */
export function ident(name: string): SqlFragment {
  if (!identifier_pattern.test(name))
    throw new TypeError(`not a plain SQL identifier: ${JSON.stringify(name)}`);
  return new SqlFragment(name);
}

/** Tagged template: sql`SELECT * FROM t WHERE id = ${id}` with every value formatted as a literal. */
export function sql(strings: TemplateStringsArray, ...values: SqlValue[]): SqlFragment {
  let text = strings[0]!;
  for (let i = 0; i < values.length; i++) text += sql_literal(values[i]!) + strings[i + 1]!;
  return new SqlFragment(text);
}

/** An array literal `[a, b]` (a tuple `(a, b)` is what arrays of values format to elsewhere). */
export function sql_array(values: readonly SqlValue[]): SqlFragment {
  return new SqlFragment(`[${values.map(sql_literal).join(', ')}]`);
}
