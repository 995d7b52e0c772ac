/**
 * `--wait`: waits for snapshots to complete with the SDK's waiter, one per snapshot, and shows
 * their progress from a separate, display-only DescribeSnapshots poll.
 */
import { DescribeSnapshotsCommand, waitUntilSnapshotCompleted } from "@aws-sdk/client-ec2";
import type { EC2Client } from "./ec2.ts";
import type { ProgressSink } from "../types/progress.ts";

/** A snapshot to wait for, in the region where it lives. */
export interface WaitTarget {
  /** The snapshot (or copy) to wait for. */
  snapshotId: string;
  /** The region where it lives. */
  region: string;
}

/** How a wait ended. */
export type WaitState = "completed" | "error" | "timeout" | "stopped";

/** The outcome of waiting for one snapshot (reported in JSON). */
export interface WaitOutcome {
  /** The snapshot waited for. */
  snapshotId: string;
  /** Its region. */
  region: string;
  /** How the wait for it ended. */
  state: WaitState;
  /** Seconds from the start of the wait to its end. */
  seconds: number;
  /** EC2's StateMessage on error, or what went wrong. */
  message?: string;
}

/** How {@linkcode waitForSnapshots} waits. */
export interface WaitOptions {
  /** An SDK client for a region (the waiter needs only `send`). */
  clientFor: (region: string) => EC2Client;
  /** The time limit of the whole wait, in seconds (> 0). */
  timeoutSeconds: number;
  /** Aborted by a stop signal. */
  signal?: AbortSignal;
  /** Where the progress is shown (a terminal bar or plain lines); none by default. */
  progress?: ProgressSink;
  /** Seconds between display polls; 0 turns them off. Default 5. */
  displayEverySeconds?: number;
  /** The waiter's first delay in seconds; default 15, or less for short limits. */
  minDelaySeconds?: number;
}

/** The waiter's delays: its own defaults (15 to 120 s), shortened for short limits. */
function delays(options: WaitOptions): { minDelay: number; maxDelay: number } {
  const minDelay = options.minDelaySeconds ?? Math.min(15, options.timeoutSeconds / 2);
  return { minDelay, maxDelay: Math.max(minDelay, Math.min(120, options.timeoutSeconds)) };
}

async function finalState(client: EC2Client, snapshotId: string) {
  try {
    const out = await client.send(new DescribeSnapshotsCommand({ SnapshotIds: [snapshotId] }));
    const snapshot = out.Snapshots?.[0];
    return { state: snapshot?.State, message: snapshot?.StateMessage };
  } catch (error) {
    return { state: undefined, message: (error as Error).message.split("\n")[0] };
  }
}

async function waitOne(
  target: WaitTarget,
  options: WaitOptions,
  abort: AbortSignal,
  started: number,
): Promise<WaitOutcome> {
  const client = options.clientFor(target.region);
  const seconds = () => Math.round((performance.now() - started) / 100) / 10;
  try {
    await waitUntilSnapshotCompleted(
      { client, maxWaitTime: options.timeoutSeconds, abortSignal: abort, ...delays(options) },
      { SnapshotIds: [target.snapshotId] },
    );
    return { ...target, state: "completed", seconds: seconds() };
  } catch (error) {
    const name = (error as Error).name;
    if (name === "AbortError") {
      return { ...target, state: "stopped", seconds: seconds(), message: "stopped by a signal" };
    }
    if (name === "TimeoutError") {
      return {
        ...target,
        state: "timeout",
        seconds: seconds(),
        message: `not completed after --wait ${options.timeoutSeconds}s`,
      };
    }
    // The waiter's failure state: the snapshot is in `error`. Ask once for EC2's reason.
    const final = await finalState(client, target.snapshotId);
    return {
      ...target,
      state: "error",
      seconds: seconds(),
      message: final.message || `state ${final.state ?? "unknown"}`,
    };
  }
}

/** Reads Progress for the display only; failures are ignored (the waiter decides). */
async function showProgress(
  targets: readonly WaitTarget[],
  options: WaitOptions,
  finished: ReadonlySet<string>,
): Promise<void> {
  const byRegion = new Map<string, string[]>();
  for (const t of targets) {
    if (finished.has(t.snapshotId)) continue;
    byRegion.set(t.region, [...(byRegion.get(t.region) ?? []), t.snapshotId]);
  }
  await Promise.all([...byRegion].map(async ([region, ids]) => {
    try {
      const out = await options.clientFor(region).send(
        new DescribeSnapshotsCommand({ SnapshotIds: ids }),
      );
      for (const snapshot of out.Snapshots ?? []) {
        const percent = parseInt(snapshot.Progress ?? "", 10);
        if (snapshot.SnapshotId && !finished.has(snapshot.SnapshotId) && !isNaN(percent)) {
          options.progress?.update(snapshot.SnapshotId, percent);
        }
      }
    } catch { /* display only */ }
  }));
}

/**
 * Waits until every target is `completed`, or ends in `error`, or the time limit passes.
 * Never throws; the caller turns non-completed outcomes into a WaitError.
 *
 * @example
 * ```ts
 * import type { EC2Client } from "./ec2.ts";
 * const client = {} as EC2Client;
 * const outcomes = await waitForSnapshots([{ snapshotId: "snap-0123", region: "us-east-1" }], {
 *   clientFor: () => client, timeoutSeconds: 3600 });
 * ```
 */
export async function waitForSnapshots(
  targets: readonly WaitTarget[],
  options: WaitOptions,
): Promise<WaitOutcome[]> {
  const started = performance.now();
  const controller = new AbortController();
  const abort = options.signal
    ? AbortSignal.any([options.signal, controller.signal])
    : controller.signal;
  const finished = new Set<string>();
  const every = options.displayEverySeconds ?? 5;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let displaying: Promise<void> = Promise.resolve();
  if (options.progress && every > 0) {
    const tick = () => {
      displaying = showProgress(targets, options, finished).finally(() => {
        if (finished.size < targets.length) timer = setTimeout(tick, every * 1000);
      });
    };
    tick();
  }
  try {
    return await Promise.all(targets.map(async (target) => {
      const outcome = await waitOne(target, options, abort, started);
      finished.add(target.snapshotId);
      options.progress?.done(target.snapshotId, outcome.state, outcome.message);
      return outcome;
    }));
  } finally {
    controller.abort();
    await displaying;
    clearTimeout(timer);
    options.progress?.close();
  }
}
