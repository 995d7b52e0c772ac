/**
 * The holder of hold mode: a detached process (its own session) that does the first half of the
 * sequence, keeps everything held (and its database connection open, so the lock) until
 * `--release`, the deadline or a stop signal, then releases and records what it measured.
 */
import { AppError, ConsistencyUnknownError, ExitCode } from "../util/errors.ts";
import { createLogger, type Logger } from "../util/log.ts";
import { trapStopSignals } from "../run/cleanup.ts";
import { withWindow } from "../run/window.ts";
import { sortProblems } from "../run/problems.ts";
import { windowText } from "../run/window_timings.ts";
import { freezeTargets, windowParts, windowSpec } from "../run/window_parts.ts";
import type { Database, Freezer, HeldExclusion, Hooks, Watchdog } from "../types/side_effects.ts";
import { LineReader, writeAllSync } from "../util/lines.ts";
import { delay } from "../util/deadline.ts";
import { CONFIRM_TIMEOUT_MS, type HeldMessage, HoldLine, type HoldRequest } from "./protocol.ts";
import { listenForRelease, type ReleaseSocket } from "./release_socket.ts";
import {
  abandonHold,
  claimHold,
  ensureStateDir,
  type HoldRecord,
  recordRelease,
  type ReleasedBy,
  type ReleaseRecord,
  type StatePaths,
  statePaths,
  updateHold,
} from "./state.ts";

/** The per-file-system locks (src/host/freeze_lock.ts), held for the whole hold. */
export type AcquireFreezeLocks = (
  targets: { mountPoint: string; device: string }[],
  options: { runDir: string; purpose: string },
) => Promise<HeldExclusion>;

/** The side effects of the holder, injected (tests use recording fakes). */
export interface HolderDeps {
  /** Freezes and thaws the file systems. */
  freezer: Freezer;
  /** Runs the pre-freeze and post-thaw commands. */
  hooks: Hooks;
  /** Thaws if the holder dies while frozen. */
  watchdog: Watchdog;
  /** The database to flush and lock (or stop), if any. */
  database?: Database;
  /** Takes the per-file-system freeze locks. */
  acquireFreezeLocks: AcquireFreezeLocks;
  /** The holder's log (hold.log, and the caller until it knows). */
  log: Logger;
  /** Writes one protocol line to the caller; false when the caller is gone. */
  tell: (line: string) => boolean;
  /** Resolves true when the caller confirmed the hold, false when it went away without. */
  confirmation: Promise<boolean>;
  /** Aborted by a stop signal, or when the caller went away before everything was held. */
  signal: AbortSignal;
  /** Called once the caller knows (or can no longer know): log lines stop going to it. */
  stopRelaying?: () => void;
}

/** Resolves "elapsed" after `ms`, or "aborted" as soon as `signal` aborts; never rejects. */
function pause(ms: number, signal: AbortSignal): Promise<"elapsed" | "aborted"> {
  return delay(Math.max(0, ms), { signal }).then(
    () => "elapsed" as const,
    () => "aborted" as const,
  );
}

/**
 * Holds what `request` asks for until released; resolves with the exit code. Everything held is
 * released before it resolves; a release, by whoever, is recorded in the state directory.
 *
 * @example
 * ```ts
 * import type { HoldRequest } from "./protocol.ts";
 * const request = {} as HoldRequest, deps = {} as HolderDeps;
 * const code = await hold(request, deps);
 * ```
 */
export async function hold(request: HoldRequest, deps: HolderDeps): Promise<number> {
  const { plan } = request;
  const { log } = deps;
  const paths = statePaths(request.stateDir);
  const spec = windowSpec(plan.window);
  let record: HoldRecord;
  try {
    ensureStateDir(paths);
    record = claimHold(paths, {
      mounts: [...spec.freezeMounts],
      database: plan.window.database !== undefined,
    });
  } catch (error) {
    return fail(deps, error);
  }

  let socket: ReleaseSocket | undefined;
  let heldAt = 0;
  // --hold-within: not everything held in time (a lock that takes its tries, a slow hook) is
  // given up, everything released, so that an orchestrator that stopped waiting is not left
  // with a freeze that nobody will release.
  const giveUp = new AbortController();
  const giveUpTimer = plan.holdWithinMs === undefined ? undefined : setTimeout(() =>
    giveUp.abort(
      new AppError(
        `--hold-within ${plan.holdWithinMs! / 1000}: not everything was held in time; gave up, ` +
          "everything was released",
        ExitCode.timeout,
      ),
    ), plan.holdWithinMs);
  const result = await withWindow(
    spec,
    {
      ...deps,
      signal: AbortSignal.any([deps.signal, giveUp.signal]),
      // The freeze locks, for the whole hold (released last); the watchdog guards them too.
      exclusion: () =>
        deps.acquireFreezeLocks(freezeTargets(plan.window), { runDir: paths.dir, purpose: "hold" }),
    },
    {
      whileHeld: async ({ binlog, wal }): Promise<ReleasedBy> => {
        clearTimeout(giveUpTimer);
        heldAt = Date.now();
        const deadlineAt = heldAt + plan.holdMs;
        socket = listenForRelease(paths.socket, log);
        record = { ...record, state: "held", heldAt, deadlineAt };
        updateHold(paths, record);
        const held: HeldMessage = {
          pid: Deno.pid,
          heldAt,
          deadlineAt,
          ...binlog ? { binlog } : {},
          ...wal ? { wal } : {},
        };
        const told = deps.tell(`${HoldLine.held} ${JSON.stringify(held)}`);
        const confirmed = told &&
          await Promise.race([deps.confirmation, pause(CONFIRM_TIMEOUT_MS, deps.signal)]);
        deps.stopRelaying?.();
        if (confirmed !== true) {
          log.warn("the caller of --hold went away before it learnt of the hold: releasing");
          return "caller gone";
        }
        log.debug(`held until ${new Date(deadlineAt).toISOString()}`);
        const ended = new AbortController();
        const by = await Promise.race([
          socket.requested.then(() => "release" as const),
          pause(deadlineAt - Date.now(), AbortSignal.any([deps.signal, ended.signal])).then((
            how,
          ) => how === "elapsed" ? "deadline" as const : "signal" as const),
        ]);
        ended.abort();
        log.debug(`releasing: ${by}`);
        return by;
      },
    },
  );

  clearTimeout(giveUpTimer);
  if (result.value === undefined) {
    abandonHold(paths);
    // Given up in time: a step aborted by it fails with its own words; the time limit is the cause.
    const first = giveUp.signal.aborted && !deps.signal.aborted
      ? giveUp.signal.reason as AppError
      : result.problems[0];
    for (const problem of result.problems.filter((p) => p !== first)) log.error(problem.message);
    return fail(deps, first ?? new AppError("the hold failed", ExitCode.internal));
  }
  const problems = [...result.problems];
  if (result.broken.length > 0) {
    // Someone thawed or unlocked while held: the orchestrator's snapshot is not consistent.
    problems.push(
      new ConsistencyUnknownError(
        `the hold was broken before its release: ${result.broken.join("; ")}; a snapshot ` +
          "taken during the hold is of unknown consistency",
      ),
    );
  }
  sortProblems(problems);
  const release: ReleaseRecord = {
    by: result.value,
    heldAt,
    releasedAt: Date.now(),
    pid: Deno.pid,
    timings: result.timings,
    ...(result.binlog ? { binlog: result.binlog } : {}),
    ...(result.wal ? { wal: result.wal } : {}),
    problems: problems.map((p) => ({ message: p.message, exitCode: p.exitCode })),
  };
  try {
    recordRelease(paths, release);
  } catch (error) {
    // Everything is released all the same; --release still hears it on the socket.
    const problem = error instanceof AppError ? error : new AppError(String(error), 1);
    problems.push(problem);
    release.problems.push({ message: problem.message, exitCode: problem.exitCode });
  }
  await socket?.answer(release);
  log.debug(`released (${release.by}); ${windowText(release.timings)}`);
  for (const problem of problems) log.error(problem.message);
  return problems[0]?.exitCode ?? ExitCode.ok;
}

/** Tells the caller why the hold failed; the exit code. */
function fail(deps: HolderDeps, error: unknown): number {
  const code = error instanceof AppError ? error.exitCode : ExitCode.internal;
  const message = (error instanceof Error ? error.message : String(error)).split("\n")[0];
  if (!deps.tell(`${HoldLine.failed} ${code} ${message}`)) deps.log.error(message);
  return code;
}

/** Writes one line on stdout; false when the reader is gone. */
function tellStdout(line: string): boolean {
  try {
    writeAllSync(Deno.stdout, line + "\n");
    return true;
  } catch {
    return false;
  }
}

/**
 * The holder's main function, for `ec2-consistent-snapshot __holder` (started by `--hold`,
 * detached, working directory `/`): reads the request, logs to the state directory's
 * `hold.log` (and to the caller until it knows), wires the real side effects and holds.
 * The caller must `Deno.exit()` with the code (stdin is still being read).
 *
 * @example
 * ```ts
 * import { HOLDER_ARG } from "./protocol.ts";
 * if (Deno.args[0] === HOLDER_ARG) Deno.exit(await runHolder());
 * ```
 */
export async function runHolder(): Promise<number> {
  Deno.chdir("/");
  const input = new LineReader(Deno.stdin.readable);
  const first = await input.next();
  if (first === undefined) return ExitCode.ok; // the caller gave up before asking
  const request = JSON.parse(first) as HoldRequest;
  const paths: StatePaths = statePaths(request.stateDir);
  let relaying = true;
  let logFile: Deno.FsFile | undefined;
  try {
    logFile = Deno.openSync(paths.log, { write: true, create: true, truncate: true, mode: 0o600 });
  } catch { /* no log file: the caller still hears until the hold is confirmed */ }
  const log = createLogger({
    debug: request.plan.debug,
    quiet: request.plan.quiet,
    write: (line) => {
      try {
        if (logFile) writeAllSync(logFile, `${line}\n`);
      } catch { /* best effort */ }
      if (relaying) tellStdout(`${HoldLine.log} ${line}`);
    },
  });

  const callerGone = new AbortController();
  const confirmation = (async () => {
    for await (const line of input) if (line.trim() === HoldLine.ok) return true;
    callerGone.abort(
      new AppError("the caller of --hold went away before everything was held", ExitCode.internal),
    );
    return false;
  })();
  const trap = trapStopSignals((name) => log.warn(`${name} received again; still releasing`));
  try {
    const { acquireFreezeLocks } = await import("../host/freeze_lock.ts");
    const { exclusion: _, ...parts } = await windowParts(request.plan.window, {
      log,
      purpose: "hold",
      runDir: paths.dir,
      searchPath: request.plan.searchPath,
      hookOutputFile: paths.log,
      watchdogStderr: "null",
    });
    return await hold(request, {
      ...parts,
      acquireFreezeLocks,
      log,
      tell: (line) => relaying && tellStdout(line),
      confirmation,
      signal: AbortSignal.any([trap.signal, callerGone.signal]),
      stopRelaying: () => relaying = false,
    });
  } catch (error) {
    log.error(`internal error: ${error instanceof Error ? error.stack : String(error)}`);
    return ExitCode.internal;
  } finally {
    trap.dispose();
    logFile?.close();
  }
}
