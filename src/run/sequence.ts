/**
 * The sequence of the product spec, and nothing else: preflight, arm the watchdog (before the
 * database lock, so that it guards the lock too), lock the database, pre-freeze hook, sync,
 * freeze (the window: window.ts), create all snapshots in one bounded round, then unwind the
 * cleanup stack (thaw, disarm, post-thaw hook, unlock) exactly once.
 */
import { SnapshotError, SnapshotTimeoutError, StoppedError } from "../util/errors.ts";
import type { AppError } from "../util/errors.ts";
import type {
  BinlogCoordinates,
  Ec2,
  SnapshotOutcome,
  SnapshotRequest,
  WalPosition,
} from "../types/side_effects.ts";
import { type WindowDeps, type WindowSpec, withWindow } from "./window.ts";
import type { WindowTimings } from "./window_timings.ts";
import { sortProblems } from "./problems.ts";
import { MIN_HOLD_MS } from "../plan/window.ts";
import type { UnfrozenLocation } from "../host/unfrozen.ts";
import { withDatabaseTag } from "./database_tag.ts";
import { consistencyUnknownError, lookUpUnanswered, type RunLookup } from "./unanswered.ts";
import { HELD_UNTIL_TAG } from "../types/tags.ts";
import { delay } from "../util/deadline.ts";

/**
 * What the sequence needs to know: the window's spec (from the plan's window: its bounds
 * already allow for the minimum hold) and the snapshots to make while held.
 */
export interface RunSpec extends WindowSpec {
  /** One snapshot request per volume, in order. */
  volumes: readonly SnapshotRequest[];
  /** --snapshot-timeout in milliseconds: the round of CreateSnapshot calls is aborted after it. */
  snapshotTimeoutMs: number;
}

/** The side effects, injected: those of the locking half, and EC2. */
export interface RunDeps extends WindowDeps {
  /** The snapshot calls. */
  ec2: Ec2;
  /** Pause before the lookup after the thaw asks again; LOOKUP_RETRY_MS (unanswered.ts). */
  lookupRetryMs?: number;
  /** How long the lookup keeps looking; the windows of unanswered.ts by default. */
  lookupWindowMs?: number;
  /** Ends the lookup after the release early (a second stop signal). */
  lookupSignal?: AbortSignal;
}

export type { RunLookup };

/**
 * A signal aborted by `signal`, but not before the monotonic instant `notBefore`; `dispose`
 * drops its listener and timer.
 */
function abortNotBefore(
  signal: AbortSignal,
  notBefore: number,
): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const fire = () => {
    const wait = notBefore - performance.now();
    if (wait <= 0) controller.abort(signal.reason);
    else timer = setTimeout(() => controller.abort(signal.reason), wait);
  };
  if (signal.aborted) fire();
  else signal.addEventListener("abort", fire, { once: true });
  return {
    signal: controller.signal,
    dispose() {
      signal.removeEventListener("abort", fire);
      clearTimeout(timer);
    },
  };
}

/** What the normal run measures: the two halves' timings and the round of snapshot calls. */
export interface Timings extends WindowTimings {
  /** The round of CreateSnapshot calls. */
  createMs: number | null;
}

/** What the sequence did: the outcome of each snapshot request, the coordinates, the timings. */
export interface RunResult {
  /** One outcome per request, in the order of the requests. */
  outcomes: SnapshotOutcome[];
  /** The requests as sent: the plan's, with the database tag added while held. */
  requests: readonly SnapshotRequest[];
  /**
   * The snapshots of unknown consistency: those the lookup after the thaw found, made by calls
   * without an answer, and those made while not everything was held (their `why` says what
   * was released); null when every call ended with an answer and everything held.
   */
  lookup: RunLookup | null;
  /** The binary-log coordinates taken while locked; undefined without a database. */
  binlog: BinlogCoordinates | undefined;
  /** PostgreSQL's WAL position at the freeze. */
  wal: WalPosition | undefined;
  /** Database files on file systems that were not frozen (each also warned about). */
  unfrozen: UnfrozenLocation[];
  /** How long each part took. */
  timings: Timings;
  /** Every problem, most serious first; empty on success. */
  problems: AppError[];
}

/**
 * Runs the sequence. Never throws: problems (a failed preflight, a stop signal, a failed
 * snapshot, a failed thaw) are collected, most serious first, so that the snapshot ids that
 * were made are still reported, and everything taken is released before it returns.
 *
 * @example
 * ```ts
 * import type { Plan } from "../plan/plan.ts";
 * import { windowSpec } from "./window_parts.ts";
 * const plan = {} as Plan, deps = {} as RunDeps;
 * const result = await runSequence(
 *   { ...windowSpec(plan.window), volumes: plan.volumes, snapshotTimeoutMs: plan.snapshotTimeoutMs },
 *   deps,
 * );
 * if (result.problems.length > 0) Deno.exit(result.problems[0].exitCode);
 * ```
 */
export async function runSequence(spec: RunSpec, deps: RunDeps): Promise<RunResult> {
  const { ec2, log, signal } = deps;
  const now = deps.now ?? (() => performance.now());
  let createMs: number | null = null;
  let sent: readonly SnapshotRequest[] = spec.volumes;
  const result = await withWindow(
    spec,
    deps,
    {
      preflight: (preflightSignal) => {
        log.debug(`preflight: DryRun CreateSnapshot for ${spec.volumes.length} volume(s)`);
        return ec2.preflight(spec.volumes, preflightSignal);
      },
      preflightTimeoutMs: spec.snapshotTimeoutMs,
      whileHeld: async (held) => {
        // The promise behind the held-until tag (MIN_HOLD_MS): its end is taken before the
        // watchdog hears of it, so that the watchdog's end is never the earlier one.
        const holdEnd = performance.now() + MIN_HOLD_MS;
        await held.holdAtLeast?.(MIN_HOLD_MS);
        const heldUntil = ec2.heldUntil?.(holdEnd);
        const tagged = withDatabaseTag(spec.volumes, held, (message) => log.warn(message));
        sent = heldUntil === undefined ? tagged : tagged.map((v) => ({
          ...v,
          tags: { ...v.tags, [HELD_UNTIL_TAG]: heldUntil },
        }));
        log.debug(
          `CreateSnapshot for ${spec.volumes.length} volume(s), held until ${
            heldUntil ?? "-"
          } (EC2's clock)`,
        );
        // Stopped before the calls were sent: none is sent.
        if (signal.aborted) throw signal.reason;
        const timeout = AbortSignal.timeout(spec.snapshotTimeoutMs);
        // A stop signal aborts the calls, but not before the minimum hold has passed.
        const stop = abortNotBefore(signal, holdEnd);
        const createStarted = now();
        const outcomes = await ec2.createSnapshots(
          sent,
          AbortSignal.any([timeout, stop.signal]),
        ).finally(() => stop.dispose());
        createMs = Math.round(now() - createStarted);
        const timedOut = timeout.aborted && outcomes.some((o) => !o.ok);
        const left = holdEnd - performance.now();
        if (outcomes.some((o) => !o.ok && o.kind !== "error") && left > 0) {
          // A request without an answer may still reach EC2: its snapshot must start while
          // everything is held, as the held-until tag says. Not cut short by a stop signal.
          log.debug(`holding ${Math.ceil(left)} ms more: a call without an answer may still land`);
          await delay(left);
        }
        return { outcomes, timedOut };
      },
    },
  );
  const problems = [...result.problems];
  if (result.value?.timedOut) {
    problems.push(
      new SnapshotTimeoutError(
        `--snapshot-timeout ${spec.snapshotTimeoutMs / 1000}s passed; aborted the snapshot calls`,
      ),
    );
  }
  const outcomes = result.value?.outcomes ?? [];
  const stopped = problems.some((p) => p instanceof StoppedError);
  const timedOut = problems.some((p) => p instanceof SnapshotTimeoutError);
  for (const outcome of outcomes) {
    if (outcome.ok) continue;
    // An aborted call is accounted for by the timeout or the stop signal that aborted it.
    if (outcome.kind === "aborted" && (stopped || timedOut)) continue;
    const what = outcome.kind === "unknown"
      ? "got no answer (EC2 may or may not have made it)"
      : outcome.kind === "aborted"
      ? "was aborted"
      : "failed";
    problems.push(
      new SnapshotError(
        `snapshot of ${outcome.volumeId} ${what}: ${outcome.errorCode}: ${outcome.message}`,
      ),
    );
  }
  let lookup = await lookUpUnanswered(outcomes, {
    ec2,
    log,
    requests: sent,
    retryMs: deps.lookupRetryMs,
    windowMs: deps.lookupWindowMs,
    signal: deps.lookupSignal,
    stopped,
  });
  // Snapshots made while someone else had thawed a file system (or ended the database lock)
  // are never reported as good.
  const made = outcomes.flatMap((o) => o.ok ? [o] : []);
  if (result.broken.length > 0 && made.length > 0) {
    const why = result.broken.join("; ");
    lookup = {
      consistencyUnknown: [
        ...made.map((o) => ({ snapshotId: o.snapshotId, volumeId: o.volumeId, why })),
        ...lookup?.consistencyUnknown ?? [],
      ],
      error: lookup?.error ?? null,
    };
  }
  for (const found of lookup?.consistencyUnknown ?? []) {
    problems.push(consistencyUnknownError(found));
  }
  return {
    outcomes,
    requests: sent,
    lookup,
    binlog: result.binlog,
    wal: result.wal,
    unfrozen: result.unfrozen,
    timings: { ...result.timings, createMs },
    problems: sortProblems(problems),
  };
}
