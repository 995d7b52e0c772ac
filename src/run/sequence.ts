/**
 * The sequence of the product spec, and nothing else: preflight, lock the database, pre-freeze
 * hook, sync, arm the watchdog, freeze, create all snapshots in one bounded round, then unwind
 * the cleanup stack (thaw, disarm, post-thaw hook, unlock) exactly once, whatever happened.
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
import type {
  BinlogCoordinates,
  Database,
  DatabaseFile,
  Ec2,
  Freezer,
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
  /** Where --debug steps and warnings go. */
  log: Logger;
  /** Aborted by a stop signal (SIGINT, SIGTERM, SIGHUP). */
  signal: AbortSignal;
  /** Monotonic milliseconds; performance.now by default. */
  now?: () => number;
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

/** What the sequence did: the outcome of each snapshot request, the coordinates, the timings. */
export interface RunResult {
  /** One outcome per request, in the order of the requests. */
  outcomes: SnapshotOutcome[];
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

  try {
    const started = now();
    if (spec.freezeMounts.length > 0) watchdog.prepare?.();
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
      const armed = await watchdog.arm(
        spec.freezeMounts,
        spec.snapshotTimeoutMs + WATCHDOG_MARGIN_MS,
      );
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
  if (firstLockAt !== undefined) timings.lockWindowMs = Math.round(now() - firstLockAt);
  for (const failure of failures) {
    problems.push(asAppError(failure.error, (m) => new FreezeError(`${failure.name}: ${m}`)));
  }
  log.debug(
    `released; freeze window ${timings.freezeWindowMs ?? "-"}ms, lock window ${
      timings.lockWindowMs ?? "-"
    }ms`,
  );
  for (const outcome of outcomes) {
    if (!outcome.ok && outcome.errorCode !== "Aborted") {
      problems.push(
        new SnapshotError(
          `snapshot of ${outcome.volumeId} failed: ${outcome.errorCode}: ${outcome.message}`,
        ),
      );
    }
  }
  problems.sort((a, b) => severity(a) - severity(b));
  return { outcomes, binlog, wal, unfrozen, timings, problems };

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

  async function releaseDatabase(db: Database): Promise<void> {
    await db.release();
    if (databaseLockedAt !== undefined) {
      timings.databaseLockMs = Math.round(now() - databaseLockedAt);
    }
  }
}
