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
