/** Typed errors of the program and the one table that maps them to exit codes. */

/** Exit codes, documented in README.md ("Exit codes"). */
export const ExitCode = {
  ok: 0,
  /** A bug or an unexpected failure. */
  internal: 1,
  /** Bad command line, configuration file or input file; nothing was touched. */
  usage: 2,
  /** Preflight failed: credentials, region, permission, volume, discovery, metadata. */
  preflight: 3,
  /** One or more CreateSnapshot calls failed. */
  snapshot: 4,
  /**
   * A time limit passed: --snapshot-timeout before every snapshot was initiated, or --hold-within
   * before everything was held (then everything was released).
   */
  timeout: 5,
  /** The database could not be connected, flushed, locked, stopped or started. */
  database: 6,
  /** A file system could not be frozen or thawed. */
  freeze: 7,
  /** --pre-freeze-command or --post-thaw-command failed. */
  hook: 8,
  /** After --wait: a snapshot or copy ended in error, or the wait timed out. */
  wait: 9,
  /** Retention could not delete an old snapshot. */
  retention: 10,
  /** Another run or hold freezes, or is about to freeze, the same file system; nothing was locked. */
  busy: 11,
  /**
   * A snapshot exists whose consistency is unknown: EC2 made it from a CreateSnapshot call that
   * was aborted or got no answer, or it was made while someone else had thawed a file system or
   * ended the database lock (and, for `--release`, a hold so broken). Reported by id and kept.
   */
  consistencyUnknown: 12,
  /** stdout or stderr was closed or could not be written. */
  output: 13,
  /** --release: nothing is held, and no hold ended without a --release (no --hold came first). */
  notHeld: 14,
  /** --metrics-file could not be written (when the run itself succeeded). */
  metrics: 15,
  /** --hold: a hold is already in place (its --release has not come); nothing new was locked. */
  holdInPlace: 16,
  /**
   * --release: the hold ended before it (its deadline, or the holder was killed or stopped), so
   * what was snapshotted meanwhile is not application-consistent; --hold: the holder was killed
   * (or stopped, and ended by its watchdog) before everything was held.
   */
  holdEnded: 17,
  /**
   * --restore-drill refused before it created anything: the set is incomplete, not completed in
   * time, of unknown consistency or without the tags a restore needs; a permission, the server
   * binaries or the instance do not fit.
   */
  drillRefused: 18,
  /** --restore-drill: the restored data failed a check (server start, position, user check). */
  drillFailed: 19,
  /** --restore-drill: a volume it created could not be detached or deleted (named on stderr). */
  drillLeftover: 20,
} as const;

/** One of the exit codes of {@linkcode ExitCode}. */
export type ExitCodeValue = typeof ExitCode[keyof typeof ExitCode];

/**
 * Base class: every error of ours carries its exit code.
 *
 * @example
 * ```ts
 * try {
 *   throw new UsageError("--keep: must not be negative, got '-1'");
 * } catch (error) {
 *   console.error(errorMessage(error)); // one line
 *   Deno.exit(exitCodeOf(error)); // 2 (ExitCode.usage)
 * }
 * ```
 */
export class AppError extends Error {
  /** The exit code of the run this error ends. */
  readonly exitCode: number;
  /** An error with the one-line `message` the user sees, and its exit code. */
  constructor(message: string, exitCode: number, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.exitCode = exitCode;
  }
}

/** Bad input: an option, a value, a file the user named. */
export class UsageError extends AppError {
  /** An error with the one-line `message` the user sees (`options.cause`: what caused it). */
  constructor(message: string, options?: ErrorOptions) {
    super(message, ExitCode.usage, options);
  }
}

/** Something checked before anything is locked did not pass. */
export class PreflightError extends AppError {
  /** An error with the one-line `message` the user sees (`options.cause`: what caused it). */
  constructor(message: string, options?: ErrorOptions) {
    super(message, ExitCode.preflight, options);
  }
}

/** A CreateSnapshot (or CreateSnapshots) call failed. */
export class SnapshotError extends AppError {
  /** An error with the one-line `message` the user sees (`options.cause`: what caused it). */
  constructor(message: string, options?: ErrorOptions) {
    super(message, ExitCode.snapshot, options);
  }
}

/** --snapshot-timeout passed before every snapshot was initiated. */
export class SnapshotTimeoutError extends AppError {
  /** An error with the one-line `message` the user sees (`options.cause`: what caused it). */
  constructor(message: string, options?: ErrorOptions) {
    super(message, ExitCode.timeout, options);
  }
}

/** The database could not be connected, flushed, locked, stopped or started. */
export class DatabaseError extends AppError {
  /** An error with the one-line `message` the user sees (`options.cause`: what caused it). */
  constructor(message: string, options?: ErrorOptions) {
    super(message, ExitCode.database, options);
  }
}

/** A file system could not be frozen or thawed. */
export class FreezeError extends AppError {
  /** An error with the one-line `message` the user sees (`options.cause`: what caused it). */
  constructor(message: string, options?: ErrorOptions) {
    super(message, ExitCode.freeze, options);
  }
}

/**
 * A thaw found the file system not frozen (fsfreeze's EINVAL). After a freeze that failed or
 * timed out, a thaw that ends in this error means there was nothing to release.
 */
export class NotFrozenError extends FreezeError {}

/**
 * A freeze found the file system frozen already (FIFREEZE's EBUSY): someone else froze it, so
 * this run must not thaw it.
 */
export class AlreadyFrozenError extends FreezeError {}

/** --pre-freeze-command or --post-thaw-command failed. */
export class HookError extends AppError {
  /** An error with the one-line `message` the user sees (`options.cause`: what caused it). */
  constructor(message: string, options?: ErrorOptions) {
    super(message, ExitCode.hook, options);
  }
}

/** With --wait: a snapshot or a copy ended in error, or the wait timed out. */
export class WaitError extends AppError {
  /** An error with the one-line `message` the user sees (`options.cause`: what caused it). */
  constructor(message: string, options?: ErrorOptions) {
    super(message, ExitCode.wait, options);
  }
}

/** Retention (--keep, --keep-days) could not delete an old snapshot. */
export class RetentionError extends AppError {
  /** An error with the one-line `message` the user sees (`options.cause`: what caused it). */
  constructor(message: string, options?: ErrorOptions) {
    super(message, ExitCode.retention, options);
  }
}

/** Another run or hold has the file system's freeze lock: refused before anything is locked. */
export class BusyError extends AppError {
  /** An error whose one-line `message` names the file system and the process that holds it. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, ExitCode.busy, options);
  }
}

/** --release found nothing to release, and no hold that ended before it: no --hold came first. */
export class NotHeldError extends AppError {
  /** An error with the one-line `message` the user sees (`options.cause`: what caused it). */
  constructor(message: string, options?: ErrorOptions) {
    super(message, ExitCode.notHeld, options);
  }
}

/** --hold found a hold in place already (exit 16): nothing new was locked. */
export class HoldInPlaceError extends AppError {
  /** An error whose one-line `message` names the hold in place. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, ExitCode.holdInPlace, options);
  }
}

/**
 * --release came after the hold had ended (exit 17): its deadline released it, or its holder was
 * killed or stopped, so a snapshot taken meanwhile is not application-consistent.
 */
export class HoldEndedError extends AppError {
  /** An error whose one-line `message` says how and when the hold ended. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, ExitCode.holdEnded, options);
  }
}

/**
 * EC2 holds a snapshot of this run made by an aborted or unanswered call (exit 12).
 *
 * @example
 * ```ts
 * new ConsistencyUnknownError("created, consistency unknown: snap-0123 of vol-0123").exitCode; // 12
 * ```
 */
export class ConsistencyUnknownError extends AppError {
  /** The error, with its one-line message. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, ExitCode.consistencyUnknown, options);
  }
}

/**
 * stdout or stderr could not be written (exit 13).
 *
 * @example
 * ```ts
 * new OutputError("cannot write to stdout: Broken pipe (os error 32)").exitCode; // 13
 * ```
 */
export class OutputError extends AppError {
  /** The error, with its one-line message. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, ExitCode.output, options);
  }
}

/**
 * --metrics-file could not be written.
 *
 * @example
 * ```ts
 * throw new MetricsError("--metrics-file /var/lib/x.prom: cannot write: permission denied");
 * ```
 */
export class MetricsError extends AppError {
  /** An error with the one-line `message` the user sees; exit code 15. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, ExitCode.metrics, options);
  }
}

/** The restore drill's three outcomes other than success (exit 18, 19, 20). */
export class DrillError extends AppError {
  /** An error with the one-line `message` the user sees and one of the drill's exit codes. */
  constructor(
    message: string,
    exitCode: 18 | 19 | 20,
    options?: ErrorOptions,
  ) {
    super(message, exitCode, options);
  }
}

/**
 * The exit code for any thrown value: its own for ours, {@linkcode ExitCode.internal} otherwise.
 *
 * @example
 * ```ts
 * exitCodeOf(new FreezeError("fsfreeze -f /data: ...")); // 7
 * exitCodeOf(new TypeError("a bug")); // 1
 * ```
 */
export function exitCodeOf(error: unknown): number {
  return error instanceof AppError ? error.exitCode : ExitCode.internal;
}

/** A stop signal (SIGINT, SIGTERM, SIGHUP) ended the run; the exit code is 128 + its number. */
export class StoppedError extends AppError {
  /** The run was stopped by `signalName` (e.g. "SIGTERM", 15): exit code 128 + `signalNumber`. */
  constructor(signalName: string, signalNumber: number) {
    super(`stopped by ${signalName}; everything was released`, 128 + signalNumber);
  }
}

/**
 * The AWS error code of an SDK error (`name` in SDK v3), the socket error's code (ECONNRESET,
 * EPIPE ...: the SDK names those "TimeoutError", but nothing of ours timed out), or a
 * description of what failed.
 */
export function errorCode(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    if (typeof code === "string" && /^E[A-Z_]+$/.test(code)) return code;
    if (error.name === "AbortError" || error.name === "TimeoutError") return "Aborted";
    return error.name || "Error";
  }
  return "Error";
}

/** The first line of an error's message: what one line on stderr can hold. */
export function errorMessage(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split("\n")[0];
}

/**
 * A few words for a connection's socket error (its `code`), as both database drivers report
 * them; undefined for any other error.
 *
 * @example
 * ```ts
 * socketErrorText({ code: "ECONNREFUSED" }); // "connection refused"
 * ```
 */
export function socketErrorText(error: unknown): string | undefined {
  switch ((error as { code?: unknown } | undefined)?.code) {
    case "ENOENT":
      return "no such socket";
    case "ECONNREFUSED":
      return "connection refused";
    case "ETIMEDOUT":
      return "connection timed out";
    case "EACCES":
      return "permission denied";
  }
  return undefined;
}
