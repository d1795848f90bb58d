import { describe, expect, it } from 'vitest';
import { RemoteStarts } from './remote-starts.js';

const ttl_ms = 5 * 60_000;

describe('remote starts awaiting their OCPP 1.6 StartTransaction', () => {
  it('matches by charger, idTag and the connector the command named, once per start', () => {
    const starts = new RemoteStarts({ remote_starts_max: 10, remote_start_ttl_ms: ttl_ms });
    starts.accepted('CP-1', 'APP-1', 2, 0);
    expect(starts.take('CP-2', 'APP-1', 2, 'start-a', 1000)).toBe(false);
    expect(starts.take('CP-1', 'APP-2', 2, 'start-a', 1000)).toBe(false);
    expect(starts.take('CP-1', 'APP-1', 1, 'start-a', 1000)).toBe(false);
    expect(starts.take('CP-1', 'APP-1', 2, 'start-a', 1000)).toBe(true);
    // The same StartTransaction sent again matches again; another start of that idTag does not.
    expect(starts.take('CP-1', 'APP-1', 2, 'start-a', 2000)).toBe(true);
    expect(starts.take('CP-1', 'APP-1', 2, 'start-b', 2000)).toBe(false);
  });

  it('lets the charger pick the connector when the command named none', () => {
    const starts = new RemoteStarts({ remote_starts_max: 10, remote_start_ttl_ms: ttl_ms });
    starts.accepted('CP-1', 'APP-1', undefined, 0);
    expect(starts.take('CP-1', 'APP-1', 3, 'start-a', 1000)).toBe(true);
  });

  it('forgets a start after the TTL', () => {
    const starts = new RemoteStarts({ remote_starts_max: 10, remote_start_ttl_ms: ttl_ms });
    starts.accepted('CP-1', 'APP-1', 1, 0);
    // 5 minutes less 1 ms after acceptance still matches; a second start of the same idTag at
    // exactly 5 minutes does not.
    expect(starts.take('CP-1', 'APP-1', 1, 'start-a', ttl_ms - 1)).toBe(true);
    starts.accepted('CP-1', 'APP-1', 1, 0);
    expect(starts.take('CP-1', 'APP-1', 1, 'start-b', ttl_ms)).toBe(false);
    // A later acceptance drops what expired.
    starts.accepted('CP-2', 'APP-9', 1, ttl_ms);
    expect(starts.size).toBe(1);
  });

  it('holds at most remote_starts_max starts, dropping the oldest charger and idTag first', () => {
    const starts = new RemoteStarts({ remote_starts_max: 3, remote_start_ttl_ms: ttl_ms });
    starts.accepted('CP-1', 'A', 1, 0);
    starts.accepted('CP-2', 'B', 1, 1);
    starts.accepted('CP-3', 'C', 1, 2);
    starts.accepted('CP-4', 'D', 1, 3);
    expect(starts.size).toBe(3);
    expect(starts.take('CP-1', 'A', 1, 'k', 10)).toBe(false);
    expect(starts.take('CP-2', 'B', 1, 'k', 10)).toBe(true);
    expect(starts.take('CP-4', 'D', 1, 'k', 10)).toBe(true);
  });
});
