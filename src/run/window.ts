/**
 * The consistency window, shared by the normal run (snapshots while held) and hold mode (held
 * until asked), step by step: the file-system freeze locks, preflight, the database lock,
 * pre-freeze hook, sync, the watchdog armed, freeze; then one step while everything is held;
 * then the cleanup stack (thaw, disarm, post-thaw hook, database release, freeze locks) unwinds
 * exactly once, whatever happened. Its parts: freeze_mounts.ts (freezing the file systems),
 * window_database.ts (the database before its lock), window_timings.ts, problems.ts.
 */
import { CleanupStack } from "./cleanup.ts";
import { type AppError, FreezeError, PreflightError } from "../util/errors.ts";
import {
  type ArmedWatchdog,
  type BinlogCoordinates,
  type Database,
  type DatabaseFacts,
  DEFAULT_LOCK_BOUND_MS,
  type Freezer,
  type HeldExclusion,
  type Hooks,
  type StartProbe,
  type WalPosition,
  type Watchdog,
} from "../types/side_effects.ts";
import type { UnfrozenLocation } from "../host/unfrozen.ts";
import type { Logger } from "../util/log.ts";
import { deadline } from "../util/deadline.ts";
import { WATCHDOG_MARGIN_MS, WATCHDOG_PHASE_MS } from "../plan/window.ts";
import { freezeMounts } from "./freeze_mounts.ts";
import { type FindUnfrozen, prepareDatabase } from "./window_database.ts";
import { WindowClock, windowText, type WindowTimings } from "./window_timings.ts";
import { addLateStop, asAppError, sortProblems, stepProblem } from "./problems.ts";

/** What the window holds, and its bounds: made from the plan's window (run/window_parts.ts). */
export interface WindowSpec {
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
   * WATCHDOG_PHASE_MS (plan/window.ts).
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

/** The window's side effects, injected: real ones from run/window_parts.ts, or recording fakes. */
export interface WindowDeps {
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
  unfrozen?: FindUnfrozen;
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
export interface WindowSteps<T> {
  /** Checks of the caller's own (EC2's DryRun), run beside the database's preparation. */
  preflight?: (signal: AbortSignal) => Promise<void>;
  /** Bound of the preflight; none by default. */
  preflightTimeoutMs?: number;
  /** Runs while everything is held; its problems are reported, then everything is released. */
  whileHeld: (state: HeldState) => Promise<T>;
}

/** The outcome: the step's value (when it finished), timings and problems, most serious first. */
export interface WindowResult<T> {
  /** What `whileHeld` returned; undefined when it did not finish. */
  value: T | undefined;
  /** The binary-log coordinates taken while locked. */
  binlog: BinlogCoordinates | undefined;
  /** PostgreSQL's WAL position at the freeze. */
  wal: WalPosition | undefined;
  /** Database files on file systems that were not frozen (each also warned about). */
  unfrozen: UnfrozenLocation[];
  /** The measured windows. */
  timings: WindowTimings;
  /** Every problem, most serious first; empty on success. */
  problems: AppError[];
  /**
   * What was found released by someone else before this run released it (a file system no
   * longer frozen at the thaw, the database lock gone), each in words: what the step while
   * held did (a snapshot) was done without everything held. Empty when all held throughout.
   */
  broken: string[];
}

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

/**
 * Holds the window (locks and freezes), runs `steps.whileHeld`, and releases everything. Never
 * throws: problems (a failed preflight, a stop signal, a failed step, a failed thaw) are
 * collected, so that what was done is still reported, and everything taken is released before
 * it returns.
 *
 * @example
 * ```ts
 * const spec = {} as WindowSpec, deps = {} as WindowDeps;
 * const result = await withWindow(spec, deps, { whileHeld: async () => "held" });
 * result.problems; // [] when everything was held and released
 * ```
 */
export async function withWindow<T>(
  spec: WindowSpec,
  deps: WindowDeps,
  steps: WindowSteps<T>,
): Promise<WindowResult<T>> {
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
  const clock = new WindowClock(now);
  let value: T | undefined;
  let binlog: BinlogCoordinates | undefined;
  let wal: WalPosition | undefined;
  let facts: DatabaseFacts | undefined;
  let unfrozen: UnfrozenLocation[] = [];
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
      database &&
      prepareDatabase(database, spec.freezeMounts, deps).then((prepared) => {
        ({ unfrozen, facts } = prepared);
      }),
    ]);
    clock.preflightDone(started);
    log.debug(`preflight passed in ${clock.timings.preflightMs}ms`);
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
        clock.databaseLocked();
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
      clock.frozen();
      await freezeMounts(spec.freezeMounts, {
        freezer,
        stack,
        guard: armed!,
        log,
        checkSignal,
        onThaw: () => clock.thawed(),
        broken,
      });
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
    problems.push(stepProblem(error, signal, (m) => new PreflightError(m)));
  }

  const failures = await stack.unwind();
  addLateStop(signal, problems);
  clock.released();
  for (const failure of failures) {
    problems.push(asAppError(failure.error, (m) => new FreezeError(`${failure.name}: ${m}`)));
  }
  const timings = clock.timings;
  log.debug(`released; ${windowText(timings)}`);
  return { value, binlog, wal, unfrozen, timings, problems: sortProblems(problems), broken };

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
    clock.databaseReleased();
  }
}
