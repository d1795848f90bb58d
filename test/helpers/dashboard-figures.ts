import {
  charging_lookback_days,
  occupied_statuses,
  status_lookback_days,
} from '../../analytics/utilization.js';
import type { SeedData, SeedSession } from '../../dashboards/seed.js';

/**
 * What every dashboard panel must show for the seeded data, computed here in plain TypeScript
 * from the rows the seed wrote: not from SQL, so a wrong query cannot agree with itself.
 */
export interface FigureContext {
  from_s: number;
  to_s: number;
  interval_s: number;
  stations: readonly string[] | 'all';
  parties: readonly string[] | 'all';
  currency: string;
  tz: string;
}

export type Row = Record<string, string | number>;

export function time_text(s: number): string {
  return new Date(s * 1000).toISOString().slice(0, 19).replace('T', ' ');
}

function station_ok(ctx: FigureContext, station: string): boolean {
  return ctx.stations === 'all' || ctx.stations.includes(station);
}

function party_label(party: string): string {
  return party === '' ? 'own' : party;
}

function party_ok(ctx: FigureContext, party: string): boolean {
  return ctx.parties === 'all' || ctx.parties.includes(party_label(party));
}

/** Latest version of every session (what ReplacingMergeTree FINAL keeps). */
export function latest_sessions(data: SeedData): SeedSession[] {
  const latest = new Map<string, SeedSession>();
  for (const s of data.session_versions) {
    const seen = latest.get(s.session_id);
    if (seen === undefined || s.version > seen.version) latest.set(s.session_id, s);
  }
  return [...latest.values()];
}

function group<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = groups.get(k);
    if (list === undefined) groups.set(k, [item]);
    else list.push(item);
  }
  return groups;
}

const sum = (values: readonly number[]) => values.reduce((a, b) => a + b, 0);
const by = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

interface Interval {
  key: string[];
  state: string | number;
  from_s: number;
  to_s: number;
}

/** Each event holds until the key's next event (or the range end), cut to the range. */
function intervals<T>(
  events: readonly T[],
  ctx: FigureContext,
  key: (e: T) => string[],
  at: (e: T) => number,
  state: (e: T) => string | number,
): Interval[] {
  const out: Interval[] = [];
  const groups = group(
    events.filter((e) => at(e) <= ctx.to_s),
    (e) => JSON.stringify(key(e)),
  );
  for (const list of groups.values()) {
    const sorted = [...list].sort((a, b) => at(a) - at(b));
    sorted.forEach((e, i) => {
      const start = at(e);
      const end = i + 1 < sorted.length ? at(sorted[i + 1]!) : ctx.to_s;
      if (end <= ctx.from_s || start >= ctx.to_s) return;
      const from_s = Math.max(start, ctx.from_s);
      const to_s = Math.min(end, ctx.to_s);
      if (to_s > from_s) out.push({ key: key(e), state: state(e), from_s, to_s });
    });
  }
  return out;
}

/**
 * Occupied and charging time per EVSE by the operator API's rules (analytics/utilization.ts,
 * whose status list and lookbacks are imported so the dashboards cannot drift from the API):
 * occupied from the statuses (the one in force at the range start from the status lookback) and
 * the sessions' times, merged; charging from the sessions (start plus duration minus idle time,
 * merged), and the EVSEs that count.
 */
interface Utilization {
  occupied: Interval[];
  charging: Interval[];
  /** "station|evse" of every EVSE that counts. */
  evses: Set<string>;
}

const evse_key = (station: string, evse: number | string) => `${station}|${evse}`;

function utilization_of(data: SeedData, ctx: FigureContext): Utilization {
  const status_since_s = ctx.from_s - status_lookback_days * 86_400;
  const statuses = data.statuses.filter(
    (s) =>
      !(s.evse_id === 0 && s.connector_id === 0) &&
      station_ok(ctx, s.charge_point_id) &&
      s.at_s >= status_since_s &&
      s.at_s <= ctx.to_s,
  );
  const evse_of = (s: SeedData['statuses'][number]) => (s.evse_id > 0 ? s.evse_id : s.connector_id);
  const occupied = intervals(
    statuses,
    ctx,
    (s) => [s.charge_point_id, String(evse_of(s))],
    (s) => s.at_s,
    (s) => s.status,
  ).filter((i) => (occupied_statuses as readonly string[]).includes(String(i.state)));
  const charging_since_s = ctx.from_s - charging_lookback_days * 86_400;
  const sessions = latest_sessions(data).filter(
    (s) => station_ok(ctx, s.station) && s.started_s >= charging_since_s && s.started_s <= ctx.to_s,
  );
  // A session's time is occupied whatever the statuses say; charging ends at its stop at the latest.
  const session_times = sessions.map((s) => ({
    key: [s.station, String(s.evse)],
    state: 'occupied',
    from_s: Math.max(s.started_s, ctx.from_s),
    to_s: Math.min(s.stopped_s, ctx.to_s),
  }));
  const charging = sessions.map((s) => {
    const charging_s = Math.max(s.stopped_s - s.started_s - s.parking_s, 0);
    return {
      key: [s.station, String(s.evse)],
      state: 'charging',
      from_s: Math.max(s.started_s, ctx.from_s),
      to_s: Math.min(s.started_s + charging_s, s.stopped_s, ctx.to_s),
    };
  });
  const evses = new Set([
    ...statuses.map((s) => evse_key(s.charge_point_id, evse_of(s))),
    ...sessions.map((s) => evse_key(s.station, s.evse)),
  ]);
  return { occupied: union_of([...occupied, ...session_times]), charging: union_of(charging), evses };
}

/** The intervals of each key merged where they overlap or touch: each second counted once. */
function union_of(intervals: readonly Interval[]): Interval[] {
  const by_key = new Map<string, Interval[]>();
  for (const i of intervals) {
    if (i.to_s <= i.from_s) continue;
    const k = JSON.stringify(i.key);
    by_key.set(k, [...(by_key.get(k) ?? []), i]);
  }
  const out: Interval[] = [];
  for (const list of by_key.values()) {
    list.sort((a, b) => a.from_s - b.from_s);
    let current: Interval | undefined;
    for (const i of list) {
      if (current !== undefined && i.from_s <= current.to_s) {
        current.to_s = Math.max(current.to_s, i.to_s);
      } else {
        current = { ...i };
        out.push(current);
      }
    }
  }
  return out;
}

const length_s = (list: readonly Interval[]) => sum(list.map((i) => i.to_s - i.from_s));

/** Pieces of each interval per Grafana interval bucket (index = floor(t / interval)). */
function bucketed(list: readonly Interval[], interval_s: number): { b: number; part: Interval }[] {
  const out: { b: number; part: Interval }[] = [];
  for (const i of list) {
    if (i.to_s <= i.from_s) continue;
    for (let b = Math.floor(i.from_s / interval_s); b <= Math.floor((i.to_s - 1) / interval_s); b++) {
      const from_s = Math.max(i.from_s, b * interval_s);
      const to_s = Math.min(i.to_s, (b + 1) * interval_s);
      out.push({ b, part: { ...i, from_s, to_s } });
    }
  }
  return out;
}

function local_parts(s: number, tz: string): { weekday: number; hour: number; midnight_s: number } {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-GB', {
      timeZone: tz,
      weekday: 'short',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      hourCycle: 'h23',
    })
      .formatToParts(new Date(s * 1000))
      .map((p) => [p.type, p.value]),
  );
  const wall_s =
    Date.UTC(
      Number(parts.year),
      Number(parts.month) - 1,
      Number(parts.day),
      Number(parts.hour),
      Number(parts.minute),
      Number(parts.second),
    ) / 1000;
  const offset_s = wall_s - s;
  // The seeded week has no DST change, so the offset at the instant is the offset at midnight.
  const midnight_s =
    Date.UTC(Number(parts.year), Number(parts.month) - 1, Number(parts.day)) / 1000 - offset_s;
  const weekday = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'].indexOf(parts.weekday!) + 1;
  return { weekday, hour: Number(parts.hour), midnight_s };
}

const e4 = (values: readonly number[]) => sum(values) / 10_000;
const hour_key = (h: number) => `${String(h).padStart(2, '0')}:00`;

function weekday_grid(
  sessions: readonly SeedSession[],
  ctx: FigureContext,
  value: (s: SeedSession) => number,
): Row[] {
  const names = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];
  const days = group(sessions, (s) => String(local_parts(s.started_s, ctx.tz).weekday));
  return [...days.entries()]
    .sort((a, b) => Number(a[0]) - Number(b[0]))
    .map(([day, list]) => {
      const row: Row = { weekday: names[Number(day) - 1]! };
      for (let h = 0; h < 24; h++)
        row[hour_key(h)] = sum(list.filter((s) => local_parts(s.started_s, ctx.tz).hour === h).map(value));
      return row;
    });
}

/** Expected rows of every panel, by dashboard uid and panel title (as written in the source). */
export function expected_figures(data: SeedData, ctx: FigureContext): Record<string, () => Row[]> {
  const sessions = latest_sessions(data);
  const base = sessions.filter((s) => station_ok(ctx, s.station) && party_ok(ctx, s.party));
  const stopped = base.filter((s) => s.stopped_s >= ctx.from_s && s.stopped_s <= ctx.to_s);
  const started = base.filter((s) => s.started_s >= ctx.from_s && s.started_s <= ctx.to_s);
  const stopped_currency = stopped.filter((s) => s.currency === ctx.currency);
  const I = ctx.interval_s;
  const bucket_time = (b: number) => time_text(b * I);
  const energy_kwh = (list: readonly SeedSession[]) => sum(list.map((s) => s.energy_wh)) / 1000;
  const revenue = (list: readonly SeedSession[]) => e4(list.map((s) => s.total_excl_vat_e4));
  const revenue_incl = (list: readonly SeedSession[]) => e4(list.map((s) => s.total_incl_vat_e4));
  const per_kwh = (list: readonly SeedSession[]) => revenue(list) / energy_kwh(list);

  const received_in_range = data.meter_values.filter((m) => {
    const s = Math.floor(m.received_at_ms / 1000);
    return s >= ctx.from_s && s <= ctx.to_s && station_ok(ctx, m.charge_point_id);
  });
  const rejections = data.rejections.filter(
    (r) => r.at_s >= ctx.from_s && r.at_s <= ctx.to_s && station_ok(ctx, r.charge_point_id),
  );
  const connections = data.connections.filter((c) => station_ok(ctx, c.charge_point_id));

  const span_s = ctx.to_s - ctx.from_s;
  const bucket_span_s = (b: number) => Math.min((b + 1) * I, ctx.to_s) - Math.max(b * I, ctx.from_s);
  const u = utilization_of(data, ctx);
  const station_of = (key: string) => key.slice(0, key.lastIndexOf('|'));
  const evses_of_station = (station: string) => [...u.evses].filter((k) => station_of(k) === station).length;
  const occupied_pieces = bucketed(u.occupied, I);
  const charging_pieces = bucketed(u.charging, I);
  const in_bucket = (pieces: { b: number; part: Interval }[], b: number, station?: string) =>
    length_s(
      pieces
        .filter((x) => x.b === b && (station === undefined || x.part.key[0] === station))
        .map((x) => x.part),
    );
  const of_key = (list: readonly Interval[], key: string) =>
    list.filter((i) => evse_key(i.key[0]!, i.key[1]!) === key);
  const of_station = (list: readonly Interval[], station: string) => list.filter((i) => i.key[0] === station);
  const stations = [...new Set([...u.evses].map(station_of))];

  return {
    'evrate-utilization/Occupancy': () => [
      { occupied_pct: (100 * length_s(u.occupied)) / (u.evses.size * span_s) },
    ],
    'evrate-utilization/Charging': () => [
      { charging_pct: (100 * length_s(u.charging)) / (u.evses.size * span_s) },
    ],
    'evrate-utilization/Energy delivered': () => [{ energy_kwh: energy_kwh(stopped) }],
    'evrate-utilization/Sessions': () => [{ sessions: stopped.length }],
    'evrate-utilization/Occupancy and charging over time': () => {
      const rows: Row[] = [];
      for (let b = Math.floor(ctx.from_s / I); b <= Math.floor((ctx.to_s - 1) / I); b++) {
        rows.push({
          time: bucket_time(b),
          occupied_pct: (100 * in_bucket(occupied_pieces, b)) / (u.evses.size * bucket_span_s(b)),
          charging_pct: (100 * in_bucket(charging_pieces, b)) / (u.evses.size * bucket_span_s(b)),
        });
      }
      return rows;
    },
    'evrate-utilization/Occupancy per station': () => {
      const rows: Row[] = [];
      for (let b = Math.floor(ctx.from_s / I); b <= Math.floor((ctx.to_s - 1) / I); b++) {
        for (const station of [...stations].sort(by)) {
          rows.push({
            time: bucket_time(b),
            station,
            occupied_pct:
              (100 * in_bucket(occupied_pieces, b, station)) / (evses_of_station(station) * bucket_span_s(b)),
          });
        }
      }
      return rows;
    },
    'evrate-utilization/Occupancy per station and EVSE': () =>
      [...u.evses]
        .map((key) => ({
          station: station_of(key),
          evse: Number(key.slice(key.lastIndexOf('|') + 1)),
          occupied_pct: (100 * length_s(of_key(u.occupied, key))) / span_s,
          charging_pct: (100 * length_s(of_key(u.charging, key))) / span_s,
        }))
        .sort((x, y) => by(x.station, y.station) || x.evse - y.evse),
    'evrate-utilization/Energy delivered per interval': () =>
      [...group(stopped, (s) => String(Math.floor(s.stopped_s / I))).entries()]
        .sort((a, b) => Number(a[0]) - Number(b[0]))
        .map(([b, list]) => ({ time: bucket_time(Number(b)), energy_kwh: energy_kwh(list) })),
    'evrate-utilization/Underutilized stations (least occupied first)': () =>
      stations
        .map((station) => {
          const evses = evses_of_station(station);
          const list = stopped.filter((s) => s.station === station);
          return {
            station,
            evses,
            occupied_pct: (100 * length_s(of_station(u.occupied, station))) / (evses * span_s),
            charging_pct: (100 * length_s(of_station(u.charging, station))) / (evses * span_s),
            sessions: list.length,
            energy_kwh: energy_kwh(list),
          };
        })
        .sort((x, y) => x.occupied_pct - y.occupied_pct || by(x.station, y.station))
        .slice(0, 20),
    'evrate-utilization/Idle time: plugged in, not charging': () =>
      [...group(stopped, (s) => s.station).entries()]
        .map(([station, list]) => ({
          station,
          idle_h: sum(list.map((s) => s.parking_s)) / 3600,
          idle_pct_of_plugged:
            (100 * sum(list.map((s) => s.parking_s))) / sum(list.map((s) => s.stopped_s - s.started_s)),
        }))
        .sort((x, y) => y.idle_h - x.idle_h || by(x.station, y.station)),

    'evrate-peak-hours/Sessions started: weekday × hour': () => weekday_grid(started, ctx, () => 1),
    'evrate-peak-hours/Energy (kWh) by start: weekday × hour': () =>
      weekday_grid(started, ctx, (s) => s.energy_wh / 1000),
    'evrate-peak-hours/Revenue excl. VAT (${currency}) by start: weekday × hour': () =>
      weekday_grid(
        started.filter((s) => s.currency === ctx.currency),
        ctx,
        (s) => s.total_excl_vat_e4 / 10_000,
      ),
    'evrate-peak-hours/Concurrent sessions (average per interval)': () => {
      const plugged: Interval[] = base
        .filter((s) => s.stopped_s > s.started_s && s.started_s <= ctx.to_s && s.stopped_s >= ctx.from_s)
        .map((s) => ({
          key: [s.session_id],
          state: 1,
          from_s: Math.max(s.started_s, ctx.from_s),
          to_s: Math.min(s.stopped_s, ctx.to_s),
        }));
      return [
        ...group(
          bucketed(
            plugged.filter((i) => i.to_s > i.from_s),
            I,
          ),
          (x) => String(x.b),
        ).entries(),
      ]
        .sort((a, b) => Number(a[0]) - Number(b[0]))
        .map(([b, list]) => {
          const span = Math.min((Number(b) + 1) * I, ctx.to_s) - Math.max(Number(b) * I, ctx.from_s);
          return {
            time: bucket_time(Number(b)),
            concurrent_sessions: sum(list.map((x) => x.part.to_s - x.part.from_s)) / span,
          };
        });
    },
    'evrate-peak-hours/Sessions by hour of day': () =>
      [...group(started, (s) => String(local_parts(s.started_s, ctx.tz).hour)).entries()]
        .sort((a, b) => Number(a[0]) - Number(b[0]))
        .map(([h, list]) => ({ hour_of_day: hour_key(Number(h)), sessions: list.length })),

    'evrate-revenue/Key figures (${currency})': () => [
      {
        revenue_excl_vat: revenue(stopped_currency),
        revenue_incl_vat: revenue_incl(stopped_currency),
        sessions: stopped_currency.length,
        revenue_per_session: revenue(stopped_currency) / stopped_currency.length,
        revenue_per_kwh: per_kwh(stopped_currency),
        avg_duration_s: sum(stopped_currency.map((s) => s.stopped_s - s.started_s)) / stopped_currency.length,
        avg_energy_kwh: energy_kwh(stopped_currency) / stopped_currency.length,
      },
    ],
    'evrate-revenue/Revenue by day (${currency})': () =>
      [...group(stopped_currency, (s) => String(local_parts(s.stopped_s, ctx.tz).midnight_s)).entries()]
        .sort((a, b) => Number(a[0]) - Number(b[0]))
        .map(([midnight, list]) => ({
          time: time_text(Number(midnight)),
          revenue_excl_vat: revenue(list),
          revenue_incl_vat: revenue_incl(list),
        })),
    'evrate-revenue/Revenue by station (${currency})': () =>
      [...group(stopped_currency, (s) => s.station).entries()]
        .map(([station, list]) => ({
          station,
          sessions: list.length,
          energy_kwh: energy_kwh(list),
          revenue_excl_vat: revenue(list),
          revenue_incl_vat: revenue_incl(list),
          revenue_per_kwh: per_kwh(list),
        }))
        .sort((x, y) => y.revenue_excl_vat - x.revenue_excl_vat || by(x.station, y.station)),
    'evrate-revenue/Revenue by tariff (${currency})': () =>
      [...group(stopped_currency, (s) => `${s.tariff_id} v${s.tariff_version}`).entries()]
        .map(([tariff, list]) => ({ tariff, sessions: list.length, revenue_excl_vat: revenue(list) }))
        .sort((x, y) => y.revenue_excl_vat - x.revenue_excl_vat || by(x.tariff, y.tariff)),
    'evrate-revenue/Revenue by payment method (${currency})': () =>
      [...group(stopped_currency, (s) => s.payment_method || 'UNKNOWN').entries()]
        .map(([method, list]) => ({ method, revenue_excl_vat: revenue(list) }))
        .sort((x, y) => y.revenue_excl_vat - x.revenue_excl_vat || by(x.method, y.method)),
    'evrate-revenue/Revenue by operator / party (${currency})': () =>
      [...group(stopped_currency, (s) => party_label(s.party)).entries()]
        .map(([party_id, list]) => ({
          party_id,
          sessions: list.length,
          energy_kwh: energy_kwh(list),
          revenue_excl_vat: revenue(list),
        }))
        .sort((x, y) => y.revenue_excl_vat - x.revenue_excl_vat || by(x.party_id, y.party_id)),
    'evrate-revenue/Revenue by currency (all currencies)': () =>
      [...group(stopped, (s) => s.currency).entries()]
        .map(([currency, list]) => ({
          currency,
          sessions: list.length,
          revenue_excl_vat: revenue(list),
          revenue_incl_vat: revenue_incl(list),
        }))
        .sort((x, y) => by(x.currency, y.currency)),

    'evrate-operations/Rating lag': () => [
      {
        lag_s:
          Math.min(Math.floor(Date.now() / 1000), ctx.to_s) -
          Math.floor(Math.max(...received_in_range.map((m) => m.received_at_ms)) / 1000),
      },
    ],
    'evrate-operations/Connected chargers': () => {
      const last = new Map<string, { at_s: number; connected: number }>();
      for (const c of connections.filter((c) => c.at_s <= ctx.to_s)) {
        const key = JSON.stringify([c.charge_point_id, c.node_id]);
        const seen = last.get(key);
        if (seen === undefined || c.at_s > seen.at_s) last.set(key, c);
      }
      const connected = new Set(
        [...last.entries()].filter(([, v]) => v.connected === 1).map(([k]) => (JSON.parse(k) as string[])[0]),
      );
      return [{ connected_chargers: connected.size }];
    },
    'evrate-operations/Rejected frames': () => [{ rejected_frames: rejections.length }],
    'evrate-operations/Meter values written': () => [{ meter_values: received_in_range.length }],
    'evrate-operations/Meter values ingested per second': () =>
      [
        ...group(received_in_range, (m) =>
          String(Math.floor(Math.floor(m.received_at_ms / 1000) / I)),
        ).entries(),
      ]
        .sort((a, b) => Number(a[0]) - Number(b[0]))
        .map(([b, list]) => ({ time: bucket_time(Number(b)), meter_values_per_s: list.length / I })),
    'evrate-operations/Chargers connected (during each interval)': () => {
      const up = intervals(
        connections,
        ctx,
        (c) => [c.charge_point_id, c.node_id],
        (c) => c.at_s,
        (c) => c.connected,
      ).filter((i) => i.state === 1);
      return [...group(bucketed(up, I), (x) => String(x.b)).entries()]
        .sort((a, b) => Number(a[0]) - Number(b[0]))
        .map(([b, list]) => ({
          time: bucket_time(Number(b)),
          connected_chargers: new Set(list.map((x) => x.part.key[0])).size,
        }));
    },
    'evrate-operations/Rejected frames by error code': () =>
      [...group(rejections, (r) => JSON.stringify([Math.floor(r.at_s / I), r.error_code])).entries()]
        .map(([k, list]) => {
          const [b, error_code] = JSON.parse(k) as [number, string];
          return { b, error_code, frames: list.length };
        })
        .sort((x, y) => x.b - y.b || by(x.error_code, y.error_code))
        .map(({ b, error_code, frames }) => ({ time: bucket_time(b), error_code, frames })),
    'evrate-operations/Rejected frames by error code and action': () =>
      [...group(rejections, (r) => JSON.stringify([r.error_code, r.action])).entries()]
        .map(([k, list]) => {
          const [error_code, action] = JSON.parse(k) as [string, string];
          return {
            error_code,
            action,
            frames: list.length,
            chargers: new Set(list.map((r) => r.charge_point_id)).size,
          };
        })
        .sort((x, y) => y.frames - x.frames || by(x.error_code, y.error_code) || by(x.action, y.action)),
  };
}

/** Values of the query variables: stations, parties and currencies present in the data. */
export function expected_variable_values(data: SeedData): Record<string, string[]> {
  const sessions = data.session_versions;
  const uniq = (values: string[]) => [...new Set(values)].sort(by);
  return {
    station: uniq([...data.statuses.map((s) => s.charge_point_id), ...sessions.map((s) => s.station)]),
    party: uniq(sessions.map((s) => party_label(s.party))),
    currency: uniq(sessions.map((s) => s.currency)),
  };
}

/**
 * Allowed difference between a figure ClickHouse returns and the exact one, from the rounding
 * its query applies (round(x, 2) for percentages, 3 for kWh, ...). Money sums are exact.
 */
export function tolerance(field: string): number {
  if (field.includes('_pct') || field === 'idle_h' || field === 'concurrent_sessions') return 0.005 + 1e-9;
  if (field === 'avg_duration_s') return 0.05 + 1e-9;
  if (field.includes('kwh') && !field.startsWith('revenue')) return 0.0005 + 1e-9;
  if (field.startsWith('revenue_per') || field === 'meter_values_per_s') return 0.00005 + 1e-9;
  // Float sums of money and energy in the hour grids and Decimal(18, 4) sums.
  return 1e-6;
}
