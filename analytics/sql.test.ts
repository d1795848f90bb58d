import { describe, expect, it } from 'vitest';
import { ident, sql, sql_string } from './sql.js';

describe('sql literal formatter', () => {
  it('escapes quotes, backslashes and control characters so a literal cannot be closed early', () => {
    expect(sql_string("it's")).toBe("'it\\'s'");
    expect(sql_string('a\\')).toBe("'a\\\\'");
    expect(sql_string('a\u0000b\nc')).toBe("'a\\x00b\\x0ac'");
    expect(sql_string('Ünïcødé ⚡')).toBe("'Ünïcødé ⚡'");
  });

  it('formats template values and refuses what has no safe literal', () => {
    expect(sql`SELECT ${"x' OR 1=1 --"}, ${42}, ${[1, 'a']}`.text).toBe(
      "SELECT 'x\\' OR 1=1 --', 42, (1, 'a')",
    );
    expect(() => sql`${Number.NaN}`).toThrow(TypeError);
    expect(() => ident('rated_sessions; DROP TABLE x')).toThrow(TypeError);
    expect(ident('rated_sessions').text).toBe('rated_sessions');
  });
});
