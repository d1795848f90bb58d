import { RowBinaryReader } from '../analytics/row-binary.js';
import { block_ms, local_block, zone_blocks } from './local-time.js';
import { facts_of_logged_rows, type LoggedFactRow, type SessionFacts } from './rerate.js';
import { type RatedVersion, replay_session, type SessionRules } from './session.js';
import type { Tariff } from './tariff.js';

/**
 * The pricing work of a what-if (rating/what-if.ts), on a worker thread: each session's stored
 * facts are replayed through the live reducer (replay_session, as re-rating does) once per
 * candidate tariff, and the results are summed into partial figures that the caller merges. Pure:
 * nothing is written anywhere.
 */

/** A selected session: its latest rated version (the "before") and the facts it was rated from. */
export interface WhatIfSession {
  session_id: string;
  station_id: string;
  payment_method: string;
  currency: string;
  energy_wh: number;
  started_at_ms: number;
  /** Totals of the latest rated version, as ClickHouse prints Decimal(18, 4). */
  before_excl_vat: string;
  before_incl_vat: string;
  provisional: boolean;
  version: number;
  /** The session's event log as read (any order, duplicates possible), or its facts rebuilt for an older session. */
  log?: LoggedColumns;
  facts?: SessionFacts;
}

/** A session's event log rows as parallel arrays (one query row per session). */
export interface LoggedColumns {
  seq: (number | string)[];
  idx: (number | string)[];
  received_at_ms: (number | string)[];
  kind: string[];
  fact: string[];
}

/** The log in (seq, idx) order, one row per key, as the reducer applied it. */
export function logged_rows(log: LoggedColumns): LoggedFactRow[] {
  const order = log.seq.map((_, i) => i);
  const seq = log.seq.map(Number);
  const idx = log.idx.map(Number);
  order.sort((a, b) => seq[a]! - seq[b]! || idx[a]! - idx[b]!);
  const rows: LoggedFactRow[] = [];
  let last = -1;
  for (const i of order) {
    if (last >= 0 && seq[i] === seq[last] && idx[i] === idx[last]) continue;
    rows.push({
      seq: seq[i]!,
      idx: idx[i]!,
      received_at_ms: log.received_at_ms[i]!,
      kind: log.kind[i]!,
      fact: log.fact[i]!,
    });
    last = i;
  }
  return rows;
}

export interface WhatIfTask {
  candidates: Tariff[];
  rules: SessionRules;
  sessions: WhatIfSession[];
  /** Sessions with the largest price change kept per candidate. */
  changes_max: number;
}

/** Sums in 1/10,000 of the currency unit (the scale of the stored Decimal(18, 4)), exact. */
export interface FigureSums {
  sessions: number;
  energy_wh: number;
  before_excl_vat: bigint;
  before_incl_vat: bigint;
  after_excl_vat: bigint;
  after_incl_vat: bigint;
  min_price_sessions: number;
  max_price_sessions: number;
}

export type WhatIfDimension = 'total' | 'station' | 'weekday_hour' | 'payment_method' | 'plan';

export interface WhatIfChange {
  session_id: string;
  station_id: string;
  started_at_ms: number;
  currency: string;
  before_excl_vat: bigint;
  after_excl_vat: bigint;
  before_incl_vat: bigint;
  after_incl_vat: bigint;
  price_limit_applied: string;
}

export interface CandidatePartial {
  /** Keyed by figure_key(dimension, key, currency). */
  figures: Map<string, FigureSums>;
  changes: WhatIfChange[];
  /** Sessions in another currency than the candidate's: not comparable, not counted. */
  other_currency: number;
  failed: number;
  /** The first few failures, for the report. */
  failures: { session_id: string; error: string }[];
}

export const failures_kept_max = 20;

export function figure_key(dimension: WhatIfDimension, key: string, currency: string): string {
  return JSON.stringify([dimension, key, currency]);
}

export function parse_figure_key(text: string): {
  dimension: WhatIfDimension;
  key: string;
  currency: string;
} {
  const [dimension, key, currency] = JSON.parse(text) as [WhatIfDimension, string, string];
  return { dimension, key, currency };
}

const decimal4 = /^(-?)(\d+)(?:\.(\d{1,4}))?$/;
const scale4 = [1, 1000, 100, 10, 1];

/** "5.85" as 58500n ten-thousandths; anything finer than 4 decimals is a bug upstream. */
export function units4(text: string): bigint {
  const m = decimal4.exec(text);
  if (m === null) throw new RangeError(`not a money amount with at most 4 decimals: ${text}`);
  const whole = m[2]!;
  const fraction = m[3] ?? '';
  // Up to 11 integer digits, whole x 10^4 + fraction stays below 2^53: exact as a number.
  if (whole.length <= 11) {
    const units =
      Number(whole) * 10_000 + (fraction === '' ? 0 : Number(fraction) * scale4[fraction.length]!);
    return BigInt(m[1] === '-' ? -units : units);
  }
  const units = BigInt(whole) * 10_000n + BigInt(`${fraction}0000`.slice(0, 4));
  return m[1] === '-' ? -units : units;
}

/** figure_key's texts, made once per (dimension, key, currency) of a task. */
class FigureKeys {
  private readonly cache = new Map<string, Map<string, string>>();

  of(dimension: WhatIfDimension, key: string, currency: string): string {
    const slot = `${dimension}\u0000${currency}`;
    let keys = this.cache.get(slot);
    if (keys === undefined) {
      keys = new Map();
      this.cache.set(slot, keys);
    }
    let text = keys.get(key);
    if (text === undefined) {
      text = figure_key(dimension, key, currency);
      keys.set(key, text);
    }
    return text;
  }
}

export function empty_sums(): FigureSums {
  return {
    sessions: 0,
    energy_wh: 0,
    before_excl_vat: 0n,
    before_incl_vat: 0n,
    after_excl_vat: 0n,
    after_incl_vat: 0n,
    min_price_sessions: 0,
    max_price_sessions: 0,
  };
}

export function add_sums(into: FigureSums, from: FigureSums): void {
  into.sessions += from.sessions;
  into.energy_wh += from.energy_wh;
  into.before_excl_vat += from.before_excl_vat;
  into.before_incl_vat += from.before_incl_vat;
  into.after_excl_vat += from.after_excl_vat;
  into.after_incl_vat += from.after_incl_vat;
  into.min_price_sessions += from.min_price_sessions;
  into.max_price_sessions += from.max_price_sessions;
}

function magnitude(c: WhatIfChange): bigint {
  const d = c.after_excl_vat - c.before_excl_vat;
  return d < 0n ? -d : d;
}

/** Largest absolute change first; ties by session id, so the answer does not depend on chunking. */
export function by_change(a: WhatIfChange, b: WhatIfChange): number {
  const ma = magnitude(a);
  const mb = magnitude(b);
  if (ma !== mb) return ma > mb ? -1 : 1;
  return a.session_id < b.session_id ? -1 : a.session_id > b.session_id ? 1 : 0;
}

export function keep_largest(changes: WhatIfChange[], max: number): WhatIfChange[] {
  return changes.sort(by_change).slice(0, max);
}

const weekday_number: Record<string, number> = {
  MONDAY: 1,
  TUESDAY: 2,
  WEDNESDAY: 3,
  THURSDAY: 4,
  FRIDAY: 5,
  SATURDAY: 6,
  SUNDAY: 7,
};

/** Weekday (1 = Monday, as ClickHouse toDayOfWeek) and hour of an instant in a zone. */
export function weekday_hour(at_ms: number, time_zone: string): string {
  const start = Math.floor(at_ms / block_ms) * block_ms;
  const block = local_block(zone_blocks(time_zone), start, time_zone);
  // Zone offsets are whole quarters of an hour: the block's minutes stay on its local day.
  const minute = block.start.minute_of_day + Math.floor((at_ms - start) / 60_000);
  return `${weekday_number[block.start.day_of_week]}-${Math.floor(minute / 60)}`;
}

/**
 * weekday_hour per 15-minute block of UTC time and zone: a block starts on a local quarter hour
 * (offsets are whole quarters), so all its instants share the weekday and the hour.
 */
class WeekdayHours {
  private readonly zones = new Map<string, Map<number, string>>();

  of(at_ms: number, time_zone: string): string {
    let blocks = this.zones.get(time_zone);
    if (blocks === undefined) {
      blocks = new Map();
      this.zones.set(time_zone, blocks);
    }
    const block = Math.floor(at_ms / block_ms);
    let slot = blocks.get(block);
    if (slot === undefined) {
      slot = weekday_hour(block * block_ms, time_zone);
      blocks.set(block, slot);
    }
    return slot;
  }
}

export function run_what_if_task(task: WhatIfTask): CandidatePartial[] {
  const partials: CandidatePartial[] = task.candidates.map(() => ({
    figures: new Map(),
    changes: [],
    other_currency: 0,
    failed: 0,
    failures: [],
  }));
  const keys = new FigureKeys();
  const slots = new WeekdayHours();
  // Per candidate: the smallest change kept at the last cut; a smaller one can never be kept.
  const kept_min = task.candidates.map(() => -1n);
  for (const session of task.sessions) {
    let facts: SessionFacts | undefined;
    try {
      facts =
        session.facts ??
        (session.log === undefined ? undefined : facts_of_logged_rows(logged_rows(session.log)));
    } catch (error) {
      facts = undefined;
      for (const p of partials) fail(p, session.session_id, (error as Error).message);
      continue;
    }
    if (facts === undefined) {
      for (const p of partials) fail(p, session.session_id, 'no facts stored for the session');
      continue;
    }
    const meta = facts.start.meta;
    const before_excl_vat = units4(session.before_excl_vat);
    const before_incl_vat = units4(session.before_incl_vat);
    const slot = slots.of(session.started_at_ms, meta.time_zone === '' ? 'UTC' : meta.time_zone);
    const plan = meta.plan?.name ?? '(none)';
    task.candidates.forEach((tariff, i) => {
      const partial = partials[i]!;
      if (tariff.currency !== session.currency) {
        partial.other_currency += 1;
        return;
      }
      let after: RatedVersion | undefined;
      try {
        after = replay_session(
          { ...facts.start, meta: { ...meta, tariff_id: tariff.id, tariff_version: 0 } },
          facts.events,
          tariff,
          task.rules,
          {
            close_provisionally: session.provisional,
            version_before: session.version,
            total_before: null,
          },
        ).version;
      } catch (error) {
        fail(partial, session.session_id, (error as Error).message);
        return;
      }
      if (after === undefined) {
        fail(partial, session.session_id, 'its facts end neither in a stop nor in silence');
        return;
      }
      const rated = after.rated;
      const sums: FigureSums = {
        sessions: 1,
        energy_wh: session.energy_wh,
        before_excl_vat,
        before_incl_vat,
        after_excl_vat: units4(rated.total_cost.excl_vat),
        after_incl_vat: units4(rated.total_cost.incl_vat),
        min_price_sessions: rated.price_limit_applied === 'min_price' ? 1 : 0,
        max_price_sessions: rated.price_limit_applied === 'max_price' ? 1 : 0,
      };
      const c = session.currency;
      add(partial, keys.of('total', '', c), sums);
      add(partial, keys.of('station', session.station_id, c), sums);
      add(partial, keys.of('weekday_hour', slot, c), sums);
      add(partial, keys.of('payment_method', session.payment_method, c), sums);
      add(partial, keys.of('plan', plan, c), sums);
      const change = sums.after_excl_vat - before_excl_vat;
      // Ties are broken by session id, so a change equal to the smallest kept may still be kept.
      if ((change < 0n ? -change : change) < kept_min[i]!) return;
      partial.changes.push({
        session_id: session.session_id,
        station_id: session.station_id,
        started_at_ms: session.started_at_ms,
        currency: c,
        before_excl_vat,
        after_excl_vat: sums.after_excl_vat,
        before_incl_vat,
        after_incl_vat: sums.after_incl_vat,
        price_limit_applied: rated.price_limit_applied ?? '',
      });
      if (partial.changes.length >= 4 * task.changes_max) {
        partial.changes = keep_largest(partial.changes, task.changes_max);
        kept_min[i] = magnitude(partial.changes.at(-1)!);
      }
    });
  }
  for (const p of partials) p.changes = keep_largest(p.changes, task.changes_max);
  return partials;
}

function add(partial: CandidatePartial, key: string, sums: FigureSums): void {
  let into = partial.figures.get(key);
  if (into === undefined) {
    into = empty_sums();
    partial.figures.set(key, into);
  }
  add_sums(into, sums);
}

function fail(partial: CandidatePartial, session_id: string, error: string): void {
  partial.failed += 1;
  if (partial.failures.length < failures_kept_max) partial.failures.push({ session_id, error });
}

/**
 * A chunk as ClickHouse answered it, in RowBinary (rating/what-if.ts read_packed_chunk): decoded
 * here, on the worker thread, so that the main thread only moves bytes (transferred, not copied).
 */
export interface PackedWhatIfTask {
  candidates: Tariff[];
  rules: SessionRules;
  changes_max: number;
  /** Rows of packed_session_columns, one per session. */
  sessions_bytes: Uint8Array;
  /** Rows of packed_event_columns, one per logged fact, in any order. */
  events_bytes: Uint8Array;
}

export interface PackedResult {
  partials: CandidatePartial[];
  sessions: number;
  /** Sessions without a logged start (rated before the log existed): the caller rebuilds their facts. */
  without_log: WhatIfSession[];
}

/** The columns read_packed_chunk selects from session_facts, with the types decode_sessions reads. */
export const packed_session_columns = `session_id, station_id, payment_method, currency,
  toInt64(energy_wh), toInt64(started_at_ms), toString(total_excl_vat), toString(total_incl_vat),
  toUInt8(provisional), toUInt32(version)`;

/** The columns read_packed_chunk selects from session_events, with the types decode_logs reads. */
export const packed_event_columns =
  'session_id, toUInt64(seq), toUInt32(idx), toInt64(received_at_ms), kind, fact';

export function decode_sessions(bytes: Uint8Array): WhatIfSession[] {
  const r = new RowBinaryReader(bytes);
  const sessions: WhatIfSession[] = [];
  while (!r.done) {
    sessions.push({
      session_id: r.string(),
      station_id: r.string(),
      payment_method: r.string(),
      currency: r.string(),
      energy_wh: r.int64(),
      started_at_ms: r.int64(),
      before_excl_vat: r.string(),
      before_incl_vat: r.string(),
      provisional: r.uint8() === 1,
      version: r.uint32(),
    });
  }
  return sessions;
}

export function decode_logs(bytes: Uint8Array): Map<string, LoggedColumns> {
  const r = new RowBinaryReader(bytes);
  const logs = new Map<string, LoggedColumns>();
  while (!r.done) {
    const session_id = r.string();
    let log = logs.get(session_id);
    if (log === undefined) {
      log = { seq: [], idx: [], received_at_ms: [], kind: [], fact: [] };
      logs.set(session_id, log);
    }
    log.seq.push(r.int64(false));
    log.idx.push(r.uint32());
    log.received_at_ms.push(r.int64());
    log.kind.push(r.string());
    log.fact.push(r.string());
  }
  return logs;
}

export function run_packed_task(task: PackedWhatIfTask): PackedResult {
  const logs = decode_logs(task.events_bytes);
  const all = decode_sessions(task.sessions_bytes);
  const sessions: WhatIfSession[] = [];
  const without_log: WhatIfSession[] = [];
  for (const session of all) {
    const log = logs.get(session.session_id);
    if (log?.kind.includes('start')) {
      session.log = log;
      sessions.push(session);
    } else without_log.push(session);
  }
  const partials = run_what_if_task({
    candidates: task.candidates,
    rules: task.rules,
    changes_max: task.changes_max,
    sessions,
  });
  return { partials, sessions: all.length, without_log };
}

/** Piscina entry point. */
export default function run(task: WhatIfTask | PackedWhatIfTask): CandidatePartial[] | PackedResult {
  return 'sessions_bytes' in task ? run_packed_task(task) : run_what_if_task(task);
}
