/** Mount points from /proc/self/mountinfo: parsing, lookup, and the checks done before any freeze. */
import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import { PreflightError, UsageError } from "../util/errors.ts";

/** One line of /proc/self/mountinfo (see proc(5)). */
export interface MountInfoEntry {
  /** The unique id of the mount. */
  mountId: number;
  /** The id of the mount this one is mounted on. */
  parentId: number;
  /** The file system's device number, "MAJ:MIN", e.g. "259:1". */
  majorMinor: string;
  /** The directory of the file system that is mounted here ("/" unless a bind mount). */
  root: string;
  /** Where it is mounted, octal escapes decoded. */
  mountPoint: string;
  /** The file system type, e.g. "xfs", "ext4", "tmpfs". */
  fsType: string;
  /** The mount source, e.g. "/dev/nvme1n1p1", "tmpfs". */
  source: string;
}

/** A mount point that was checked and may be frozen or used for discovery. */
export interface MountPoint {
  /** The mount point: absolute, symbolic links resolved. */
  mountPoint: string;
  /** The file system's device number, "MAJ:MIN". */
  majorMinor: string;
  /** The file system type, e.g. "xfs". */
  fsType: string;
  /** The mount source, e.g. "/dev/nvme1n1p1". */
  source: string;
}

/** Decodes the octal escapes the kernel writes for space, tab, newline and backslash. */
function unescapeOctal(field: string): string {
  return field.replace(
    /\\([0-7]{3})/g,
    (_, octal: string) => String.fromCharCode(parseInt(octal, 8)),
  );
}

/**
 * Parses the text of /proc/self/mountinfo, in file order (a later entry on the same mount
 * point is mounted over an earlier one). Malformed lines throw, naming the line.
 *
 * @example
 * ```ts
 * const [root] = parseMountInfo("27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n");
 * // root.mountPoint === "/", root.majorMinor === "254:0"
 * ```
 */
export function parseMountInfo(text: string): MountInfoEntry[] {
  const entries: MountInfoEntry[] = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    const fields = line.split(" ");
    const separator = fields.indexOf("-", 6);
    if (fields.length < 7 || separator < 0 || fields.length < separator + 3) {
      throw new Error(`mountinfo: malformed line: ${JSON.stringify(line)}`);
    }
    entries.push({
      mountId: Number(fields[0]),
      parentId: Number(fields[1]),
      majorMinor: fields[2],
      root: unescapeOctal(fields[3]),
      mountPoint: unescapeOctal(fields[4]),
      fsType: unescapeOctal(fields[separator + 1]),
      source: unescapeOctal(fields[separator + 2]),
    });
  }
  return entries;
}

/** Reads and parses `<procRoot>/self/mountinfo`. */
export async function readMountInfo(procRoot = "/proc"): Promise<MountInfoEntry[]> {
  const path = `${procRoot}/self/mountinfo`;
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    throw new PreflightError(`cannot read ${path}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  return parseMountInfo(text);
}

function contains(mountPoint: string, path: string): boolean {
  return mountPoint === "/" || path === mountPoint || path.startsWith(mountPoint + "/");
}

/**
 * The mount that holds `path` (absolute, symlinks already resolved): the deepest mount point
 * that contains it, the last one listed when several are stacked on the same directory.
 */
export function findMount(
  entries: readonly MountInfoEntry[],
  path: string,
): MountInfoEntry | undefined {
  let best: MountInfoEntry | undefined;
  for (const entry of entries) {
    if (!contains(entry.mountPoint, path)) continue;
    if (!best || entry.mountPoint.length >= best.mountPoint.length) best = entry;
  }
  return best;
}

/** Options of {@linkcode resolveMountPoints}. */
export interface ResolveMountPointsOptions {
  /** Root of the proc file system; "/proc" by default. */
  procRoot?: string;
  /** The process's working directory; `Deno.cwd()` by default. Relative paths resolve here. */
  cwd?: string;
  /**
   * Files our output goes to; by default the targets of `<procRoot>/self/fd/1` and `/fd/2`
   * when they are files (not pipes, sockets or terminals).
   */
  outputPaths?: readonly string[];
  /** The option named in error messages; "--freeze-filesystem" by default. */
  option?: string;
  /**
   * Whether these mounts will be frozen (true by default): then `/`, and the file systems that
   * hold the working directory or our output, are refused. False for --no-freeze-filesystem.
   */
  freeze?: boolean;
}

/** Targets of fd 1 and 2 that are paths of files, without the " (deleted)" the kernel adds. */
async function readOutputPaths(procRoot: string): Promise<string[]> {
  const paths: string[] = [];
  for (const fd of [1, 2]) {
    let target: string;
    try {
      target = await Deno.readLink(`${procRoot}/self/fd/${fd}`);
    } catch {
      continue; // closed descriptor
    }
    if (!target.startsWith("/")) continue; // pipe:[..], socket:[..], anon_inode:..
    paths.push(target.replace(/ \(deleted\)$/, ""));
  }
  return paths;
}

/** Resolves symlinks; for a file that no longer exists, resolves its directory. */
async function canonical(path: string): Promise<string> {
  try {
    return await Deno.realPath(path);
  } catch {
    try {
      return join(await Deno.realPath(dirname(path)), basename(path));
    } catch {
      return path;
    }
  }
}

/**
 * Checks the mount points given by the user and returns them in order, duplicates removed (for
 * a freeze, also a second path to the same file system, such as a bind mount: one device is
 * frozen once).
 * Each path is resolved (relative to `cwd`, symlinks followed) and must be exactly a mount
 * point in mountinfo. For mounts to freeze, `/` is refused, and so is any file system that
 * holds the working directory or a file that stdout or stderr goes to: freezing it would hang
 * this very process. Throws UsageError with one line naming the option and the path.
 *
 * @example
 * ```ts
 * const mounts = await resolveMountPoints(["/data"], { option: "--freeze-filesystem" });
 * // [{ mountPoint: "/data", majorMinor: "259:1", fsType: "xfs", source: "/dev/nvme1n1" }]
 * ```
 */
export async function resolveMountPoints(
  paths: readonly string[],
  options: ResolveMountPointsOptions = {},
): Promise<MountPoint[]> {
  const procRoot = options.procRoot ?? "/proc";
  const option = options.option ?? "--freeze-filesystem";
  const freeze = options.freeze ?? true;
  const cwd = options.cwd ?? Deno.cwd();
  if (paths.length === 0) return [];
  const entries = await readMountInfo(procRoot);

  const result: MountPoint[] = [];
  const seen = new Set<string>();
  for (const given of paths) {
    if (given === "") throw new UsageError(`${option}: empty path`);
    const absolute = isAbsolute(given) ? given : resolve(cwd, given);
    let real: string;
    try {
      real = await Deno.realPath(absolute);
    } catch (error) {
      const why = error instanceof Deno.errors.NotFound
        ? "no such file or directory"
        : (error as Error).message;
      throw new UsageError(`${option} ${given}: ${why}`, { cause: error });
    }
    const entry = findMount(entries, real);
    if (!entry || entry.mountPoint !== real) {
      const holder = entry ? ` (it is on the file system mounted at ${entry.mountPoint})` : "";
      const shown = real === given ? given : `${given} (${real})`;
      throw new UsageError(`${option} ${shown}: not a mount point${holder}`);
    }
    if (seen.has(real)) continue;
    seen.add(real);
    // The same file system by another path (a bind mount): frozen once, through the first.
    if (freeze && result.some((m) => m.majorMinor === entry.majorMinor)) continue;
    result.push({
      mountPoint: real,
      majorMinor: entry.majorMinor,
      fsType: entry.fsType,
      source: entry.source,
    });
  }

  if (freeze) {
    const outputPaths = options.outputPaths ?? await readOutputPaths(procRoot);
    await refuseUnsafe(result, entries, { option, cwd, outputPaths });
  }
  return result;
}

/** Throws for a mount whose freeze would hang the machine or this very process. */
async function refuseUnsafe(
  mounts: readonly MountPoint[],
  entries: readonly MountInfoEntry[],
  context: { option: string; cwd: string; outputPaths: readonly string[] },
): Promise<void> {
  const { option, outputPaths } = context;
  // A file system is frozen as a whole, whichever of its mounts is named: compare devices.
  const rootDevice = findMount(entries, "/")?.majorMinor;
  const cwd = await canonical(context.cwd);
  const cwdDevice = findMount(entries, cwd)?.majorMinor;
  const outputs = outputPaths;
  const outputDevices: [string, string][] = [];
  for (const output of outputs) {
    const path = await canonical(output);
    const device = findMount(entries, path)?.majorMinor;
    if (device) outputDevices.push([output, device]);
  }

  for (const mount of mounts) {
    const name = `${option} ${mount.mountPoint}`;
    if (mount.mountPoint === "/" || mount.majorMinor === rootDevice) {
      const what = mount.mountPoint === "/" ? "" : " (the same file system as /)";
      throw new UsageError(
        `${name}: refusing to freeze the root file system${what}; use --no-freeze-filesystem`,
      );
    }
    if (mount.majorMinor === cwdDevice) {
      throw new UsageError(
        `${name}: refusing to freeze the file system that holds the working directory ${cwd}; ` +
          `run from another directory`,
      );
    }
    for (const [output, device] of outputDevices) {
      if (mount.majorMinor === device) {
        throw new UsageError(
          `${name}: refusing to freeze the file system that holds ${output}, ` +
            `where this program's output goes; redirect it elsewhere`,
        );
      }
    }
  }
}
