/**
 * Runtime state of hold mode in /run/ec2-consistent-snapshot/ (root only, 0700): the record of
 * the hold in place (the holder's pid and start time, never trusted once that process is gone),
 * the record of the last release, the holder's socket and its log.
 */
import { BusyError, HoldInPlaceError, PreflightError } from "../util/errors.ts";
import { ensureRunDir } from "../host/freeze_lock.ts";
import { writeFileAtomic } from "../util/files.ts";
import type { BinlogCoordinates, WalPosition } from "../types/side_effects.ts";
import type { WindowTimings } from "../run/window_timings.ts";
import { isSameProcessAlive, readProcessStat } from "../host/proc.ts";

/** The hold in place: written by the holder when it starts, updated once everything is held. */
export interface HoldRecord {
  /** The holder's process id. */
  pid: number;
  /** The holder's start time (/proc/PID/stat field 22): with the pid, it names one process. */
  startTime: number;
  /** Starting until everything is held. */
  state: "starting" | "held";
  /** Epoch milliseconds. */
  startedAt: number;
  /** When everything was held (epoch milliseconds). */
  heldAt?: number;
  /** When the holder releases by itself (epoch milliseconds). */
  deadlineAt?: number;
  /** The mount points held frozen. */
  mounts: string[];
  /** True when a database is held (locked or stopped). */
  database: boolean;
}

/** Who released a hold. */
export type ReleasedBy = "release" | "deadline" | "signal" | "caller gone";

/** The record of the last release, kept for a late `--release`. */
export interface ReleaseRecord {
  /** Who released: --release, the deadline, a signal, or a caller gone. */
  by: ReleasedBy;
  /** Epoch milliseconds: held, and released (everything unwound). */
  heldAt: number;
  /** When everything was released (epoch milliseconds). */
  releasedAt: number;
  /** The holder's process id. */
  pid: number;
  /** The windows the holder measured. */
  timings: WindowTimings;
  /** The binary-log position taken while the database was locked. */
  binlog?: BinlogCoordinates;
  /** PostgreSQL: the WAL position and timeline at the freeze. */
  wal?: WalPosition;
  /** What went wrong while releasing, most serious first. */
  problems: { message: string; exitCode: number }[];
}

/** The files of the state directory. */
export interface StatePaths {
  /** The directory (root only, 0700). */
  dir: string;
  /** hold.json: the hold in place. */
  hold: string;
  /** released.json: the last release. */
  released: string;
  /** hold.sock: the holder's unix socket. */
  socket: string;
  /** hold.log: the holder's log. */
  log: string;
}

/**
 * The state directory and its files: the freeze locks' run directory, as the plan decided it
 * (plan/machine.ts: `$ECS_RUN_DIR`, else /run/ec2-consistent-snapshot).
 *
 * @example
 * ```ts
 * statePaths("/run/ec2-consistent-snapshot").socket; // "/run/ec2-consistent-snapshot/hold.sock"
 * ```
 */
export function statePaths(dir: string): StatePaths {
  return {
    dir,
    hold: `${dir}/hold.json`,
    released: `${dir}/released.json`,
    socket: `${dir}/hold.sock`,
    log: `${dir}/hold.log`,
  };
}

/** Makes the directory (0700) when missing; refuses one that others could write into. */
export function ensureStateDir(paths: StatePaths): void {
  ensureRunDir(paths.dir);
}

/**
 * A record, or undefined when there is none or it is not one of ours (half-written by a process
 * that died, or damaged: `valid` says no); it is then never trusted. A file that cannot be read
 * (permission: not root) is a PreflightError naming it.
 */
function readJson<T>(path: string, valid: (value: T) => boolean): T | undefined {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    const why = error instanceof Deno.errors.PermissionDenied
      ? "permission denied (hold mode's state is root's: run it as root)"
      : (error as Error).message;
    throw new PreflightError(`cannot read ${path}: ${why}`, { cause: error });
  }
  try {
    const value = JSON.parse(text) as T;
    return typeof value === "object" && value !== null && valid(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/** A moment (epoch milliseconds) that Date can show. */
const isInstant = (value: unknown) =>
  typeof value === "number" && Number.isFinite(value) && Math.abs(value) <= 8.64e15;
const isPid = (value: unknown) => Number.isSafeInteger(value) && (value as number) > 0;

/** True when `r` has the fields of a HoldRecord (a damaged one is never trusted). */
function validHold(r: HoldRecord): boolean {
  return isPid(r.pid) && Number.isSafeInteger(r.startTime) &&
    (r.state === "starting" || r.state === "held") && isInstant(r.startedAt) &&
    (r.heldAt === undefined || isInstant(r.heldAt)) &&
    (r.deadlineAt === undefined || isInstant(r.deadlineAt)) &&
    Array.isArray(r.mounts) && r.mounts.every((m) => typeof m === "string") &&
    typeof r.database === "boolean";
}

/** True when `r` has the fields of a ReleaseRecord that the messages read. */
function validRelease(r: ReleaseRecord): boolean {
  return ["release", "deadline", "signal", "caller gone"].includes(r.by) &&
    isInstant(r.heldAt) && isInstant(r.releasedAt) && isPid(r.pid) &&
    typeof r.timings === "object" && r.timings !== null && Array.isArray(r.problems) &&
    r.problems.every((p) => typeof p?.message === "string" && Number.isSafeInteger(p.exitCode));
}

/** True when a file is at `path` (a record that may be damaged). */
export function recordExists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Writes a record whole or not at all, mode 0600 (never through a symbolic link). */
function writeJson(path: string, value: unknown): void {
  try {
    writeFileAtomic(path, JSON.stringify(value) + "\n", { mode: 0o600 });
  } catch (error) {
    throw stateWriteError(path, error);
  }
}

/** A state file that cannot be written (a full or read-only run directory): one line, exit 3. */
function stateWriteError(path: string, error: unknown): PreflightError {
  return new PreflightError(
    `cannot write ${path}: ${(error as Error).message} (the run directory must be writable, ` +
      "with room)",
    { cause: error },
  );
}

function removeQuietly(path: string): void {
  try {
    Deno.removeSync(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}

/** True while the process that wrote `record` runs (a new process reusing the pid does not count). */
export function holderAlive(record: Pick<HoldRecord, "pid" | "startTime">): boolean {
  return isSameProcessAlive(record.pid, record.startTime);
}

/** What the state says about the hold in place. */
export type HoldStatus =
  | { kind: "none" }
  | { kind: "live"; record: HoldRecord }
  | { kind: "stale"; record: HoldRecord };

/** Reads the hold record and tells whether its holder still runs. */
export function readHold(paths: StatePaths): HoldStatus {
  const record = readJson<HoldRecord>(paths.hold, validHold);
  if (!record) return { kind: "none" };
  return holderAlive(record) ? { kind: "live", record } : { kind: "stale", record };
}

/**
 * Removes the record of a holder that is gone, and its socket. Re-reads first: a new holder may
 * have taken the place in between.
 */
export function removeStaleHold(paths: StatePaths, stale: HoldRecord): void {
  const now = readJson<HoldRecord>(paths.hold, validHold);
  if (now && (now.pid !== stale.pid || now.startTime !== stale.startTime)) return;
  removeQuietly(paths.hold);
  removeQuietly(paths.socket);
}

/** Describes a live hold for messages: "a hold by process 42 (held since 12:00:01Z, ...)". */
export function describeHold(record: HoldRecord): string {
  const what = [
    ...record.mounts,
    ...(record.database ? ["the database"] : []),
  ].join(", ");
  const since = record.heldAt
    ? `held since ${new Date(record.heldAt).toISOString()}, until ${
      new Date(record.deadlineAt!).toISOString()
    }`
    : `being taken since ${new Date(record.startedAt).toISOString()}`;
  return `a hold by process ${record.pid} on ${what} (${since})`;
}

/**
 * Takes the one place for a hold on this machine: writes the record (exclusively). A record
 * whose holder is gone is cleaned and the place taken; a live one is a HoldInPlaceError (exit 16).
 */
export function claimHold(
  paths: StatePaths,
  what: Pick<HoldRecord, "mounts" | "database">,
): HoldRecord {
  const startTime = readProcessStat(Deno.pid)?.startTime;
  if (startTime === undefined) throw new PreflightError("cannot read /proc/self/stat");
  const record: HoldRecord = {
    pid: Deno.pid,
    startTime,
    state: "starting",
    startedAt: Date.now(),
    ...what,
  };
  // Written aside, then linked into place: the link fails when a record exists, and a reader
  // never sees a half-written one.
  const temporary = `${paths.hold}.${Deno.pid}.tmp`;
  try {
    try {
      Deno.writeTextFileSync(temporary, JSON.stringify(record) + "\n", { mode: 0o600 });
    } catch (error) {
      throw stateWriteError(paths.hold, error);
    }
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        Deno.linkSync(temporary, paths.hold);
        removeQuietly(paths.released);
        return record;
      } catch (error) {
        if (!(error instanceof Deno.errors.AlreadyExists)) throw stateWriteError(paths.hold, error);
      }
      const status = readHold(paths);
      if (status.kind === "live") {
        throw new HoldInPlaceError(`${describeHold(status.record)} is in place`);
      }
      if (status.kind === "stale") removeStaleHold(paths, status.record);
      else removeQuietly(paths.hold); // not a record of ours
    }
  } finally {
    removeQuietly(temporary);
  }
  throw new BusyError(`another process keeps taking the hold record ${paths.hold}`);
}

/** Replaces the hold record (atomically). */
export function updateHold(paths: StatePaths, record: HoldRecord): void {
  writeJson(paths.hold, record);
}

/** Records a release, then removes the hold record and the socket. */
export function recordRelease(paths: StatePaths, record: ReleaseRecord): void {
  writeJson(paths.released, record);
  removeQuietly(paths.hold);
  removeQuietly(paths.socket);
}

/** Removes the hold record and socket of a hold that failed before anything was held. */
export function abandonHold(paths: StatePaths): void {
  removeQuietly(paths.hold);
  removeQuietly(paths.socket);
}

/** The record of the last release, if any. */
export function readRelease(paths: StatePaths): ReleaseRecord | undefined {
  return readJson<ReleaseRecord>(paths.released, validRelease);
}
