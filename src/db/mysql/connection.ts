/** Connections to MySQL/MariaDB: the only importer of mysql2 (loaded on first use), and its errors in words. */
import type {
  Connection as Mysql2Connection,
  RowDataPacket as Mysql2RowDataPacket,
} from "mysql2/promise";
import { DatabaseError, socketErrorText } from "../../util/errors.ts";
import type { Logger } from "../../util/log.ts";
import { trustedLoopbackPort, trustedSocket } from "../../host/socket_trust.ts";
import { type MysqlSettings, mysqlWhere } from "../../types/database_plans.ts";

/** A connection of mysql2's promise API. */
export type Connection = Mysql2Connection;

/** One row of a result, by column name (mysql2's). */
export type RowDataPacket = Mysql2RowDataPacket;

/** The fields of a mysql2 error this code reads. */
export interface SqlError {
  /** The driver's message. */
  message: string;
  /** "ER_..." from the server, or a system error code ("ENOENT"). */
  code?: string;
  /** The server's error number. */
  errno?: number;
  /** The server's own message, when the server answered. */
  sqlMessage?: string;
  /** True when the connection is unusable afterwards. */
  fatal?: boolean;
}

/** The server's "Query execution was interrupted" (KILL QUERY). */
export const ER_QUERY_INTERRUPTED = 1317;

/**
 * A driver or server error in words.
 *
 * @example
 * ```ts
 * sqlErrorText({ message: "connect ENOENT", code: "ENOENT" }); // "no such socket"
 * ```
 */
export function sqlErrorText(error: unknown): string {
  const e = error as SqlError;
  if (e?.sqlMessage) return e.sqlMessage;
  return socketErrorText(e) ?? e?.message ?? String(error);
}

/**
 * Where mysql2 connects: the socket's real path, checked again right before the password is
 * sent (the plan checked it too; a link or a socket swapped since is caught here), or TCP.
 */
function target(settings: MysqlSettings) {
  return settings.socketPath !== undefined
    ? {
      socketPath: trustedSocket({
        path: settings.socketPath,
        serverUsers: settings.serverUsers ?? ["mysql"],
        what: "MySQL",
        fix: "--mysql-socket",
      }),
    }
    : tcpTarget(settings);
}

/** TCP: to a loopback port only when the process listening there is the server's. */
function tcpTarget(settings: MysqlSettings) {
  trustedLoopbackPort({
    host: settings.host,
    port: settings.port,
    serverUsers: settings.serverUsers ?? ["mysql"],
    what: "MySQL",
    fix: "--mysql-socket",
  });
  return { host: settings.host, port: settings.port };
}

/**
 * Connects; a failure is a DatabaseError naming the server and the user (never the password).
 *
 * @example
 * ```ts
 * import type { MysqlPlan } from "../../types/database_plans.ts";
 * import type { Logger } from "../../util/log.ts";
 * const plan = {} as MysqlPlan, log = {} as Logger;
 * const conn = await connect(plan.settings, { purpose: "lock", log, timeoutMs: 10_000 });
 * ```
 */
export async function connect(
  settings: MysqlSettings,
  options: { purpose: string; log: Logger; timeoutMs: number },
): Promise<Connection> {
  const { default: mysql } = await import("mysql2/promise");
  const where = target(settings);
  let conn: Connection;
  try {
    conn = await mysql.createConnection({
      ...where,
      user: settings.user,
      password: settings.password,
      connectTimeout: options.timeoutMs,
      multipleStatements: false,
    });
  } catch (error) {
    throw new DatabaseError(
      `MySQL: cannot connect to ${mysqlWhere(settings)} as ${settings.user}: ${
        sqlErrorText(error)
      }`,
      { cause: error },
    );
  }
  // An unhandled 'error' event would end the process; errors surface through the queries.
  conn.on("error", (error: unknown) => {
    options.log.debug(`MySQL ${options.purpose} connection: ${sqlErrorText(error)}`);
  });
  return conn;
}

/**
 * The rows of a statement; a failure is a DatabaseError quoting the statement.
 *
 * @example
 * ```ts
 * const conn = {} as Connection;
 * const [row] = await rows(conn, "SELECT VERSION() AS version");
 * ```
 */
export async function rows(conn: Connection, sql: string): Promise<RowDataPacket[]> {
  try {
    const [result] = await conn.query<RowDataPacket[]>(sql);
    return Array.isArray(result) ? result : [];
  } catch (error) {
    throw new DatabaseError(`MySQL: ${sql}: ${sqlErrorText(error)}`, { cause: error });
  }
}

/**
 * True when the server answers a connection attempt (even with "access denied").
 *
 * @example
 * ```ts
 * import type { MysqlPlan } from "../../types/database_plans.ts";
 * const plan = {} as MysqlPlan;
 * if (!await accepting(plan.settings, 5_000)) throw new Error("no server");
 * ```
 */
export async function accepting(settings: MysqlSettings, timeoutMs: number): Promise<boolean> {
  const { default: mysql } = await import("mysql2/promise");
  try {
    const conn = await mysql.createConnection({
      ...target(settings),
      user: settings.user,
      password: settings.password,
      connectTimeout: timeoutMs,
    });
    conn.on("error", () => {});
    await conn.end().catch(() => conn.destroy());
    return true;
  } catch (error) {
    // A server error (access denied, too many connections) proves a server answered.
    const e = error as SqlError;
    return typeof e.errno === "number" && e.errno > 1000 && e.code !== undefined &&
      e.code.startsWith("ER_");
  }
}
