/** The throwaway database server of a drill, one shape for MySQL/MariaDB and PostgreSQL: its files, command line, readiness, checks and environment. */
import { join } from "node:path";
import {
  checkMysqlPosition,
  type DrillCheck,
  findMysqlServer,
  mysqlServerCommand,
  mysqlStartFailure,
  mysqlWorkFiles,
} from "../db/mysql/drill.ts";
import { accepting } from "../db/mysql/connection.ts";
import {
  checkPostgresPosition,
  DRILL_PG_PORT,
  findPostgresServer,
  postgresAccepting,
  postgresServerCommand,
  postgresStartFailure,
  writePostgresFiles,
} from "../db/postgresql/drill.ts";
import { readAccounts } from "../host/socket_trust.ts";
import type { DatabaseTag } from "../types/restore_tags.ts";
import type { Logger } from "../util/log.ts";

/** A server started on the restored files, as the drill drives it. */
export interface ThrowawayServer {
  /** Writes its own files into the work directory. */
  prepare(workDir: string): Promise<void>;
  /** Its command line (run inside the namespace, after the mounts). */
  command(workDir: string): string[];
  /** True once it accepts connections; `pid` is its process. */
  ready(workDir: string, pid: number): Promise<boolean>;
  /** The likely cause of a failed start, from its logs. */
  failure(workDir: string): Promise<string>;
  /** The position checks. */
  check(workDir: string, pid: number, log: Logger): Promise<DrillCheck[]>;
  /** The environment of --drill-check-command: where the server is. */
  env(workDir: string, pid: number): Record<string, string>;
}

async function readTail(path: string): Promise<string> {
  try {
    return (await Deno.readTextFile(path)).split("\n").slice(-40).join("\n");
  } catch {
    return "";
  }
}

/** The name of the user a process runs as (the PostgreSQL cluster's owner, its superuser). */
function userOf(pid: number): string {
  try {
    const uid = /^Uid:\s+(\d+)/m.exec(Deno.readTextFileSync(`/proc/${pid}/status`))?.[1];
    return readAccounts().find((a) => String(a.uid) === uid)?.name ?? "postgres";
  } catch {
    return "postgres";
  }
}

/**
 * The installed server for the tag's engine and version, or the reason there is none.
 *
 * @example
 * ```ts
 * const found = await findServer({ engine: "mariadb", version: "10.11.6" });
 * if (!("problem" in found)) console.log(found.path);
 * ```
 */
export function findServer(
  tag: DatabaseTag,
): Promise<{ path: string; version: string } | { problem: string }> {
  return tag.engine === "postgresql" ? findPostgresServer(tag) : findMysqlServer(tag);
}

/**
 * The throwaway server of the tag's engine, run from `serverPath`.
 *
 * @example
 * ```ts
 * const server = throwawayServer(
 *   { engine: "mariadb", version: "10.11.6", dataDir: "/d" },
 *   "/usr/sbin/mariadbd",
 *   ["/d"],
 * );
 * server.command("/tmp/ecs-drill-x");
 * ```
 */
export function throwawayServer(
  tag: DatabaseTag,
  serverPath: string,
  mountPoints: readonly string[],
): ThrowawayServer {
  if (tag.engine === "postgresql") {
    return {
      prepare: writePostgresFiles,
      command: (workDir) => postgresServerCommand(serverPath, tag, workDir, mountPoints),
      ready: (workDir, pid) => postgresAccepting(workDir, userOf(pid)),
      failure: async (workDir) =>
        postgresStartFailure(await readTail(join(workDir, "namespace.log"))),
      check: (workDir, pid) => checkPostgresPosition(workDir, userOf(pid), tag),
      env: (workDir, pid) => ({
        PGHOST: workDir,
        PGPORT: String(DRILL_PG_PORT),
        PGUSER: userOf(pid),
        PGDATABASE: "postgres",
      }),
    };
  }
  const socket = (workDir: string) => mysqlWorkFiles(workDir).socket;
  return {
    prepare: () => Promise.resolve(),
    command: (workDir) => mysqlServerCommand(serverPath, tag, workDir),
    ready: (workDir) =>
      accepting(
        { host: "localhost", port: 0, socketPath: socket(workDir), user: "root", files: [] },
        2_000,
      ),
    failure: async (workDir) =>
      mysqlStartFailure(
        await readTail(mysqlWorkFiles(workDir).errorLog) ||
          await readTail(join(workDir, "namespace.log")),
        tag,
      ),
    check: (workDir, _pid, log) => checkMysqlPosition(socket(workDir), tag, log),
    env: (workDir) => ({ MYSQL_UNIX_PORT: socket(workDir) }),
  };
}
