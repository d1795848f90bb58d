/**
 * Token buckets by key (a partner, or a remote address for failed authentications). The map is
 * bounded: when full, it is cleared, which at worst gives every key a fresh burst.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at_ms: number }>();

  constructor(
    private readonly options: { per_s: number; burst: number; keys_max: number },
    private readonly now_ms: () => number = Date.now,
  ) {}

  /** Seconds until `key` has a token (0: it has one now), without taking it. */
  wait_s(key: string): number {
    const bucket = this.refill(key);
    return bucket.tokens >= 1 ? 0 : Math.max(1, Math.ceil((1 - bucket.tokens) / this.options.per_s));
  }

  /** Takes one token; returns 0 when allowed, else the seconds until one is available. */
  take(key: string): number {
    const bucket = this.refill(key);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - bucket.tokens) / this.options.per_s));
  }

  private refill(key: string): { tokens: number; at_ms: number } {
    const now = this.now_ms();
    let bucket = this.buckets.get(key);
    if (bucket === undefined) {
      if (this.buckets.size >= this.options.keys_max) this.buckets.clear();
      bucket = { tokens: this.options.burst, at_ms: now };
      this.buckets.set(key, bucket);
    }
    bucket.tokens = Math.min(
      this.options.burst,
      bucket.tokens + ((now - bucket.at_ms) / 1000) * this.options.per_s,
    );
    bucket.at_ms = now;
    return bucket;
  }
}
