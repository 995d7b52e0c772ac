/** Binary-log coordinates under the lock (a replica's executed position, else the source's) and the old tool's status file. */
import { DatabaseError } from "../../util/errors.ts";
import type { BinlogCoordinates } from "../../types/side_effects.ts";
import type { Logger } from "../../util/log.ts";
import { writeFileAtomic } from "../../util/files.ts";
import { type Connection, rows } from "./connection.ts";
import { formatMasterStatusFile, type ServerStatements } from "./server.ts";

/** Coordinates and the replication filters, as the old tool's status file has them. */
export interface Position {
  /** File, position and GTID set. */
  coordinates: BinlogCoordinates;
  /** Binlog_Do_DB (or the replica's Replicate_Do_DB). */
  doDb: string;
  /** Binlog_Ignore_DB (or the replica's Replicate_Ignore_DB). */
  ignoreDb: string;
}

/**
 * The position of the data under the lock: a replica's executed position, else the binary log's;
 * undefined when the binary log is off. The GTID set is added when the server has one.
 *
 * @example
 * ```ts
 * import type { Connection } from "./connection.ts";
 * import { parseServerInfo, serverStatements } from "./server.ts";
 * import type { Logger } from "../../util/log.ts";
 * const conn = {} as Connection, log = {} as Logger;
 * const info = parseServerInfo("10.11.6-MariaDB");
 * const position = await readPosition(conn, serverStatements(info), log);
 * ```
 */
export async function readPosition(
  conn: Connection,
  statements: ServerStatements,
  log: Logger,
): Promise<Position | undefined> {
  const [replica] = await rows(conn, statements.replicaStatus);
  const replicaFile = replica?.Relay_Master_Log_File ?? replica?.Relay_Source_Log_File;
  let position: Position | undefined;
  if (replica && replicaFile) {
    position = {
      coordinates: {
        file: String(replicaFile),
        position: Number(replica.Exec_Master_Log_Pos ?? replica.Exec_Source_Log_Pos),
        from: "replica",
      },
      doDb: String(replica.Replicate_Do_DB ?? ""),
      ignoreDb: String(replica.Replicate_Ignore_DB ?? ""),
    };
  } else {
    const [source] = await rows(conn, statements.binlogStatus);
    if (!source?.File) return undefined;
    position = {
      coordinates: { file: String(source.File), position: Number(source.Position), from: "source" },
      doDb: String(source.Binlog_Do_DB ?? ""),
      ignoreDb: String(source.Binlog_Ignore_DB ?? ""),
    };
  }
  try {
    const [gtid] = await rows(conn, statements.gtid);
    const value = position.coordinates.from === "replica" ? gtid?.replica : gtid?.source;
    if (typeof value === "string" && value.trim() !== "") {
      position.coordinates.gtidExecuted = value.trim().replace(/\s+/g, "");
    }
  } catch (error) {
    log.debug(`MySQL: no GTID: ${(error as Error).message}`);
  }
  return position;
}

/**
 * Writes the old tool's status file; false when there was no position (nothing written).
 * Throws DatabaseError when the file cannot be written.
 *
 * @example
 * ```ts
 * import type { Logger } from "../../util/log.ts";
 * const position = {} as Position, log = {} as Logger;
 * writeStatusFile("/var/backups/master-status", position, log);
 * ```
 */
export function writeStatusFile(
  file: string,
  position: Position | undefined,
  log: Logger,
): boolean {
  if (!position) {
    log.warn(`MySQL: no binary log coordinates (binary log off?); ${file} not written`);
    return false;
  }
  log.debug(`MySQL: writing MASTER STATUS to ${file}`);
  try {
    // Beside it, then renamed over it: never half-written, never through a symbolic link.
    writeFileAtomic(
      file,
      formatMasterStatusFile(position.coordinates, position.doDb, position.ignoreDb),
      { mode: 0o644 },
    );
  } catch (error) {
    throw new DatabaseError(
      `--mysql-master-status-file: cannot write ${file}: ${(error as Error).message}`,
      { cause: error },
    );
  }
  return true;
}

/**
 * Removes the status file after the run; the problem in words, or undefined.
 *
 * @example
 * ```ts
 * import type { Logger } from "../../util/log.ts";
 * const log = {} as Logger;
 * const problem = await removeStatusFile("/var/backups/master-status", log);
 * ```
 */
export async function removeStatusFile(file: string, log: Logger): Promise<string | undefined> {
  log.debug(`MySQL: removing master status file ${file}`);
  try {
    await Deno.remove(file);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) {
      return `cannot remove ${file}: ${(error as Error).message}`;
    }
  }
  return undefined;
}
