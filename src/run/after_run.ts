/**
 * What follows a successful run, once everything is released: wait for the snapshots, copy
 * them to other regions (and wait for the copies), then apply retention.
 */
import type { EC2Client } from "../aws/ec2.ts";
import { SignalError, STOP_SIGNALS } from "./cleanup.ts";
import type { CopyOutcome } from "../aws/copy.ts";
import {
  type AppError,
  errorMessage,
  RetentionError,
  SnapshotError,
  StoppedError,
  WaitError,
} from "../util/errors.ts";
import type { SnapshotOutcome, SnapshotRequest } from "../types/side_effects.ts";
import { HELD_UNTIL_TAG } from "../types/tags.ts";
import type { Logger } from "../util/log.ts";
import type { AfterRunPlan, RetentionPolicy } from "../plan/after_run.ts";
import type { ProgressItem, ProgressSink } from "../types/progress.ts";
import { applyRetention, type RetentionResult } from "../aws/retention.ts";
import type { WaitOutcome, WaitTarget } from "../aws/wait.ts";

/** What the follow-up steps did (reported in JSON; copies also in text). */
export interface AfterRunResult {
  /** One per snapshot (and copy) waited for. */
  waits: WaitOutcome[];
  /** One per snapshot and --copy-to-region region. */
  copies: CopyOutcome[];
  /** What retention did; null without --keep or --keep-days. */
  retention: RetentionResult | null;
  /** Every problem, most serious first; empty on success. */
  problems: AppError[];
}

/** What the follow-up steps need from the command layer. */
export interface AfterRunDeps {
  /** An SDK client for a region (the source region included). */
  clientFor: (region: string) => EC2Client;
  /** Where --debug steps and warnings go. */
  log: Logger;
  /** Aborted by a stop signal: waits end as "stopped", copies are abandoned. */
  signal?: AbortSignal;
  /** Makes the progress display of one wait; undefined for none (--quiet). */
  progress?: (items: readonly ProgressItem[]) => ProgressSink;
  /** Seconds between progress polls (tests shorten it). */
  displayEverySeconds?: number;
}

function waitProblems(
  outcomes: readonly WaitOutcome[],
  what: string,
  signal: AbortSignal | undefined,
): AppError[] {
  const reason = signal?.reason;
  if (signal?.aborted && reason instanceof SignalError) {
    return [new StoppedError(reason.signalName, STOP_SIGNALS[reason.signalName])];
  }
  return outcomes
    .filter((o) => o.state !== "completed")
    .map((o) => new WaitError(`${what} ${o.snapshotId} in ${o.region}: ${o.state}: ${o.message}`));
}

/**
 * Runs the follow-up steps for the snapshots of a successful run, as the plan decided them
 * (how long to wait for the snapshots and for the copies). Never throws; problems are
 * collected.
 * Retention runs only when everything before it succeeded.
 */
export async function afterRun(
  plan: AfterRunPlan,
  run: {
    region: string;
    volumes: readonly SnapshotRequest[];
    outcomes: readonly SnapshotOutcome[];
  },
  deps: AfterRunDeps,
): Promise<AfterRunResult> {
  const result: AfterRunResult = { waits: [], copies: [], retention: null, problems: [] };
  const made = run.outcomes.flatMap((o) => o.ok ? [o] : []);
  const wait = async (targets: WaitTarget[], labels: string[], seconds: number) => {
    const items = targets.map((t, i) => ({ snapshotId: t.snapshotId, label: labels[i] }));
    // Loaded when used: copy.ts and wait.ts bring the AWS SDK, which the plan does not need.
    const { waitForSnapshots } = await import("../aws/wait.ts");
    return await waitForSnapshots(targets, {
      clientFor: deps.clientFor,
      timeoutSeconds: seconds,
      signal: deps.signal,
      progress: deps.progress?.(items),
      displayEverySeconds: deps.displayEverySeconds,
    });
  };

  if (plan.snapshotWaitSeconds !== undefined) {
    const seconds = plan.snapshotWaitSeconds;
    deps.log.debug(`waiting up to ${seconds}s for ${made.length} snapshot(s)`);
    const outcomes = await wait(
      made.map((o) => ({ snapshotId: o.snapshotId, region: run.region })),
      made.map((o) => `${o.volumeId} in ${run.region}`),
      seconds,
    );
    result.waits.push(...outcomes);
    result.problems.push(...waitProblems(outcomes, "snapshot", deps.signal));
    if (result.problems.length > 0) return result;
  }

  if (plan.copyRegions.length > 0) {
    const sources = made.map((o) => {
      const request = run.volumes.find((v) => v.volumeId === o.volumeId)!;
      // A copy starts later than its run held: the held-until tag would call it of unknown
      // consistency. Only snapshots reported good are copied, so the copy goes without it.
      const { [HELD_UNTIL_TAG]: _held, ...tags } = request.tags;
      return { ...request, tags, snapshotId: o.snapshotId };
    });
    const { copySnapshots } = await import("../aws/copy.ts");
    result.copies = await copySnapshots(sources, {
      sourceRegion: run.region,
      regions: plan.copyRegions,
      clientFor: deps.clientFor,
      kmsKeyId: plan.kmsKeyId,
      log: deps.log,
      signal: deps.signal,
    });
    for (const copy of result.copies) {
      if (copy.error) {
        result.problems.push(
          new SnapshotError(
            `copy of ${copy.sourceSnapshotId} to ${copy.region} failed: ${copy.error.code}: ${copy.error.message}`,
          ),
        );
      }
    }
    const copied = result.copies.filter((c) => c.snapshotId !== null);
    if (plan.copyWaitSeconds !== undefined && copied.length > 0) {
      deps.log.debug(`waiting up to ${plan.copyWaitSeconds}s for ${copied.length} copies`);
      const outcomes = await wait(
        copied.map((c) => ({ snapshotId: c.snapshotId!, region: c.region })),
        copied.map((c) => `copy of ${c.sourceSnapshotId} in ${c.region}`),
        plan.copyWaitSeconds,
      );
      result.waits.push(...outcomes);
      result.problems.push(...waitProblems(outcomes, "copy", deps.signal));
    }
    if (result.problems.length > 0) return result;
  }

  if (plan.retention && !deps.signal?.aborted) {
    try {
      result.retention = await applyRetention({
        client: deps.clientFor(run.region),
        policy: plan.retention,
        volumeIds: run.volumes.map((v) => v.volumeId),
        ownSnapshots: made,
        noaction: false,
        log: deps.log,
      });
      for (const item of result.retention.failed) {
        result.problems.push(
          new RetentionError(`retention: could not delete ${item.snapshotId}: ${item.reason}`),
        );
      }
    } catch (error) {
      result.problems.push(
        new RetentionError(`retention: ${errorMessage(error)}`),
      );
    }
  }
  return result;
}

/**
 * What retention would delete, for --noaction: one read-only DescribeSnapshots, no deletes;
 * the run is assumed to make one new snapshot of each volume.
 */
export function previewRetention(
  policy: RetentionPolicy,
  volumes: readonly SnapshotRequest[],
  client: EC2Client,
  log: Logger,
): Promise<RetentionResult> {
  return applyRetention({
    client,
    policy,
    volumeIds: volumes.map((v) => v.volumeId),
    ownSnapshots: [],
    noaction: true,
    log,
  });
}
