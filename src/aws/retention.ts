/**
 * Retention: deletes the snapshots of the run's volumes that carry this tool's marker tag and
 * that the policy (retention/policy.ts) does not keep; never one without the marker, never one of
 * this run. A snapshot is a volume's only when EC2's VolumeId says so (the marker's value, the
 * volume id or "multi-volume", must agree); ages are measured with EC2's clock.
 */
import {
  DeleteSnapshotCommand,
  paginateDescribeSnapshots,
  type Snapshot as SdkSnapshot,
} from "@aws-sdk/client-ec2";
import type { EC2Client } from "./ec2.ts";
import { errorCode, errorMessage } from "../util/errors.ts";
import type { Logger } from "../util/log.ts";
import { HELD_UNTIL_TAG, MARKER_TAG, MULTI_VOLUME_MARKER } from "../types/tags.ts";
import { clockDisagreement, ec2Clock } from "./ec2_clock.ts";
import {
  decideRetention,
  type PolicySnapshot,
  type RetentionRules as RetentionPolicy,
} from "../retention/policy.ts";

/** A snapshot as DescribeSnapshots lists it (the SDK's type). */
export type Snapshot = SdkSnapshot;

/** One snapshot retention looked at and did not keep. */
export interface RetentionItem {
  /** The snapshot. */
  snapshotId: string;
  /** The volume it was made of. */
  volumeId: string;
  /** ISO time the snapshot was started. */
  startTime: string;
  /** Why it was skipped or failed; absent when deleted (or, with --noaction, to be deleted). */
  reason?: string;
}

/** The decision on one snapshot, as reported (JSON, and --noaction's listing). */
export interface RetentionDecisionItem {
  /** The snapshot. */
  snapshotId: string;
  /** Its volume (for --multi-volume snapshots, the snapshot's own VolumeId). */
  volumeId: string;
  /** ISO time the snapshot was started. */
  startTime: string;
  /** True when a rule keeps it (or it may not be deleted); false when it goes. */
  keep: boolean;
  /** The rules that keep it ("this run", "last 7", "daily 2021-01-04", "pending"). */
  keptBy: string[];
  /** Why it goes, when it goes. */
  reason?: string;
}

/** What retention did (or, with --noaction, would do). */
export interface RetentionResult {
  /** True with --noaction: nothing was deleted; `deleted` lists what would be. */
  noaction: boolean;
  /** Deleted, or with --noaction, those that would be deleted. */
  deleted: RetentionItem[];
  /** Not deleted because an image (AMI) uses them. */
  skipped: RetentionItem[];
  /** DeleteSnapshot failed for another reason. */
  failed: RetentionItem[];
  /** Every snapshot of the run's volumes that carries the marker, newest first per volume. */
  decisions: RetentionDecisionItem[];
  /**
   * Why nothing was deleted whatever the rules say (the local clock disagrees with EC2's);
   * absent when retention could delete.
   */
  refused?: string;
}

function markerOf(snapshot: Snapshot): string | undefined {
  return snapshot.Tags?.find((tag) => tag.Key === MARKER_TAG)?.Value;
}

/**
 * Our snapshots of these volumes, by volume: owned by us, EC2's VolumeId one of the volumes, and
 * the marker tag agreeing (naming that volume, or "multi-volume"). A marker that names another
 * volume than EC2 does is no one's: a tag can be copied or set by anyone, VolumeId cannot.
 */
async function markedSnapshots(
  client: EC2Client,
  volumeIds: readonly string[],
  log: Logger,
): Promise<Map<string, Snapshot[]>> {
  const byVolume = new Map<string, Snapshot[]>(volumeIds.map((id) => [id, []]));
  const pages = paginateDescribeSnapshots({ client }, {
    OwnerIds: ["self"],
    Filters: [{ Name: `tag:${MARKER_TAG}`, Values: [...volumeIds, MULTI_VOLUME_MARKER] }],
  });
  for await (const page of pages) {
    for (const snapshot of page.Snapshots ?? []) {
      // Checked again here: never trust a filter to be the only guard before a delete.
      const marker = markerOf(snapshot);
      const volumeId = snapshot.VolumeId;
      if (volumeId === undefined || !byVolume.has(volumeId)) continue;
      if (marker !== volumeId && marker !== MULTI_VOLUME_MARKER) {
        log.debug(
          `retention: ${snapshot.SnapshotId} is tagged as of ${marker} but EC2 says it is of ` +
            `${volumeId}: left alone`,
        );
        continue;
      }
      byVolume.get(volumeId)!.push(snapshot);
    }
  }
  return byVolume;
}

/**
 * True when EC2 alone says the snapshot may not be consistent: it started after the instant
 * until which its run guaranteed to hold everything (its held-until tag), or that tag is not a
 * time. A snapshot without the tag (made by an older version) is judged as before.
 */
export function consistencyUnknown(snapshot: Snapshot): boolean {
  const held = snapshot.Tags?.find((tag) => tag.Key === HELD_UNTIL_TAG)?.Value;
  if (held === undefined) return false;
  const heldUntil = Date.parse(held);
  return Number.isNaN(heldUntil) || snapshot.StartTime === undefined ||
    snapshot.StartTime.getTime() > heldUntil;
}

/**
 * Why a snapshot may not be deleted or counted whatever the rules say, if it may not: only a
 * completed snapshot of known consistency is a backup; one that is pending, failed (`error`) or
 * in any other state, or of unknown consistency, never stands in for one, and is left alone.
 */
function exemption(snapshot: Snapshot): string | undefined {
  if (snapshot.State === "pending") return "pending";
  if (snapshot.State !== "completed") return `${snapshot.State ?? "no state"}: not a backup`;
  if (consistencyUnknown(snapshot)) return "consistency unknown: not a backup";
  return undefined;
}

/** What {@linkcode applyRetention} looks at, and how. */
export interface RetentionOptions {
  /** An SDK client for the region of the volumes. */
  client: EC2Client;
  /** What to keep. */
  policy: RetentionPolicy;
  /** The volumes of this run. */
  volumeIds: readonly string[];
  /** The snapshots made by this run: never deleted; they count as the newest kept. */
  ownSnapshots: readonly { snapshotId: string; volumeId: string }[];
  /** List only (read-only DescribeSnapshots), delete nothing. */
  noaction: boolean;
  /** Where --debug steps and warnings go. */
  log: Logger;
  /** The time the ages are measured from; EC2's time (the Date of its answers) by default. */
  now?: Date;
}

/**
 * Applies the policy to the volumes of this run.
 *
 * @example
 * ```ts
 * import type { Logger } from "../util/log.ts";
 * import type { EC2Client } from "./ec2.ts";
 * const client = {} as EC2Client, log = {} as Logger;
 * const volumeIds = ["vol-0123456789abcdef0"];
 * const ownSnapshots = [{ snapshotId: "snap-0123456789abcdef0", volumeId: volumeIds[0] }];
 * const result = await applyRetention({ client, policy: { keep: 7, calendar: {}, timeZone: "UTC" },
 *   volumeIds, ownSnapshots, noaction: false, log });
 * ```
 */
export async function applyRetention(options: RetentionOptions): Promise<RetentionResult> {
  const { client, policy, log } = options;
  const own = new Set(options.ownSnapshots.map((s) => s.snapshotId));
  const result: RetentionResult = {
    noaction: options.noaction,
    deleted: [],
    skipped: [],
    failed: [],
    decisions: [],
  };
  // Ages by EC2's clock: a local clock that is wrong by days must not make backups look old.
  const clock = ec2Clock(client);
  const byVolume = await markedSnapshots(client, options.volumeIds, log);
  const ec2Now = clock.now();
  const now = options.now ?? ec2Now ?? new Date();
  const wrongClock = options.now
    ? undefined
    : ec2Now
    ? clock.conflict() ?? clockDisagreement(clock.skew())
    : "EC2's answers carry no Date: the local clock cannot be checked";
  if (wrongClock) {
    result.refused = wrongClock;
    // About the backups, not chatter: --quiet keeps it (snapshots pile up while it lasts).
    log.warn(`retention: ${wrongClock}; nothing is deleted in this run`, { evenWhenQuiet: true });
  }
  const input: PolicySnapshot[] = [];
  for (const [volumeId, snapshots] of byVolume) {
    const listed = new Set(snapshots.map((s) => s.SnapshotId));
    // The run's own snapshots fill their periods even before DescribeSnapshots lists them;
    // with --noaction, the one snapshot the run would make of each volume, now.
    const unlisted = options.noaction
      ? 1
      : options.ownSnapshots.filter((s) => s.volumeId === volumeId && !listed.has(s.snapshotId))
        .length;
    for (let i = 0; i < unlisted; i++) {
      input.push({ snapshotId: "", volumeId, startTime: now, own: true });
    }
    for (const snapshot of snapshots) {
      if (snapshot.StartTime === undefined) continue; // never seen; nothing to decide on
      const isOwn = own.has(snapshot.SnapshotId!);
      input.push({
        snapshotId: snapshot.SnapshotId!,
        volumeId,
        startTime: snapshot.StartTime,
        own: isOwn,
        // This run's snapshot counts even while pending: it is the one the run vouches for.
        exempt: isOwn ? undefined : exemption(snapshot),
      });
    }
  }
  const expired: RetentionItem[] = [];
  for (const decision of decideRetention(input, policy, now)) {
    const { snapshotId, volumeId, startTime } = decision.snapshot;
    if (snapshotId === "") continue; // a snapshot of this run not listed (yet), or to be made
    const item = { snapshotId, volumeId, startTime: startTime.toISOString() };
    result.decisions.push({
      ...item,
      keep: decision.keep,
      keptBy: decision.keptBy,
      reason: decision.reason,
    });
    if (!decision.keep) expired.push(item);
  }
  if (options.noaction) {
    result.deleted = wrongClock ? [] : expired;
    return result;
  }
  if (wrongClock) return result;
  // One at a time: deletes are rare and a slow, orderly prune is kinder to API rate limits.
  for (const item of expired) {
    try {
      await client.send(new DeleteSnapshotCommand({ SnapshotId: item.snapshotId }));
      log.debug(`retention: deleted ${item.snapshotId} of ${item.volumeId} (${item.startTime})`);
      result.deleted.push(item);
    } catch (error) {
      const code = errorCode(error);
      const message = errorMessage(error);
      if (code === "InvalidSnapshot.InUse") {
        log.warn(`retention: kept ${item.snapshotId} of ${item.volumeId}: in use by an image`);
        result.skipped.push({ ...item, reason: `${code}: ${message}` });
      } else if (code === "InvalidSnapshot.NotFound") {
        log.debug(`retention: ${item.snapshotId} already gone`);
      } else {
        result.failed.push({ ...item, reason: `${code}: ${message}` });
      }
    }
  }
  return result;
}
