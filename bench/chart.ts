/**
 * A small SVG chart of a run: meter values answered and stored per second (top) and the
 * charger-observed answer time p50/p99 (bottom, log scale) over time. No dependency: the
 * harness must run anywhere Node runs.
 */
import type { SeriesPoint } from './result.js';

const width = 960;
const panel_height = 260;
const margin = { left: 80, right: 170, top: 40, bottom: 40 };
const colors = ['#1f77b4', '#2ca02c', '#ff7f0e', '#d62728', '#9467bd', '#8c564b'];

interface Line {
  label: string;
  points: [number, number][];
}

function escape_xml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function nice_max(x: number): number {
  if (!(x > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(x));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= x) return m * p;
  return 10 * p;
}

function panel(title: string, unit: string, lines: Line[], y0: number, t_max: number, log: boolean): string {
  const plot_w = width - margin.left - margin.right;
  const plot_h = panel_height - margin.top - margin.bottom;
  const values = lines.flatMap((l) => l.points.map((p) => p[1])).filter((v) => Number.isFinite(v) && v > 0);
  const v_max = log ? 10 ** Math.ceil(Math.log10(Math.max(...values, 1))) : nice_max(Math.max(...values, 0));
  const v_min = log ? 10 ** Math.floor(Math.log10(Math.max(Math.min(...values, v_max), 1e-3))) : 0;
  const x = (t: number) => margin.left + (t / t_max) * plot_w;
  const y = (v: number) => {
    const f = log
      ? (Math.log10(v) - Math.log10(v_min)) / (Math.log10(v_max) - Math.log10(v_min) || 1)
      : v / v_max;
    return y0 + margin.top + plot_h - Math.max(0, Math.min(1, f)) * plot_h;
  };
  const out: string[] = [];
  out.push(
    `<text x="${margin.left}" y="${y0 + 24}" font-size="15" font-weight="bold">${escape_xml(title)}</text>`,
  );
  out.push(
    `<rect x="${margin.left}" y="${y0 + margin.top}" width="${plot_w}" height="${plot_h}" fill="none" stroke="#999"/>`,
  );
  const ticks = log
    ? Array.from({ length: Math.round(Math.log10(v_max / v_min)) + 1 }, (_, i) => v_min * 10 ** i)
    : Array.from({ length: 5 }, (_, i) => (v_max * i) / 4);
  for (const v of ticks) {
    out.push(
      `<line x1="${margin.left}" x2="${margin.left + plot_w}" y1="${y(v)}" y2="${y(v)}" stroke="#eee"/>`,
    );
    out.push(
      `<text x="${margin.left - 6}" y="${y(v) + 4}" font-size="11" text-anchor="end">${v.toLocaleString('en-US', { maximumFractionDigits: 3 })}</text>`,
    );
  }
  out.push(
    `<text x="16" y="${y0 + margin.top + plot_h / 2}" font-size="12" transform="rotate(-90 16 ${y0 + margin.top + plot_h / 2})" text-anchor="middle">${escape_xml(unit)}</text>`,
  );
  for (let i = 0; i <= 5; i++) {
    const t = (t_max * i) / 5;
    out.push(
      `<text x="${x(t)}" y="${y0 + margin.top + plot_h + 16}" font-size="11" text-anchor="middle">${t.toFixed(0)} s</text>`,
    );
  }
  lines.forEach((line, i) => {
    const color = colors[i % colors.length]!;
    const path = line.points
      .filter((p) => Number.isFinite(p[1]) && (!log || p[1] > 0))
      .map((p, j) => `${j === 0 ? 'M' : 'L'}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`)
      .join(' ');
    if (path !== '') out.push(`<path d="${path}" fill="none" stroke="${color}" stroke-width="1.6"/>`);
    const ly = y0 + margin.top + 14 + i * 18;
    out.push(
      `<line x1="${width - margin.right + 12}" x2="${width - margin.right + 32}" y1="${ly - 4}" y2="${ly - 4}" stroke="${color}" stroke-width="3"/>`,
    );
    out.push(
      `<text x="${width - margin.right + 38}" y="${ly}" font-size="12">${escape_xml(line.label)}</text>`,
    );
  });
  return out.join('\n');
}

export function render_chart(title: string, series: readonly SeriesPoint[]): string {
  const t_max = Math.max(1, ...series.map((p) => p.t_s));
  const targets = [...new Set(series.map((p) => p.target))];
  const of = (target: string, pick: (p: SeriesPoint) => number): [number, number][] =>
    series.filter((p) => p.target === target).map((p) => [p.t_s, pick(p)]);
  const throughput: Line[] = targets.flatMap((t) => [
    { label: `${t} answered`, points: of(t, (p) => p.answered_per_s) },
    ...(series.some((p) => p.target === t && Number.isFinite(p.stored_per_s))
      ? [{ label: `${t} stored`, points: of(t, (p) => p.stored_per_s) }]
      : []),
  ]);
  const latency: Line[] = targets.flatMap((t) => [
    { label: `${t} p50`, points: of(t, (p) => p.answer_ms_p50) },
    { label: `${t} p99`, points: of(t, (p) => p.answer_ms_p99) },
  ]);
  const height = 2 * panel_height + 30;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${width / 2}" y="20" font-size="16" text-anchor="middle">${escape_xml(title)}</text>`,
    panel('Meter values per second (sampled values)', 'values/s', throughput, 20, t_max, false),
    panel(
      'Answer time observed by chargers (MeterValues)',
      'ms (log)',
      latency,
      20 + panel_height,
      t_max,
      true,
    ),
    '</svg>',
    '',
  ].join('\n');
}
