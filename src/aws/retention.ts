/**
 * Retention (`--keep N`, `--keep-days D`): deletes older snapshots of the same volumes that
 * carry this tool's marker tag, never one without it, never one of this run. The marker's value
 * is the volume id, or "multi-volume" (then the snapshot's VolumeId names the volume).
 */
import type { Snapshot as SdkSnapshot } from "@aws-sdk/client-ec2";
import type { EC2Client } from "./ec2.ts";
import { errorCode, errorMessage } from "../util/errors.ts";
import type { Logger } from "../util/log.ts";
import { MARKER_TAG, MULTI_VOLUME_MARKER } from "../plan/tags.ts";
import type { RetentionPolicy } from "../plan/after_run.ts";

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
}

const DAY_MS = 24 * 60 * 60 * 1000;

function markerOf(snapshot: Snapshot): string | undefined {
  return snapshot.Tags?.find((tag) => tag.Key === MARKER_TAG)?.Value;
}

/** Our snapshots of these volumes, by volume: owned by us, marker tag naming the volume. */
async function markedSnapshots(
  client: EC2Client,
  volumeIds: readonly string[],
): Promise<Map<string, Snapshot[]>> {
  const byVolume = new Map<string, Snapshot[]>(volumeIds.map((id) => [id, []]));
  // The SDK loads when it is used: planning retention (and --help) starts without it.
  const { paginateDescribeSnapshots } = await import("@aws-sdk/client-ec2");
  const pages = paginateDescribeSnapshots({ client }, {
    OwnerIds: ["self"],
    Filters: [{ Name: `tag:${MARKER_TAG}`, Values: [...volumeIds, MULTI_VOLUME_MARKER] }],
  });
  for await (const page of pages) {
    for (const snapshot of page.Snapshots ?? []) {
      // Checked again here: never trust a filter to be the only guard before a delete.
      const marker = markerOf(snapshot);
      const volumeId = marker === MULTI_VOLUME_MARKER ? snapshot.VolumeId : marker;
      if (volumeId !== undefined && byVolume.has(volumeId)) byVolume.get(volumeId)!.push(snapshot);
    }
  }
  return byVolume;
}

/**
 * The snapshots the policy lets go, for one volume. `ownCount` snapshots of this run (or, with
 * --noaction, the one it would make) count as the newest ones kept.
 */
export function selectExpired(
  snapshots: readonly Snapshot[],
  policy: RetentionPolicy,
  options: { ownCount: number; now: Date },
): Snapshot[] {
  const started = (s: Snapshot) => s.StartTime?.getTime() ?? Number.POSITIVE_INFINITY;
  // Newest first; equal times by id, so the order (and so the choice) is stable.
  const sorted = snapshots
    .filter((s) => s.State !== "pending" && s.StartTime !== undefined)
    .sort((a, b) => started(b) - started(a) || (b.SnapshotId! < a.SnapshotId! ? -1 : 1));
  return sorted.filter((snapshot, index) => {
    const keptByCount = policy.keep !== undefined && index + options.ownCount < policy.keep;
    const keptByAge = policy.keepDays !== undefined &&
      options.now.getTime() - started(snapshot) < policy.keepDays * DAY_MS;
    return !keptByCount && !keptByAge;
  });
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
  /** The time the ages are measured from; now by default. */
  now?: Date;
}

/**
 * Applies the policy to the volumes of this run.
 *
 * @example
 * ```ts
 * const result = await applyRetention({ client, policy: { keep: 7 }, volumeIds,
 *   ownSnapshots, noaction: false, log });
 * ```
 */
export async function applyRetention(options: RetentionOptions): Promise<RetentionResult> {
  const { client, policy, log } = options;
  const now = options.now ?? new Date();
  const own = new Set(options.ownSnapshots.map((s) => s.snapshotId));
  const result: RetentionResult = {
    noaction: options.noaction,
    deleted: [],
    skipped: [],
    failed: [],
  };
  const byVolume = await markedSnapshots(client, options.volumeIds);
  const expired: RetentionItem[] = [];
  for (const [volumeId, snapshots] of byVolume) {
    const others = snapshots.filter((s) => !own.has(s.SnapshotId!));
    // With --noaction the run would make one snapshot of each volume.
    const ownCount = options.noaction
      ? 1
      : options.ownSnapshots.filter((s) => s.volumeId === volumeId).length;
    for (const snapshot of selectExpired(others, policy, { ownCount, now })) {
      expired.push({
        snapshotId: snapshot.SnapshotId!,
        volumeId,
        startTime: snapshot.StartTime!.toISOString(),
      });
    }
  }
  if (options.noaction) {
    result.deleted = expired;
    return result;
  }
  // One at a time: deletes are rare and a slow, orderly prune is kinder to API rate limits.
  const { DeleteSnapshotCommand } = await import("@aws-sdk/client-ec2");
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
