/** Flushing, freezing and thawing file systems with sync, fsfreeze and xfs_freeze. */
import { AlreadyFrozenError, FreezeError, NotFrozenError } from "../util/errors.ts";
import type { Freezer } from "../types/side_effects.ts";
import type { Logger } from "../util/log.ts";
import { findMount, type MountInfoEntry, readMountInfo } from "./mounts.ts";
import { ProgramError, type ProgramResult, runProgram } from "./programs.ts";

/**
 * Searched after PATH: cron's PATH (`/usr/bin:/bin`) lacks the sbin directories, and a freeze
 * that silently did not happen is what the old tool did for months.
 */
export const SYSTEM_DIRS: readonly string[] = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"];

/** Where to look for a program. */
export interface FindProgramOptions {
  /** A PATH-style list, as the plan decided it (plan/machine.ts); default none. Relative entries are ignored. */
  path?: string;
  /** Searched after `path`; default {@linkcode SYSTEM_DIRS}. */
  systemDirs?: readonly string[];
}

function isExecutableFile(path: string): boolean {
  try {
    const info = Deno.statSync(path);
    return info.isFile && ((info.mode ?? 0) & 0o111) !== 0;
  } catch {
    return false;
  }
}

/** The directories searched, in order, without duplicates. */
export function searchDirs(options: FindProgramOptions = {}): string[] {
  const path = options.path ?? "";
  const dirs = [
    // A relative entry would look in the working directory: never for a program run as root.
    ...path.split(":").filter((dir) => dir.startsWith("/")),
    ...(options.systemDirs ?? SYSTEM_DIRS),
  ];
  return [...new Set(dirs)];
}

/**
 * Finds an executable by name on PATH, then in the system directories.
 *
 * @example
 * ```ts
 * findProgram("fsfreeze", { path: "/usr/bin:/bin" }); // "/usr/sbin/fsfreeze"
 * ```
 */
export function findProgram(name: string, options: FindProgramOptions = {}): string | undefined {
  for (const dir of searchDirs(options)) {
    const candidate = `${dir.replace(/\/+$/, "")}/${name}`;
    if (isExecutableFile(candidate)) return candidate;
  }
  return undefined;
}

/** The program that freezes and thaws, and which of the two it is. */
export interface FreezeProgram {
  /** Which program it is. */
  name: "fsfreeze" | "xfs_freeze";
  /** Its absolute path. */
  path: string;
}

/** Finds `fsfreeze`, else `xfs_freeze` (both take `-f MOUNT` and `-u MOUNT`); throws FreezeError. */
export function findFreezeProgram(options: FindProgramOptions = {}): FreezeProgram {
  for (const name of ["fsfreeze", "xfs_freeze"] as const) {
    const path = findProgram(name, options);
    if (path) return { name, path };
  }
  throw new FreezeError(
    `neither fsfreeze nor xfs_freeze was found in ${
      searchDirs(options).join(", ")
    } (install util-linux or xfsprogs)`,
  );
}

/**
 * Runs a program (see host/programs.ts) with a time limit; a program that cannot be started or
 * does not finish in time is a FreezeError.
 */
async function runBounded(
  program: string,
  args: readonly string[],
  options: { timeoutMs: number; path: string },
): Promise<ProgramResult> {
  try {
    return await runProgram(program, args, options);
  } catch (error) {
    if (error instanceof ProgramError) throw new FreezeError(error.message, { cause: error });
    throw error;
  }
}

/**
 * The mount at `path` when `path` is exactly a mount point. A freeze applies to the whole file
 * system that holds the path, so freezing a plain directory would freeze its parent file
 * system (often `/`): this is the freezer's own last check, after the plan's validation.
 */
async function mountAt(path: string): Promise<MountInfoEntry | undefined> {
  const entry = findMount(await readMountInfo(), path);
  return entry?.mountPoint === path ? entry : undefined;
}

/** Options of {@linkcode createFreezer}. */
export interface FreezerOptions {
  /** Where --debug steps go. */
  log: Logger;
  /** Limit for each sync, freeze and thaw; default 60 s. */
  timeoutMs?: number;
  /** Where to look for sync, fsfreeze and xfs_freeze; default {@linkcode SYSTEM_DIRS} only. */
  search?: FindProgramOptions;
  /**
   * The device ("MAJ:MIN") the plan checked for each mount point: a freeze refuses a mount
   * point that holds another file system by then (something was mounted over it).
   */
  devices?: ReadonlyMap<string, string>;
}

/** The PATH the programs run with: the search and system directories, so helpers are found. */
function childPath(search: FindProgramOptions): string {
  return [...new Set([...searchDirs(search), ...SYSTEM_DIRS])].join(":");
}

/**
 * Makes the real {@linkcode Freezer}: `sync`, then `fsfreeze -f` / `fsfreeze -u` (or
 * `xfs_freeze` when there is no fsfreeze), each bounded by a timeout. Every failure is a
 * FreezeError quoting the program's error in one line.
 *
 * @example
 * ```ts
 * import { silentLogger } from "../util/log.ts";
 * const freezer = createFreezer({ log: silentLogger, search: { path: "/usr/bin:/bin" } });
 * await freezer.sync();
 * await freezer.freeze("/data");
 * try {
 *   // take the snapshot
 * } finally {
 *   await freezer.thaw("/data");
 * }
 * ```
 */
export function createFreezer(options: FreezerOptions): Freezer {
  const { log } = options;
  const timeoutMs = options.timeoutMs ?? 60_000;
  const search = options.search ?? {};

  async function freezeOrThaw(action: "freeze" | "thaw", mountPoint: string): Promise<void> {
    if (mountPoint === "/" || !mountPoint.startsWith("/")) {
      throw new FreezeError(`refusing to ${action} ${JSON.stringify(mountPoint)}`);
    }
    let real: string;
    try {
      real = Deno.realPathSync(mountPoint);
    } catch (error) {
      throw new FreezeError(`cannot ${action} ${mountPoint}: ${(error as Error).message}`, {
        cause: error,
      });
    }
    const entry = real === "/" ? undefined : await mountAt(real);
    if (!entry) throw new FreezeError(`refusing to ${action} ${mountPoint}: not a mount point`);
    const checked = options.devices?.get(mountPoint);
    if (action === "freeze" && checked !== undefined && entry.majorMinor !== checked) {
      throw new FreezeError(
        `refusing to freeze ${mountPoint}: it is now device ${entry.majorMinor}, not ${checked} ` +
          "that was checked (something was mounted over it)",
      );
    }
    const program = findFreezeProgram(search);
    const flag = action === "freeze" ? "-f" : "-u";
    log.debug(`${action}: ${program.path} ${flag} ${real}`);
    const result = await runBounded(program.path, [flag, real], {
      timeoutMs,
      path: childPath(search),
    });
    if (result.code !== 0) {
      const why = result.stderr ||
        (result.signal ? `killed by ${result.signal}` : `exit code ${result.code}`);
      if (action === "thaw" && /invalid argument/i.test(result.stderr)) {
        throw new NotFrozenError(`cannot thaw ${mountPoint}: it is not frozen (${why})`);
      }
      // EBUSY: frozen already, by someone else; this run must leave it as it is.
      if (action === "freeze" && /device or resource busy/i.test(result.stderr)) {
        throw new AlreadyFrozenError(
          `cannot freeze ${mountPoint}: it is frozen already, by someone else (${why}); ` +
            "left as it is",
        );
      }
      throw new FreezeError(`cannot ${action} ${mountPoint}: ${why}`);
    }
  }

  return {
    async sync() {
      const sync = findProgram("sync", search);
      if (!sync) {
        throw new FreezeError(`sync was not found in ${searchDirs(search).join(", ")}`);
      }
      log.debug(`sync: ${sync}`);
      const result = await runBounded(sync, [], { timeoutMs, path: childPath(search) });
      if (result.code !== 0) {
        throw new FreezeError(`sync failed: ${result.stderr || `exit code ${result.code}`}`);
      }
    },
    freeze: (mountPoint) => freezeOrThaw("freeze", mountPoint),
    thaw: (mountPoint) => freezeOrThaw("thaw", mountPoint),
  };
}
