/** The database tag, added to the snapshot requests while everything is held: the position is known only then. */
import { type DatabaseTag, databaseTagValue } from "../types/restore_tags.ts";
import { DATABASE_TAG } from "../types/tags.ts";
import type { HeldState } from "./window.ts";
import type { SnapshotRequest } from "../types/side_effects.ts";

/**
 * The requests with the database tag (engine, version, files, binary-log or WAL position) when
 * the run has a database it learnt about; the requests unchanged otherwise. What had to be
 * left out to fit EC2's limit is warned about.
 *
 * @example
 * ```ts
 * import type { HeldState } from "./window.ts";
 * import type { SnapshotRequest } from "../types/tags.ts";
 * const volumes = {} as SnapshotRequest[], state = {} as HeldState;
 * const tagged = withDatabaseTag(volumes, state, (m) => console.warn(m));
 * ```
 */
export function withDatabaseTag(
  requests: readonly SnapshotRequest[],
  held: HeldState,
  warn: (message: string) => void,
): readonly SnapshotRequest[] {
  if (!held.facts) return requests;
  // A replica's coordinates are its source's: they say nothing about the local binary log.
  const binlog = held.binlog?.from === "source" ? held.binlog : undefined;
  const tag: DatabaseTag = {
    ...held.facts,
    ...(binlog ? { binlog: { file: binlog.file, position: binlog.position } } : {}),
    ...(binlog?.gtidExecuted ? { gtid: binlog.gtidExecuted } : {}),
    ...(held.wal ? { lsn: held.wal.lsn, timeline: held.wal.timeline } : {}),
  };
  const { value, dropped } = databaseTagValue(tag);
  if (dropped.length > 0) {
    warn(`${DATABASE_TAG}: left out ${dropped.join(" and ")} to stay within EC2's 256 characters`);
  }
  return requests.map((r) => ({ ...r, tags: { ...r.tags, [DATABASE_TAG]: value } }));
}
