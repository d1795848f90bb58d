/**
 * Draws each built dashboard as an SVG picture (dashboards/images/<name>.svg) from its own panel
 * queries, run on the embedded engine over the seeded week, so a README reader sees what an
 * analyst sees in Grafana. No browser: panels are drawn as simple lines, bars, grids, tables
 * and numbers at their gridPos.
 *
 *   npm run dashboards:render [-- --out DIR]
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { open_chdb_store } from '../analytics/chdb-store.js';
import { migrate } from '../analytics/migrations.js';
import type { Store } from '../analytics/store.js';
import { expand_query, type GrafanaQueryContext } from './grafana-macros.js';
import { seed_data, seed_store, seed_week } from './seed.js';
import { seed_what_if } from './seed-what-if.js';

type Cell = string | number;
type Row = Record<string, Cell>;

interface FieldOverride {
  matcher: { id: string; options: string };
  properties: { id: string; value: unknown }[];
}
interface Panel {
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  targets: { rawSql: string }[];
  fieldConfig: {
    defaults: {
      unit?: string;
      decimals?: number;
      thresholds?: { steps: { value: number | null; color: string }[] };
      custom?: { drawStyle?: string; stacking?: { mode: string }; cellOptions?: { type: string } };
    };
    overrides: FieldOverride[];
  };
  options: { xField?: string };
}
interface Dashboard {
  title: string;
  panels: Panel[];
  templating: { list: { name: string; type: string; query: string; multi?: boolean }[] };
}

const column_px = 50;
const row_px = 30;
const gap_px = 6;
/** Table rows drawn at most per panel; the rest is summarized in a line. */
const table_rows_max = 12;
const palette = ['#73bf69', '#f2cc0c', '#5794f2', '#ff780a', '#b877d9', '#f2495c', '#8ab8ff', '#96d98d'];
const named_colors: Record<string, string> = {
  green: '#73bf69',
  orange: '#ff9830',
  red: '#f2495c',
  blue: '#5794f2',
};

function escape_xml(text: string): string {
  return text.replace(
    /[<>&"']/g,
    (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&#39;' })[c]!,
  );
}

function text(
  x: number,
  y: number,
  content: string,
  options: { size?: number; anchor?: string; fill?: string; weight?: string } = {},
): string {
  return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" font-size="${options.size ?? 11}" text-anchor="${options.anchor ?? 'start'}" fill="${options.fill ?? '#ccccdc'}"${options.weight ? ` font-weight="${options.weight}"` : ''}>${escape_xml(content)}</text>`;
}

function rect(x: number, y: number, w: number, h: number, fill: string, extra = ''): string {
  return `<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${Math.max(w, 0).toFixed(1)}" height="${Math.max(h, 0).toFixed(1)}" fill="${fill}"${extra}/>`;
}

function field_settings(
  panel: Panel,
  field: string,
): { unit: string; decimals: number | undefined; name: string } {
  let unit = panel.fieldConfig.defaults.unit ?? 'short';
  let decimals = panel.fieldConfig.defaults.decimals;
  let name = field;
  for (const override of panel.fieldConfig.overrides) {
    if (override.matcher.id !== 'byName' || override.matcher.options !== field) continue;
    for (const p of override.properties) {
      if (p.id === 'unit') unit = String(p.value);
      if (p.id === 'decimals') decimals = Number(p.value);
      if (p.id === 'displayName') name = String(p.value);
    }
  }
  return { unit, decimals, name };
}

function format_value(value: number, unit: string, decimals: number | undefined): string {
  if (!Number.isFinite(value)) return '–';
  if (unit === 's') {
    const h = Math.floor(value / 3600);
    const m = Math.round((value % 3600) / 60);
    return h > 0 ? `${h} h ${m} min` : `${m} min`;
  }
  const digits = decimals ?? (Math.abs(value) >= 100 || Number.isInteger(value) ? 0 : 2);
  const number = value.toLocaleString('en-US', {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
  const suffix: Record<string, string> = { percent: '%', kwatth: ' kWh', h: ' h', ops: '/s' };
  return number + (suffix[unit] ?? '');
}

/** Identifiers that look like numbers but name things (an EVSE id is not a quantity). */
const label_names = new Set(['station', 'evse', 'weekday']);

function is_number(value: Cell | undefined): boolean {
  return (
    typeof value === 'number' || (typeof value === 'string' && /^-?\d+(\.\d+)?(e[+-]?\d+)?$/i.test(value))
  );
}

function numeric_fields(rows: Row[]): string[] {
  const first = rows[0];
  if (first === undefined) return [];
  return Object.keys(first).filter(
    (k) => k !== 'time' && !label_names.has(k) && rows.every((r) => is_number(r[k])),
  );
}

function label_fields(rows: Row[], numeric: string[]): string[] {
  const first = rows[0];
  if (first === undefined) return [];
  return Object.keys(first).filter((k) => k !== 'time' && !numeric.includes(k));
}

function threshold_color(panel: Panel, value: number): string {
  const steps = panel.fieldConfig.defaults.thresholds?.steps ?? [];
  let color = '#5794f2';
  for (const step of steps)
    if (step.value === null || value >= step.value) color = named_colors[step.color] ?? step.color;
  return color;
}

interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

function draw_stat(panel: Panel, rows: Row[], box: Box): string {
  const row = rows[0] ?? {};
  const fields = Object.keys(row);
  const cell_w = box.w / Math.max(fields.length, 1);
  return fields
    .map((field, i) => {
      const settings = field_settings(panel, field);
      const value = Number(row[field]);
      const cx = box.x + cell_w * i + cell_w / 2;
      const size = Math.min(28, box.h * 0.45, (cell_w / 7) * 1.4);
      return (
        text(cx, box.y + box.h / 2 + size / 3, format_value(value, settings.unit, settings.decimals), {
          size,
          anchor: 'middle',
          fill: threshold_color(panel, value),
          weight: 'bold',
        }) +
        (fields.length > 1 || rows.length > 0
          ? text(cx, box.y + box.h - 4, settings.name, { size: 10, anchor: 'middle', fill: '#8e8e9e' })
          : '')
      );
    })
    .join('');
}

/** Series by name: wide rows give one per numeric field, long rows one per label value. */
function series_of(panel: Panel, rows: Row[]): Map<string, { t: number; v: number }[]> {
  const numeric = numeric_fields(rows);
  const labels = label_fields(rows, numeric);
  const series = new Map<string, { t: number; v: number }[]>();
  for (const row of rows) {
    const t = Date.parse(`${String(row.time).replace(' ', 'T')}Z`);
    for (const field of numeric) {
      const name =
        labels.length > 0 ? labels.map((l) => String(row[l])).join(' ') : field_settings(panel, field).name;
      const list = series.get(name) ?? [];
      list.push({ t, v: Number(row[field]) });
      series.set(name, list);
    }
  }
  return series;
}

function draw_timeseries(
  panel: Panel,
  rows: Row[],
  box: Box,
  time_range: { from_ms: number; to_ms: number },
): string {
  const series = series_of(panel, rows);
  const bars = panel.fieldConfig.defaults.custom?.drawStyle === 'bars';
  const stacked = panel.fieldConfig.defaults.custom?.stacking?.mode === 'normal';
  const legend_h = 16;
  const plot = { x: box.x + 42, y: box.y + 4, w: box.w - 50, h: box.h - legend_h - 18 };
  const times = [...new Set([...series.values()].flatMap((s) => s.map((p) => p.t)))].sort((a, b) => a - b);
  const step = times.length > 1 ? Math.min(...times.slice(1).map((t, i) => t - times[i]!)) : 3_600_000;
  const stack_totals = new Map<number, number>();
  for (const list of series.values())
    for (const p of list) stack_totals.set(p.t, (stack_totals.get(p.t) ?? 0) + p.v);
  const max_value = Math.max(
    1e-9,
    ...(stacked ? [...stack_totals.values()] : [...series.values()].flatMap((s) => s.map((p) => p.v))),
  );
  const top = panel.fieldConfig.defaults.unit === 'percent' ? 100 : max_value * 1.1;
  const x_of = (t: number) =>
    plot.x + ((t - time_range.from_ms) / (time_range.to_ms - time_range.from_ms)) * plot.w;
  const y_of = (v: number) => plot.y + plot.h - (v / top) * plot.h;
  const settings = field_settings(panel, 'value');
  let out = '';
  for (const fraction of [0, 0.5, 1]) {
    const y = plot.y + plot.h - fraction * plot.h;
    out += `<line x1="${plot.x}" y1="${y.toFixed(1)}" x2="${(plot.x + plot.w).toFixed(1)}" y2="${y.toFixed(1)}" stroke="#2c3235"/>`;
    out += text(
      plot.x - 4,
      y + 3,
      format_value(fraction * top, settings.unit, top >= 10 ? 0 : top >= 1 ? 1 : 3),
      {
        size: 9,
        anchor: 'end',
        fill: '#8e8e9e',
      },
    );
  }
  for (let day = time_range.from_ms; day <= time_range.to_ms; day += 86_400_000) {
    const label = new Date(day).toISOString().slice(5, 10);
    out += text(x_of(day), plot.y + plot.h + 12, label, { size: 9, anchor: 'middle', fill: '#8e8e9e' });
  }
  const offsets = new Map<number, number>();
  const bar_w = Math.max(
    1,
    ((step / (time_range.to_ms - time_range.from_ms)) * plot.w * 0.8) /
      (stacked ? 1 : Math.max(series.size, 1)),
  );
  let legend_x = box.x + 8;
  [...series.entries()].forEach(([name, points], i) => {
    const color = palette[i % palette.length]!;
    if (bars) {
      for (const p of points) {
        const base = stacked ? (offsets.get(p.t) ?? 0) : 0;
        const x = x_of(p.t) + (stacked ? 0 : i * bar_w);
        out += rect(x, y_of(base + p.v), bar_w, y_of(base) - y_of(base + p.v), color);
        if (stacked) offsets.set(p.t, base + p.v);
      }
    } else {
      // A missing interval breaks the line, as Grafana draws nulls (spanNulls off).
      const d = points
        .map((p, j) => {
          const joined = j > 0 && p.t - points[j - 1]!.t <= step * 1.5;
          return `${joined ? 'L' : 'M'}${x_of(p.t + step / 2).toFixed(1)},${y_of(p.v).toFixed(1)}`;
        })
        .join('');
      out += `<path d="${d}" fill="none" stroke="${color}" stroke-width="1.5"/>`;
    }
    out += rect(legend_x, box.y + box.h - 11, 10, 4, color);
    out += text(legend_x + 14, box.y + box.h - 6, name, { size: 10 });
    legend_x += 22 + name.length * 6;
  });
  return out;
}

function heat_color(fraction: number): string {
  // Dark blue-grey for nothing, through orange to red for the busiest cell.
  const stops = [
    [34, 37, 43],
    [255, 152, 48],
    [242, 73, 92],
  ];
  const f = Math.min(Math.max(fraction, 0), 1) * (stops.length - 1);
  const i = Math.min(Math.floor(f), stops.length - 2);
  const a = stops[i]!;
  const b = stops[i + 1]!;
  const mix = (k: number) => Math.round(a[k]! + (b[k]! - a[k]!) * (f - i));
  return `rgb(${mix(0)},${mix(1)},${mix(2)})`;
}

function draw_table(panel: Panel, rows: Row[], box: Box): string {
  const columns = Object.keys(rows[0] ?? {});
  const heatmap = panel.fieldConfig.defaults.custom?.cellOptions?.type === 'color-background';
  // In a heatmap, text columns (weekday, a scenario's name) are labels; numbers are cells,
  // coloured by their size (a negative change as strongly as a positive one).
  const is_cell = (c: string) => heatmap && c !== 'weekday' && rows.every((r) => is_number(r[c]));
  const line_h = Math.min(18, (box.h - 4) / (Math.min(rows.length, table_rows_max) + 1));
  // A text column is as wide as its longest value too (a scenario's name), numbers as their header.
  const longest = (c: string) =>
    rows.every((r) => is_number(r[c])) ? 0 : Math.max(...rows.map((r) => String(r[c]).length));
  const widths = columns.map((c) =>
    is_cell(c) ? 1 : Math.max(2.2, field_settings(panel, c).name.length / 6, longest(c) / 5.5),
  );
  const unit_w = box.w / widths.reduce((a, b) => a + b, 0);
  const values = heatmap
    ? rows.flatMap((r) => columns.filter(is_cell).map((c) => Math.abs(Number(r[c]))))
    : [];
  const max_value = Math.max(1e-9, ...values);
  let out = '';
  let x = box.x;
  columns.forEach((column, i) => {
    const w = widths[i]! * unit_w;
    out += text(x + w / 2, box.y + line_h - 5, field_settings(panel, column).name, {
      size: heatmap ? 9 : 10,
      anchor: 'middle',
      fill: '#8e8e9e',
    });
    rows.slice(0, table_rows_max).forEach((row, j) => {
      const y = box.y + line_h * (j + 1);
      const raw = row[column];
      const numeric = is_number(raw) && !label_names.has(column);
      const settings = field_settings(panel, column);
      const shown = numeric ? format_value(Number(raw), settings.unit, settings.decimals) : String(raw);
      if (is_cell(column))
        out += rect(x + 0.5, y + 0.5, w - 1, line_h - 1, heat_color(Math.abs(Number(raw)) / max_value));
      else if (numeric && panel.fieldConfig.defaults.thresholds && settings.unit === 'percent')
        out += rect(
          x + 2,
          y + 2,
          w - 4,
          line_h - 4,
          threshold_color(panel, Number(raw)),
          ' fill-opacity="0.35"',
        );
      out += text(
        x + w / 2,
        y + line_h - 5,
        is_cell(column)
          ? format_value(Number(raw), 'none', Math.abs(Number(raw)) >= 10 ? 0 : (settings.decimals ?? 0))
          : shown,
        {
          size: heatmap ? 9 : 10,
          anchor: 'middle',
        },
      );
    });
    x += w;
  });
  if (rows.length > table_rows_max)
    out += text(box.x + 4, box.y + box.h - 2, `… ${rows.length - table_rows_max} more rows`, {
      size: 9,
      fill: '#8e8e9e',
    });
  return out;
}

function draw_bars(panel: Panel, rows: Row[], box: Box): string {
  const x_field = panel.options.xField ?? label_fields(rows, numeric_fields(rows))[0] ?? '';
  const fields = numeric_fields(rows).filter((f) => f !== x_field);
  const label_w = Math.min(110, box.w * 0.3);
  const line_h = (box.h - 16) / Math.max(rows.length, 1);
  const bar_h = Math.max(2, (line_h * 0.8) / Math.max(fields.length, 1));
  const max_of = new Map(fields.map((f) => [f, Math.max(1e-9, ...rows.map((r) => Number(r[f])))]));
  let out = '';
  rows.forEach((row, j) => {
    const y = box.y + j * line_h;
    out += text(box.x + label_w - 6, y + line_h / 2 + 4, String(row[x_field]), { size: 10, anchor: 'end' });
    fields.forEach((field, k) => {
      const settings = field_settings(panel, field);
      const value = Number(row[field]);
      const w = (value / max_of.get(field)!) * (box.w - label_w - 70);
      out += rect(box.x + label_w, y + k * bar_h + line_h * 0.1, w, bar_h - 1, palette[k % palette.length]!);
      out += text(
        box.x + label_w + w + 4,
        y + k * bar_h + line_h * 0.1 + bar_h - 2,
        format_value(value, settings.unit, settings.decimals),
        { size: 9 },
      );
    });
  });
  let legend_x = box.x + 8;
  fields.forEach((field, k) => {
    const name = field_settings(panel, field).name;
    out += rect(legend_x, box.y + box.h - 9, 10, 4, palette[k % palette.length]!);
    out += text(legend_x + 14, box.y + box.h - 4, name, { size: 10 });
    legend_x += 24 + name.length * 6;
  });
  return out;
}

function draw_pie(panel: Panel, rows: Row[], box: Box): string {
  const numeric = numeric_fields(rows);
  const label = label_fields(rows, numeric)[0] ?? '';
  const field = numeric[0] ?? '';
  const total = rows.reduce((a, r) => a + Number(r[field]), 0);
  const r = Math.min(box.h, box.w * 0.5) / 2 - 4;
  const cx = box.x + r + 6;
  const cy = box.y + box.h / 2;
  let angle = -Math.PI / 2;
  let out = '';
  rows.forEach((row, i) => {
    const value = Number(row[field]);
    const sweep = (value / total) * 2 * Math.PI;
    const end = angle + sweep;
    const point = (a: number, radius: number) =>
      `${(cx + radius * Math.cos(a)).toFixed(1)},${(cy + radius * Math.sin(a)).toFixed(1)}`;
    const large = sweep > Math.PI ? 1 : 0;
    const inner = r * 0.55;
    out += `<path d="M${point(angle, r)}A${r.toFixed(1)},${r.toFixed(1)} 0 ${large} 1 ${point(end, r)}L${point(end, inner)}A${inner.toFixed(1)},${inner.toFixed(1)} 0 ${large} 0 ${point(angle, inner)}Z" fill="${palette[i % palette.length]}"/>`;
    const settings = field_settings(panel, field);
    out += rect(cx + r + 14, box.y + 10 + i * 16, 10, 10, palette[i % palette.length]!);
    out += text(
      cx + r + 28,
      box.y + 19 + i * 16,
      `${row[label]}  ${format_value(value, settings.unit, settings.decimals)}  (${((100 * value) / total).toFixed(0)}%)`,
      { size: 10 },
    );
    angle = end;
  });
  return out;
}

function interpolate_title(title: string, variables: Record<string, string>): string {
  return title.replace(/\$\{(\w+)\}/g, (match, name: string) => variables[name] ?? match);
}

export async function render_dashboard(
  store: Store,
  dashboard: Dashboard,
  context: GrafanaQueryContext,
  shown: Record<string, string>,
  source = 'seeded data',
): Promise<string> {
  const width = 24 * column_px;
  const header_h = 40;
  const height =
    header_h + Math.max(...dashboard.panels.map((p) => (p.gridPos.y + p.gridPos.h) * row_px)) + gap_px;
  const range = `${new Date(context.from_ms).toISOString().slice(0, 10)} to ${new Date(context.to_ms).toISOString().slice(0, 10)}`;
  let body = rect(0, 0, width, height, '#111217');
  body += text(12, 26, dashboard.title, { size: 16, weight: 'bold' });
  body += text(
    width - 12,
    26,
    `${range} · ${Object.entries(shown)
      .map(([k, v]) => `${k}: ${v}`)
      .join(' · ')} · ${source}`,
    { size: 11, anchor: 'end', fill: '#8e8e9e' },
  );
  for (const panel of dashboard.panels) {
    const x = panel.gridPos.x * column_px + gap_px / 2;
    const y = header_h + panel.gridPos.y * row_px;
    const w = panel.gridPos.w * column_px - gap_px;
    const h = panel.gridPos.h * row_px - gap_px;
    body += rect(x, y, w, h, '#181b1f', ' rx="3" stroke="#2c3235"');
    body += text(x + 8, y + 16, interpolate_title(panel.title, shown), { size: 12, weight: 'bold' });
    const rows = await store.query<Row>(expand_query(panel.targets[0]!.rawSql, context));
    const box = { x: x + 8, y: y + 24, w: w - 16, h: h - 30 };
    if (rows.length === 0)
      body += text(x + w / 2, y + h / 2, 'No data', { anchor: 'middle', fill: '#8e8e9e' });
    else if (panel.type === 'stat') body += draw_stat(panel, rows, box);
    else if (panel.type === 'timeseries') body += draw_timeseries(panel, rows, box, context);
    else if (panel.type === 'table') body += draw_table(panel, rows, box);
    else if (panel.type === 'barchart') body += draw_bars(panel, rows, box);
    else if (panel.type === 'piechart') body += draw_pie(panel, rows, box);
    else throw new Error(`no drawing for panel type ${panel.type}`);
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height.toFixed(0)}" viewBox="0 0 ${width} ${height.toFixed(0)}" font-family="Inter, Helvetica, Arial, sans-serif" role="img" aria-label="${escape_xml(dashboard.title)}"><title>${escape_xml(dashboard.title)} (${escape_xml(source)})</title>${body}</svg>\n`;
}

export const billing_dashboard_file = 'billing.json';

/**
 * A dashboard's SVG as a PNG, drawn by headless Chromium (Debian's, through playwright-core) at
 * the SVG's own size; written to `file` and returned.
 */
export async function svg_to_png(svg: string, file: string): Promise<Buffer> {
  const { chromium } = await import('playwright-core');
  const width = Number(/width="(\d+)"/.exec(svg)?.[1] ?? 1200);
  const height = Number(/height="(\d+)"/.exec(svg)?.[1] ?? 800);
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--disable-background-networking',
    ],
  });
  try {
    const page = await browser.newPage({ viewport: { width, height } });
    await page.setContent(
      `<!doctype html><html><body style="margin:0;background:#111217">${svg}</body></html>`,
    );
    const png = await page.screenshot({ path: file, clip: { x: 0, y: 0, width, height } });
    return png;
  } finally {
    await browser.close();
  }
}

async function main(): Promise<void> {
  const dashboards_dir = path
    .dirname(fileURLToPath(import.meta.url))
    .replace(`${path.sep}dist${path.sep}dashboards`, `${path.sep}dashboards`);
  const out_index = process.argv.indexOf('--out');
  const out_dir =
    out_index >= 0 ? path.resolve(process.argv[out_index + 1]!) : path.join(dashboards_dir, 'images');
  const build_dir = path.join(dashboards_dir, 'build');
  const data_dir = mkdtempSync(path.join(tmpdir(), 'evrate-render-'));
  const store = await open_chdb_store(data_dir, 'evrate');
  try {
    await migrate(store);
    await seed_store(store, seed_data());
    // The what-if dashboard shows scenarios priced by the real path over the seeded week.
    await seed_what_if(store);
    mkdirSync(out_dir, { recursive: true });
    const shown = { currency: 'EUR', tz: 'Europe/Berlin' };
    for (const file of readdirSync(build_dir)
      .filter((f) => f.endsWith('.json'))
      .sort()) {
      // The Billing dashboard shows the ledger's events, which the seeded week has none of: its
      // picture is drawn by test/billing-dashboard.test.ts from billing made by the real paths.
      if (file === billing_dashboard_file) continue;
      const dashboard = JSON.parse(readFileSync(path.join(build_dir, file), 'utf8')) as Dashboard;
      const base: GrafanaQueryContext = {
        from_ms: seed_week.from_ms,
        to_ms: seed_week.to_ms,
        // About 28 points over the week, as Grafana would pick for a small panel.
        interval_s: 21_600,
        variables: {
          database: { kind: 'identifier', value: store.database },
          station: { kind: 'values', selected: 'all', options: [] },
          party: { kind: 'values', selected: 'all', options: [] },
          currency: { kind: 'values', selected: [shown.currency], options: [shown.currency] },
          tz: { kind: 'values', selected: [shown.tz], options: [shown.tz] },
        },
      };
      const variables = { ...base.variables };
      for (const variable of dashboard.templating.list.filter(
        (v) => v.type === 'query' && (v.name === 'station' || v.name === 'party'),
      )) {
        const rows = await store.query<Row>(expand_query(variable.query, base));
        variables[variable.name] = {
          kind: 'values',
          selected: 'all',
          options: rows.map((r) => String(Object.values(r)[0])),
        };
      }
      // Variables of their own (what-if scenarios, billing): every value, or the first one.
      for (const variable of dashboard.templating.list.filter(
        (v) => v.type === 'query' && variables[v.name] === undefined,
      )) {
        const rows = await store.query<Row>(expand_query(variable.query, base));
        const options = rows.map((r) => String(Object.values(r)[0]));
        variables[variable.name] = {
          kind: 'values',
          selected: variable.multi === true ? 'all' : [options[0] ?? shown.currency],
          options,
        };
      }
      const svg = await render_dashboard(store, dashboard, { ...base, variables }, shown);
      const target = path.join(out_dir, file.replace(/\.json$/, '.svg'));
      writeFileSync(target, svg);
      process.stdout.write(`${path.relative(process.cwd(), target)} (${Math.round(svg.length / 1024)} kB)\n`);
    }
  } finally {
    await store.close();
    rmSync(data_dir, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await main();
}
