/**
 * The window's database before anything is locked: prepared (connected, checked), asked where
 * it keeps its files (warning about those outside the frozen file systems) and what it is (for
 * the snapshots' database tag). Its lock itself is the database's own (db/), bounded there.
 */
import type { Database, DatabaseFacts, DatabaseFile } from "../types/side_effects.ts";
import {
  type UnfrozenLocation,
  unfrozenLocations,
  type UnfrozenOptions,
  unfrozenWarning,
} from "../host/unfrozen.ts";
import type { Logger } from "../util/log.ts";

/** Which database files lie outside the frozen set; host/unfrozen.ts by default. */
export type FindUnfrozen = (
  files: readonly DatabaseFile[],
  frozenMounts: readonly string[],
  options: UnfrozenOptions,
) => Promise<UnfrozenLocation[]>;

/** What the window learns of its database before it locks it. */
export interface PreparedDatabase {
  /** Database files on file systems that will not be frozen (each also warned about). */
  unfrozen: UnfrozenLocation[];
  /** The database's engine, version and files, for the database tag; none when not known. */
  facts: DatabaseFacts | undefined;
}

/**
 * Prepares `db` (everything that can fail before anything is locked), then learns where its
 * files are and what it is. Only the preparation may throw: the rest are warnings, since old
 * cron lines must keep working and the snapshots are as good without the tag.
 *
 * @example
 * ```ts
 * import type { Database } from "../types/side_effects.ts";
 * import { silentLogger } from "../util/log.ts";
 * const db = {} as Database;
 * const { unfrozen, facts } = await prepareDatabase(db, ["/var/lib/mysql"], { log: silentLogger });
 * ```
 */
export async function prepareDatabase(
  db: Database,
  frozenMounts: readonly string[],
  deps: { log: Logger; unfrozen?: FindUnfrozen },
): Promise<PreparedDatabase> {
  await db.prepare();
  const unfrozen = await checkDatabaseFiles(db, frozenMounts, deps);
  const facts = await describeDatabase(db, deps.log);
  return { unfrozen, facts };
}

/** The database's facts for the snapshots' tag; undefined (warned) when it cannot tell. */
async function describeDatabase(db: Database, log: Logger): Promise<DatabaseFacts | undefined> {
  try {
    return await db.describe?.();
  } catch (error) {
    // The snapshots are as good without it; only a restore drill needs the tag's paths.
    log.warn(
      `could not learn the database's version and files for the snapshots' tag: ${
        (error as Error).message
      }`,
    );
    return undefined;
  }
}

/**
 * Asks the server where its files are and warns, once per location, about those on file
 * systems that will not be frozen. A warning, never a failure: old cron lines keep working.
 */
async function checkDatabaseFiles(
  db: Database,
  frozenMounts: readonly string[],
  deps: { log: Logger; unfrozen?: FindUnfrozen },
): Promise<UnfrozenLocation[]> {
  const { log } = deps;
  if (!db.files || frozenMounts.length === 0) return [];
  try {
    const files = await db.files();
    log.debug(`database files: ${files.map((f) => `${f.what} ${f.path}`).join(", ")}`);
    const outside = await (deps.unfrozen ?? unfrozenLocations)(files, frozenMounts, {
      debug: (message) => log.debug(message),
    });
    // Kept under --quiet: this backup may not restore to the recorded position.
    for (const location of outside) log.warn(unfrozenWarning(location), { evenWhenQuiet: true });
    return outside;
  } catch (error) {
    log.warn(`could not check where the database keeps its files: ${(error as Error).message}`);
    return [];
  }
}
