/**
 * What a MySQL or MariaDB server can do, decided from its version: whether the planned lock
 * mode works on it, the statements for coordinates, and the old tool's status file.
 */
import type { BinlogCoordinates } from "../../types/side_effects.ts";
import type { MysqlLockMode } from "../../types/database_plans.ts";

/** What the server is, as far as choosing statements goes. */
export interface ServerInfo {
  /** VERSION(), e.g. "10.11.19-MariaDB-0+deb12u1-log". */
  version: string;
  /** True for MariaDB, false for MySQL (and Percona Server). */
  mariadb: boolean;
  /** [major, minor, patch]. */
  numbers: [number, number, number];
  /** Percona backup locks (`LOCK TABLES FOR BACKUP`) are available. */
  backupLocks: boolean;
}

/** Parses VERSION() (and whether backup locks exist) into ServerInfo. */
export function parseServerInfo(version: string, backupLocks = false): ServerInfo {
  const match = /(\d+)\.(\d+)\.(\d+)/.exec(version);
  const numbers: [number, number, number] = match
    ? [Number(match[1]), Number(match[2]), Number(match[3])]
    : [0, 0, 0];
  return { version, mariadb: /mariadb/i.test(version), numbers, backupLocks };
}

function atLeast(info: ServerInfo, ...wanted: number[]): boolean {
  for (let i = 0; i < 3; i++) {
    if (info.numbers[i] !== (wanted[i] ?? 0)) return info.numbers[i] > (wanted[i] ?? 0);
  }
  return true;
}

/** The statements for a server: old names where the new ones do not exist yet. */
export interface ServerStatements {
  /** SHOW REPLICA STATUS, or SHOW SLAVE STATUS on older servers. */
  replicaStatus: string;
  /** SHOW BINARY LOG STATUS (BINLOG on MariaDB), or SHOW MASTER STATUS on older servers. */
  binlogStatus: string;
  /** The query of the executed GTID sets, as columns `source` and `replica`. */
  gtid: string;
  /** The replication thread that applies: `REPLICA` or, on older servers, `SLAVE`. */
  replica: "REPLICA" | "SLAVE";
}

/** Chooses the status statements the server understands. */
export function serverStatements(info: ServerInfo): ServerStatements {
  if (info.mariadb) {
    return {
      replicaStatus: atLeast(info, 10, 5, 1) ? "SHOW REPLICA STATUS" : "SHOW SLAVE STATUS",
      binlogStatus: atLeast(info, 10, 5, 2) ? "SHOW BINLOG STATUS" : "SHOW MASTER STATUS",
      gtid: "SELECT @@GLOBAL.gtid_binlog_pos AS source, @@GLOBAL.gtid_slave_pos AS replica",
      replica: atLeast(info, 10, 5, 1) ? "REPLICA" : "SLAVE",
    };
  }
  return {
    replicaStatus: atLeast(info, 8, 0, 22) ? "SHOW REPLICA STATUS" : "SHOW SLAVE STATUS",
    binlogStatus: atLeast(info, 8, 2, 0) ? "SHOW BINARY LOG STATUS" : "SHOW MASTER STATUS",
    gtid: "SELECT @@GLOBAL.gtid_executed AS source, @@GLOBAL.gtid_executed AS replica",
    replica: atLeast(info, 8, 0, 22) ? "REPLICA" : "SLAVE",
  };
}

/** Why a lock mode cannot be used on this server, or undefined when it can. */
export function lockModeProblem(mode: MysqlLockMode, info: ServerInfo): string | undefined {
  switch (mode) {
    case "flush":
      return undefined;
    case "percona":
      return info.backupLocks ? undefined : `--percona: ${info.version} has no backup locks ` +
        "(LOCK TABLES FOR BACKUP is Percona Server's)";
    case "instance":
      if (info.mariadb) {
        return `--mysql-lock-mode instance: LOCK INSTANCE FOR BACKUP is MySQL 8's; ` +
          `${info.version} is MariaDB (use --mysql-lock-mode stage)`;
      }
      return atLeast(info, 8, 0, 0)
        ? undefined
        : `--mysql-lock-mode instance: needs MySQL 8.0 or newer, server is ${info.version}`;
    case "replica":
      return undefined; // whether it is a replica is asked in lock()
    case "stage":
      if (!info.mariadb) {
        return `--mysql-lock-mode stage: BACKUP STAGE is MariaDB's; ${info.version} is MySQL ` +
          "(use --mysql-lock-mode instance)";
      }
      return atLeast(info, 10, 4, 1)
        ? undefined
        : `--mysql-lock-mode stage: needs MariaDB 10.4.1 or newer, server is ${info.version}`;
  }
}

/** The old tool's four-line --mysql-master-status-file. */
export function formatMasterStatusFile(
  coordinates: BinlogCoordinates,
  doDb = "",
  ignoreDb = "",
): string {
  return `master_log_file="${coordinates.file}"\n` +
    `master_log_pos="${coordinates.position}"\n` +
    `master_binlog_do_db="${doDb}"\n` +
    `master_binlog_ignore_db="${ignoreDb}"\n`;
}
