/** Files: read the files the user names (one-line errors, mode checks), and write files atomically, never through a symlink. */
import { UsageError } from "./errors.ts";

/** Why a file could not be read, in a few words. */
function readFailure(error: unknown): string {
  if (error instanceof Deno.errors.NotFound) return "no such file";
  if (error instanceof Deno.errors.PermissionDenied) return "permission denied";
  return error instanceof Error ? error.message : String(error);
}

/**
 * Reads a text file the user named through `what` (an option, e.g. "--config"); throws a
 * UsageError "WHAT PATH: cannot read: REASON".
 *
 * @example
 * ```ts
 * const text = readUserFile("/etc/ec2-consistent-snapshot.conf", "--config");
 * ```
 */
export function readUserFile(path: string, what: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch (error) {
    throw new UsageError(`${what} ${path}: cannot read: ${readFailure(error)}`, { cause: error });
  }
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
