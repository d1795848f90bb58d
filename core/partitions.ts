/**
 * Events are partitioned by charge point: every event of a charge point (and so every event of
 * its sessions) goes to the same partition subject, and one rating process at a time owns a
 * partition, so each session is priced by exactly one process, in order.
 */
export function partition_of(charge_point_id: string, partitions: number): number {
  // FNV-1a, 32 bit, over UTF-16 code units: stable across processes and versions.
  let hash = 0x811c9dc5;
  for (let i = 0; i < charge_point_id.length; i++) {
    hash ^= charge_point_id.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % partitions;
}

/** The subject of one partition under the events subject, e.g. "evrate.events.p3". */
export function partition_subject(events_subject: string, partition: number): string {
  return `${events_subject}.p${partition}`;
}

/** Items grouped by the partition of their charge point, each group in the items' order. */
export function group_by_partition<T>(
  items: readonly T[],
  charge_point_of: (item: T) => string,
  partitions: number,
): Map<number, T[]> {
  const groups = new Map<number, T[]>();
  for (const item of items) {
    const partition = partition_of(charge_point_of(item), partitions);
    const group = groups.get(partition);
    if (group === undefined) groups.set(partition, [item]);
    else group.push(item);
  }
  return groups;
}
