import { FieldError } from '../../core/field-error.js';
import { add_days, local_date, local_midnight_ms } from '../period.js';

/**
 * A case's states and the moves between them, free of I/O:
 *
 *   open -> investigating -> proposed_resolution -> resolved
 *                \-> resolved          \-> investigating (the claimant declined the proposal)
 *   open | investigating | proposed_resolution -> escalated (mediation/arbitration) -> resolved
 *
 * `resolved` is final and reached only by a resolution (resolve.ts), which carries the outcome.
 */
export const dispute_states = [
  'open',
  'investigating',
  'proposed_resolution',
  'resolved',
  'escalated',
] as const;
export type DisputeState = (typeof dispute_states)[number];

export const dispute_reasons = [
  'energy',
  'time_idle_fee',
  'tariff',
  'duplicate_charge',
  'failed_session',
  'not_my_session',
  'other',
] as const;
export type DisputeReason = (typeof dispute_reasons)[number];

export const dispute_sources = ['driver', 'support', 'partner', 'chargeback'] as const;
export type DisputeSource = (typeof dispute_sources)[number];

export const dispute_outcomes = [
  'accepted',
  'partly_accepted',
  'rejected',
  'chargeback_won',
  'chargeback_lost',
] as const;
export type DisputeOutcome = (typeof dispute_outcomes)[number];

const moves: Record<DisputeState, readonly DisputeState[]> = {
  open: ['investigating', 'escalated', 'resolved'],
  investigating: ['proposed_resolution', 'escalated', 'resolved'],
  proposed_resolution: ['investigating', 'escalated', 'resolved'],
  escalated: ['resolved'],
  resolved: [],
};

/** A move the case's state does not allow: HTTP 409, naming the state. */
export class DisputeStateError extends FieldError {
  constructor(
    readonly case_id: number,
    readonly state: DisputeState,
    wanted: string,
  ) {
    super(
      'state',
      `case ${case_id} is ${state}; it cannot move to ${wanted} (allowed from ${state}: ${moves[state].join(', ') || 'nothing'})`,
    );
  }
}

export function check_move(case_id: number, from: DisputeState, to: DisputeState): void {
  if (!moves[from].includes(to)) throw new DisputeStateError(case_id, from, to);
}

/** Working days allowed in each state before the case is late; `resolved` has no deadline. */
export type DeadlineRules = Record<Exclude<DisputeState, 'resolved'>, number>;

export const default_deadline_rules: DeadlineRules = {
  open: 1,
  investigating: 5,
  proposed_resolution: 10,
  escalated: 30,
};

/** `open=1,investigating=5,...`: the DISPUTE_DEADLINE_WORKING_DAYS setting. */
export function parse_deadline_rules(text: string): DeadlineRules {
  const rules: DeadlineRules = { ...default_deadline_rules };
  for (const part of text
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '')) {
    const m = /^([a-z_]+)=(\d{1,3})$/.exec(part);
    if (m === null || !(m[1]! in rules))
      throw new RangeError(
        `${part}: must be <state>=<working days>, state one of ${Object.keys(rules).join(', ')}`,
      );
    rules[m[1] as keyof DeadlineRules] = Number(m[2]);
  }
  return rules;
}

function weekday(day: string): number {
  return new Date(`${day}T00:00:00Z`).getUTCDay();
}

/**
 * The end of the `working_days`-th working day (Monday to Friday) after `from_ms`, in
 * `time_zone`: the local midnight that ends it. The day the case enters a state does not count,
 * so "5 working days" from a Friday afternoon ends at the midnight after the next Friday. Public
 * holidays are not known here and count as working days.
 */
export function deadline_ms(from_ms: number, working_days: number, time_zone: string): number {
  let day = local_date(from_ms, time_zone);
  let left = working_days;
  while (left > 0) {
    day = add_days(day, 1);
    const wd = weekday(day);
    if (wd !== 0 && wd !== 6) left--;
  }
  const [y, m, d] = day.split('-').map(Number) as [number, number, number];
  return local_midnight_ms(y, m, d + 1, time_zone);
}

export function deadline_of(
  state: DisputeState,
  entered_at_ms: number,
  rules: DeadlineRules,
  time_zone: string,
): number | null {
  if (state === 'resolved') return null;
  return deadline_ms(entered_at_ms, rules[state], time_zone);
}
