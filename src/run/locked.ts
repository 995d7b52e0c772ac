/**
 * The first half of the sequence and its release, shared by the normal run (snapshots while
 * held) and hold mode (held until asked): preflight, lock the database, pre-freeze hook, sync,
 * arm the watchdog, freeze; then one step while everything is held; then the cleanup stack
 * (thaw, disarm, post-thaw hook, unlock) unwinds exactly once, whatever happened.
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
import {
  type ArmedWatchdog,
  type BinlogCoordinates,
  type Database,
  type DatabaseFacts,
  type DatabaseFile,
  DEFAULT_LOCK_BOUND_MS,
  type Freezer,
  type HeldExclusion,
  type Hooks,
  type StartProbe,
  type WalPosition,
  type Watchdog,
} from "../types/side_effects.ts";
import {
  type UnfrozenLocation,
  unfrozenLocations,
  type UnfrozenOptions,
  unfrozenWarning,
} from "../host/unfrozen.ts";
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
  /**
   * With --mysql-stop: the command that starts the database again. The watchdog is then armed
   * before the stop and runs it if this process dies (or is stuck) before it started it.
   */
  databaseStartCommand?: string;
  /** With it: the watchdog runs it only when this server does not answer throughout. */
  databaseStartProbe?: StartProbe;
  /**
   * Bound of the watchdog after the thaw (post-thaw command and database release); default
   * {@linkcode WATCHDOG_PHASE_MS}.
   */
  watchdogPhaseMs?: number;
  /**
   * Bound of the pre-freeze command (--hook-timeout); default 30 s. While it runs under the
   * database lock, the watchdog ends this process when stuck past it (plus its margin).
   */
  hookTimeoutMs?: number;
  /** Bound of the sync under the database lock; default {@linkcode SYNC_BOUND_MS}. */
  syncTimeoutMs?: number;
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
  /**
   * Takes the freeze locks of the file systems (freeze_lock.ts): the first step, before
   * anything is checked or locked; throws a BusyError when another run or hold has one.
   */
  exclusion?: () => Promise<HeldExclusion>;
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
  /** PostgreSQL's WAL position at the freeze. */
  wal?: WalPosition;
  /** The database's engine, version and files, for the database tag; none without one. */
  facts?: DatabaseFacts;
  /**
   * Tells the watchdog to hold everything at least `ms` from now even if this process dies
   * (a call that may still reach EC2 was sent under that promise). Never throws.
   */
  holdAtLeast?(ms: number): Promise<void>;
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
  /** PostgreSQL's WAL position at the freeze. */
  wal: WalPosition | undefined;
  /** Database files on file systems that were not frozen (each also warned about). */
  unfrozen: UnfrozenLocation[];
  /** The measured windows. */
  timings: LockTimings;
  /** Every problem, most serious first; empty on success. */
  problems: AppError[];
  /**
   * What was found released by someone else before this run released it (a file system no
   * longer frozen at the thaw, the database lock gone), each in words: what the step while
   * held did (a snapshot) was done without everything held. Empty when all held throughout.
   */
  broken: string[];
}

/** Extra time the watchdog gives the normal thaw before it thaws by itself. */
export const WATCHDOG_MARGIN_MS = 5_000;

/** Default bound of the watchdog after the thaw (see LockSpec). */
export const WATCHDOG_PHASE_MS = 15 * 60_000;

/** Default bound of a sync (the freezer's own time limit). */
export const SYNC_BOUND_MS = 60_000;

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
  let wal: WalPosition | undefined;
  let facts: DatabaseFacts | undefined;
  let unfrozen: UnfrozenLocation[] = [];
  let firstLockAt: number | undefined;
  let firstFreezeAt: number | undefined;
  let databaseLockedAt: number | undefined;
  let armed: ArmedWatchdog | undefined;
  let exclusion: HeldExclusion | undefined;
  const phaseMs = spec.watchdogPhaseMs ?? WATCHDOG_PHASE_MS;
  const startCommand = database ? spec.databaseStartCommand : undefined;
  // A database lock (or stop) holds writes: the watchdog guards it from the moment it is
  // requested, so that a process stopped or stuck past a step's bound is ended, and its
  // session and lock with it (a stopped server is started again).
  // So does a database whose release the watchdog must do if this process dies (a stopped
  // replica's replication, which holds no writes but must be started again).
  const guardsDatabase = database !== undefined &&
    (database.holdsWrites !== false || startCommand !== undefined);
  const broken: string[] = [];
  /** Mounts this run froze (its freeze succeeded): a thaw that finds one thawed is a break. */
  const frozenByUs = new Set<string>();

  try {
    const started = now();
    if (deps.exclusion) {
      // Before anything else: a run that would share a freeze is refused before it locks.
      const held = await deps.exclusion();
      stack.push("freeze lock release", () => held.release());
      exclusion = held;
    }
    if (spec.freezeMounts.length > 0 || guardsDatabase) {
      watchdog.prepare?.();
      // Last of all: the watchdog guards until the database runs again (--mysql-stop).
      stack.push("watchdog disarm", () => armed?.disarm());
    }
    if (database) stack.push("database release", () => releaseDatabase(database));
    const preflightSignal = steps.preflightTimeoutMs === undefined
      ? signal
      : deadline(steps.preflightTimeoutMs, signal);
    await Promise.all([
      steps.preflight?.(preflightSignal),
      database?.prepare().then(async () => {
        unfrozen = await checkDatabaseFiles(database);
        facts = await describeDatabase(database);
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
    if (guardsDatabase) {
      // Armed before the lock is requested (a waiting FLUSH ... WITH READ LOCK blocks writes
      // too); with --mysql-stop it starts the database again should this process die.
      await armWatchdog([], (database!.lockBoundMs ?? DEFAULT_LOCK_BOUND_MS) + WATCHDOG_MARGIN_MS);
      checkSignal();
    }
    if (database) {
      log.debug("database: flush and lock");
      binlog = await database.lock(signal, guardStep);
      if (database.holdsWrites !== false) {
        databaseLockedAt = now();
        firstLockAt = databaseLockedAt;
        log.debug("database: locked");
      }
      checkSignal();
    }

    if (spec.preFreezeCommand) {
      log.debug("pre-freeze command");
      await guardStep(spec.hookTimeoutMs ?? 30_000);
      await runHook("pre-freeze", spec.preFreezeCommand);
      checkSignal();
    }
    if (spec.postThawCommand) {
      const command = spec.postThawCommand;
      stack.push("post-thaw command", async () => {
        // The database is still locked while it runs: bounded by the watchdog as before.
        await guardStep(spec.hookTimeoutMs ?? 30_000).catch(() => {});
        try {
          await runHook("post-thaw", command);
        } finally {
          await guardStep(phaseMs).catch(() => {});
        }
      });
    }

    // As the old tool did, always: flushed blocks make even an unfrozen file system's snapshot
    // closer to consistent, and leave less for the freeze to flush.
    log.debug("sync");
    await guardStep(spec.syncTimeoutMs ?? SYNC_BOUND_MS);
    await freezer.sync();
    checkSignal();

    if (database?.positionAtFreeze) {
      log.debug("database: position at the freeze");
      wal = await database.positionAtFreeze(signal);
      checkSignal();
    }

    if (spec.freezeMounts.length > 0 || armed) {
      // From here the bound is the step while held (the snapshots, or the hold).
      const deadlineMs = spec.watchdogDeadlineMs;
      if (armed?.update) await armed.update({ mountPoints: spec.freezeMounts, deadlineMs });
      else if (!armed) await armWatchdog(spec.freezeMounts, deadlineMs);
      const guard = armed!;
      // After the thaws it no longer thaws (what it would thaw is no longer ours), but still
      // guards the post-thaw command and the database release, under a longer bound.
      stack.push(
        "watchdog disarm",
        () =>
          guard.update ? guard.update({ mountPoints: [], deadlineMs: phaseMs }) : guard.disarm(),
      );
    }
    if (spec.freezeMounts.length > 0) {
      const guard = armed!;
      firstFreezeAt = now();
      firstLockAt ??= firstFreezeAt;
      /** Mounts whose freeze found them frozen already: someone else's, never thawed by us. */
      const notOurs = new Set<string>();
      const freeze = (mount: string) =>
        freezer.freeze(mount).then(() => void frozenByUs.add(mount), async (error) => {
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
            // Frozen by this run, thawed by someone else (an administrator, another agent, the
            // watchdog at its deadline) while held: what was made meanwhile is not vouched for.
            if (frozenByUs.has(mount)) {
              broken.push(
                `${mount} was no longer frozen when this run thawed it (thawed by ` +
                  "someone else, or by the watchdog at its deadline)",
              );
            }
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

    value = await steps.whileHeld({
      binlog,
      wal,
      facts,
      holdAtLeast: async (ms) => {
        await armed?.update?.({ holdMs: ms }).catch((error) =>
          log.warn(`could not tell the watchdog to hold ${ms} ms: ${(error as Error).message}`)
        );
      },
    });
    // Before anything is released: is the database lock still ours? (The file systems are
    // asked by their thaws, which find one that someone else thawed.)
    const lost = await database?.stillHeld?.();
    if (lost) broken.push(lost);
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
  log.debug(`released; ${windowText(timings)}`);
  return { value, binlog, wal, unfrozen, timings, problems: sortProblems(problems), broken };

  /**
   * Asks the server where its files are and warns, once per location, about those on file
   * systems that will not be frozen. A warning, never a failure: old cron lines keep working.
   */
  async function describeDatabase(db: Database): Promise<DatabaseFacts | undefined> {
    try {
      return await db.describe?.();
    } catch (error) {
      // The snapshots are as good without it; only a restore drill needs the tag's paths.
      log.warn(
        `could not learn the database's version and files for the snapshots' tag: ${
          (error as Error).message
        }`,
      );
      return undefined;
    }
  }

  async function checkDatabaseFiles(db: Database): Promise<UnfrozenLocation[]> {
    if (!db.files || spec.freezeMounts.length === 0) return [];
    try {
      const files = await db.files();
      log.debug(`database files: ${files.map((f) => `${f.what} ${f.path}`).join(", ")}`);
      const outside = await (deps.unfrozen ?? unfrozenLocations)(files, spec.freezeMounts, {
        debug: (message) => log.debug(message),
      });
      // Kept under --quiet: this backup may not restore to the recorded position.
      for (const location of outside) log.warn(unfrozenWarning(location), { evenWhenQuiet: true });
      return outside;
    } catch (error) {
      log.warn(`could not check where the database keeps its files: ${(error as Error).message}`);
      return [];
    }
  }

  /**
   * While the database is locked before the freeze: the watchdog's deadline becomes the next
   * step's bound (plus the margin), so a process stopped or stuck in it is ended at its bound.
   */
  async function guardStep(boundMs: number): Promise<void> {
    if (guardsDatabase && armed?.update) {
      await armed.update({ deadlineMs: boundMs + WATCHDOG_MARGIN_MS });
    }
  }

  /**
   * Runs a hook, its process group told to the watchdog while it runs: should this process die
   * or be ended meanwhile, the watchdog kills the hook too.
   */
  async function runHook(which: "pre-freeze" | "post-thaw", command: string): Promise<void> {
    const guard = armed;
    if (!guard?.update) return await hooks.run(which, command);
    let told: Promise<void> = Promise.resolve();
    try {
      await hooks.run(which, command, {
        onStart: (group) => told = guard.update!({ hookGroup: group }).catch(() => {}),
      });
    } finally {
      await told; // one line at a time on the watchdog's stdin
      await guard.update({ hookGroup: null }).catch(() => {});
    }
  }

  /** Arms the watchdog (once for the run: the final disarm is on the stack already). */
  async function armWatchdog(mountPoints: readonly string[], deadlineMs: number): Promise<void> {
    const started = await watchdog.arm(mountPoints, deadlineMs, {
      startCommand,
      ...(startCommand && spec.databaseStartProbe ? { startProbe: spec.databaseStartProbe } : {}),
    });
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

/**
 * The measured windows in words, for --debug and --release: "freeze window 12 ms, lock window
 * 15 ms", or "nothing was frozen" / "nothing was locked" where there was no window.
 *
 * @example
 * ```ts
 * windowText({ freezeWindowMs: null, lockWindowMs: 8 }); // "nothing was frozen, lock window 8 ms"
 * ```
 */
export function windowText(
  timings: Pick<LockTimings, "freezeWindowMs" | "lockWindowMs">,
): string {
  const freeze = timings.freezeWindowMs === null
    ? "nothing was frozen"
    : `freeze window ${timings.freezeWindowMs} ms`;
  const lock = timings.lockWindowMs === null
    ? "nothing was locked"
    : `lock window ${timings.lockWindowMs} ms`;
  return `${freeze}, ${lock}`;
}
