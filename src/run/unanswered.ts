/**
 * After the thaw, the calls whose answer never came: the snapshots EC2 holds with the run's id
 * tag are looked up, and any that no call reported is a snapshot of unknown consistency.
 */
import { ConsistencyUnknownError, errorCode, errorMessage } from "../util/errors.ts";
import type {
  Ec2,
  FoundSnapshot,
  SnapshotOutcome,
  SnapshotRequest,
} from "../types/side_effects.ts";
import type { Logger } from "../util/log.ts";
import { RUN_ID_TAG } from "../types/tags.ts";
import { deadline, delay } from "../util/deadline.ts";

/** The lookup after the thaw of snapshots made by calls that were aborted or got no answer. */
export interface RunLookup {
  /** Snapshots of this run that EC2 holds and no call reported: consistency unknown, kept. */
  consistencyUnknown: FoundSnapshot[];
  /** Why the lookup could not be done; null when it was. */
  error: string | null;
}

/** How long the lookup after the thaw may take, both tries together. */
export const LOOKUP_TIMEOUT_MS = 15_000;
/** How long the lookup waits before it asks again when the first try found nothing. */
export const LOOKUP_RETRY_MS = 2_000;

/** What the lookup needs. */
export interface LookupDeps {
  /** Where to look (its optional findRunSnapshots). */
  ec2: Ec2;
  /** For the debug lines and the warning when the lookup cannot be done. */
  log: Logger;
  /** The run's requests: their tags carry the run's id. */
  requests: readonly SnapshotRequest[];
  /** Pause before asking again; LOOKUP_RETRY_MS by default. */
  retryMs?: number;
}

/**
 * When a call was aborted or got no answer: asks EC2 for the snapshots with the run's id tag
 * (twice, `retryMs` apart, when the first finds none: EC2 lists a new snapshot after a
 * moment), bounded by LOOKUP_TIMEOUT_MS. Null when every call was answered. Never throws: a
 * lookup that cannot be done is a warning naming the tag to look for.
 *
 * @example
 * ```ts
 * import type { Ec2, SnapshotOutcome, SnapshotRequest } from "../types/side_effects.ts";
 * import type { Logger } from "../util/log.ts";
 * const outcomes = {} as SnapshotOutcome[], ec2 = {} as Ec2, log = {} as Logger, requests = {} as SnapshotRequest[];
 * const lookup = await lookUpUnanswered(outcomes, { ec2, log, requests });
 * ```
 */
export async function lookUpUnanswered(
  outcomes: readonly SnapshotOutcome[],
  deps: LookupDeps,
): Promise<RunLookup | null> {
  const { ec2, log, requests } = deps;
  const unanswered = outcomes.filter((o) => !o.ok && o.kind !== "error");
  if (unanswered.length === 0) return null;
  const volumes = unanswered.map((o) => o.volumeId).join(", ");
  if (!ec2.findRunSnapshots) {
    return { consistencyUnknown: [], error: "this endpoint cannot look snapshots up" };
  }
  const reported = new Set(outcomes.flatMap((o) => o.ok ? [o.snapshotId] : []));
  const signal = deadline(LOOKUP_TIMEOUT_MS);
  try {
    let found: FoundSnapshot[] = [];
    for (let attempt = 0; attempt < 2 && found.length === 0; attempt++) {
      if (attempt > 0) await delay(deps.retryMs ?? LOOKUP_RETRY_MS, { signal });
      log.debug(`looking up snapshots of this run (calls without an answer: ${volumes})`);
      found = (await ec2.findRunSnapshots(requests, signal))
        .filter((s) => !reported.has(s.snapshotId));
    }
    log.debug(`lookup: ${found.map((s) => s.snapshotId).join(", ") || "none"}`);
    return { consistencyUnknown: found, error: null };
  } catch (error) {
    const code = signal.aborted ? "Aborted" : errorCode(error);
    const why = code === "UnauthorizedOperation"
      ? "not permitted (the IAM policy needs ec2:DescribeSnapshots)"
      : `${code}: ${errorMessage(error)}`;
    const tag = `${RUN_ID_TAG}=${requests[0]?.tags[RUN_ID_TAG] ?? "(none)"}`;
    log.warn(
      `could not look up whether EC2 made a snapshot of ${volumes} from a call without an answer: ` +
        `${why}; look for snapshots tagged ${tag}`,
    );
    return { consistencyUnknown: [], error: why };
  }
}

/**
 * The problem (exit 12) of one snapshot of unknown consistency: its id, and how to delete it.
 *
 * @example
 * ```ts
 * consistencyUnknownError({ snapshotId: "snap-0123", volumeId: "vol-0123" }).exitCode; // 12
 * ```
 */
export function consistencyUnknownError(s: FoundSnapshot): ConsistencyUnknownError {
  const why = s.why
    ? `made while not everything was held: ${s.why}`
    : "from a call that was aborted or got no answer (EC2 may have taken it after the thaw)";
  return new ConsistencyUnknownError(
    `created, consistency unknown: ${s.snapshotId} of ${s.volumeId}, ${why}; it is kept. ` +
      `To delete it: aws ec2 delete-snapshot --snapshot-id ${s.snapshotId}`,
  );
}
