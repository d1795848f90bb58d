/**
 * One token bucket: `per_s` tokens a second up to `burst`. A charger's connection keeps one of
 * its own; keyed callers (partners, addresses, the operator) share a RateLimiter.
 */
export class TokenBucket {
  private tokens: number;
  private at_ms: number;

  constructor(
    private readonly per_s: number,
    private readonly burst: number,
    now_ms: number,
  ) {
    this.tokens = burst;
    this.at_ms = now_ms;
  }

  private refill(now_ms: number): void {
    this.tokens = Math.min(this.burst, this.tokens + ((now_ms - this.at_ms) / 1000) * this.per_s);
    this.at_ms = now_ms;
  }

  /** Seconds until a token is there (0: now), without taking it. */
  wait_s(now_ms: number): number {
    this.refill(now_ms);
    return this.tokens >= 1 ? 0 : Math.max(1, Math.ceil((1 - this.tokens) / this.per_s));
  }

  /** Takes one token; returns 0 when allowed, else the seconds until one is available. */
  take(now_ms: number): number {
    const wait_s = this.wait_s(now_ms);
    if (wait_s === 0) this.tokens -= 1;
    return wait_s;
  }
}

/**
 * Token buckets by key (a partner, or a remote address for failed authentications). The map is
 * bounded: when full, it is cleared, which at worst gives every key a fresh burst.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(
    private readonly options: { per_s: number; burst: number; keys_max: number },
    private readonly now_ms: () => number = Date.now,
  ) {}

  /** Seconds until `key` has a token (0: it has one now), without taking it. */
  wait_s(key: string): number {
    return this.bucket(key).wait_s(this.now_ms());
  }

  /** Takes one token; returns 0 when allowed, else the seconds until one is available. */
  take(key: string): number {
    return this.bucket(key).take(this.now_ms());
  }

  private bucket(key: string): TokenBucket {
    let bucket = this.buckets.get(key);
    if (bucket === undefined) {
      if (this.buckets.size >= this.options.keys_max) this.buckets.clear();
      bucket = new TokenBucket(this.options.per_s, this.options.burst, this.now_ms());
      this.buckets.set(key, bucket);
    }
    return bucket;
  }
}
