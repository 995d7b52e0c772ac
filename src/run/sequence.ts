/**
 * The sequence of the product spec, and nothing else: preflight, lock the database, pre-freeze
 * hook, sync, arm the watchdog, freeze, create all snapshots in one bounded round, then unwind
 * the cleanup stack (thaw, disarm, post-thaw hook, unlock) exactly once, whatever happened.
 */
import { CleanupStack, SignalError, STOP_SIGNALS } from "./cleanup.ts";
import {
  AlreadyFrozenError,
  AppError,
  ConsistencyUnknownError,
  FreezeError,
  HookError,
  NotFrozenError,
  PreflightError,
  SnapshotError,
  SnapshotTimeoutError,
  StoppedError,
} from "../util/errors.ts";
import type {
  ArmedWatchdog,
  BinlogCoordinates,
  Database,
  DatabaseFile,
  Ec2,
  Freezer,
  HeldExclusion,
  Hooks,
  SnapshotOutcome,
  SnapshotRequest,
  WalPosition,
  Watchdog,
} from "./interfaces.ts";
import type { Logger } from "../util/log.ts";
import { deadline } from "../util/deadline.ts";
import {
  type UnfrozenLocation,
  unfrozenLocations,
  type UnfrozenOptions,
  unfrozenWarning,
} from "../host/unfrozen.ts";
import { consistencyUnknownError, lookUpUnanswered, type RunLookup } from "./unanswered.ts";

/** What the sequence needs to know; a subset of the Plan. */
export interface RunSpec {
  /** One snapshot request per volume, in order. */
  volumes: readonly SnapshotRequest[];
  /** Mount points to freeze, validated, in order. */
  freezeMounts: readonly string[];
  /** --snapshot-timeout in milliseconds: the round of CreateSnapshot calls is aborted after it. */
  snapshotTimeoutMs: number;
  /** --pre-freeze-command, run before the first freeze. */
  preFreezeCommand?: string;
  /** --post-thaw-command, run after the last thaw. */
  postThawCommand?: string;
  /**
   * With --mysql-stop: the command that starts the database again. The watchdog is then armed
   * before the stop and runs it if this process dies (or is stuck) before it started it.
   */
  databaseStartCommand?: string;
  /**
   * Bound of the watchdog outside the freeze (database stop, and after the thaw: post-thaw
   * command and database release); default {@linkcode WATCHDOG_PHASE_MS}.
   */
  watchdogPhaseMs?: number;
}

/** The side effects, injected. */
export interface RunDeps {
  /** The snapshot calls. */
  ec2: Ec2;
  /** Freezes and thaws file systems. */
  freezer: Freezer;
  /** Runs the pre-freeze and post-thaw commands. */
  hooks: Hooks;
  /** Thaws if this process dies while frozen. */
  watchdog: Watchdog;
  /** The database to flush and lock (or stop), if any. */
  database?: Database;
  /**
   * Takes the freeze locks of the run's file systems (freeze_lock.ts): the first step, before
   * anything is checked or locked; throws a BusyError when another run or hold has one.
   */
  exclusion?: () => Promise<HeldExclusion>;
  /** Where --debug steps and warnings go. */
  log: Logger;
  /** Aborted by a stop signal (SIGINT, SIGTERM, SIGHUP). */
  signal: AbortSignal;
  /** Monotonic milliseconds; performance.now by default. */
  now?: () => number;
  /** Pause before the lookup after the thaw asks again; LOOKUP_RETRY_MS (unanswered.ts). */
  lookupRetryMs?: number;
  /** Which database files lie outside the frozen set; host/unfrozen.ts by default. */
  unfrozen?: (
    files: readonly DatabaseFile[],
    frozenMounts: readonly string[],
    options: UnfrozenOptions,
  ) => Promise<UnfrozenLocation[]>;
}

/** How long each part of the run took, in milliseconds (reported in text and JSON). */
export interface Timings {
  /** Preflight (DryRun calls, database connection) in milliseconds. */
  preflightMs: number;
  /** The round of CreateSnapshot calls. */
  createMs: number | null;
  /** First freeze to last thaw; null when nothing was frozen. */
  freezeWindowMs: number | null;
  /** First lock taken (database or freeze) to last released; null when nothing was locked. */
  lockWindowMs: number | null;
  /** Database lock acquired to released; null without a database. */
  databaseLockMs: number | null;
}

export type { RunLookup };

/** What the sequence did: the outcome of each snapshot request, the coordinates, the timings. */
export interface RunResult {
  /** One outcome per request, in the order of the requests. */
  outcomes: SnapshotOutcome[];
  /**
   * The lookup after the thaw of snapshots made by calls without an answer; null when every
   * call ended with an answer (a snapshot id or an AWS error).
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

/** Extra time the watchdog gives the normal thaw before it thaws by itself. */
export const WATCHDOG_MARGIN_MS = 5_000;

/** Default bound of the watchdog before the freeze and after the thaw (see RunSpec). */
export const WATCHDOG_PHASE_MS = 15 * 60_000;

/** The function, called once; later calls do nothing. */
function once(fn: () => Promise<void>): () => Promise<void> {
  let called = false;
  return async () => {
    if (called) return;
    called = true;
    await fn();
  };
}

/** True when no mount point lies inside another: their freezes do not depend on each other. */
export function independent(mounts: readonly string[]): boolean {
  const inside = (a: string, b: string) => a !== b && a.startsWith(b === "/" ? "/" : `${b}/`);
  return !mounts.some((a) => mounts.some((b) => inside(a, b)));
}

/** How serious a problem is: the first one decides the exit code. */
function severity(error: AppError): number {
  // A snapshot of unknown consistency is what the user must act on first.
  if (error instanceof ConsistencyUnknownError) return -2;
  if (error instanceof StoppedError) return -1;
  if (error instanceof FreezeError) return 0;
  if (error instanceof SnapshotTimeoutError) return 1;
  if (error instanceof SnapshotError) return 2;
  if (error instanceof HookError) return 3;
  return 4;
}

function asAppError(error: unknown, fallback: (message: string) => AppError): AppError {
  if (error instanceof AppError) return error;
  return fallback(error instanceof Error ? error.message : String(error));
}

/**
 * Runs the sequence. Never throws: problems (a failed preflight, a stop signal, a failed
 * snapshot, a failed thaw) are collected, most serious first, so that the snapshot ids that
 * were made are still reported, and everything taken is released before it returns.
 *
 * @example
 * ```ts
 * const result = await runSequence(
 *   { volumes: plan.volumes, freezeMounts: ["/data"], snapshotTimeoutMs: 10_000 },
 *   { ec2, freezer, hooks, watchdog, log, signal: trap.signal },
 * );
 * if (result.problems.length > 0) return result.problems[0].exitCode;
 * ```
 */
export async function runSequence(spec: RunSpec, deps: RunDeps): Promise<RunResult> {
  const { ec2, freezer, hooks, watchdog, database, log, signal } = deps;
  const now = deps.now ?? (() => performance.now());
  const problems: AppError[] = [];
  const stack = new CleanupStack({
    onRelease: (name) => log.debug(`release: ${name}`),
    onFailure: (name, error) => log.error(`${name} failed: ${(error as Error).message ?? error}`),
  });
  const checkSignal = () => {
    if (signal.aborted) throw signal.reason;
  };
  const timings: Timings = {
    preflightMs: 0,
    createMs: null,
    freezeWindowMs: null,
    lockWindowMs: null,
    databaseLockMs: null,
  };
  let outcomes: SnapshotOutcome[] = [];
  let binlog: BinlogCoordinates | undefined;
  let wal: WalPosition | undefined;
  let unfrozen: UnfrozenLocation[] = [];
  let firstLockAt: number | undefined;
  let firstFreezeAt: number | undefined;
  let databaseLockedAt: number | undefined;
  let armed: ArmedWatchdog | undefined;
  let exclusion: HeldExclusion | undefined;
  const phaseMs = spec.watchdogPhaseMs ?? WATCHDOG_PHASE_MS;
  const startCommand = database ? spec.databaseStartCommand : undefined;

  try {
    const started = now();
    if (deps.exclusion) {
      // Before anything else: a run that would share a freeze is refused before it locks.
      const held = await deps.exclusion();
      stack.push("freeze lock release", () => held.release());
      exclusion = held;
    }
    if (spec.freezeMounts.length > 0 || startCommand) {
      watchdog.prepare?.();
      // Last of all: the watchdog guards until the database runs again (--mysql-stop).
      stack.push("watchdog disarm", () => armed?.disarm());
    }
    if (database) stack.push("database release", () => releaseDatabase(database));
    log.debug(`preflight: DryRun CreateSnapshot for ${spec.volumes.length} volume(s)`);
    const preflightSignal = deadline(spec.snapshotTimeoutMs, signal);
    await Promise.all([
      ec2.preflight(spec.volumes, preflightSignal),
      database?.prepare().then(async () => {
        unfrozen = await checkDatabaseFiles(database);
      }),
    ]);
    timings.preflightMs = Math.round(now() - started);
    log.debug(`preflight passed in ${timings.preflightMs}ms`);
    checkSignal();

    if (database && spec.freezeMounts.length > 0) {
      // Flush dirty data while nothing is locked yet, so the sync inside the lock is short.
      log.debug("sync before locking");
      await freezer.sync();
      checkSignal();
    }
    if (startCommand) {
      // The stop outlives a SIGKILL of this process: the watchdog starts the database again.
      // Without mounts to freeze, its bound also covers the snapshot round.
      await armWatchdog([], phaseMs + spec.snapshotTimeoutMs + WATCHDOG_MARGIN_MS);
      checkSignal();
    }
    if (database) {
      log.debug("database: flush and lock");
      binlog = await database.lock(signal);
      if (database.holdsWrites !== false) {
        databaseLockedAt = now();
        firstLockAt = databaseLockedAt;
        log.debug("database: locked");
      }
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

    if (database?.positionAtFreeze) {
      log.debug("database: position at the freeze");
      wal = await database.positionAtFreeze(signal);
      checkSignal();
    }

    if (spec.freezeMounts.length > 0) {
      const deadlineMs = spec.snapshotTimeoutMs + WATCHDOG_MARGIN_MS;
      if (armed?.update) await armed.update({ mountPoints: spec.freezeMounts, deadlineMs });
      else await armWatchdog(spec.freezeMounts, deadlineMs);
      const guard = armed!;
      // After the thaws it no longer thaws (what it would thaw is no longer ours), but still
      // guards the post-thaw command and the database release, under a longer bound.
      stack.push(
        "watchdog disarm",
        () =>
          guard.update ? guard.update({ mountPoints: [], deadlineMs: phaseMs }) : guard.disarm(),
      );
      firstFreezeAt = now();
      firstLockAt ??= firstFreezeAt;
      /** Mounts whose freeze found them frozen already: someone else's, never thawed by us. */
      const notOurs = new Set<string>();
      const freeze = (mount: string) =>
        freezer.freeze(mount).catch(async (error) => {
          if (error instanceof AlreadyFrozenError) {
            notOurs.add(mount);
            // Nor may the watchdog thaw it, should this process die now.
            const ours = spec.freezeMounts.filter((m) => !notOurs.has(m));
            await guard.update?.({ mountPoints: ours }).catch(() => {});
          }
          throw error;
        });
      const thawLater = (mount: string) =>
        // On the stack before the freeze: a freeze that timed out may still have frozen.
        stack.push(`thaw ${mount}`, async () => {
          if (notOurs.has(mount)) {
            log.warn(`${mount} was frozen by someone else before this run: left frozen`);
            return;
          }
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
        const frozen = await Promise.allSettled(spec.freezeMounts.map(freeze));
        const failed = frozen.find((f) => f.status === "rejected");
        if (failed) throw (failed as PromiseRejectedResult).reason;
        checkSignal();
      } else {
        for (const mount of spec.freezeMounts) {
          log.debug(`freeze ${mount}`);
          thawLater(mount);
          await freeze(mount);
          checkSignal();
        }
      }
    }

    log.debug(`CreateSnapshot for ${spec.volumes.length} volume(s)`);
    const timeout = AbortSignal.timeout(spec.snapshotTimeoutMs);
    const createStarted = now();
    outcomes = await ec2.createSnapshots(spec.volumes, AbortSignal.any([timeout, signal]));
    timings.createMs = Math.round(now() - createStarted);
    checkSignal();
    if (timeout.aborted && outcomes.some((o) => !o.ok)) {
      problems.push(
        new SnapshotTimeoutError(
          `--snapshot-timeout ${spec.snapshotTimeoutMs / 1000}s passed; aborted the snapshot calls`,
        ),
      );
    }
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
  // A stop signal that came while releasing (during the thaw, the post-thaw command) still
  // ends the run as stopped: never exit 0 after a signal.
  if (
    signal.aborted && signal.reason instanceof SignalError &&
    !problems.some((p) => p instanceof StoppedError)
  ) {
    problems.push(
      new StoppedError(signal.reason.signalName, STOP_SIGNALS[signal.reason.signalName]),
    );
  }
  if (firstLockAt !== undefined) timings.lockWindowMs = Math.round(now() - firstLockAt);
  for (const failure of failures) {
    problems.push(asAppError(failure.error, (m) => new FreezeError(`${failure.name}: ${m}`)));
  }
  log.debug(
    `released; freeze window ${timings.freezeWindowMs ?? "-"}ms, lock window ${
      timings.lockWindowMs ?? "-"
    }ms`,
  );
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
  const lookup = await lookUpUnanswered(outcomes, {
    ec2,
    log,
    requests: spec.volumes,
    retryMs: deps.lookupRetryMs,
  });
  for (const found of lookup?.consistencyUnknown ?? []) {
    problems.push(consistencyUnknownError(found));
  }
  problems.sort((a, b) => severity(a) - severity(b));
  return { outcomes, lookup, binlog, wal, unfrozen, timings, problems };

  /**
   * Asks the server where its files are and warns, once per location, about those on file
   * systems that will not be frozen. A warning, never a failure: old cron lines keep working.
   */
  async function checkDatabaseFiles(db: Database): Promise<UnfrozenLocation[]> {
    if (!db.files || spec.freezeMounts.length === 0) return [];
    try {
      const files = await db.files();
      log.debug(`database files: ${files.map((f) => `${f.what} ${f.path}`).join(", ")}`);
      const outside = await (deps.unfrozen ?? unfrozenLocations)(files, spec.freezeMounts, {
        debug: (message) => log.debug(message),
      });
      for (const location of outside) log.warn(unfrozenWarning(location));
      return outside;
    } catch (error) {
      log.warn(`could not check where the database keeps its files: ${(error as Error).message}`);
      return [];
    }
  }

  /** Arms the watchdog (once for the run: the final disarm is on the stack already). */
  async function armWatchdog(mountPoints: readonly string[], deadlineMs: number): Promise<void> {
    const started = await watchdog.arm(mountPoints, deadlineMs, { startCommand });
    armed = { ...started, disarm: once(() => started.disarm()) };
    if (started.pid !== undefined) await exclusion?.guard?.(started.pid);
  }

  async function releaseDatabase(db: Database): Promise<void> {
    await db.release();
    if (databaseLockedAt !== undefined) {
      timings.databaseLockMs = Math.round(now() - databaseLockedAt);
    }
  }
}
