/**
 * The small interfaces behind which every side effect of the sequence lives. `run/sequence.ts` takes
 * them as parameters, so the sequence can be tested with recording fakes (order, faults) and
 * with the real implementations (aws/, host/freeze.ts, db/) for truth.
 */

export type { SnapshotRequest } from "./tags.ts";
import type { SnapshotRequest } from "./tags.ts";
export type { DatabaseFacts } from "./restore_tags.ts";
import type { DatabaseFacts } from "./restore_tags.ts";

/**
 * How a failed snapshot request ended: "error" (EC2 answered with an AWS error code), "unknown"
 * (no answer: a reset or closed connection, a socket error, an answer without a code; EC2 may
 * have made it), "aborted" (our own abort: --snapshot-timeout or a stop signal).
 */
export type FailureKind = "error" | "unknown" | "aborted";

/** The outcome of one snapshot request: a snapshot id, or a failure of one kind; none else. */
export type SnapshotOutcome =
  | { volumeId: string; ok: true; snapshotId: string }
  | { volumeId: string; ok: false; kind: FailureKind; errorCode: string; message: string };

/** A snapshot that EC2 holds, found by the run's id tag. */
export interface FoundSnapshot {
  /** The snapshot's id (snap-...). */
  snapshotId: string;
  /** The volume EC2 says it is of. */
  volumeId: string;
  /**
   * Why its consistency is unknown, when not for a call without an answer: what was released
   * by someone else while it was made (a file system thawed, the database lock's connection
   * killed).
   */
  why?: string;
}

/** EC2, as the sequence needs it. Implemented with the AWS SDK in ec2.ts. */
export interface Ec2 {
  /**
   * A DryRun CreateSnapshot per volume: proves permission and existence before anything is
   * locked, and opens the TLS connection. Throws PreflightError naming the volume and code.
   * Aborting `signal` (the preflight's time bound, or a stop signal) aborts the calls.
   */
  preflight(requests: readonly SnapshotRequest[], signal: AbortSignal): Promise<void>;
  /**
   * One concurrent round of CreateSnapshot calls, tags in the same call. Aborting `signal`
   * aborts the requests in flight (their outcomes are "aborted"); no request of the round is
   * sent after `signal` is aborted, and none is sent again after it got no answer.
   */
  createSnapshots(
    requests: readonly SnapshotRequest[],
    signal: AbortSignal,
  ): Promise<SnapshotOutcome[]>;
  /**
   * Optional: the snapshots EC2 holds with the run's id tag (in every request's tags), asked
   * after the thaw when a call was aborted or got no answer. Throws when it cannot look.
   */
  findRunSnapshots?(
    requests: readonly SnapshotRequest[],
    signal: AbortSignal,
  ): Promise<FoundSnapshot[]>;
  /**
   * Optional: the value of the held-until tag for a hold that ends at a monotonic instant
   * (`performance.now()` of this process): that instant in EC2's time (ISO 8601), never later
   * than EC2's clock will show then, so that a snapshot started after it is known as such.
   */
  heldUntil?(monotonicMs: number): string;
}

/** File-system freezing. Implemented with sync, fsfreeze and xfs_freeze in freeze.ts. */
export interface Freezer {
  /** Flushes dirty data of all file systems (`sync`). */
  sync(): Promise<void>;
  /** Freezes one mount point; throws FreezeError. */
  freeze(mountPoint: string): Promise<void>;
  /** Thaws one mount point; throws FreezeError. */
  thaw(mountPoint: string): Promise<void>;
}

/** Binary-log coordinates taken while the database was locked. */
export interface BinlogCoordinates {
  /** The binary log file, e.g. "binlog.000042". */
  file: string;
  /** The position in that file. */
  position: number;
  /** Executed GTID set, when the server has one. */
  gtidExecuted?: string;
  /** "replica" when taken from the replica's executed position, else "source". */
  from: "source" | "replica";
}

/** The WAL position of PostgreSQL taken at the freeze: WAL up to it is in the snapshots. */
export interface WalPosition {
  /** pg_current_wal_lsn() (a primary) or pg_last_wal_replay_lsn() (a standby), e.g. "0/3000060". */
  lsn: string;
  /** The timeline, from pg_control_checkpoint(). */
  timeline: number;
  /** Taken on a primary (pg_current_wal_lsn()) or on a standby (pg_last_wal_replay_lsn()). */
  from: "primary" | "standby";
}

/** A place where a database keeps files, as the server says. */
export interface DatabaseFile {
  /** What it is, for the warning: e.g. "MySQL log_bin_basename", "PostgreSQL pg_wal". */
  what: string;
  /** An absolute directory (symlinks not yet resolved). */
  path: string;
}

/** The watchdog's bound of a database lock() that does not say its own (lockBoundMs). */
export const DEFAULT_LOCK_BOUND_MS = 10 * 60_000;

/** A database to flush and lock (or stop, or checkpoint): db/mysql/ and db/postgresql/. */
export interface Database {
  /**
   * False when lock() holds no writes (PostgreSQL: a checkpoint); the lock window then starts
   * at the freeze. True when absent.
   */
  readonly holdsWrites?: boolean;
  /** Where the server keeps its files; asked after prepare(), before anything is locked. */
  files?(): Promise<DatabaseFile[]>;
  /**
   * The engine, version and files a restore needs (the database tag of the snapshots); asked
   * after prepare(), before anything is locked. Throws DatabaseError.
   */
  describe?(): Promise<DatabaseFacts>;
  /**
   * The position just before the first freeze (after the last sync), when the database has
   * one to report there (PostgreSQL's WAL position). Bounded; throws DatabaseError.
   */
  positionAtFreeze?(signal: AbortSignal): Promise<WalPosition | undefined>;
  /**
   * Everything that can fail before anything is locked: read option files, connect, check the
   * server supports the chosen lock mode. Takes no lock.
   */
  prepare(): Promise<void>;
  /**
   * The longest lock() may take (its tries, time limits and pauses, the stop and its
   * confirmation): the watchdog's bound while it runs. Absent: {@linkcode DEFAULT_LOCK_BOUND_MS}.
   */
  readonly lockBoundMs?: number;
  /**
   * Flushes and locks (or stops) the database with bounded tries; returns the binary-log
   * coordinates when there are any. Aborting `signal` kills our own waiting statement.
   * `guard` is awaited before each step of it (a try, a pause, what follows the grant) with
   * that step's bound: the watchdog ends this process when it is stuck past it.
   */
  lock(
    signal: AbortSignal,
    guard?: (boundMs: number) => Promise<void>,
  ): Promise<BinlogCoordinates | undefined>;
  /**
   * Optional: asked after the step while held, before anything is released: undefined when
   * the lock (or the stop) still holds, else why it no longer does (the lock's connection was
   * killed, the server runs again). Bounded; never throws.
   */
  stillHeld?(): Promise<string | undefined>;
  /** Releases the lock (or starts the server again) and disconnects. Safe to call twice. */
  release(): Promise<void>;
}

/** Shell commands around the freeze (--pre-freeze-command, --post-thaw-command). */
export interface Hooks {
  /**
   * Runs `sh -c command`, output passed through; throws HookError on failure. `onStart` is
   * told the id of the process group it runs in (the watchdog kills it with a stuck process).
   */
  run(
    which: "pre-freeze" | "post-thaw",
    command: string,
    options?: { onStart?: (group: number) => void },
  ): Promise<void>;
}

/** A dead-man switch that thaws the frozen mounts if this process dies (watchdog.ts). */
export interface Watchdog {
  /**
   * Optional: starts the watchdog process ahead, unarmed, before anything is locked, so that
   * `arm` (while the database is locked) costs one message instead of a process start-up.
   * Never throws; `arm` starts one itself when this did not work.
   */
  prepare?(): void;
  /**
   * Starts a detached process that thaws `mountPoints` when this process disappears without
   * disarming it, or when `deadlineMs` (from now) passes. Called before the first freeze.
   */
  arm(
    mountPoints: readonly string[],
    deadlineMs: number,
    extras?: { startCommand?: string; startProbe?: StartProbe },
  ): Promise<ArmedWatchdog>;
}

/** Where a database server answers: its Unix socket, or its host and TCP port. */
export interface ServerAddress {
  /** The Unix socket; when set, host and port are not used. */
  socketPath?: string;
  /** The host name or address (TCP). */
  host?: string;
  /** The TCP port. */
  port?: number;
}

/**
 * Before the watchdog runs the start command (--mysql-stop), it checks the server: one that
 * answers at `address` all through `waitMs` was not stopped (or runs again) and is not started.
 */
export interface StartProbe {
  /** Where the stopped server answers when it runs. */
  address: ServerAddress;
  /** How long it must answer throughout to count as running (a stop may still be under way). */
  waitMs: number;
}

/** A watchdog process that is armed: it thaws unless disarmed in time. */
export interface ArmedWatchdog {
  /** Tells the watchdog that everything was thawed normally; it exits without acting. */
  disarm(): Promise<void>;
  /** The watchdog's process id, when it is a process (it then holds the freeze lock too). */
  readonly pid?: number;
  /**
   * Changes what it guards (the mounts, a new deadline from now, the start command): the
   * sequence arms it before the database stop and gives it the mounts at the freeze.
   */
  update?(change: WatchdogChange): Promise<void>;
}

/** A change to what an armed watchdog guards; fields left out keep their value. */
export interface WatchdogChange {
  /** The mounts it thaws. */
  mountPoints?: readonly string[];
  /** A new deadline, from now. */
  deadlineMs?: number;
  /** The command it runs after the thaw (null clears it). */
  startCommand?: string | null;
  /** Hold everything at least this long from now, even if this process dies. */
  holdMs?: number;
  /** A hook's process group, killed with this process when it fires; null: none. */
  hookGroup?: number | null;
}

/** The freeze locks of the run's file systems, held from before the first lock to the end. */
export interface HeldExclusion {
  /** Gives the locks back (only those still held by this run). */
  release(): Promise<void>;
  /** Adds a process (the watchdog) that keeps the locks held if this one dies. */
  guard?(pid: number): Promise<void>;
}
