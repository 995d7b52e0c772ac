/** `--copy-to-region`: copies completed snapshots into other regions with their description and tags. */
import { CopySnapshotCommand } from "@aws-sdk/client-ec2";
import type { EC2Client } from "./ec2.ts";
import { errorCode, errorMessage } from "../util/errors.ts";
import type { Logger } from "../util/log.ts";

/** A completed snapshot to copy. */
export interface CopySource {
  /** The completed snapshot, in the source region. */
  snapshotId: string;
  /** The volume the snapshot was made of. */
  volumeId: string;
  /** The snapshot's description, given to the copy. */
  description: string;
  /** The snapshot's tags, set on the copy in the same call. */
  tags: Record<string, string>;
}

/** One copy, made or failed (reported in text and JSON). */
export interface CopyOutcome {
  /** The snapshot that was copied. */
  sourceSnapshotId: string;
  /** The volume the snapshot was made of. */
  volumeId: string;
  /** The region of the copy. */
  region: string;
  /** The copy's id; null when CopySnapshot failed. */
  snapshotId: string | null;
  /** Why CopySnapshot failed (AWS's error code and message); null when it did not. */
  error: { code: string; message: string } | null;
}

/** What {@linkcode copySnapshots} copies where, and how. */
export interface CopyOptions {
  /** The region of the sources. */
  sourceRegion: string;
  /** The destination regions, in the order given. */
  regions: readonly string[];
  /** An SDK client for a destination region (CopySnapshot is sent to the destination). */
  clientFor: (region: string) => EC2Client;
  /** --copy-kms-key-id: the copies are encrypted with this key. */
  kmsKeyId?: string;
  /** Where --debug steps and warnings go. */
  log: Logger;
  /** Aborted by a stop signal: the calls in flight are abandoned. */
  signal?: AbortSignal;
}

/**
 * Starts one CopySnapshot per source and region, concurrently; tags are set in the same call.
 * Returns the outcomes ordered by region (in the order given), then by source.
 *
 * @example
 * ```ts
 * import type { EC2Client } from "./ec2.ts";
 * import type { Logger } from "../util/log.ts";
 * const sources = {} as CopySource[], log = {} as Logger;
 * const clientFor = {} as (region: string) => EC2Client;
 * const copies = await copySnapshots(sources, { sourceRegion: "us-east-1",
 *   regions: ["eu-west-1"], clientFor, log });
 * ```
 */
export function copySnapshots(
  sources: readonly CopySource[],
  options: CopyOptions,
): Promise<CopyOutcome[]> {
  const jobs = options.regions.flatMap((region) => sources.map((source) => ({ region, source })));
  return Promise.all(jobs.map(async ({ region, source }): Promise<CopyOutcome> => {
    const base = { sourceSnapshotId: source.snapshotId, volumeId: source.volumeId, region };
    const tags = Object.entries(source.tags).map(([Key, Value]) => ({ Key, Value }));
    try {
      const out = await options.clientFor(region).send(
        new CopySnapshotCommand({
          SourceRegion: options.sourceRegion,
          SourceSnapshotId: source.snapshotId,
          Description: source.description,
          TagSpecifications: tags.length > 0
            ? [{ ResourceType: "snapshot", Tags: tags }]
            : undefined,
          ...(options.kmsKeyId ? { Encrypted: true, KmsKeyId: options.kmsKeyId } : {}),
        }),
        { abortSignal: options.signal },
      );
      options.log.debug(`CopySnapshot ${source.snapshotId} to ${region}: ${out.SnapshotId}`);
      return { ...base, snapshotId: out.SnapshotId!, error: null };
    } catch (error) {
      const code = errorCode(error);
      const message = errorMessage(error);
      options.log.debug(`CopySnapshot ${source.snapshotId} to ${region} failed: ${code}`);
      return { ...base, snapshotId: null, error: { code, message } };
    }
  }));
}
