/** The database plans (MySQL/MariaDB, PostgreSQL) that plan/ decides and db/ carries out: values only, no connection. */

import type { StartProbe } from "./side_effects.ts";

/** How the database is held still while the snapshots are initiated. */
export type MysqlLockMode = "flush" | "percona" | "instance" | "stage" | "replica";

/** Where and as whom to connect. */
export interface MysqlSettings {
  /** Host name; "localhost" means the Unix socket. */
  host: string;
  /** TCP port (unused with a socket). */
  port: number;
  /** Unix socket path; set exactly when connecting through a socket. */
  socketPath?: string;
  /** User name. */
  user: string;
  /** Password, if any; registered as a secret, never printed. */
  password?: string;
  /** Option files read, in order (for --debug). */
  files: string[];
  /** Where the socket path came from (for --debug). */
  socketSource?: "option" | "file" | "server configuration" | "search";
  /** The OS users that run the server and may own its socket (besides root); default ["mysql"]. */
  serverUsers?: string[];
}

/** Everything the MySQL part needs, decided; `settings.password` is a registered secret. */
export interface MysqlPlan {
  /** The only database kind so far. */
  kind: "mysql";
  /** The lock mode (unused with `stop`). */
  lockMode: MysqlLockMode;
  /** --mysql-stop: stop the server instead of locking it. */
  stop: boolean;
  /** Where and as whom to connect, and which option files were read. */
  settings: MysqlSettings;
  /**
   * With `stop`: the commands, given or found (systemd unit or init script). With the `replica`
   * lock mode: `start` restarts the replication SQL thread (the watchdog runs it if the tool dies).
   */
  commands?: { stop: string; start: string };
  /**
   * The `replica` lock mode: the shell command that starts the replication SQL thread again,
   * run by the watchdog if the tool dies while replication is stopped.
   */
  replicaStartCommand?: string;
  /** --mysql-master-status-file, its directory checked. */
  statusFile?: string;
  /** Tries of each lock statement, each bounded by `lockTimeoutMs`, `lockSleepMs` apart. */
  lockTries: number;
  /** --lock-timeout, in milliseconds. */
  lockTimeoutMs: number;
  /** --lock-sleep, in milliseconds. */
  lockSleepMs: number;
}

/**
 * Where the server is: "socket PATH" or "HOST:PORT".
 *
 * @example
 * ```ts
 * const plan = {} as MysqlPlan;
 * mysqlWhere(plan.settings); // "socket /run/mysqld/mysqld.sock"
 * ```
 */
export function mysqlWhere(settings: MysqlSettings): string {
  return settings.socketPath !== undefined
    ? `socket ${settings.socketPath}`
    : `${settings.host}:${settings.port}`;
}

/**
 * With --mysql-stop: what the watchdog checks before it runs the start command: the server's
 * address, and how long it must answer throughout to count as never stopped (as long as a stop
 * command and its confirmation may take). Undefined without --mysql-stop.
 *
 * @example
 * ```ts
 * const plan = {} as MysqlPlan;
 * mysqlStartProbe(plan)?.address; // { socketPath: "/run/mysqld/mysqld.sock" }
 * ```
 */
export function mysqlStartProbe(plan: MysqlPlan): StartProbe | undefined {
  if (!plan.stop) return undefined;
  const { socketPath, host, port } = plan.settings;
  return {
    address: socketPath !== undefined ? { socketPath } : { host, port },
    waitMs: 75_000,
  };
}

/** A one-line description of the settings for --debug, without the password. */
export function describeMysqlSettings(settings: MysqlSettings): string {
  const where = settings.socketPath !== undefined
    ? `socket ${settings.socketPath} (${settings.socketSource})`
    : `${settings.host}:${settings.port}`;
  const files = settings.files.length > 0 ? settings.files.join(", ") : "no option file";
  return `MySQL: ${where} as ${settings.user}, ` +
    `${settings.password === undefined ? "no password" : "password set"}; ${files}`;
}

/** Everything decided about the PostgreSQL connection; nothing connected. */
export interface PostgresqlSettings {
  /** A host name, or the directory of the Unix socket (an absolute path). */
  host: string;
  /** The TCP port; with a socket, it names the socket file `.s.PGSQL.<port>`. */
  port: number;
  /** The role to connect as. */
  user: string;
  /** The database to connect to. */
  database: string;
  /** Never printed; registered as a secret by the planner. */
  password?: string;
  /** Where each setting came from (an option, a variable, a service, a file, a default). */
  sources: Record<"host" | "port" | "user" | "database" | "password", string>;
  /** The OS users that run the server and may own its socket (besides root); default ["postgres"]. */
  serverUsers?: string[];
}

/** Everything the PostgreSQL part needs, decided; `settings.password` is a registered secret. */
export interface PostgresqlPlan {
  /** Tells it from a MySQL plan. */
  kind: "postgresql";
  /** Where and as whom to connect, and where each setting came from. */
  settings: PostgresqlSettings;
  /** The bound of the CHECKPOINT (the server's statement_timeout). */
  checkpointTimeoutMs: number;
}
