import { randomUUID } from 'node:crypto';
import { Piscina } from 'piscina';
import { and, final_settings, money_per, money_sum_text } from '../analytics/query-filter.js';
import { ident, SqlFragment, sql } from '../analytics/sql.js';
import type { Store } from '../analytics/store.js';
import { FieldError } from '../core/field-error.js';
import { Money } from '../core/money.js';
import { built_module } from '../core/paths.js';
import { type StoredRow, stored_facts } from './rerate.js';
import type { SessionRules } from './session.js';
import { type CpoParty, normalise_tariff, type Tariff, TariffValidationError } from './tariff.js';
import {
  add_sums,
  type CandidatePartial,
  empty_sums,
  type FigureSums,
  failures_kept_max,
  keep_largest,
  type LoggedColumns,
  type PackedResult,
  type PackedWhatIfTask,
  packed_event_columns,
  packed_session_columns,
  parse_figure_key,
  run_packed_task,
  run_what_if_task,
  type WhatIfChange,
  type WhatIfSession,
  type WhatIfTask,
} from './what-if-worker.js';

/**
 * Pricing what-if: what a candidate tariff (not published) would have earned on a past period.
 * The selected sessions' stored facts (the session event log, analytics/session-events.ts) are
 * read from ClickHouse in chunks of stations and replayed through the live reducer on worker
 * threads (rating/what-if-worker.ts), once per candidate; the "before" is each session's latest
 * rated version. The figures (total, station, weekday x hour, payment method, plan), the sessions
 * whose price changes most and the share hitting min_price/max_price are stored as a named
 * scenario (analytics/what-if-tables.ts). Rated sessions are only read, never written.
 */

export interface WhatIfSelection {
  from_ms: number;
  to_ms: number;
  station_ids?: string[];
  charge_point_ids?: string[];
  evses?: { charge_point_id: string; evse_id: number }[];
  payment_methods?: string[];
  parties?: string[];
}

export interface WhatIfRequest {
  name: string;
  selection: WhatIfSelection;
  tariffs: Tariff[];
}

/** A tariff that does not validate: the API answers 422 naming the field. */
export class WhatIfTariffError extends FieldError {}
/** Anything else wrong with the request: 400 naming the field. */
export class WhatIfRequestError extends FieldError {}

export const candidates_max = 8;
const list_max = 1000;
/** Sessions read and priced per chunk (one chunk of stations); a single station may exceed it. */
export const chunk_sessions_max = 5_000;
export const changes_max = 50;

type Json = Record<string, unknown>;

function bad(field: string, rule: string): never {
  throw new WhatIfRequestError(field, rule);
}

function time_of(body: Json, field: string): number {
  const text = body[field];
  if (typeof text !== 'string') bad(field, 'is required: an RFC 3339 date-time with a zone');
  const ms = Date.parse(text);
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(text) || Number.isNaN(ms))
    bad(field, 'must be an RFC 3339 date-time with a zone, e.g. 2026-11-01T00:00:00Z');
  return ms;
}

function strings_of(body: Json, field: string): string[] | undefined {
  const value = body[field];
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.length === 0 || value.length > list_max)
    bad(field, `must be a list of 1 to ${list_max} strings`);
  return value.map((v, i) => {
    if (typeof v !== 'string' || v.length === 0 || v.length > 255)
      bad(`${field}[${i}]`, 'must be a non-empty string of at most 255 characters');
    return v;
  });
}

const request_fields = new Set([
  'name',
  'from',
  'to',
  'tariffs',
  'station_ids',
  'charge_point_ids',
  'evses',
  'payment_methods',
  'parties',
]);

/**
 * A what-if request body (API and CLI): `tariffs` are OCPI Tariff objects validated exactly as an
 * imported tariff (`PUT /v1/tariffs/{id}`, `evrate rate --tariff`): rating/tariff.ts.
 */
export function parse_what_if_request(body: unknown, cpo: CpoParty): WhatIfRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    bad('(body)', 'must be a JSON object');
  const b = body as Json;
  for (const key of Object.keys(b)) if (!request_fields.has(key)) bad(key, 'is not a what-if field');
  const name = b.name ?? '';
  if (typeof name !== 'string' || name.length > 100)
    bad('name', 'must be a string of at most 100 characters');
  const from_ms = time_of(b, 'from');
  const to_ms = time_of(b, 'to');
  if (to_ms <= from_ms) bad('to', 'must be after from');
  if (!Array.isArray(b.tariffs) || b.tariffs.length === 0 || b.tariffs.length > candidates_max)
    bad('tariffs', `must be a list of 1 to ${candidates_max} OCPI tariffs`);
  const tariffs = b.tariffs.map((value: unknown, i: number) => {
    try {
      return normalise_tariff(value, cpo);
    } catch (error) {
      if (error instanceof TariffValidationError)
        throw new WhatIfTariffError(
          error.field.startsWith('(') ? `tariffs[${i}]` : `tariffs[${i}].${error.field}`,
          error.rule,
        );
      throw error;
    }
  });
  const selection: WhatIfSelection = { from_ms, to_ms };
  const station_ids = strings_of(b, 'station_ids');
  const charge_point_ids = strings_of(b, 'charge_point_ids');
  const payment_methods = strings_of(b, 'payment_methods');
  const parties = strings_of(b, 'parties');
  const evses = strings_of(b, 'evses')?.map((text, i) => {
    const cut = text.lastIndexOf('/');
    const evse_id = Number(text.slice(cut + 1));
    if (cut <= 0 || !/^\d{1,9}$/.test(text.slice(cut + 1)))
      bad(`evses[${i}]`, 'must be "<charge point id>/<EVSE id>", e.g. "CP-1/1"');
    return { charge_point_id: text.slice(0, cut), evse_id };
  });
  if (station_ids !== undefined) selection.station_ids = station_ids;
  if (charge_point_ids !== undefined) selection.charge_point_ids = charge_point_ids;
  if (evses !== undefined) selection.evses = evses;
  if (payment_methods !== undefined) selection.payment_methods = payment_methods;
  if (parties !== undefined) selection.parties = parties;
  return {
    name: name === '' ? `what-if ${new Date(from_ms).toISOString().slice(0, 10)}` : name,
    selection,
    tariffs,
  };
}

const young_generation_mb = 96;

/** Runs the pricing of a chunk on worker threads; `threads` 0 prices on the calling thread. */
export class WhatIfPool {
  private readonly piscina: Piscina | undefined;

  constructor(readonly threads: number) {
    this.piscina =
      threads === 0
        ? undefined
        : new Piscina({
            filename: built_module('rating/what-if-worker.js'),
            minThreads: threads,
            maxThreads: threads,
            maxQueue: 256,
            // Replaying allocates many short-lived objects: a young generation of 64 MB (V8's
            // default is 16) spends about a sixth less CPU in the scavenger.
            resourceLimits: { maxYoungGenerationSizeMb: young_generation_mb },
          });
  }

  async run(task: WhatIfTask): Promise<CandidatePartial[][]> {
    if (this.piscina === undefined) return [run_what_if_task(task)];
    const part = Math.max(256, Math.ceil(task.sessions.length / this.threads));
    const runs: Promise<CandidatePartial[]>[] = [];
    for (let i = 0; i < task.sessions.length; i += part)
      runs.push(this.piscina.run({ ...task, sessions: task.sessions.slice(i, i + part) }));
    return Promise.all(runs);
  }

  /** One chunk's bytes to one worker, transferred (the caller's copies are emptied). */
  async run_packed(task: PackedWhatIfTask): Promise<PackedResult> {
    if (this.piscina === undefined) return run_packed_task(task);
    return this.piscina.run(task, {
      transferList: [task.sessions_bytes.buffer, task.events_bytes.buffer] as ArrayBuffer[],
    });
  }

  async close(): Promise<void> {
    await this.piscina?.close();
  }
}

export interface WhatIfProgress {
  sessions_total: number;
  sessions_done: number;
}

/** The inner (before FINAL) and outer (after) conditions of the selection on session_facts. */
function selection_sql(selection: WhatIfSelection, stations?: readonly string[]) {
  const inner: SqlFragment[] = [
    sql`started_at >= toDateTime(${Math.floor(selection.from_ms / 1000)}, 'UTC')`,
    sql`started_at <= toDateTime(${Math.ceil(selection.to_ms / 1000)}, 'UTC')`,
    sql`started_at_ms >= ${selection.from_ms}`,
    sql`started_at_ms < ${selection.to_ms}`,
  ];
  // Station, charge point and EVSE are fixed at a session's start: they prune before FINAL.
  if (stations !== undefined) inner.push(sql`station_id IN ${stations}`);
  if (selection.station_ids !== undefined) inner.push(sql`station_id IN ${selection.station_ids}`);
  if (selection.charge_point_ids !== undefined)
    inner.push(sql`charge_point_id IN ${selection.charge_point_ids}`);
  if (selection.evses !== undefined) {
    const pairs = selection.evses.map(
      (e) => sql`(charge_point_id = ${e.charge_point_id} AND evse_id = ${e.evse_id})`,
    );
    inner.push(new SqlFragment(pairs.map((p) => `(${p.text})`).join(' OR ')));
  }
  // Payment method and party may change with a version: after FINAL chose the latest.
  const outer: SqlFragment[] = [sql`1 = 1`];
  if (selection.payment_methods !== undefined)
    outer.push(sql`payment_method IN ${selection.payment_methods}`);
  if (selection.parties !== undefined) outer.push(sql`party IN ${selection.parties}`);
  return { inner: and(inner), outer: and(outer) };
}

type SessionArray = [
  string,
  string,
  string,
  string,
  number | string,
  number | string,
  string,
  string,
  number | string,
  number | string,
  string,
];

interface Chunk {
  sessions: WhatIfSession[];
}

export async function read_what_if_chunk(
  store: Store,
  selection: WhatIfSelection,
  stations: readonly string[],
): Promise<Chunk> {
  const db = ident(store.database).text;
  const { inner, outer } = selection_sql(selection, stations);
  const rows = await store.query_arrays<SessionArray>(
    `SELECT session_id, station_id, payment_method, currency, energy_wh, started_at_ms,
       toString(total_excl_vat), toString(total_incl_vat), provisional, version, charge_point_id
     FROM (SELECT * FROM ${db}.session_facts FINAL WHERE ${inner}${final_settings(store)})
     WHERE ${outer} ORDER BY session_id`,
  );
  // One row per session, its log as parallel arrays; ordered and de-duplicated (a redelivered
  // batch writes its rows again) on the worker thread: sorting here costs more than the pricing.
  const logged = await store.query_arrays<
    [string, (number | string)[], (number | string)[], (number | string)[], string[], string[]]
  >(
    `SELECT session_id, groupArray(seq), groupArray(idx), groupArray(received_at_ms), groupArray(kind), groupArray(fact)
     FROM ${db}.session_events
     WHERE session_id IN (SELECT session_id FROM ${db}.session_facts WHERE ${inner})
     GROUP BY session_id`,
  );
  const facts = new Map<string, LoggedColumns>();
  for (const [session_id, seq, idx, received_at_ms, kind, fact] of logged)
    facts.set(session_id, { seq, idx, received_at_ms, kind, fact });
  const sessions: WhatIfSession[] = [];
  for (const r of rows) {
    const session: WhatIfSession = {
      session_id: r[0],
      station_id: r[1],
      payment_method: r[2],
      currency: r[3],
      energy_wh: Number(r[4]),
      started_at_ms: Number(r[5]),
      before_excl_vat: r[6],
      before_incl_vat: r[7],
      provisional: Number(r[8]) === 1,
      version: Number(r[9]),
    };
    const log = facts.get(session.session_id);
    if (log?.kind.includes('start')) session.log = log;
    else session.facts = await older_session_facts(store, session.session_id);
    sessions.push(session);
  }
  return { sessions };
}

/**
 * A chunk's sessions and their logged facts as RowBinary bytes, for a worker to decode
 * (rating/what-if-worker.ts run_packed_task): the same selection as read_what_if_chunk.
 */
export async function read_packed_chunk(
  store: Store,
  selection: WhatIfSelection,
  stations: readonly string[],
): Promise<{ sessions_bytes: Uint8Array; events_bytes: Uint8Array }> {
  const db = ident(store.database).text;
  const { inner, outer } = selection_sql(selection, stations);
  const [sessions_bytes, events_bytes] = await Promise.all([
    store.query_bytes(
      `SELECT ${packed_session_columns}
       FROM (SELECT * FROM ${db}.session_facts FINAL WHERE ${inner}${final_settings(store)})
       WHERE ${outer} ORDER BY session_id`,
      'RowBinary',
    ),
    store.query_bytes(
      `SELECT ${packed_event_columns} FROM ${db}.session_events
       WHERE session_id IN (SELECT session_id FROM ${db}.session_facts WHERE ${inner})`,
      'RowBinary',
    ),
  ]);
  return { sessions_bytes, events_bytes };
}

/** A session rated before the event log existed: its facts rebuilt as re-rating rebuilds them. */
async function older_session_facts(store: Store, session_id: string) {
  const db = ident(store.database).text;
  const [row] = await store.query<StoredRow>(
    `SELECT session_id, version, charge_point_id, connector_id, evse_id, transaction_id, id_tag,
       payment_method, party, time_zone, station_id, started_at_ms, stopped_at_ms, meter_start_wh, meter_stop_wh,
       stop_reason, provisional, currency, toString(total_excl_vat) AS total_excl_vat,
       toString(total_incl_vat) AS total_incl_vat, breakdown
     FROM ${db}.rated_sessions FINAL WHERE ${sql`session_id = ${session_id}`.text}`,
  );
  return row === undefined ? undefined : stored_facts(store, row);
}

/** Stations of the selection with their session counts, cut into chunks of about chunk_sessions_max. */
async function station_chunks(
  store: Store,
  selection: WhatIfSelection,
): Promise<{ chunks: string[][]; total: number }> {
  const db = ident(store.database).text;
  const { inner, outer } = selection_sql(selection);
  const rows = await store.query_arrays<[string, number | string]>(
    `SELECT station_id, count() FROM (SELECT * FROM ${db}.session_facts FINAL WHERE ${inner}${final_settings(store)})
     WHERE ${outer} GROUP BY station_id ORDER BY station_id`,
  );
  const chunks: string[][] = [];
  let current: string[] = [];
  let in_current = 0;
  let total = 0;
  for (const [station, n] of rows) {
    const count = Number(n);
    total += count;
    // A statement of bounded size: at most 500 stations named in one IN list.
    if (current.length > 0 && (in_current + count > chunk_sessions_max || current.length >= 500)) {
      chunks.push(current);
      current = [];
      in_current = 0;
    }
    current.push(station);
    in_current += count;
  }
  if (current.length > 0) chunks.push(current);
  return { chunks, total };
}

export interface CandidateTotals {
  figures: Map<string, FigureSums>;
  changes: WhatIfChange[];
  other_currency: number;
  failed: number;
  failures: { session_id: string; error: string }[];
}

function merge(into: CandidateTotals[], parts: CandidatePartial[][]): void {
  for (const part of parts) {
    part.forEach((p, i) => {
      const t = into[i]!;
      for (const [key, sums] of p.figures) {
        let s = t.figures.get(key);
        if (s === undefined) {
          s = empty_sums();
          t.figures.set(key, s);
        }
        add_sums(s, sums);
      }
      t.changes = keep_largest([...t.changes, ...p.changes], changes_max);
      t.other_currency += p.other_currency;
      t.failed += p.failed;
      for (const f of p.failures) if (t.failures.length < failures_kept_max) t.failures.push(f);
    });
  }
}

/**
 * Prices the selection under every candidate and returns the sums; writes nothing. Each chunk is
 * read from ClickHouse in RowBinary and its bytes are handed (transferred) to a worker thread that
 * decodes and prices them; a few chunks are in flight at once so that no worker waits for a read.
 * Chunks are merged in order, so the answer does not depend on which finished first.
 */
export async function price_what_if(
  deps: { store: Store; pool: WhatIfPool; rules: SessionRules },
  request: WhatIfRequest,
  on_progress: (progress: WhatIfProgress) => void = () => {},
): Promise<{ totals: CandidateTotals[]; sessions_total: number }> {
  const { store } = deps;
  const { chunks, total } = await station_chunks(store, request.selection);
  const totals: CandidateTotals[] = request.tariffs.map(() => ({
    figures: new Map(),
    changes: [],
    other_currency: 0,
    failed: 0,
    failures: [],
  }));
  let done = 0;
  on_progress({ sessions_total: total, sessions_done: 0 });
  const price_chunk = async (stations: readonly string[]): Promise<PackedResult> => {
    const bytes = await read_packed_chunk(store, request.selection, stations);
    return deps.pool.run_packed({
      candidates: request.tariffs,
      rules: deps.rules,
      changes_max,
      ...bytes,
    });
  };
  const in_flight: Promise<PackedResult>[] = [];
  let next = 0;
  const launch = () => {
    const running = price_chunk(chunks[next++]!);
    running.catch(() => {}); // awaited in order below; a failure is not unhandled meanwhile
    in_flight.push(running);
  };
  const ahead = Math.max(2, deps.pool.threads + 1);
  while (next < chunks.length && in_flight.length < ahead) launch();
  while (in_flight.length > 0) {
    const result = await in_flight.shift()!;
    if (next < chunks.length) launch();
    merge(totals, [result.partials]);
    if (result.without_log.length > 0) {
      for (const session of result.without_log) {
        const facts = await older_session_facts(store, session.session_id);
        if (facts !== undefined) session.facts = facts;
      }
      merge(
        totals,
        await deps.pool.run({
          candidates: request.tariffs,
          rules: deps.rules,
          sessions: result.without_log,
          changes_max,
        }),
      );
    }
    done += result.sessions;
    on_progress({ sessions_total: Math.max(total, done), sessions_done: done });
  }
  return { totals, sessions_total: Math.max(total, done) };
}

/** Ten-thousandths as decimal text with 4 places, a JSON number for Decimal(18, 4) columns. */
function text4(units: bigint): string {
  const negative = units < 0n;
  const digits = (negative ? -units : units).toString().padStart(5, '0');
  return `${negative ? '-' : ''}${digits.slice(0, -4)}.${digits.slice(-4)}`;
}

function json_row(fields: Record<string, unknown>, decimals: Record<string, bigint>): string {
  const base = JSON.stringify(fields);
  let tail = '';
  for (const [k, v] of Object.entries(decimals)) tail += `,"${k}":${text4(v)}`;
  return `${base.slice(0, -1)}${tail}}`;
}

interface ScenarioRow {
  scenario_id: string;
  name: string;
  state: 'running' | 'done' | 'failed';
  created_at_ms: number;
  selection: WhatIfSelection;
  tariffs: Tariff[];
  sessions_total: number;
  sessions_done: number;
  error: string;
}

async function write_scenario(store: Store, s: ScenarioRow): Promise<void> {
  await store.insert_json_rows('what_if_scenarios', [
    JSON.stringify({
      scenario_id: s.scenario_id,
      name: s.name,
      state: s.state,
      created_at: Math.floor(s.created_at_ms / 1000),
      created_at_ms: s.created_at_ms,
      // Strictly increasing per scenario, so the latest report wins the ReplacingMergeTree.
      updated_at_ms: Date.now() * 1000 + (s.state === 'running' ? 0 : 999),
      from_ms: s.selection.from_ms,
      to_ms: s.selection.to_ms,
      selection: JSON.stringify(s.selection),
      tariffs: JSON.stringify(s.tariffs),
      sessions_total: s.sessions_total,
      sessions_done: s.sessions_done,
      error: s.error,
    }),
  ]);
}

async function write_results(store: Store, s: ScenarioRow, totals: CandidateTotals[]): Promise<void> {
  const figures: string[] = [];
  const changes: string[] = [];
  const created_at = Math.floor(s.created_at_ms / 1000);
  totals.forEach((t, candidate) => {
    const tariff_id = s.tariffs[candidate]!.id;
    for (const [text, sums] of t.figures) {
      const { dimension, key, currency } = parse_figure_key(text);
      const [weekday, hour] = dimension === 'weekday_hour' ? key.split('-').map(Number) : [0, 0];
      figures.push(
        json_row(
          {
            scenario_id: s.scenario_id,
            name: s.name,
            created_at,
            candidate,
            tariff_id,
            dimension,
            key,
            weekday,
            hour,
            currency,
            sessions: sums.sessions,
            energy_wh: sums.energy_wh,
            min_price_sessions: sums.min_price_sessions,
            max_price_sessions: sums.max_price_sessions,
          },
          {
            before_excl_vat: sums.before_excl_vat,
            before_incl_vat: sums.before_incl_vat,
            after_excl_vat: sums.after_excl_vat,
            after_incl_vat: sums.after_incl_vat,
          },
        ),
      );
    }
    t.changes.forEach((c, rank) => {
      changes.push(
        json_row(
          {
            scenario_id: s.scenario_id,
            name: s.name,
            candidate,
            tariff_id,
            rank: rank + 1,
            session_id: c.session_id,
            station_id: c.station_id,
            started_at: Math.floor(c.started_at_ms / 1000),
            currency: c.currency,
            price_limit_applied: c.price_limit_applied,
          },
          {
            before_excl_vat: c.before_excl_vat,
            after_excl_vat: c.after_excl_vat,
            before_incl_vat: c.before_incl_vat,
            after_incl_vat: c.after_incl_vat,
          },
        ),
      );
    });
  });
  for (let i = 0; i < figures.length; i += 10_000)
    await store.insert_json_rows('what_if_figures', figures.slice(i, i + 10_000));
  if (changes.length > 0) await store.insert_json_rows('what_if_changes', changes);
}

export interface WhatIfJob {
  scenario_id: string;
  name: string;
  state: 'queued' | 'running' | 'done' | 'failed';
  progress: WhatIfProgress;
  error?: string;
  /** Per candidate: sessions not comparable (another currency) and sessions that failed. */
  skipped?: { other_currency: number; failed: number; failures: { session_id: string; error: string }[] }[];
}

/**
 * The scenarios this process runs, one at a time in order (the pricing takes every worker), with
 * their progress. Finished scenarios are read back from ClickHouse, so any API process answers.
 */
export class WhatIfJobs {
  private readonly jobs = new Map<string, WhatIfJob>();
  private queue: Promise<void> = Promise.resolve();
  private pending = 0;
  static readonly pending_max = 4;
  static readonly jobs_kept_max = 100;

  constructor(private readonly deps: { store: Store; pool: WhatIfPool; rules: SessionRules }) {}

  /** undefined when pending_max scenarios are already waiting. */
  start(request: WhatIfRequest): WhatIfJob | undefined {
    if (this.pending >= WhatIfJobs.pending_max) return undefined;
    const job: WhatIfJob = {
      scenario_id: randomUUID(),
      name: request.name,
      state: 'queued',
      progress: { sessions_total: 0, sessions_done: 0 },
    };
    if (this.jobs.size >= WhatIfJobs.jobs_kept_max) {
      for (const [id, j] of this.jobs) {
        if (j.state === 'done' || j.state === 'failed') {
          this.jobs.delete(id);
          break;
        }
      }
    }
    this.jobs.set(job.scenario_id, job);
    this.pending += 1;
    this.queue = this.queue
      .then(() => this.run(job, request))
      .finally(() => {
        this.pending -= 1;
      });
    return job;
  }

  /** Waits for every started scenario (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.pending > 0) await this.queue;
  }

  private async run(job: WhatIfJob, request: WhatIfRequest): Promise<void> {
    const { store } = this.deps;
    const row: ScenarioRow = {
      scenario_id: job.scenario_id,
      name: request.name,
      state: 'running',
      created_at_ms: Date.now(),
      selection: request.selection,
      tariffs: request.tariffs,
      sessions_total: 0,
      sessions_done: 0,
      error: '',
    };
    job.state = 'running';
    let reported_ms = 0;
    try {
      await write_scenario(store, row);
      const { totals, sessions_total } = await price_what_if(this.deps, request, (p) => {
        job.progress = p;
        const now = Date.now();
        if (now - reported_ms > 1000) {
          reported_ms = now;
          void write_scenario(store, { ...row, ...p }).catch(() => {});
        }
      });
      await write_results(store, row, totals);
      job.skipped = totals.map((t) => ({
        other_currency: t.other_currency,
        failed: t.failed,
        failures: t.failures,
      }));
      await write_scenario(store, {
        ...row,
        state: 'done',
        sessions_total,
        sessions_done: sessions_total,
        error: JSON.stringify({ skipped: job.skipped }),
      });
      job.state = 'done';
    } catch (error) {
      job.state = 'failed';
      job.error = (error as Error).message;
      await write_scenario(store, { ...row, ...job.progress, state: 'failed', error: job.error }).catch(
        () => {},
      );
    }
  }

  /** The scenario's state and progress, and its results once done; undefined when unknown. */
  async status(scenario_id: string): Promise<Json | undefined> {
    const job = this.jobs.get(scenario_id);
    if (job !== undefined && job.state !== 'done') return { ...job };
    return scenario_answer(this.deps.store, scenario_id);
  }
}

interface StoredScenario {
  scenario_id: string;
  name: string;
  state: string;
  created_at_ms: number | string;
  from_ms: number | string;
  to_ms: number | string;
  tariffs: string;
  sessions_total: number | string;
  sessions_done: number | string;
  error: string;
}

interface StoredFigure {
  candidate: number | string;
  dimension: string;
  key: string;
  currency: string;
  sessions: number | string;
  energy_wh: number | string;
  before_excl_vat: string;
  before_incl_vat: string;
  after_excl_vat: string;
  after_incl_vat: string;
  min_price_sessions: number | string;
  max_price_sessions: number | string;
}

function share(n: number, of: number): string | null {
  return of === 0 ? null : new Money(n).div(of).toFixed(4);
}

function figure_answer(f: StoredFigure): Json {
  const energy_kwh = new Money(Number(f.energy_wh)).div(1000);
  const money = (v: string) => money_sum_text(v, f.currency);
  return {
    key: f.key,
    currency: f.currency,
    sessions: Number(f.sessions),
    energy_wh: Number(f.energy_wh),
    before: {
      excl_vat: money(f.before_excl_vat),
      incl_vat: money(f.before_incl_vat),
      per_kwh_excl_vat: money_per(f.before_excl_vat, energy_kwh),
    },
    after: {
      excl_vat: money(f.after_excl_vat),
      incl_vat: money(f.after_incl_vat),
      per_kwh_excl_vat: money_per(f.after_excl_vat, energy_kwh),
    },
    difference: {
      excl_vat: money(new Money(f.after_excl_vat).minus(f.before_excl_vat).toString()),
      incl_vat: money(new Money(f.after_incl_vat).minus(f.before_incl_vat).toString()),
    },
    min_price_share: share(Number(f.min_price_sessions), Number(f.sessions)),
    max_price_share: share(Number(f.max_price_sessions), Number(f.sessions)),
  };
}

/** A stored scenario as the API shows it: state, progress and, when done, the results. */
export async function scenario_answer(store: Store, scenario_id: string): Promise<Json | undefined> {
  const db = ident(store.database).text;
  const [s] = await store.query<StoredScenario>(
    `SELECT scenario_id, name, state, created_at_ms, from_ms, to_ms, tariffs, sessions_total, sessions_done, error
     FROM ${db}.what_if_scenarios WHERE ${sql`scenario_id = ${scenario_id}`.text}
     ORDER BY updated_at_ms DESC LIMIT 1`,
  );
  if (s === undefined) return undefined;
  const answer: Json = {
    scenario_id: s.scenario_id,
    name: s.name,
    state: s.state,
    from: new Date(Number(s.from_ms)).toISOString(),
    to: new Date(Number(s.to_ms)).toISOString(),
    progress: { sessions_total: Number(s.sessions_total), sessions_done: Number(s.sessions_done) },
  };
  if (s.state === 'failed') answer.error = s.error;
  if (s.state !== 'done') return answer;
  const skipped = (JSON.parse(s.error || '{}') as { skipped?: WhatIfJob['skipped'] }).skipped ?? [];
  const tariffs = JSON.parse(s.tariffs) as Tariff[];
  const figures = await store.query<StoredFigure>(
    `SELECT candidate, dimension, key, currency, sessions, energy_wh,
       toString(before_excl_vat) AS before_excl_vat, toString(before_incl_vat) AS before_incl_vat,
       toString(after_excl_vat) AS after_excl_vat, toString(after_incl_vat) AS after_incl_vat,
       min_price_sessions, max_price_sessions
     FROM ${db}.what_if_figures FINAL WHERE ${sql`scenario_id = ${scenario_id}`.text}
     ORDER BY candidate, dimension, currency, weekday, hour, key`,
  );
  const changes = await store.query<{
    candidate: number | string;
    rank: number | string;
    session_id: string;
    station_id: string;
    currency: string;
    before_excl_vat: string;
    after_excl_vat: string;
    price_limit_applied: string;
  }>(
    `SELECT candidate, rank, session_id, station_id, currency, toString(before_excl_vat) AS before_excl_vat,
       toString(after_excl_vat) AS after_excl_vat, price_limit_applied
     FROM ${db}.what_if_changes FINAL WHERE ${sql`scenario_id = ${scenario_id}`.text} ORDER BY candidate, rank`,
  );
  answer.candidates = tariffs.map((tariff, i) => {
    const mine = figures.filter((f) => Number(f.candidate) === i);
    const of = (dimension: string) => mine.filter((f) => f.dimension === dimension).map(figure_answer);
    return {
      candidate: i,
      tariff_id: tariff.id,
      currency: tariff.currency,
      total: of('total'),
      by_station: of('station'),
      by_weekday_hour: of('weekday_hour'),
      by_payment_method: of('payment_method'),
      by_plan: of('plan'),
      largest_changes: changes
        .filter((c) => Number(c.candidate) === i)
        .map((c) => ({
          rank: Number(c.rank),
          session_id: c.session_id,
          station_id: c.station_id,
          currency: c.currency,
          before_excl_vat: money_sum_text(c.before_excl_vat, c.currency),
          after_excl_vat: money_sum_text(c.after_excl_vat, c.currency),
          difference_excl_vat: money_sum_text(
            new Money(c.after_excl_vat).minus(c.before_excl_vat).toString(),
            c.currency,
          ),
          price_limit_applied: c.price_limit_applied === '' ? null : c.price_limit_applied,
        })),
      skipped: skipped[i] ?? { other_currency: 0, failed: 0, failures: [] },
    };
  });
  return answer;
}
