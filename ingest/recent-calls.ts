/**
 * The last CALLs of one connection, so that a charger's retry (OCPP-J 1.6 section 4.1.1: same
 * message id, same content) is answered again and not processed twice.
 *
 * A ring of fixed size made once per connection, keyed by a fingerprint of the frame's text
 * (which contains the message id). While a CALL is being processed its slot holds the promise of
 * the answer; once answered, only the answer's text. Nothing else of a call outlives it: the
 * calls of the last few seconds, times every connected charger, are what a young-generation GC
 * has to copy, and its pauses show in every charger's answer time.
 */
import { call_result } from './ocppj.js';

const empty = -1;
/** Stands for the answer `[3, id, {}]` (MeterValues, StatusNotification, ...): made again from the
 * retry's id, so that the commonest answers keep no string alive. */
const empty_result = 0;

export class RecentCalls {
  private readonly fingerprints: number[];
  private readonly answers: (Promise<string | undefined> | string | typeof empty_result | undefined)[];
  private next = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new RangeError('capacity must be a positive integer');
    this.fingerprints = new Array<number>(capacity).fill(empty);
    this.answers = new Array(capacity).fill(undefined);
  }

  /**
   * The answer (or the promise of it) of the recent CALL with this fingerprint, whose message id
   * is `id`; undefined when there is none.
   */
  find(fingerprint: number, id: string): Promise<string | undefined> | string | undefined {
    const slot = this.fingerprints.indexOf(fingerprint);
    if (slot < 0) return undefined;
    const answer = this.answers[slot];
    return answer === empty_result ? call_result(id, {}) : answer;
  }

  /**
   * Records a CALL being processed; the oldest is forgotten when the ring is full. Once `answer`
   * settles its slot keeps the answer's text, or is freed when there is none (the CALL was not
   * answered, so the charger's retry must be processed afresh).
   */
  add(fingerprint: number, answer: Promise<string | undefined>): void {
    const slot = this.next;
    this.next = (slot + 1) % this.capacity;
    this.fingerprints[slot] = fingerprint;
    this.answers[slot] = answer;
    answer.then(
      (text) => this.settle(slot, answer, text),
      () => this.settle(slot, answer, undefined),
    );
  }

  private settle(slot: number, answer: Promise<string | undefined>, text: string | undefined): void {
    // The slot may have been reused by a newer CALL meanwhile.
    if (this.answers[slot] !== answer) return;
    if (text === undefined) {
      this.fingerprints[slot] = empty;
      this.answers[slot] = undefined;
    } else {
      this.answers[slot] = text.startsWith('[3,') && text.endsWith('",{}]') ? empty_result : text;
    }
  }
}
