/** The per-file-system exclusion lock: one run (or hold) at a time freezes a given file system. */
import { BusyError, PreflightError } from "../util/errors.ts";
import { isSameProcessAlive, procReadable, readProcessStat } from "./proc.ts";
import { writeFileAtomic } from "../util/files.ts";

/** A file system to lock: the mount point the run freezes and its device ("MAJ:MIN"). */
export interface FreezeTarget {
  /** The mount point, as the run names it in messages. */
  mountPoint: string;
  /** The file system's device number as in /proc/self/mountinfo, e.g. "259:1". */
  device: string;
}

/** Options of {@linkcode acquireFreezeLocks}. */
export interface FreezeLockOptions {
  /** Where the lock files live, as the plan decided (plan/machine.ts); created root-only (0700) when missing. */
  runDir: string;
  /** What holds the lock, as a noun the messages use: "run" or "hold". */
  purpose: string;
  /** How long to wait for another process that is checking the locks at this moment; 5 s. */
  mutexTimeoutMs?: number;
}

/** One process, named for good by its pid and start time (/proc/PID/stat field 22). */
interface ProcessId {
  pid: number;
  /** Null when /proc could not be read: then only the pid's existence counts. */
  startTime: number | null;
}

/** What a lock file holds (JSON). Written beside and renamed, so it is never half-written. */
interface LockRecord {
  /** Random, per acquisition: release deletes only the files that still carry it. */
  token: string;
  device: string;
  mountPoint: string;
  purpose: string;
  holder: ProcessId;
  /** Processes that keep the lock held after the holder died (the watchdog, until it thaws). */
  guards: ProcessId[];
  /** When it was taken (ISO 8601). */
  since: string;
}

/** The locks a run holds; release them on the cleanup stack. */
export interface FreezeLocks {
  /** Identifies this acquisition (see {@linkcode adoptFreezeLocks}). */
  readonly token: string;
  /** The devices locked, each once. */
  readonly devices: readonly string[];
  /** Deletes the lock files that are still ours. Idempotent; never throws for a missing file. */
  release(): Promise<void>;
  /**
   * Names another process as the holder (e.g. the detached holder of a hold), which then
   * releases with {@linkcode adoptFreezeLocks}; this process stops counting.
   */
  handOver(pid: number, purpose?: string): Promise<void>;
  /**
   * Adds a process (the watchdog) whose life keeps the lock held after the holder died, so no
   * other run freezes the file system before the watchdog has thawed it.
   */
  guard(pid: number): Promise<void>;
}

/** The lock file of a device: "259:1" -> "freeze-259-1.lock". */
export function lockFileName(device: string): string {
  if (!/^\d+:\d+$/.test(device)) throw new Error(`not a device number: ${device}`);
  return `freeze-${device.replace(":", "-")}.lock`;
}

function identify(pid: number): ProcessId {
  const stat = procReadable() ? readProcessStat(pid) : undefined;
  return { pid, startTime: stat?.startTime ?? null };
}

/** True while the process may still be alive: when /proc says nothing, it is taken as alive. */
function alive(process: ProcessId): boolean {
  if (!Number.isSafeInteger(process.pid) || process.pid <= 0) return false;
  if (!procReadable()) return true;
  if (process.startTime === null) return readProcessStat(process.pid) !== undefined;
  return isSameProcessAlive(process.pid, process.startTime);
}

function parseRecord(text: string): LockRecord | undefined {
  try {
    const record = JSON.parse(text) as LockRecord;
    const ok = typeof record?.token === "string" && typeof record.holder?.pid === "number" &&
      Array.isArray(record.guards);
    return ok ? record : undefined;
  } catch {
    return undefined;
  }
}

/** The live process that holds the record, described for a message; undefined when stale. */
function liveHolder(record: LockRecord): string | undefined {
  const what = `${record.purpose === "hold" ? "a hold" : `another ${record.purpose}`}`;
  if (alive(record.holder)) {
    return `${what} of ec2-consistent-snapshot (pid ${record.holder.pid}, since ${record.since})`;
  }
  const guard = record.guards.find(alive);
  if (guard) {
    return `the watchdog (pid ${guard.pid}) of ${what} that ended (pid ${record.holder.pid}), ` +
      "until it has thawed";
  }
  return undefined;
}

function readRecord(path: string): { record?: LockRecord; exists: boolean } {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return { exists: false };
    throw error;
  }
  return { record: parseRecord(text), exists: true };
}

/** Writes a lock record whole or not at all (beside it, synced, renamed; never through a link). */
function writeLockFile(path: string, record: unknown): void {
  try {
    writeFileAtomic(path, JSON.stringify(record) + "\n", { mode: 0o600, sync: true });
  } catch (error) {
    // A full or read-only run directory: one line naming the file, never a stack trace.
    throw new PreflightError(
      `cannot write ${path}: ${(error as Error).message} (the run directory must be writable, ` +
        "with room)",
      { cause: error },
    );
  }
}

/** Creates the run directory root-only, and refuses one that others could write into. */
export function ensureRunDir(dir: string): void {
  try {
    Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const info = Deno.lstatSync(dir);
    if (!info.isDirectory) throw new Error("not a directory");
    if ((info.mode ?? 0) & 0o022) throw new Error("writable by group or others");
    if (info.uid !== null && info.uid !== Deno.uid()) throw new Error("owned by another user");
  } catch (error) {
    throw new PreflightError(`run directory ${dir}: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/**
 * Runs `body` while holding the run directory's mutex (a flock on `.mutex`, which dies with
 * its holder): every check and change of the lock files happens under it.
 */
async function withMutex<T>(dir: string, timeoutMs: number, body: () => T): Promise<T> {
  const file = await Deno.open(`${dir}/.mutex`, {
    read: true,
    write: true,
    create: true,
    mode: 0o600,
  }).catch((error) => {
    throw new PreflightError(`cannot open ${dir}/.mutex: ${(error as Error).message}`, {
      cause: error,
    });
  });
  try {
    const deadline = performance.now() + timeoutMs;
    while (!await file.tryLock(true)) {
      if (performance.now() > deadline) {
        throw new BusyError(
          `another process has held ${dir}/.mutex for over ${timeoutMs} ms (stopped?); try again`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return body();
  } finally {
    file.close(); // closing drops the flock
  }
}

function makeLocks(
  dir: string,
  token: string,
  devices: string[],
  timeoutMs: number,
): FreezeLocks {
  const paths = devices.map((device) => `${dir}/${lockFileName(device)}`);
  /** Applies `change` to each record that still carries our token. */
  const update = (change: (record: LockRecord, path: string) => void) =>
    withMutex(dir, timeoutMs, () => {
      for (const path of paths) {
        const { record } = readRecord(path);
        if (record?.token === token) change(record, path);
      }
    });
  return {
    token,
    devices,
    release: () =>
      update((_, path) => {
        try {
          Deno.removeSync(path);
        } catch (error) {
          if (!(error instanceof Deno.errors.NotFound)) throw error;
        }
      }),
    handOver: (pid, purpose) =>
      update((record, path) => {
        const next = { ...record, holder: identify(pid), purpose: purpose ?? record.purpose };
        writeLockFile(path, next);
      }),
    guard: (pid) =>
      update((record, path) => {
        const next = { ...record, guards: [...record.guards, identify(pid)] };
        writeLockFile(path, next);
      }),
  };
}

/**
 * Takes the freeze lock of every target's file system (each device once), all or none.
 * Throws a BusyError (exit 11) naming the other process when a live process (a run, a hold,
 * or the watchdog of one that died) holds any of them; a lock whose holder is dead is taken
 * over. Take it before anything is locked, and release it last.
 *
 * @example
 * ```ts
 * const locks = await acquireFreezeLocks([{ mountPoint: "/data", device: "259:1" }], {
 *   runDir: "/run/ec2-consistent-snapshot",
 *   purpose: "run",
 * });
 * await locks.release();
 * ```
 */
export async function acquireFreezeLocks(
  targets: readonly FreezeTarget[],
  opts: FreezeLockOptions,
): Promise<FreezeLocks> {
  const dir = opts.runDir;
  const timeoutMs = opts.mutexTimeoutMs ?? 5_000;
  const byDevice = new Map<string, FreezeTarget>();
  for (const target of targets) {
    lockFileName(target.device); // refuses a malformed device number
    if (!byDevice.has(target.device)) byDevice.set(target.device, target);
  }
  const token = crypto.randomUUID();
  const devices = [...byDevice.keys()];
  if (devices.length === 0) return makeLocks(dir, token, devices, timeoutMs);
  ensureRunDir(dir);
  await withMutex(dir, timeoutMs, () => {
    for (const [device, target] of byDevice) {
      const { record } = readRecord(`${dir}/${lockFileName(device)}`);
      const holder = record && liveHolder(record);
      if (holder) {
        throw new BusyError(
          `${target.mountPoint} (device ${device}) is frozen, or about to be, by ${holder}` +
            (record.mountPoint !== target.mountPoint ? ` through ${record.mountPoint}` : "") +
            "; nothing was locked",
        );
      }
    }
    const self = identify(Deno.pid);
    const since = new Date().toISOString();
    for (const [device, target] of byDevice) {
      const record: LockRecord = {
        token,
        device,
        mountPoint: target.mountPoint,
        purpose: opts.purpose,
        holder: self,
        guards: [],
        since,
      };
      writeLockFile(`${dir}/${lockFileName(device)}`, record);
    }
  });
  return makeLocks(dir, token, devices, timeoutMs);
}

/**
 * The locks of an earlier acquisition, by its token, for the process it was handed over to
 * (see {@linkcode FreezeLocks.handOver}); only the devices whose files still carry the token.
 */
export async function adoptFreezeLocks(
  token: string,
  opts: { runDir: string; mutexTimeoutMs?: number },
): Promise<FreezeLocks> {
  const dir = opts.runDir;
  const timeoutMs = opts.mutexTimeoutMs ?? 5_000;
  const devices = await withMutex(dir, timeoutMs, () => {
    const found: string[] = [];
    for (const entry of Deno.readDirSync(dir)) {
      const match = /^freeze-(\d+)-(\d+)\.lock$/.exec(entry.name);
      if (!match || !entry.isFile) continue;
      if (readRecord(`${dir}/${entry.name}`).record?.token === token) {
        found.push(`${match[1]}:${match[2]}`);
      }
    }
    return found;
  });
  return makeLocks(dir, token, devices, timeoutMs);
}
