/** Files the user names: read with a one-line error naming the option, and checked for mode. */
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

/**
 * Writes `text` to `path` atomically: into a new temporary file beside it (created exclusively,
 * so nothing at that name is followed), flushed to disk, then renamed over `path`. A symlink at
 * `path` is replaced, never written through. On failure the temporary file is removed.
 *
 * @example
 * ```ts
 * await writeFileAtomic("/var/lib/node_exporter/textfile/ecs.prom", text, { mode: 0o644 });
 * ```
 */
export async function writeFileAtomic(
  path: string,
  text: string,
  options: { mode?: number } = {},
): Promise<void> {
  const slash = path.lastIndexOf("/");
  const dir = slash < 0 ? "." : path.slice(0, slash + 1);
  const base = path.slice(slash + 1);
  if (base === "" || base === "." || base === "..") throw new Error("not a file name");
  const temp = `${dir}.${base}.${Deno.pid}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  const mode = options.mode ?? 0o600;
  let file: Deno.FsFile | undefined;
  try {
    file = await Deno.open(temp, { write: true, createNew: true, mode });
    await Deno.chmod(temp, mode); // the umask must not narrow it (a collector reads it as another user)
    const bytes = new TextEncoder().encode(text);
    for (let done = 0; done < bytes.length;) done += await file.write(bytes.subarray(done));
    await file.syncData();
    file.close();
    file = undefined;
    await Deno.rename(temp, path);
  } catch (error) {
    file?.close();
    await Deno.remove(temp).catch(() => {});
    throw error;
  }
}
