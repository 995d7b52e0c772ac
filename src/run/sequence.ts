/**
 * The sequence of the product spec, and nothing else: preflight, lock the database, pre-freeze
 * hook, sync, arm the watchdog, freeze (locked.ts), create all snapshots in one bounded round,
 * then unwind the cleanup stack (thaw, disarm, post-thaw hook, unlock) exactly once.
 */
import { SnapshotError, SnapshotTimeoutError } from "../util/errors.ts";
import type { AppError } from "../util/errors.ts";
import type {
  BinlogCoordinates,
  Database,
  Ec2,
  Freezer,
  Hooks,
  SnapshotOutcome,
  SnapshotRequest,
  Watchdog,
} from "./interfaces.ts";
import type { Logger } from "../util/log.ts";
import { type LockTimings, sortProblems, WATCHDOG_MARGIN_MS, whileLocked } from "./locked.ts";

export { independent, WATCHDOG_MARGIN_MS } from "./locked.ts";

/** What the sequence needs to know; a subset of the Plan. */
export interface RunSpec {
  volumes: readonly SnapshotRequest[];
  /** Mount points to freeze, validated, in order. */
  freezeMounts: readonly string[];
  snapshotTimeoutMs: number;
  preFreezeCommand?: string;
  postThawCommand?: string;
}

/** The side effects, injected. */
export interface RunDeps {
  ec2: Ec2;
  freezer: Freezer;
  hooks: Hooks;
  watchdog: Watchdog;
  database?: Database;
  log: Logger;
  /** Aborted by a stop signal (SIGINT, SIGTERM, SIGHUP). */
  signal: AbortSignal;
  /** Monotonic milliseconds; performance.now by default. */
  now?: () => number;
}

/** What the normal run measures: the two halves' timings and the round of snapshot calls. */
export interface Timings extends LockTimings {
  /** The round of CreateSnapshot calls. */
  createMs: number | null;
}

export interface RunResult {
  outcomes: SnapshotOutcome[];
  binlog: BinlogCoordinates | undefined;
  timings: Timings;
  /** Every problem, most serious first; empty on success. */
  problems: AppError[];
}

/**
 * Runs the sequence. Never throws: problems (a failed preflight, a stop signal, a failed
 * snapshot, a failed thaw) are collected, most serious first, so that the snapshot ids that
 * were made are still reported, and everything taken is released before it returns.
 */
export async function runSequence(spec: RunSpec, deps: RunDeps): Promise<RunResult> {
  const { ec2, log, signal } = deps;
  const now = deps.now ?? (() => performance.now());
  let createMs: number | null = null;
  const result = await whileLocked(
    { ...spec, watchdogDeadlineMs: spec.snapshotTimeoutMs + WATCHDOG_MARGIN_MS },
    deps,
    {
      preflight: (preflightSignal) => {
        log.debug(`preflight: DryRun CreateSnapshot for ${spec.volumes.length} volume(s)`);
        return ec2.preflight(spec.volumes, preflightSignal);
      },
      preflightTimeoutMs: spec.snapshotTimeoutMs,
      whileHeld: async () => {
        log.debug(`CreateSnapshot for ${spec.volumes.length} volume(s)`);
        const timeout = AbortSignal.timeout(spec.snapshotTimeoutMs);
        const createStarted = now();
        const outcomes = await ec2.createSnapshots(
          spec.volumes,
          AbortSignal.any([timeout, signal]),
        );
        createMs = Math.round(now() - createStarted);
        return { outcomes, timedOut: timeout.aborted && outcomes.some((o) => !o.ok) };
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
  for (const outcome of outcomes) {
    if (!outcome.ok && outcome.errorCode !== "Aborted") {
      problems.push(
        new SnapshotError(
          `snapshot of ${outcome.volumeId} failed: ${outcome.errorCode}: ${outcome.message}`,
        ),
      );
    }
  }
  return {
    outcomes,
    binlog: result.binlog,
    timings: { ...result.timings, createMs },
    problems: sortProblems(problems),
  };
}
