/**
 * OCPP 1.6 remote starts this ingest node sent and the charger accepted, so that the
 * StartTransaction that follows is recognised as started by command (OCPI 2.2.1 mod_cdrs
 * AuthMethod COMMAND). OCPP 1.6 StartTransaction.req carries no reference to the
 * RemoteStartTransaction.req it answers (section 5.11: the charger starts the transaction "as if"
 * the idTag had been presented locally), so the match is by charger, idTag and, when the command
 * named one, connector, within a TTL.
 *
 * The record lives in this node's memory only: a StartTransaction that arrives at another node
 * (the charger reconnected elsewhere between the command and the start) is taken as WHITELIST.
 * A known limitation, accepted because the alternative is a shared store read on every start.
 * So is a charger that sends its StartTransaction.req before its RemoteStartTransaction.conf, or
 * answers after the command's timeout: the start is recorded only when the Accepted answer
 * arrives in time.
 */

export interface RemoteStartOptions {
  /** Accepted remote starts remembered at once over all chargers of this node. */
  remote_starts_max: number;
  /** How long after the charger's acceptance a StartTransaction still matches it. */
  remote_start_ttl_ms: number;
}

export const remote_start_defaults: RemoteStartOptions = {
  remote_starts_max: 10_000,
  remote_start_ttl_ms: 5 * 60_000,
};

interface RemoteStart {
  /** undefined when the command let the charger choose the connector. */
  connector_id: number | undefined;
  accepted_at_ms: number;
  /** The facts of the StartTransaction that used this start up (its retries match it again). */
  taken_by: string | undefined;
}

/** Remote starts kept for one charger and idTag: more at once would be a client's retry storm. */
const remote_starts_per_tag_max = 4;

export class RemoteStarts {
  /**
   * By charger and idTag, oldest first. A key is moved to the end of the Map when a start is added
   * to it, so the Map's first key is the one whose newest start is the oldest of all.
   */
  private readonly starts = new Map<string, RemoteStart[]>();
  private count = 0;

  constructor(private readonly options: RemoteStartOptions = remote_start_defaults) {}

  /** Remote starts remembered now (for tests and metrics). */
  get size(): number {
    return this.count;
  }

  /** Records a RemoteStartTransaction the charger answered with status Accepted. */
  accepted(charge_point_id: string, id_tag: string, connector_id: number | undefined, now_ms: number): void {
    this.expire(now_ms);
    const key = key_of(charge_point_id, id_tag);
    const list = this.starts.get(key) ?? [];
    this.starts.delete(key);
    list.push({ connector_id, accepted_at_ms: now_ms, taken_by: undefined });
    this.count++;
    if (list.length > remote_starts_per_tag_max) {
      list.shift();
      this.count--;
    }
    this.starts.set(key, list);
    // Past the bound the oldest charger and idTag go first (hitting it means more accepted remote
    // starts within the TTL than this node expects to serve; they are then taken as WHITELIST).
    while (this.count > this.options.remote_starts_max) {
      const oldest = this.starts.entries().next();
      if (oldest.done === true) break;
      this.starts.delete(oldest.value[0]);
      this.count -= oldest.value[1].length;
    }
  }

  /**
   * Whether a StartTransaction of this charger, idTag and connector answers a remote start that
   * is still fresh. A match is used up by the start's facts (`start_key`): one remote start marks
   * one transaction, and a retry of that same StartTransaction (OCPP-J resends it unchanged, also
   * after a publish failure or a reconnect) matches it again.
   */
  take(
    charge_point_id: string,
    id_tag: string,
    connector_id: number,
    start_key: string,
    now_ms: number,
  ): boolean {
    const list = this.starts.get(key_of(charge_point_id, id_tag));
    if (list === undefined) return false;
    let free: RemoteStart | undefined;
    for (const start of list) {
      if (now_ms - start.accepted_at_ms >= this.options.remote_start_ttl_ms) continue;
      if (start.connector_id !== undefined && start.connector_id !== connector_id) continue;
      if (start.taken_by === start_key) return true;
      if (start.taken_by === undefined && free === undefined) free = start;
    }
    if (free === undefined) return false;
    free.taken_by = start_key;
    return true;
  }

  /** Drops the chargers and idTags whose newest start is older than the TTL (they come first). */
  private expire(now_ms: number): void {
    for (const [key, list] of this.starts) {
      const newest = list[list.length - 1];
      if (newest !== undefined && now_ms - newest.accepted_at_ms < this.options.remote_start_ttl_ms) return;
      this.starts.delete(key);
      this.count -= list.length;
    }
  }
}

function key_of(charge_point_id: string, id_tag: string): string {
  return `${charge_point_id}\u0000${id_tag}`;
}
