/** The tool's tags: the marker and the run id every snapshot of ours carries, and EC2's limits on tags. Imports nothing. */

/** The program's name: the default description and the marker tag's key. */
export const PROGRAM = "ec2-consistent-snapshot";

/**
 * The tag every snapshot of ours carries; its value is the volume id (retention uses it).
 *
 * @example
 * ```ts
 * const tags = { Name: "db", [MARKER_TAG]: "vol-0123456789abcdef0" };
 * ```
 */
export const MARKER_TAG = `${PROGRAM}:volume`;

/**
 * The marker tag's value on --multi-volume snapshots. CreateSnapshots applies one tag set to all
 * the snapshots it makes, so the marker cannot name each one's volume; it says "multi-volume"
 * and retention reads the volume from the snapshot's own VolumeId (set by EC2, not by a tag).
 * Every tag stays in the creating call: no second CreateTags, no window without tags.
 */
export const MULTI_VOLUME_MARKER = "multi-volume";

/**
 * The tag every snapshot request of a run carries; its value is the run's id (a UUID), by which
 * a snapshot made from a call that got no answer is found after the thaw.
 */
export const RUN_ID_TAG = `${PROGRAM}:run-id`;

/**
 * The tag the create call adds when it is sent: the instant (ISO 8601, UTC, EC2's clock) until
 * which the run guarantees to hold everything frozen and locked, should the call's answer not
 * come back. A snapshot whose StartTime is later may have been taken after the thaw: of unknown
 * consistency, which retention and the restore drill tell from EC2 alone.
 */
export const HELD_UNTIL_TAG = `${PROGRAM}:held-until`;

/**
 * The tag with the run's volume count and each volume's file-system type and mount point
 * (restore_tags.ts writes and reads its value).
 */
export const VOLUMES_TAG = `${PROGRAM}:volumes`;

/**
 * The tag with the database engine, version, its files and the position at the lock (set in
 * the create call only when the run locks a database; restore_tags.ts writes and reads it).
 */
export const DATABASE_TAG = `${PROGRAM}:database`;

/**
 * The tag of every volume a restore drill creates; its value is the instance it is restored
 * on. The next drill on that instance deletes what a killed one left; the drill's IAM policy
 * allows attach, detach and delete only of volumes with it.
 */
export const DRILL_TAG = `${PROGRAM}:drill`;

/** The keys of the tags the tool sets itself; `--tag` may not use them. */
export const OWN_TAG_KEYS: readonly string[] = [
  MARKER_TAG,
  RUN_ID_TAG,
  HELD_UNTIL_TAG,
  VOLUMES_TAG,
  DATABASE_TAG,
];

/**
 * The most tags the tool adds to a snapshot: the marker, the run id, the held-until time, the
 * volumes and the database tag; `--tag` (with `--name`'s Name tag) has the rest of EC2's 50.
 */
export const OWN_TAGS: number = OWN_TAG_KEYS.length;

/** EC2's limit on tags per snapshot (the tool's own tags count against it). */
export const MAX_TAGS = 50;
/** EC2's limit on the length of a tag key. */
export const MAX_TAG_KEY = 128;
/** EC2's limit on the length of a tag value. */
export const MAX_TAG_VALUE = 256;

/**
 * The tags without the marker tag.
 *
 * @example
 * ```ts
 * withoutMarker({ Name: "db", [MARKER_TAG]: "vol-0123456789abcdef0" }); // { Name: "db" }
 * ```
 */
export function withoutMarker(tags: Record<string, string>): Record<string, string> {
  const { [MARKER_TAG]: _marker, ...rest } = tags;
  return rest;
}

/**
 * The length of a text in characters (Unicode code points), as EC2 counts tag lengths.
 *
 * @example
 * ```ts
 * characters("\u{1F600}"); // 1 (its .length is 2)
 * ```
 */
export function characters(text: string): number {
  let count = 0;
  for (const _ of text) count++;
  return count;
}

/** What one snapshot request asks for. */
export interface SnapshotRequest {
  /** The volume to snapshot. */
  volumeId: string;
  /** The snapshot's description. */
  description: string;
  /** The snapshot's tags, set in the CreateSnapshot call itself. */
  tags: Record<string, string>;
}
