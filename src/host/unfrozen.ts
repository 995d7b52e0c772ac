/** Which of a database's file locations lie on file systems that are not frozen. */
import { findMount, readMountInfo } from "./mounts.ts";

/** A location the server named, resolved, on a file system outside the frozen set. */
export interface UnfrozenLocation {
  /** What the server calls it, e.g. ["MySQL log_bin_basename"]; several when they coincide. */
  what: string[];
  /** The path as the server gave it. */
  path: string;
  /** The path with symlinks resolved (pg_wal may be a link to another file system). */
  realPath: string;
  /** The mount point of the file system that holds it. */
  mountPoint: string;
}

/** Options of {@linkcode unfrozenLocations}. */
export interface UnfrozenOptions {
  /** Root of procfs; "/proc" by default. */
  procRoot?: string;
  /** For locations that cannot be resolved here (a remote server, a path that is gone). */
  debug?: (message: string) => void;
}

async function realPath(path: string): Promise<string | undefined> {
  try {
    return await Deno.realPath(path);
  } catch {
    return undefined;
  }
}

/**
 * Resolves every location (symlinks followed) and returns, once per resolved path, those whose
 * file system is not one of `frozenMounts` (compared by device, as a file system is frozen
 * whole). Locations that do not exist on this machine are skipped (said through `debug`).
 *
 * @example
 * ```ts
 * const outside = await unfrozenLocations(
 *   [{ what: "MySQL log_bin_basename", path: "/logs" }], ["/data"]);
 * // [{ what: ["MySQL log_bin_basename"], path: "/logs", realPath: "/logs", mountPoint: "/logs" }]
 * ```
 */
export async function unfrozenLocations(
  locations: readonly { what: string; path: string }[],
  frozenMounts: readonly string[],
  options: UnfrozenOptions = {},
): Promise<UnfrozenLocation[]> {
  if (locations.length === 0 || frozenMounts.length === 0) return [];
  const entries = await readMountInfo(options.procRoot);
  const frozenDevices = new Set<string>();
  for (const mount of frozenMounts) {
    const device = findMount(entries, (await realPath(mount)) ?? mount)?.majorMinor;
    if (device) frozenDevices.add(device);
  }
  const byPath = new Map<string, UnfrozenLocation>();
  for (const location of locations) {
    if (!location.path.startsWith("/")) {
      options.debug?.(`${location.what} ${location.path}: not an absolute path; not checked`);
      continue;
    }
    const real = await realPath(location.path);
    if (real === undefined) {
      options.debug?.(`${location.what} ${location.path}: not found on this machine; not checked`);
      continue;
    }
    const mount = findMount(entries, real);
    if (!mount || frozenDevices.has(mount.majorMinor)) continue;
    const known = byPath.get(real);
    if (known) {
      if (!known.what.includes(location.what)) known.what.push(location.what);
      continue;
    }
    byPath.set(real, {
      what: [location.what],
      path: location.path,
      realPath: real,
      mountPoint: mount.mountPoint,
    });
  }
  return [...byPath.values()];
}

/**
 * The warning for one location outside the frozen set.
 *
 * @example
 * ```ts
 * unfrozenWarning({ what: ["PostgreSQL pg_wal"], path: "/db/pg_wal", realPath: "/wal",
 *   mountPoint: "/wal" });
 * // "PostgreSQL pg_wal /db/pg_wal (-> /wal) lies on /wal, which is not frozen: ..."
 * ```
 */
export function unfrozenWarning(location: UnfrozenLocation): string {
  const shown = location.realPath === location.path
    ? location.path
    : `${location.path} (-> ${location.realPath})`;
  return `${location.what.join(", ")} ${shown} lies on ${location.mountPoint}, which is not ` +
    "frozen: the snapshots may not hold these files as of the freeze " +
    "(freeze that file system too, or move the files)";
}
