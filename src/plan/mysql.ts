/**
 * The MySQL/MariaDB plan: option files read, where and as whom to connect, the lock mode or the
 * stop and start commands, the status file, the bounded tries. Decided here; no connection.
 */
import { dirname } from "node:path";
import { UsageError } from "../util/errors.ts";
import { exists } from "../util/files.ts";
import { registerSecret } from "../util/log.ts";
import type { Options } from "../types/options.ts";
import { type MysqlSettingsDeps, resolveMysqlSettings } from "./mysql_option_files.ts";
import { type SocketTrustDeps, trustedLoopbackPort, trustedSocket } from "../host/socket_trust.ts";
import {
  describeMysqlSettings,
  type MysqlLockMode,
  type MysqlPlan,
  type MysqlSettings,
  mysqlWhere,
} from "../types/database_plans.ts";

const LOCK_MODES: readonly MysqlLockMode[] = ["flush", "percona", "instance", "stage", "replica"];

/** The options this module reads. */
export type MysqlOptions = Pick<
  Options,
  | "mysqlDefaultsFile"
  | "mysqlHost"
  | "mysqlPort"
  | "mysqlSocket"
  | "mysqlUsername"
  | "mysqlPassword"
  | "mysqlMasterStatusFile"
  | "mysqlLockMode"
  | "mysqlStop"
  | "mysqlStopCommand"
  | "mysqlStartCommand"
  | "percona"
  | "lockTimeout"
  | "lockTries"
  | "lockSleep"
>;

/**
 * The lock mode the options ask for; `--percona` means `percona`. Throws UsageError for an
 * unknown mode or a combination that cannot work.
 */
export function mysqlLockMode(options: MysqlOptions): MysqlLockMode {
  const mode = options.mysqlLockMode as MysqlLockMode;
  if (!LOCK_MODES.includes(mode)) {
    throw new UsageError(
      `--mysql-lock-mode: must be one of ${LOCK_MODES.join(", ")}, got '${options.mysqlLockMode}'`,
    );
  }
  if (options.percona && mode !== "flush" && mode !== "percona") {
    throw new UsageError(`--percona conflicts with --mysql-lock-mode ${mode}`);
  }
  const effective = options.percona ? "percona" : mode;
  if (
    options.mysqlMasterStatusFile !== undefined && !options.mysqlStop &&
    (effective === "percona" || effective === "instance")
  ) {
    throw new UsageError(
      `--mysql-master-status-file: the ${effective} lock mode does not stop commits, so it ` +
        "gives no accurate binary log position; use --mysql-lock-mode flush or stage",
    );
  }
  return effective;
}

/** Lookups {@linkcode planMysql} makes; tests replace them. */
export interface MysqlPlanDeps {
  /** For the option files (home, socket search, login name). */
  settings?: MysqlSettingsDeps;
  /** True when systemd runs this machine; default: /run/systemd/system exists. */
  systemdRunning?: () => boolean;
  /** True when a file exists; for finding units and init scripts. */
  fileExists?: (path: string) => boolean;
  /** The accounts and the process's user, for the socket's trust check. */
  socketTrust?: SocketTrustDeps;
}

const UNIT_DIRS = [
  "/etc/systemd/system",
  "/run/systemd/system",
  "/usr/lib/systemd/system",
  "/lib/systemd/system",
];
const UNIT_NAMES = ["mariadb", "mysql", "mysqld"];
const INIT_SCRIPTS = ["/etc/init.d/mariadb", "/etc/init.d/mysql", "/etc/init.d/mysqld"];

/**
 * The default stop and start commands: the server's systemd unit when systemd runs, else its
 * init script. Throws UsageError when neither is found.
 *
 * @example
 * ```ts
 * defaultStopStartCommands(true); // { stop: "systemctl stop mariadb", start: "systemctl start mariadb" }
 * ```
 */
export function defaultStopStartCommands(
  systemdRunning: boolean,
  fileExists: (path: string) => boolean = exists,
): { stop: string; start: string } {
  if (systemdRunning) {
    const unit = UNIT_NAMES.find((name) =>
      UNIT_DIRS.some((dir) => fileExists(`${dir}/${name}.service`))
    );
    if (unit) return { stop: `systemctl stop ${unit}`, start: `systemctl start ${unit}` };
  }
  const script = INIT_SCRIPTS.find(fileExists);
  if (script) return { stop: `${script} stop`, start: `${script} start` };
  throw new UsageError(
    "--mysql-stop: found no mariadb, mysql or mysqld systemd unit or init script; " +
      "give --mysql-stop-command and --mysql-start-command",
  );
}

function checkStatusFileDirectory(file: string | undefined): void {
  if (file === undefined) return;
  const dir = dirname(file);
  let ok = false;
  try {
    ok = Deno.statSync(dir).isDirectory;
  } catch {
    ok = false;
  }
  if (!ok) throw new UsageError(`--mysql-master-status-file: directory ${dir} does not exist`);
  // Root writes this file: never through a link someone put there (nor onto a device).
  let existing: Deno.FileInfo | undefined;
  try {
    existing = Deno.lstatSync(file);
  } catch { /* not there yet: fine */ }
  if (existing?.isSymlink) {
    throw new UsageError(
      `--mysql-master-status-file ${file} is a symbolic link; it is never written through one ` +
        "(remove it, or name another path)",
    );
  }
  if (existing && !existing.isFile) {
    throw new UsageError(`--mysql-master-status-file ${file} exists and is not a regular file`);
  }
}

/**
 * Decides the MySQL part from the options: lock mode, option files (`--mysql-defaults-file`,
 * else `~/.my.cnf`), connection settings, status-file directory, stop/start commands. Throws
 * UsageError on any bad input; reads files, never connects.
 *
 * @example
 * ```ts
 * import { defaultOptions } from "../types/options.ts";
 * const mysql = planMysql({ ...defaultOptions(), mysql: true }, { settings: { home: "/root" } });
 * console.log(describeMysqlPlan(mysql));
 * ```
 */
export function planMysql(options: Options, deps: MysqlPlanDeps = {}): MysqlPlan {
  registerSecret(options.mysqlPassword);
  const lockMode = mysqlLockMode(options);
  const settings = resolveMysqlSettings(options, deps.settings);
  registerSecret(settings.password);
  if (settings.socketPath !== undefined) {
    // Refused here, before anything is locked; checked again when connecting.
    trustedSocket({
      path: settings.socketPath,
      serverUsers: settings.serverUsers ?? ["mysql"],
      what: "MySQL",
      fix: "--mysql-socket",
    }, deps.socketTrust);
  } else {
    trustedLoopbackPort({
      host: settings.host,
      port: settings.port,
      serverUsers: settings.serverUsers ?? ["mysql"],
      what: "MySQL",
      fix: "--mysql-socket",
    }, deps.socketTrust);
  }
  checkStatusFileDirectory(options.mysqlMasterStatusFile);
  let commands: { stop: string; start: string } | undefined;
  if (options.mysqlStop) {
    const { mysqlStopCommand: stop, mysqlStartCommand: start } = options;
    if (stop !== undefined && start !== undefined) {
      commands = { stop, start };
    } else {
      const systemd = (deps.systemdRunning ?? (() => exists("/run/systemd/system")))();
      const found = defaultStopStartCommands(systemd, deps.fileExists);
      commands = { stop: stop ?? found.stop, start: start ?? found.start };
    }
  }
  return {
    kind: "mysql",
    lockMode,
    stop: options.mysqlStop,
    settings,
    commands,
    ...(lockMode === "replica" && !options.mysqlStop
      ? { replicaStartCommand: replicaStartCommand(settings, options.mysqlPassword) }
      : {}),
    statusFile: options.mysqlMasterStatusFile,
    lockTries: Math.max(1, options.lockTries),
    lockTimeoutMs: options.lockTimeout * 1000,
    lockSleepMs: options.lockSleep * 1000,
  };
}

/**
 * What the dry run says it would do with the database, in lines; never the password.
 *
 * @example
 * ```ts
 * import type { MysqlPlan } from "../types/database_plans.ts";
 * const plan = {} as MysqlPlan;
 * describeMysqlPlan(plan); // ["would flush and lock MySQL/MariaDB, lock mode flush ...", ...]
 * ```
 */
export function describeMysqlPlan(plan: MysqlPlan): string[] {
  const lines = [
    plan.stop
      ? "would stop MySQL/MariaDB and start it again (no connection in a dry run)"
      : plan.lockMode === "replica"
      ? "would stop the replication SQL thread of the MySQL/MariaDB replica and start it again " +
        "(no connection in a dry run)"
      : `would flush and lock MySQL/MariaDB, lock mode ${plan.lockMode} (no connection in a dry run)`,
    describeMysqlSettings(plan.settings),
  ];
  if (plan.commands) {
    lines.push(`MySQL stop command: ${plan.commands.stop}; start command: ${plan.commands.start}`);
  } else {
    lines.push(
      `MySQL lock: ${plan.lockTries} tries of ${plan.lockTimeoutMs / 1000} s, ` +
        `${plan.lockSleepMs / 1000} s apart`,
    );
  }
  if (plan.replicaStartCommand) {
    lines.push(`MySQL: if the tool dies, its watchdog runs: ${plan.replicaStartCommand}`);
  }
  if (plan.statusFile !== undefined) {
    lines.push(`MySQL: would write the binary log position to ${plan.statusFile}`);
  }
  return lines;
}

/**
 * The database part of the JSON dry-run plan; never the password.
 *
 * @example
 * ```ts
 * import type { MysqlPlan } from "../types/database_plans.ts";
 * const plan = {} as MysqlPlan;
 * JSON.stringify(mysqlPlanJson(plan));
 * ```
 */
export function mysqlPlanJson(plan: MysqlPlan): Record<string, unknown> {
  const s = plan.settings;
  return {
    kind: plan.kind,
    lockMode: plan.lockMode,
    stop: plan.stop,
    server: mysqlWhere(s),
    user: s.user,
    password: s.password === undefined ? "none" : "set",
    optionFiles: s.files,
    stopCommand: plan.commands?.stop ?? null,
    startCommand: plan.commands?.start ?? null,
    statusFile: plan.statusFile ?? null,
    lockTries: plan.lockTries,
    lockTimeoutSeconds: plan.lockTimeoutMs / 1000,
  };
}

const quote = (word: string) => `'${word.replaceAll("'", `'\\''`)}'`;

/**
 * The shell command that starts the replication SQL thread again, for the watchdog to run if
 * the tool dies while replication is stopped: the mysql client, connected as the tool is, with
 * the password from the option file the tool read (never on a command line: a password given
 * with --mysql-password is refused in this mode). `START REPLICA` where the server knows it,
 * else `START SLAVE`.
 *
 * @example
 * ```ts
 * replicaStartCommand({ host: "localhost", port: 3306, user: "root", socketPath: "/run/mysqld/mysqld.sock", files: ["/root/.my.cnf"] }, undefined);
 * // "mysql --defaults-file='/root/.my.cnf' --socket='/run/mysqld/mysqld.sock' ..."
 * ```
 */
export function replicaStartCommand(settings: MysqlSettings, cliPassword?: string): string {
  if (cliPassword !== undefined) {
    throw new UsageError(
      "--mysql-lock-mode replica: give the password in an option file (--mysql-defaults-file " +
        "or ~/.my.cnf), not with --mysql-password: if the tool dies, its watchdog restarts " +
        "replication with the mysql client, which must not get the password on its command line",
    );
  }
  const args = [
    ...(settings.files.length > 0 ? [`--defaults-file=${quote(settings.files[0])}`] : []),
    ...(settings.socketPath !== undefined
      ? [`--socket=${quote(settings.socketPath)}`]
      : [`--host=${quote(settings.host)}`, `--port=${settings.port}`]),
    `--user=${quote(settings.user)}`,
  ].join(" ");
  return `mysql ${args} -e 'START REPLICA SQL_THREAD' || mysql ${args} -e 'START SLAVE SQL_THREAD'`;
}
