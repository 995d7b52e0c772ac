/**
 * The order of a run's problems, and what a failure becomes: the most serious problem comes
 * first and decides the exit code; a stop signal always counts, even one that came while
 * releasing.
 */
import { SignalError, STOP_SIGNALS } from "./cleanup.ts";
import {
  AppError,
  ConsistencyUnknownError,
  FreezeError,
  HookError,
  SnapshotError,
  SnapshotTimeoutError,
  StoppedError,
} from "../util/errors.ts";

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

/**
 * Sorts problems in place, most serious first (the first decides the exit code).
 *
 * @example
 * ```ts
 * import { HookError, StoppedError } from "../util/errors.ts";
 * const problems = sortProblems([new HookError("pre-freeze command failed"), new StoppedError("SIGTERM", 143)]);
 * problems[0].exitCode; // 143: the stop signal decides
 * ```
 */
export function sortProblems(problems: AppError[]): AppError[] {
  return problems.sort((a, b) => severity(a) - severity(b));
}

/**
 * `error` as an AppError: itself when it is one, else `fallback` of its message.
 *
 * @example
 * ```ts
 * import { FreezeError } from "../util/errors.ts";
 * asAppError(new Error("EIO"), (m) => new FreezeError(m)).message; // "EIO"
 * ```
 */
export function asAppError(error: unknown, fallback: (message: string) => AppError): AppError {
  if (error instanceof AppError) return error;
  return fallback(error instanceof Error ? error.message : String(error));
}

/**
 * The problem of a step that failed: a stop signal when `signal` was aborted by one (the step
 * aborted by it fails with its own error, but the signal is what counts), else the step's own
 * error, an AppError made by `fallback` when it is none.
 *
 * @example
 * ```ts
 * import { PreflightError } from "../util/errors.ts";
 * const signal = new AbortController().signal;
 * stepProblem(new Error("no route to host"), signal, (m) => new PreflightError(m)).exitCode;
 * ```
 */
export function stepProblem(
  error: unknown,
  signal: AbortSignal,
  fallback: (message: string) => AppError,
): AppError {
  const stop = signal.aborted && signal.reason instanceof SignalError ? signal.reason : error;
  return stop instanceof SignalError
    ? new StoppedError(stop.signalName, STOP_SIGNALS[stop.signalName])
    : asAppError(error, fallback);
}

/**
 * A stop signal that came while releasing (during the thaw, the post-thaw command) still ends
 * the run as stopped: never exit 0 after a signal. Adds it to `problems` unless there.
 *
 * @example
 * ```ts
 * import type { AppError } from "../util/errors.ts";
 * const problems: AppError[] = [];
 * addLateStop(new AbortController().signal, problems); // not aborted: nothing added
 * ```
 */
export function addLateStop(signal: AbortSignal, problems: AppError[]): void {
  if (
    signal.aborted && signal.reason instanceof SignalError &&
    !problems.some((p) => p instanceof StoppedError)
  ) {
    problems.push(
      new StoppedError(signal.reason.signalName, STOP_SIGNALS[signal.reason.signalName]),
    );
  }
}
