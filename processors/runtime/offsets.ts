import type { Pool, PoolClient } from '../../lib/db/pool.js';

/**
 * Consumer offsets stored in PostgreSQL (table processor_offsets), the source of truth for where a processor
 * resumes. `next_offset` follows Kafka's convention: the offset of the next record to apply.
 */
export interface PartitionKey {
  groupId: string;
  topic: string;
  partition: number;
}

/** Stored next offsets of the given partitions; a partition never applied is absent from the map. */
export async function loadOffsets(
  pool: Pool,
  groupId: string,
  topic: string,
  partitions: readonly number[],
): Promise<Map<number, bigint>> {
  const { rows } = await pool.query<{ partition: number; next_offset: string }>(
    `SELECT partition, next_offset FROM processor_offsets
      WHERE group_id = $1 AND topic = $2 AND partition = ANY($3::int[])`,
    [groupId, topic, [...partitions]],
  );
  return new Map(rows.map((r) => [r.partition, BigInt(r.next_offset)]));
}

/**
 * Locks the partition's offset row for the rest of the transaction and returns the stored next offset. A
 * partition seen for the first time starts at `firstOffset` (the first record this batch holds). The lock is
 * the fence: a second consumer that still holds the partition after a rebalance waits here, then sees the
 * offset the first one stored and skips what was already applied.
 */
export async function lockOffset(
  client: PoolClient,
  key: PartitionKey,
  firstOffset: bigint,
): Promise<bigint> {
  await client.query({
    name: 'offsets-create',
    text: `INSERT INTO processor_offsets (group_id, topic, partition, next_offset) VALUES ($1, $2, $3, $4)
     ON CONFLICT DO NOTHING`,
    values: [key.groupId, key.topic, key.partition, firstOffset.toString()],
  });
  const { rows } = await client.query<{ next_offset: string }>({
    name: 'offsets-lock',
    text: `SELECT next_offset FROM processor_offsets WHERE group_id = $1 AND topic = $2 AND partition = $3 FOR UPDATE`,
    values: [key.groupId, key.topic, key.partition],
  });
  return BigInt(rows[0]!.next_offset);
}

export async function storeOffset(client: PoolClient, key: PartitionKey, nextOffset: bigint): Promise<void> {
  await client.query({
    name: 'offsets-store',
    text: `UPDATE processor_offsets SET next_offset = $4, updated_at = now()
      WHERE group_id = $1 AND topic = $2 AND partition = $3`,
    values: [key.groupId, key.topic, key.partition, nextOffset.toString()],
  });
}

/**
 * lockOffset for several partitions of one group and topic in ONE statement: creates missing rows at their
 * batch's first offset, locks every row for the rest of the transaction (in ascending partition order, so two
 * consumers locking overlapping sets cannot deadlock) and returns each stored next offset.
 */
export async function lockOffsets(
  client: PoolClient,
  groupId: string,
  topic: string,
  firstOffsets: ReadonlyMap<number, bigint>,
): Promise<Map<number, bigint>> {
  const partitions = [...firstOffsets.keys()].sort((a, b) => a - b);
  // DO UPDATE (to the same value) rather than DO NOTHING: it locks an existing row and RETURNs it as well.
  const { rows } = await client.query<{ partition: number; next_offset: string }>({
    name: 'offsets-lock-many',
    text: `INSERT INTO processor_offsets (group_id, topic, partition, next_offset)
     SELECT $1, $2, p, o FROM unnest($3::int[], $4::bigint[]) WITH ORDINALITY AS k(p, o, n) ORDER BY n
     ON CONFLICT (group_id, topic, partition) DO UPDATE SET next_offset = processor_offsets.next_offset
     RETURNING partition, next_offset`,
    values: [groupId, topic, partitions, partitions.map((p) => firstOffsets.get(p)!.toString())],
  });
  return new Map(rows.map((r) => [r.partition, BigInt(r.next_offset)]));
}

/** storeOffset for several partitions of one group and topic in one statement. */
export async function storeOffsets(
  client: PoolClient,
  groupId: string,
  topic: string,
  nextOffsets: ReadonlyMap<number, bigint>,
): Promise<void> {
  if (nextOffsets.size === 0) return;
  await client.query({
    name: 'offsets-store-many',
    text: `UPDATE processor_offsets o SET next_offset = k.o, updated_at = now()
       FROM unnest($3::int[], $4::bigint[]) AS k(p, o)
      WHERE o.group_id = $1 AND o.topic = $2 AND o.partition = k.p`,
    values: [groupId, topic, [...nextOffsets.keys()], [...nextOffsets.values()].map(String)],
  });
}

export type OffsetDecision =
  | { offset: bigint; reason: 'stored' | 'fresh' }
  | { offset: bigint; reason: 'behind-log-start' | 'beyond-log-end'; stored: bigint };

/**
 * Where a partition resumes, given its stored next offset and the log's current range [low, high) (high is the
 * next offset Kafka will write). A stored offset inside the range (or at its end) is used as it is. One below
 * the log start means retention deleted records before they were applied: they are gone, resume at the start.
 * One beyond the log end means the topic was recreated (always, on the local mock broker after a restart): the
 * stored position belongs to the old log, resume from the new log's start. Both are reported, never silent.
 */
export function decideResumeOffset(stored: bigint | undefined, low: bigint, high: bigint): OffsetDecision {
  if (stored === undefined) return { offset: low, reason: 'fresh' };
  if (stored < low) return { offset: low, reason: 'behind-log-start', stored };
  if (stored > high) return { offset: low, reason: 'beyond-log-end', stored };
  return { offset: stored, reason: 'stored' };
}

/** Moves a stored offset outside any transaction that applies records (used when the log range moved). */
export async function resetOffset(pool: Pool, key: PartitionKey, nextOffset: bigint): Promise<void> {
  await pool.query(
    `UPDATE processor_offsets SET next_offset = $4, updated_at = now()
      WHERE group_id = $1 AND topic = $2 AND partition = $3`,
    [key.groupId, key.topic, key.partition, nextOffset.toString()],
  );
}
