/**
 * A latency histogram with logarithmic buckets (5 % wide), cheap to record on the hot path of the
 * load generator and mergeable across processes: agents send bucket counts, the harness adds them.
 */
const growth = Math.log(1.05);
/** 1 µs .. ~ 10^5 s: enough for any answer time a bounded run can see. */
export const histogram_buckets_total = 512;

export class LatencyHistogram {
  readonly counts = new Float64Array(histogram_buckets_total);
  total = 0;

  record(latency_ms: number): void {
    const us = Math.max(1, latency_ms * 1000);
    const bucket = Math.min(histogram_buckets_total - 1, Math.floor(Math.log(us) / growth));
    this.counts[bucket]! += 1;
    this.total += 1;
  }

  /** Non-empty buckets as [bucket, count] pairs (small to send over IPC). */
  sparse(): [number, number][] {
    const pairs: [number, number][] = [];
    for (let b = 0; b < histogram_buckets_total; b++)
      if (this.counts[b]! > 0) pairs.push([b, this.counts[b]!]);
    return pairs;
  }

  add_sparse(pairs: readonly [number, number][]): void {
    for (const [bucket, count] of pairs) {
      this.counts[bucket]! += count;
      this.total += count;
    }
  }

  add(other: LatencyHistogram): void {
    for (let b = 0; b < histogram_buckets_total; b++) this.counts[b]! += other.counts[b]!;
    this.total += other.total;
  }

  clear(): void {
    this.counts.fill(0);
    this.total = 0;
  }

  /** The upper edge of the bucket holding percentile p (0..100), in ms; NaN when empty. */
  percentile_ms(p: number): number {
    if (this.total === 0) return Number.NaN;
    const rank = Math.max(1, Math.ceil((p / 100) * this.total));
    let seen = 0;
    for (let b = 0; b < histogram_buckets_total; b++) {
      seen += this.counts[b]!;
      if (seen >= rank) return Math.exp((b + 1) * growth) / 1000;
    }
    return Number.NaN;
  }
}
