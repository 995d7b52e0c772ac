/**
 * The first half of the sequence and its release, shared by the normal run (snapshots while
 * held) and hold mode (held until asked): preflight, lock the database, pre-freeze hook, sync,
 * arm the watchdog, freeze; then one step while everything is held; then the cleanup stack
 * (thaw, disarm, post-thaw hook, unlock) unwinds exactly once, whatever happened.
 */
import { CleanupStack, SignalError, STOP_SIGNALS } from "./cleanup.ts";
import {
  AppError,
  FreezeError,
  HookError,
  NotFrozenError,
  PreflightError,
  SnapshotError,
  SnapshotTimeoutError,
  StoppedError,
} from "../util/errors.ts";
import type { BinlogCoordinates, Database, Freezer, Hooks, Watchdog } from "./interfaces.ts";
import type { Logger } from "../util/log.ts";
import { deadline } from "../util/deadline.ts";

/** What to lock and freeze. */
export interface LockSpec {
  /** Mount points to freeze, validated, in order. */
  freezeMounts: readonly string[];
  /** --pre-freeze-command, run under the database lock before the freeze. */
  preFreezeCommand?: string;
  /** --post-thaw-command, run after the last thaw. */
  postThawCommand?: string;
  /** The watchdog's deadline, counted from arming: how long the mounts may stay frozen. */
  watchdogDeadlineMs: number;
}

/** The side effects, injected. */
export interface LockDeps {
  /** Freezes and thaws file systems. */
  freezer: Freezer;
  /** Runs the pre-freeze and post-thaw commands. */
  hooks: Hooks;
  /** Thaws if this process dies while frozen. */
  watchdog: Watchdog;
  /** The database to flush and lock (or stop), if any. */
  database?: Database;
  /** Where --debug steps and warnings go. */
  log: Logger;
  /** Aborted by a stop signal (SIGINT, SIGTERM, SIGHUP). */
  signal: AbortSignal;
  /** Monotonic milliseconds; performance.now by default. */
  now?: () => number;
}

/** What the two halves measure. */
export interface LockTimings {
  /** Preflight (DryRun calls, database connection) in milliseconds. */
  preflightMs: number;
  /** First freeze to last thaw; null when nothing was frozen. */
  freezeWindowMs: number | null;
  /** First lock taken (database or freeze) to last released; null when nothing was locked. */
  lockWindowMs: number | null;
  /** Database lock acquired to released; null without a database. */
  databaseLockMs: number | null;
}

/** What the step run while everything is held learns. */
export interface HeldState {
  /** The binary-log position taken while the database was locked. */
  binlog: BinlogCoordinates | undefined;
}

/** The steps that differ between the normal run and hold mode. */
export interface LockedSteps<T> {
  /** Checks of the caller's own (EC2's DryRun), run beside the database's preparation. */
  preflight?: (signal: AbortSignal) => Promise<void>;
  /** Bound of the preflight; none by default. */
  preflightTimeoutMs?: number;
  /** Runs while everything is held; its problems are reported, then everything is released. */
  whileHeld: (state: HeldState) => Promise<T>;
}

/** The outcome: the step's value (when it finished), timings and problems, most serious first. */
export interface LockedResult<T> {
  /** What `whileHeld` returned; undefined when it did not finish. */
  value: T | undefined;
  /** The binary-log coordinates taken while locked. */
  binlog: BinlogCoordinates | undefined;
  /** The measured windows. */
  timings: LockTimings;
  /** Every problem, most serious first; empty on success. */
  problems: AppError[];
}

/** Extra time the watchdog gives the normal thaw before it thaws by itself. */
export const WATCHDOG_MARGIN_MS = 5_000;

/** True when no mount point lies inside another: their freezes do not depend on each other. */
export function independent(mounts: readonly string[]): boolean {
  const inside = (a: string, b: string) => a !== b && a.startsWith(b === "/" ? "/" : `${b}/`);
  return !mounts.some((a) => mounts.some((b) => inside(a, b)));
}

/** How serious a problem is: the first one decides the exit code. */
function severity(error: AppError): number {
  if (error instanceof StoppedError) return -1;
  if (error instanceof FreezeError) return 0;
  if (error instanceof SnapshotTimeoutError) return 1;
  if (error instanceof SnapshotError) return 2;
  if (error instanceof HookError) return 3;
  return 4;
}

/** Sorts problems in place, most serious first (the first decides the exit code). */
export function sortProblems(problems: AppError[]): AppError[] {
  return problems.sort((a, b) => severity(a) - severity(b));
}

function asAppError(error: unknown, fallback: (message: string) => AppError): AppError {
  if (error instanceof AppError) return error;
  return fallback(error instanceof Error ? error.message : String(error));
}

/**
 * Locks and freezes, runs `steps.whileHeld`, and releases everything. Never throws: problems
 * (a failed preflight, a stop signal, a failed step, a failed thaw) are collected, so that what
 * was done is still reported, and everything taken is released before it returns.
 */
export async function whileLocked<T>(
  spec: LockSpec,
  deps: LockDeps,
  steps: LockedSteps<T>,
): Promise<LockedResult<T>> {
  const { freezer, hooks, watchdog, database, log, signal } = deps;
  const now = deps.now ?? (() => performance.now());
  const problems: AppError[] = [];
  const stack = new CleanupStack({
    onRelease: (name) => log.debug(`release: ${name}`),
    onFailure: (name, error) => log.error(`${name} failed: ${(error as Error).message ?? error}`),
  });
  const checkSignal = () => {
    if (signal.aborted) throw signal.reason;
  };
  const timings: LockTimings = {
    preflightMs: 0,
    freezeWindowMs: null,
    lockWindowMs: null,
    databaseLockMs: null,
  };
  let value: T | undefined;
  let binlog: BinlogCoordinates | undefined;
  let firstLockAt: number | undefined;
  let firstFreezeAt: number | undefined;
  let databaseLockedAt: number | undefined;

  try {
    const started = now();
    if (spec.freezeMounts.length > 0) watchdog.prepare?.();
    if (database) stack.push("database release", () => releaseDatabase(database));
    const preflightSignal = steps.preflightTimeoutMs === undefined
      ? signal
      : deadline(steps.preflightTimeoutMs, signal);
    await Promise.all([steps.preflight?.(preflightSignal), database?.prepare()]);
    timings.preflightMs = Math.round(now() - started);
    log.debug(`preflight passed in ${timings.preflightMs}ms`);
    checkSignal();

    if (database && spec.freezeMounts.length > 0) {
      // Flush dirty data while nothing is locked yet, so the sync inside the lock is short.
      log.debug("sync before locking");
      await freezer.sync();
      checkSignal();
    }
    if (database) {
      log.debug("database: flush and lock");
      binlog = await database.lock(signal);
      databaseLockedAt = now();
      firstLockAt = databaseLockedAt;
      log.debug("database: locked");
      checkSignal();
    }

    if (spec.preFreezeCommand) {
      log.debug("pre-freeze command");
      await hooks.run("pre-freeze", spec.preFreezeCommand);
      checkSignal();
    }
    if (spec.postThawCommand) {
      const command = spec.postThawCommand;
      stack.push("post-thaw command", () => hooks.run("post-thaw", command));
    }

    // As the old tool did, always: flushed blocks make even an unfrozen file system's snapshot
    // closer to consistent, and leave less for the freeze to flush.
    log.debug("sync");
    await freezer.sync();
    checkSignal();

    if (spec.freezeMounts.length > 0) {
      const armed = await watchdog.arm(spec.freezeMounts, spec.watchdogDeadlineMs);
      stack.push("watchdog disarm", () => armed.disarm());
      firstFreezeAt = now();
      firstLockAt ??= firstFreezeAt;
      const thawLater = (mount: string) =>
        // On the stack before the freeze: a freeze that timed out may still have frozen.
        stack.push(`thaw ${mount}`, async () => {
          try {
            await freezer.thaw(mount);
          } catch (error) {
            if (!(error instanceof NotFrozenError)) throw error;
          }
          timings.freezeWindowMs = Math.round(now() - firstFreezeAt!);
        });
      if (independent(spec.freezeMounts)) {
        // Separate file systems: one freeze does not wait for another, so they run at once
        // (the kernel's freeze costs tens of milliseconds each). Thaws stay in reverse order.
        log.debug(`freeze ${spec.freezeMounts.join(", ")} at once`);
        spec.freezeMounts.forEach(thawLater);
        const frozen = await Promise.allSettled(spec.freezeMounts.map((m) => freezer.freeze(m)));
        const failed = frozen.find((f) => f.status === "rejected");
        if (failed) throw (failed as PromiseRejectedResult).reason;
        checkSignal();
      } else {
        for (const mount of spec.freezeMounts) {
          log.debug(`freeze ${mount}`);
          thawLater(mount);
          await freezer.freeze(mount);
          checkSignal();
        }
      }
    }

    value = await steps.whileHeld({ binlog });
    checkSignal();
  } catch (error) {
    // A step aborted by a stop signal fails with its own error; the signal is what counts.
    const stop = signal.aborted && signal.reason instanceof SignalError ? signal.reason : error;
    problems.push(
      stop instanceof SignalError
        ? new StoppedError(stop.signalName, STOP_SIGNALS[stop.signalName])
        : asAppError(error, (m) => new PreflightError(m)),
    );
  }

  const failures = await stack.unwind();
  if (firstLockAt !== undefined) timings.lockWindowMs = Math.round(now() - firstLockAt);
  for (const failure of failures) {
    problems.push(asAppError(failure.error, (m) => new FreezeError(`${failure.name}: ${m}`)));
  }
  log.debug(
    `released; freeze window ${timings.freezeWindowMs ?? "-"}ms, lock window ${
      timings.lockWindowMs ?? "-"
    }ms`,
  );
  return { value, binlog, timings, problems: sortProblems(problems) };

  async function releaseDatabase(db: Database): Promise<void> {
    await db.release();
    if (databaseLockedAt !== undefined) {
      timings.databaseLockMs = Math.round(now() - databaseLockedAt);
    }
  }
}
