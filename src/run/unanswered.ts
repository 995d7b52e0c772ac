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
import { HELD_UNTIL_TAG, RUN_ID_TAG } from "../types/tags.ts";
import { deadline, delay } from "../util/deadline.ts";

/** The lookup after the thaw of snapshots made by calls that were aborted or got no answer. */
export interface RunLookup {
  /** Snapshots of this run that EC2 holds and no call reported: consistency unknown, kept. */
  consistencyUnknown: FoundSnapshot[];
  /** Why the lookup could not be done; null when it was. */
  error: string | null;
}

/**
 * How long the lookup after the thaw keeps looking for the snapshots of calls without an
 * answer: a request already on its way may reach EC2 after the release.
 */
export const LOOKUP_WINDOW_MS = 10_000;
/** The same after a stop signal: the run must still end within seconds. */
export const STOPPED_LOOKUP_WINDOW_MS = 5_000;
/** How long the lookup waits before it asks again while a snapshot is still missing. */
export const LOOKUP_RETRY_MS = 1_000;

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
  /** True after a stop signal: look for STOPPED_LOOKUP_WINDOW_MS only. */
  stopped?: boolean;
  /** How long to keep looking, instead of the windows above (tests: 0 looks once). */
  windowMs?: number;
  /** Ends the lookup early with what it found (a second stop signal: the user insists). */
  signal?: AbortSignal;
}

/**
 * When a call was aborted or got no answer: asks EC2 for the snapshots with the run's id tag,
 * again every `retryMs` until each such call's volume has one or the window (LOOKUP_WINDOW_MS,
 * STOPPED_LOOKUP_WINDOW_MS after a stop signal) ends. Null when every call was answered. Never
 * throws: a lookup that cannot be done is a warning naming the tag to look for, and so is a
 * snapshot still missing at the end (EC2 may make it later; its StartTime then lies after its
 * held-until tag, which tells it apart for good).
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
  const tag = `${RUN_ID_TAG}=${requests[0]?.tags[RUN_ID_TAG] ?? "(none)"}`;
  if (!ec2.findRunSnapshots) {
    return { consistencyUnknown: [], error: "this endpoint cannot look snapshots up" };
  }
  const reported = new Set(outcomes.flatMap((o) => o.ok ? [o.snapshotId] : []));
  const windowMs = deps.windowMs ??
    (deps.stopped ? STOPPED_LOOKUP_WINDOW_MS : LOOKUP_WINDOW_MS);
  const ends = performance.now() + windowMs;
  // The last try may take a moment past the window; the deadline bounds it.
  const bound = deadline(windowMs + LOOKUP_RETRY_MS * 5);
  const signal = deps.signal ? AbortSignal.any([bound, deps.signal]) : bound;
  let found: FoundSnapshot[] | undefined;
  const missing = () =>
    unanswered.filter((o) => !found?.some((s) => s.volumeId === o.volumeId))
      .map((o) => o.volumeId);
  try {
    for (;;) {
      log.debug(`looking up snapshots of this run (calls without an answer: ${volumes})`);
      found = (await ec2.findRunSnapshots(requests, signal))
        .filter((s) => !reported.has(s.snapshotId));
      if (missing().length === 0 || performance.now() >= ends) break;
      await delay(Math.min(deps.retryMs ?? LOOKUP_RETRY_MS, ends - performance.now()), { signal });
    }
  } catch (error) {
    if (found === undefined || !signal.aborted) {
      const code = signal.aborted ? "Aborted" : errorCode(error);
      const why = code === "UnauthorizedOperation"
        ? "not permitted (the IAM policy needs ec2:DescribeSnapshots)"
        : `${code}: ${errorMessage(error)}`;
      log.warn(
        `could not look up whether EC2 made a snapshot of ${volumes} from a call without an ` +
          `answer: ${why}; look for snapshots tagged ${tag}`,
        { evenWhenQuiet: true },
      );
      return { consistencyUnknown: found ?? [], error: why };
    }
    // The window ended: what was found so far is the answer.
  }
  found ??= [];
  log.debug(`lookup: ${found.map((s) => s.snapshotId).join(", ") || "none"}`);
  if (missing().length > 0) {
    log.warn(
      `no snapshot of ${missing().join(", ")} appeared while the run looked (up to ${
        windowMs / 1000
      } s after the release), but EC2 may still make one from the call that was sent: a snapshot tagged ` +
        `${tag} whose StartTime is after its ${HELD_UNTIL_TAG} tag is of unknown consistency`,
      { evenWhenQuiet: true },
    );
  }
  return { consistencyUnknown: found, error: null };
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
