import { ident, sql_literal } from '../analytics/sql.js';

/**
 * What Grafana and the grafana-clickhouse-datasource plugin (v4) do to a panel's SQL before
 * ClickHouse sees it, so that the tests and the renderer run exactly the dashboards' queries:
 *
 * 1. `$__conditionalAll(phrase, $var)` (plugin frontend): `1=1` when the variable is "All".
 * 2. Template variables (Grafana frontend): `${name:format}`, `${name}`, `$name`, `[[name]]`.
 * 3. Macros (plugin backend, pkg/macros): `$__fromTime`, `$__toTime`, `$__timeFilter(col)`,
 *    `$__dateFilter(col)`, `$__timeInterval(col)`, `$__interval_s`.
 *
 * Deliberate differences: Grafana's `singlequote` format escapes only the quote, so a value
 * with a backslash could end the literal. Here every value goes through the project's literal
 * formatter (analytics/sql.ts), and a variable without a quoting format is refused unless it is
 * an identifier (the constant database name), which must match the identifier pattern.
 */
export type VariableValue =
  | { kind: 'identifier'; value: string }
  /** `selected: 'all'` is Grafana's "All" option: every value in `options`. */
  | { kind: 'values'; selected: readonly string[] | 'all'; options: readonly string[] };

export interface GrafanaQueryContext {
  from_ms: number;
  to_ms: number;
  /** Grafana's interval for the panel (range / max data points, rounded); at least 1 s. */
  interval_s: number;
  variables: Readonly<Record<string, VariableValue>>;
}

export class MacroError extends Error {
  override name = 'MacroError';
}

/** Quoting formats that produce string literals; each value becomes one literal. */
const literal_formats = new Set(['singlequote', 'sqlstring']);

/** Arguments of a call starting at `open` (the index of its '('), split at top-level commas. */
function call_arguments(text: string, open: number): { args: string[]; end: number } {
  let depth = 0;
  let start = open + 1;
  const args: string[] = [];
  for (let i = open; i < text.length; i++) {
    const ch = text[i];
    if (ch === '(') depth++;
    else if (ch === ')') {
      depth--;
      if (depth === 0) {
        args.push(text.slice(start, i));
        return { args, end: i + 1 };
      }
    } else if (ch === ',' && depth === 1) {
      args.push(text.slice(start, i));
      start = i + 1;
    }
  }
  throw new MacroError(`unclosed macro call at ${text.slice(open - 20, open + 20)}`);
}

function variable_of(context: GrafanaQueryContext, name: string): VariableValue {
  const variable = context.variables[name];
  if (variable === undefined) throw new MacroError(`unknown variable $${name}`);
  return variable;
}

/** Plugin frontend: applyConditionalAll, innermost (last) occurrence first as the plugin does. */
function expand_conditional_all(sql: string, context: GrafanaQueryContext): string {
  const macro = '$__conditionalAll(';
  for (let at = sql.lastIndexOf(macro); at !== -1; at = sql.lastIndexOf(macro)) {
    const { args, end } = call_arguments(sql, at + macro.length - 1);
    if (args.length !== 2) throw new MacroError(`$__conditionalAll takes 2 arguments, got ${args.length}`);
    const name = /^\s*\$\{?(\w+)\}?\s*$/.exec(args[1]!)?.[1];
    if (name === undefined) throw new MacroError(`$__conditionalAll needs a variable, got ${args[1]}`);
    const variable = variable_of(context, name);
    const all = variable.kind === 'values' && variable.selected === 'all';
    sql = sql.slice(0, at) + (all ? '1=1' : args[0]!) + sql.slice(end);
  }
  return sql;
}

function format_variable(name: string, format: string | undefined, context: GrafanaQueryContext): string {
  const variable = variable_of(context, name);
  if (variable.kind === 'identifier') {
    if (format !== undefined && format !== 'raw')
      throw new MacroError(`identifier variable $${name} cannot take format ${format}`);
    return ident(variable.value).text;
  }
  if (format === undefined || !literal_formats.has(format))
    throw new MacroError(`variable $${name} must be quoted with \${${name}:singlequote}`);
  const values = variable.selected === 'all' ? variable.options : variable.selected;
  // Grafana sends an empty multi-selection as nothing at all; an empty IN () is a syntax error in
  // ClickHouse, so an empty selection matches nothing instead.
  if (values.length === 0) return 'NULL';
  return values.map((value) => sql_literal(value)).join(',');
}

/** Grafana frontend: template variables in their three syntaxes; `$__` names are macros. */
function expand_variables(sql: string, context: GrafanaQueryContext): string {
  return sql.replace(
    /\$\{(\w+)(?::(\w+))?\}|\[\[(\w+)(?::(\w+))?\]\]|\$(\w+)/g,
    (
      match,
      braced?: string,
      braced_format?: string,
      bracket?: string,
      bracket_format?: string,
      plain?: string,
    ) => {
      const name = braced ?? bracket ?? plain!;
      if (name.startsWith('__')) return match;
      return format_variable(name, braced_format ?? bracket_format, context);
    },
  );
}

function date_time(ms: number): string {
  return `toDateTime(${Math.floor(ms / 1000)})`;
}

function date(ms: number): string {
  return `toDate('${new Date(ms).toISOString().slice(0, 10)}')`;
}

/** Plugin backend (pkg/macros/macros.go), same output text. */
function expand_macros(sql: string, context: GrafanaQueryContext): string {
  const one = (name: string, args: string[]): string => {
    if (args.length !== 1) throw new MacroError(`$__${name} takes 1 argument, got ${args.length}`);
    return args[0]!.trim();
  };
  const macros: Record<string, (args: string[]) => string> = {
    fromTime: () => date_time(context.from_ms),
    toTime: () => date_time(context.to_ms),
    timeFilter: (args) => {
      const column = one('timeFilter', args);
      return `${column} >= ${date_time(context.from_ms)} AND ${column} <= ${date_time(context.to_ms)}`;
    },
    dateFilter: (args) => {
      const column = one('dateFilter', args);
      return `${column} >= ${date(context.from_ms)} AND ${column} <= ${date(context.to_ms)}`;
    },
    // Needs toStartOfInterval, which ClickHouse 18.16 lacks: the dashboards use intDiv buckets.
    timeInterval: (args) =>
      `toStartOfInterval(toDateTime(${one('timeInterval', args)}), INTERVAL ${Math.max(Math.floor(context.interval_s), 1)} second)`,
    interval_s: () => String(Math.max(Math.floor(context.interval_s), 1)),
  };
  let out = '';
  let rest = sql;
  for (;;) {
    const found = /\$__(\w+)/.exec(rest);
    if (found === null) return out + rest;
    const expand = macros[found[1]!];
    if (expand === undefined) throw new MacroError(`unknown macro ${found[0]}`);
    const after = found.index + found[0].length;
    if (rest[after] === '(') {
      const { args, end } = call_arguments(rest, after);
      out += rest.slice(0, found.index) + expand(args);
      rest = rest.slice(end);
    } else {
      out += rest.slice(0, found.index) + expand([]);
      rest = rest.slice(after);
    }
  }
}

/**
 * The SQL ClickHouse receives for a panel's rawSql in the given dashboard state. Macros are
 * expanded before variables (Grafana does it the other way round; for these queries the result
 * is the same) so that a variable value which looks like a macro stays inside its literal.
 */
export function expand_query(raw_sql: string, context: GrafanaQueryContext): string {
  return expand_variables(expand_macros(expand_conditional_all(raw_sql, context), context), context);
}
