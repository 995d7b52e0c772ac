/** Files: read the files the user names (one-line errors, mode checks), and write files atomically, never through a symlink. */
import fs from "node:fs";
import { UsageError } from "./errors.ts";

/** The largest file the user names that is read (a configuration, option or key file). */
export const MAX_USER_FILE_BYTES = 1024 * 1024;

/** Why a file could not be opened or read, in a few words (Deno's and node:fs's errors). */
function readFailure(error: unknown): string {
  if (error instanceof Deno.errors.NotFound) return "no such file";
  if (error instanceof Deno.errors.PermissionDenied) return "permission denied";
  switch ((error as { code?: unknown })?.code) {
    case "ENOENT":
      return "no such file";
    case "EACCES":
    case "EPERM":
      return "permission denied";
    case "ELOOP":
      return "too many symbolic links";
    case "ENOTDIR":
      return "a part of the path is not a directory";
    case "ENXIO":
      return "a socket or a device without a reader";
  }
  return error instanceof Error ? error.message : String(error);
}

/** What a non-regular file is, in a few words. */
function kindOf(stat: fs.Stats): string {
  if (stat.isDirectory()) return "a directory";
  if (stat.isFIFO()) return "a FIFO";
  if (stat.isCharacterDevice() || stat.isBlockDevice()) return "a device";
  if (stat.isSocket()) return "a socket";
  return "not a regular file";
}

/**
 * Reads a file the user named through `what` (an option, e.g. "--config", or a description
 * such as "MySQL option file") only if it is a regular file of at most `maxBytes`: a FIFO is
 * opened without blocking and refused, a device (/dev/zero) or a directory too, and a file that
 * grows past the bound while read. Throws a UsageError "WHAT PATH: cannot read: REASON", one
 * line. Symbolic links are followed to the file they name.
 *
 * @example
 * ```ts
 * const text = readUserFile("/etc/ec2-consistent-snapshot.conf", "--config");
 * ```
 */
export function readUserFile(path: string, what: string, maxBytes = MAX_USER_FILE_BYTES): string {
  const fail = (reason: string, cause?: unknown): never => {
    throw new UsageError(`${what} ${path}: cannot read: ${reason}`, { cause });
  };
  if (path === "") fail("the path is empty");
  let fd: number;
  try {
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, forever.
    fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (error) {
    return fail(readFailure(error), error);
  }
  try {
    const stat = fs.fstatSync(fd);
    if (!stat.isFile()) fail(`${kindOf(stat)}, not a regular file`);
    if (stat.size > maxBytes) fail(`larger than ${maxBytes} bytes`);
    const buffer = new Uint8Array(maxBytes + 1);
    let length = 0;
    while (length < buffer.length) {
      const n = fs.readSync(fd, buffer, length, buffer.length - length, null);
      if (n === 0) break;
      length += n;
    }
    if (length > maxBytes) fail(`larger than ${maxBytes} bytes`);
    return new TextDecoder().decode(buffer.subarray(0, length));
  } catch (error) {
    if (error instanceof UsageError) throw error;
    return fail(readFailure(error), error);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Refuses, with the same one line as {@linkcode readUserFile}, a file that exists but that it
 * would not read (a FIFO, a device, a directory, too large); for files another library reads
 * later (the AWS SDK's shared config). A missing file passes.
 *
 * @example
 * ```ts
 * checkUserFile("/root/.aws/config", "AWS config file");
 * ```
 */
export function checkUserFile(path: string, what: string, maxBytes = MAX_USER_FILE_BYTES): void {
  if (!exists(path)) return;
  readUserFile(path, what, maxBytes);
}

/** True when group or others may read the file (a secret in it is not private). */
export function readableByOthers(path: string): boolean {
  try {
    return ((Deno.statSync(path).mode ?? 0) & 0o044) !== 0;
  } catch {
    return false;
  }
}

/** True when something exists at `path`. */
export function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * True when `path` is absent or a regular file (not a link, FIFO, device or directory): what
 * {@linkcode writeFileAtomic} would replace.
 */
export function absentOrRegularFile(path: string): boolean {
  try {
    return Deno.lstatSync(path).isFile;
  } catch (error) {
    return error instanceof Deno.errors.NotFound;
  }
}

/** Options of {@linkcode writeFileAtomic}. */
export interface WriteFileAtomicOptions {
  /** Mode of the new file (before the umask); default 0o644. */
  mode?: number;
  /** fsync the data before the rename (durable across a crash); default false. */
  sync?: boolean;
}

/**
 * Writes a file whole or not at all, and never through a symbolic link: the data goes to a new
 * file beside `path` (created exclusively, so nothing at that name is followed or reused),
 * which is then renamed over `path`. A symbolic link, or anything but a regular file, already
 * at `path` is refused with an Error that says so; the caller names its option.
 *
 * @example
 * ```ts
 * writeFileAtomic("/var/lib/ecs/master-status", "master_log_pos=\"4\"\n", { mode: 0o600 });
 * ```
 */
export function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  options: WriteFileAtomicOptions = {},
): void {
  let existing: Deno.FileInfo | undefined;
  try {
    existing = Deno.lstatSync(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  if (existing?.isSymlink) {
    throw new Error(`${path} is a symbolic link; refusing to write through it`);
  }
  if (existing && !existing.isFile) throw new Error(`${path} exists and is not a regular file`);
  const slash = path.lastIndexOf("/");
  const dir = slash < 0 ? "." : path.slice(0, slash + 1);
  const temp = `${dir}.${path.slice(slash + 1)}.${Deno.pid}.${crypto.randomUUID()}.tmp`;
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  try {
    const file = Deno.openSync(temp, {
      write: true,
      createNew: true,
      mode: options.mode ?? 0o644,
    });
    try {
      let written = 0;
      while (written < bytes.length) written += file.writeSync(bytes.subarray(written));
      if (options.sync) file.syncSync();
    } finally {
      file.close();
    }
    // rename(2) replaces whatever is at `path` (even a link put there since): never follows it.
    Deno.renameSync(temp, path);
  } catch (error) {
    try {
      Deno.removeSync(temp);
    } catch { /* never created, or already renamed */ }
    throw error;
  }
}
