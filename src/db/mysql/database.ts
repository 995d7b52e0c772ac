/** MySQL and MariaDB: flush and lock (or stop) with bounded tries, binary-log coordinates, status file. Server capabilities are in mysql_server.ts. */

import type { Connection, RowDataPacket } from "mysql2/promise";
import { dirname } from "node:path";
import { DatabaseError, UsageError } from "../../util/errors.ts";
import { exists } from "../../util/files.ts";
import type { BinlogCoordinates, Database, DatabaseFile } from "../../run/interfaces.ts";
import { LOCATIONS_SQL, mysqlLocations } from "./locations.ts";
import { type Logger, registerSecret } from "../../util/log.ts";
import {
  describeMysqlSettings,
  type MysqlSettings,
  type MysqlSettingsDeps,
  resolveMysqlSettings,
} from "./option_files.ts";
import {
  formatMasterStatusFile,
  lockModeProblem,
  type MysqlLockMode,
  mysqlLockMode,
  parseServerInfo,
  type ServerInfo,
  type ServerStatements,
  serverStatements,
} from "./server.ts";
import type { Options } from "../../cli/options.ts";

/** Coordinates and the replication filters, as the old tool's status file has them. */
interface Position {
  coordinates: BinlogCoordinates;
  doDb: string;
  ignoreDb: string;
}

/** The outcome of a shell command. */
export interface CommandResult {
  success: boolean;
  code: number;
}

/** What createMysqlDatabase needs from its surroundings; all but `log` have defaults. */
export interface MysqlDeps {
  log: Logger;
  /** Runs a shell command (stop/start); default `sh -c`, stdout sent to stderr. */
  runCommand?: (command: string, signal: AbortSignal) => Promise<CommandResult>;
  /** True when systemd runs this machine; default: /run/systemd/system exists. */
  systemdRunning?: () => boolean;
  /** True when a file exists; for finding units and init scripts. */
  fileExists?: (path: string) => boolean;
  /** Bound of one connection attempt. Default 10 s. */
  connectTimeoutMs?: number;
  /** Bound of the wait for the server to go away after the stop command. Default 60 s. */
  stopTimeoutMs?: number;
  /** Bound of the wait for the server to accept connections after the start. Default 60 s. */
  startTimeoutMs?: number;
  /** For resolving the option file (home, socket search). */
  settings?: MysqlSettingsDeps;
}

const ER_QUERY_INTERRUPTED = 1317;
const KILL_WAIT_MS = 5_000;
const CLOSE_WAIT_MS = 2_000;
const POLL_MS = 250;

interface SqlError {
  message: string;
  code?: string;
  errno?: number;
  sqlMessage?: string;
  fatal?: boolean;
}

function sqlErrorText(error: unknown): string {
  const e = error as SqlError;
  if (e?.sqlMessage) return e.sqlMessage;
  switch (e?.code) {
    case "ENOENT":
      return "no such socket";
    case "ECONNREFUSED":
      return "connection refused";
    case "ETIMEDOUT":
      return "connection timed out";
    case "EACCES":
      return "permission denied";
  }
  return e?.message ?? String(error);
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

async function runShell(command: string, signal: AbortSignal): Promise<CommandResult> {
  // stdout goes to stderr: our stdout carries only the snapshot ids.
  const child = new Deno.Command("sh", {
    args: ["-c", 'exec 1>&2; eval "$1"', "sh", command],
    stdin: "null",
    stdout: "inherit",
    stderr: "inherit",
    signal,
  }).spawn();
  const status = await child.status;
  return { success: status.success, code: status.code };
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
  });
}

async function settleWithin<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

type Settled = { done: true; ok: true } | { done: true; ok: false; error: unknown };

/**
 * Makes the MySQL/MariaDB implementation of Database. Nothing is read or connected until
 * prepare(); the driver (mysql2) is loaded only then.
 *
 * @example
 * ```ts
 * const db = createMysqlDatabase(options, { log });
 * await db.prepare();
 * const coordinates = await db.lock(signal);
 * try { // snapshot
 * } finally { await db.release(); }
 * ```
 */
export function createMysqlDatabase(options: Options, deps: MysqlDeps): Database {
  return new MysqlDatabase(options, deps);
}

class MysqlDatabase implements Database {
  readonly #options: Options;
  readonly #log: Logger;
  readonly #deps: MysqlDeps;
  #mode: MysqlLockMode = "flush";
  #settings?: MysqlSettings;
  #info?: ServerInfo;
  #statements?: ServerStatements;
  #main?: Connection;
  #killer?: Connection;
  #threadId?: number;
  #lockSent = false;
  #stageStarted = false;
  #statusFileWritten?: string;
  #stopCommands?: { stop: string; start: string };
  #stopAttempted = false;
  #released = false;
  /** The lock statement waiting on the server right now, if any. */
  #inFlight?: Promise<Settled>;

  constructor(options: Options, deps: MysqlDeps) {
    this.#options = options;
    this.#log = deps.log;
    this.#deps = deps;
  }

  // ---- prepare ----

  async prepare(): Promise<void> {
    const options = this.#options;
    registerSecret(options.mysqlPassword);
    this.#mode = mysqlLockMode(options);
    const settings = resolveMysqlSettings(options, this.#deps.settings);
    registerSecret(settings.password);
    this.#settings = settings;
    this.#log.debug(describeMysqlSettings(settings));
    this.#checkStatusFileDirectory();

    if (options.mysqlStop) {
      this.#stopCommands = this.#resolveStopCommands();
      this.#log.debug(
        `MySQL stop command: ${this.#stopCommands.stop}; start command: ${this.#stopCommands.start}`,
      );
      if (!await this.#accepting()) {
        throw new DatabaseError(`MySQL: --mysql-stop: no server is running at ${this.#where()}`);
      }
      return;
    }

    this.#main = await this.#connect("lock");
    const [row] = await this.#rows(
      this.#main,
      "SELECT VERSION() AS version, @@version_comment AS comment, CONNECTION_ID() AS id",
    );
    this.#threadId = Number(row.id);
    let backupLocks = false;
    if (this.#mode === "percona") {
      // Percona Server 5.6/5.7 say so in have_backup_locks; 8.x has the statement without it.
      try {
        const [locks] = await this.#rows(this.#main, "SELECT @@have_backup_locks AS v");
        backupLocks = String(locks.v).toUpperCase() === "YES";
      } catch {
        backupLocks = /percona/i.test(String(row.comment)) &&
          !/mariadb/i.test(String(row.version));
      }
    }
    const info = parseServerInfo(String(row.version), backupLocks);
    this.#info = info;
    this.#statements = serverStatements(info);
    this.#log.debug(
      `MySQL: server ${info.version}, connection id ${this.#threadId}, lock mode ${this.#mode}`,
    );
    const problem = lockModeProblem(this.#mode, info);
    if (problem) throw new DatabaseError(`MySQL: ${problem}`);
    // The statements run under the lock must not fail for want of privilege there.
    await this.#rows(this.#main, this.#statements.replicaStatus);
    await this.#rows(this.#main, this.#statements.binlogStatus);
    this.#killer = await this.#connect("kill");
  }

  #where(): string {
    const s = this.#settings!;
    return s.socketPath !== undefined ? `socket ${s.socketPath}` : `${s.host}:${s.port}`;
  }

  #checkStatusFileDirectory(): void {
    const file = this.#options.mysqlMasterStatusFile;
    if (file === undefined) return;
    const dir = dirname(file);
    let ok = false;
    try {
      ok = Deno.statSync(dir).isDirectory;
    } catch {
      ok = false;
    }
    if (!ok) {
      throw new UsageError(`--mysql-master-status-file: directory ${dir} does not exist`);
    }
  }

  #resolveStopCommands(): { stop: string; start: string } {
    const { mysqlStopCommand: stop, mysqlStartCommand: start } = this.#options;
    if (stop !== undefined && start !== undefined) return { stop, start };
    const systemd = (this.#deps.systemdRunning ?? (() => exists("/run/systemd/system")))();
    const defaults = defaultStopStartCommands(systemd, this.#deps.fileExists);
    return { stop: stop ?? defaults.stop, start: start ?? defaults.start };
  }

  async #connect(purpose: string): Promise<Connection> {
    const settings = this.#settings!;
    const { default: mysql } = await import("mysql2/promise");
    const connection = mysql.createConnection({
      ...(settings.socketPath !== undefined
        ? { socketPath: settings.socketPath }
        : { host: settings.host, port: settings.port }),
      user: settings.user,
      password: settings.password,
      connectTimeout: this.#deps.connectTimeoutMs ?? 10_000,
      multipleStatements: false,
    });
    let conn: Connection;
    try {
      conn = await connection;
    } catch (error) {
      throw new DatabaseError(
        `MySQL: cannot connect to ${this.#where()} as ${settings.user}: ${sqlErrorText(error)}`,
        { cause: error },
      );
    }
    // An unhandled 'error' event would end the process; errors surface through the queries.
    conn.on("error", (error: unknown) => {
      this.#log.debug(`MySQL ${purpose} connection: ${sqlErrorText(error)}`);
    });
    return conn;
  }

  async #rows(conn: Connection, sql: string): Promise<RowDataPacket[]> {
    try {
      const [rows] = await conn.query<RowDataPacket[]>(sql);
      return Array.isArray(rows) ? rows : [];
    } catch (error) {
      throw new DatabaseError(`MySQL: ${sql}: ${sqlErrorText(error)}`, { cause: error });
    }
  }

  /** Where the server keeps data, redo log, binary and relay logs (no privilege needed). */
  async files(): Promise<DatabaseFile[]> {
    if (!this.#main) return []; // --mysql-stop: no connection is kept
    return mysqlLocations(await this.#rows(this.#main, LOCATIONS_SQL));
  }

  // ---- lock ----

  async lock(signal: AbortSignal): Promise<BinlogCoordinates | undefined> {
    if (this.#options.mysqlStop) {
      try {
        return await this.#stop(signal);
      } catch (error) {
        // Start it again now: a failed stop must not leave the server down.
        await this.release().catch((releaseError) =>
          this.#log.error(`MySQL: start after failed stop: ${releaseError.message}`)
        );
        throw error;
      }
    }
    if (!this.#main || !this.#statements) throw new DatabaseError("MySQL: lock() before prepare()");
    try {
      await this.#setLogBinOff();
      switch (this.#mode) {
        case "flush":
          await this.#retry("FLUSH LOCAL TABLES", "MySQL flush", signal);
          this.#lockSent = true;
          await this.#retry("FLUSH LOCAL TABLES WITH READ LOCK", "MySQL flush & lock", signal);
          break;
        case "percona":
          this.#lockSent = true;
          await this.#retry("LOCK TABLES FOR BACKUP", "Percona backup lock", signal);
          break;
        case "instance":
          this.#lockSent = true;
          await this.#retry("LOCK INSTANCE FOR BACKUP", "MySQL instance backup lock", signal);
          break;
        case "stage":
          this.#stageStarted = true;
          await this.#retry("BACKUP STAGE START", "MariaDB backup stage start", signal);
          await this.#retry(
            "BACKUP STAGE BLOCK_COMMIT",
            "MariaDB backup stage block_commit",
            signal,
          );
          break;
      }
      this.#log.debug(`MySQL: locked (${this.#mode})`);
      // Backup locks that let commits through give no position matching the data.
      if (this.#mode === "percona" || this.#mode === "instance") return undefined;
      const position = await this.#position();
      if (position) {
        this.#log.debug(
          `MySQL: ${position.coordinates.from} position ${position.coordinates.file}:` +
            `${position.coordinates.position}` +
            (position.coordinates.gtidExecuted ? ` gtid ${position.coordinates.gtidExecuted}` : ""),
        );
      }
      await this.#writeStatusFile(position);
      return position?.coordinates;
    } catch (error) {
      // Nothing stays locked when locking failed; release() afterwards is a no-op.
      await this.release().catch((releaseError) =>
        this.#log.warn(`MySQL: release after failed lock: ${releaseError.message}`)
      );
      throw error;
    }
  }

  async #setLogBinOff(): Promise<void> {
    // FLUSH LOCAL is never logged; this also keeps anything else of ours off the replicas.
    try {
      await this.#main!.query("SET SESSION sql_log_bin = 0");
    } catch (error) {
      this.#log.debug(`MySQL: SET sql_log_bin = 0 not allowed: ${sqlErrorText(error)}`);
    }
  }

  async #retry(sql: string, what: string, signal: AbortSignal): Promise<void> {
    const tries = Math.max(1, this.#options.lockTries);
    const timeoutMs = this.#options.lockTimeout * 1000;
    for (let attempt = 1; attempt <= tries; attempt++) {
      if (signal.aborted) throw new DatabaseError(`${what}: interrupted`);
      this.#log.debug(`${what} (try ${attempt} of ${tries}): ${sql}`);
      if (await this.#bounded(sql, what, timeoutMs, signal)) return;
      this.#log.warn(`MySQL timeout at ${this.#options.lockTimeout} sec`);
      if (attempt < tries) {
        this.#log.debug(`Trying again in ${this.#options.lockSleep} seconds`);
        await sleep(this.#options.lockSleep * 1000, signal);
      }
    }
    throw new DatabaseError(
      `${what}: not granted in ${tries} tries of ${this.#options.lockTimeout} s ` +
        "(a long-running query or another session's lock is in the way)",
    );
  }

  /** Runs one try of `sql`; true when it succeeded, false when it timed out and was killed. */
  async #bounded(
    sql: string,
    what: string,
    timeoutMs: number,
    signal: AbortSignal,
  ): Promise<boolean> {
    const main = this.#main!;
    const pending: Promise<Settled> = main.query(sql).then(
      () => ({ done: true, ok: true }),
      (error: unknown) => ({ done: true, ok: false, error }),
    );
    this.#inFlight = pending;
    pending.finally(() => {
      if (this.#inFlight === pending) this.#inFlight = undefined;
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    let onAbort: (() => void) | undefined;
    const stopper = new Promise<"timeout" | "abort">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), timeoutMs);
      onAbort = () => resolve("abort");
      signal.addEventListener("abort", onAbort, { once: true });
    });
    const first = await Promise.race([pending, stopper]);
    clearTimeout(timer);
    signal.removeEventListener("abort", onAbort!);
    if (first !== "timeout" && first !== "abort") {
      if (first.ok) return true;
      if ((first.error as SqlError).errno === ER_QUERY_INTERRUPTED) {
        // Killed by release() (a signal) or by an administrator.
        throw new DatabaseError(`${what}: interrupted`, { cause: first.error });
      }
      throw new DatabaseError(`${what}: ${sql}: ${sqlErrorText(first.error)}`, {
        cause: first.error,
      });
    }
    await this.#killOurQuery();
    const settled = await settleWithin(pending, KILL_WAIT_MS);
    if (settled === undefined) {
      // The statement outlived KILL QUERY: dropping the connection is all that is left.
      main.destroy();
      this.#main = undefined;
      throw new DatabaseError(`${what}: ${sql} did not stop after KILL QUERY; disconnected`);
    }
    if (first === "abort") throw new DatabaseError(`${what}: interrupted`);
    if (settled.ok) return true; // granted just as it was killed
    if ((settled.error as SqlError).errno === ER_QUERY_INTERRUPTED) return false;
    throw new DatabaseError(`${what}: ${sql}: ${sqlErrorText(settled.error)}`, {
      cause: settled.error,
    });
  }

  /** Kills the statement running on our lock connection, and nothing else. */
  async #killOurQuery(): Promise<void> {
    const id = this.#threadId!;
    const statement = `KILL QUERY ${Number(id)}`;
    this.#log.debug(`MySQL: ${statement} (our own waiting statement)`);
    try {
      if (!this.#killer) this.#killer = await this.#connect("kill");
      await this.#killer.query(statement);
    } catch (error) {
      this.#log.warn(`MySQL: ${statement} failed: ${sqlErrorText(error)}`);
      this.#killer?.destroy();
      this.#killer = undefined;
    }
  }

  async #position(): Promise<Position | undefined> {
    const statements = this.#statements!;
    const main = this.#main!;
    const [replica] = await this.#rows(main, statements.replicaStatus);
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
      const [source] = await this.#rows(main, statements.binlogStatus);
      if (!source?.File) return undefined;
      position = {
        coordinates: {
          file: String(source.File),
          position: Number(source.Position),
          from: "source",
        },
        doDb: String(source.Binlog_Do_DB ?? ""),
        ignoreDb: String(source.Binlog_Ignore_DB ?? ""),
      };
    }
    try {
      const [gtid] = await this.#rows(main, statements.gtid);
      const value = position.coordinates.from === "replica" ? gtid?.replica : gtid?.source;
      if (typeof value === "string" && value.trim() !== "") {
        position.coordinates.gtidExecuted = value.trim().replace(/\s+/g, "");
      }
    } catch (error) {
      this.#log.debug(`MySQL: no GTID: ${(error as Error).message}`);
    }
    return position;
  }

  async #writeStatusFile(position: Position | undefined): Promise<void> {
    const file = this.#options.mysqlMasterStatusFile;
    if (file === undefined) return;
    if (!position) {
      this.#log.warn(`MySQL: no binary log coordinates (binary log off?); ${file} not written`);
      return;
    }
    this.#log.debug(`MySQL: writing MASTER STATUS to ${file}`);
    try {
      this.#statusFileWritten = file;
      await Deno.writeTextFile(
        file,
        formatMasterStatusFile(position.coordinates, position.doDb, position.ignoreDb),
      );
    } catch (error) {
      throw new DatabaseError(
        `--mysql-master-status-file: cannot write ${file}: ${(error as Error).message}`,
        { cause: error },
      );
    }
  }

  // ---- release ----

  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    const problems: string[] = [];

    if (this.#statusFileWritten !== undefined) {
      const file = this.#statusFileWritten;
      this.#log.debug(`MySQL: removing master status file ${file}`);
      try {
        await Deno.remove(file);
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) {
          problems.push(`cannot remove ${file}: ${(error as Error).message}`);
        }
      }
    }

    if (this.#main && this.#inFlight) {
      // release() during a waiting lock statement (a signal): stop the statement first.
      await this.#killOurQuery();
      if (await settleWithin(this.#inFlight, KILL_WAIT_MS) === undefined) {
        this.#main.destroy();
        this.#main = undefined;
      }
    }
    if (this.#main) {
      const unlock = this.#stageStarted
        ? "BACKUP STAGE END"
        : this.#mode === "instance"
        ? "UNLOCK INSTANCE"
        : "UNLOCK TABLES";
      if (this.#lockSent || this.#stageStarted) {
        this.#log.debug(`MySQL: ${unlock}`);
        try {
          const done = await settleWithin(
            this.#main.query(unlock).then(() => true),
            KILL_WAIT_MS,
          );
          if (!done) throw new Error("no answer");
        } catch (error) {
          // Closing the connection below releases the lock all the same.
          this.#log.warn(`MySQL: ${unlock} failed (${sqlErrorText(error)}); disconnecting`);
          this.#main.destroy();
          this.#main = undefined;
        }
      }
    }
    for (const conn of [this.#main, this.#killer]) {
      if (!conn) continue;
      try {
        const closed = await settleWithin(conn.end().then(() => true), CLOSE_WAIT_MS);
        if (!closed) conn.destroy();
      } catch {
        conn.destroy();
      }
    }
    this.#main = undefined;
    this.#killer = undefined;
    if (this.#lockSent || this.#stageStarted) this.#log.debug("MySQL: unlocked and disconnected");

    if (this.#stopAttempted) {
      try {
        await this.#start();
      } catch (error) {
        problems.push((error as Error).message);
      }
    }
    if (problems.length > 0) throw new DatabaseError(`MySQL release: ${problems.join("; ")}`);
  }

  // ---- stop and start ----

  /** True when the server answers a connection attempt (even with "access denied"). */
  async #accepting(): Promise<boolean> {
    const settings = this.#settings!;
    const { default: mysql } = await import("mysql2/promise");
    try {
      const conn = await mysql.createConnection({
        ...(settings.socketPath !== undefined
          ? { socketPath: settings.socketPath }
          : { host: settings.host, port: settings.port }),
        user: settings.user,
        password: settings.password,
        connectTimeout: Math.min(this.#deps.connectTimeoutMs ?? 10_000, 5_000),
      });
      conn.on("error", () => {});
      await conn.end().catch(() => conn.destroy());
      return true;
    } catch (error) {
      // A server error (access denied, too many connections) proves a server answered.
      return typeof (error as SqlError).errno === "number" && (error as SqlError).errno! > 1000 &&
        (error as SqlError).code !== undefined && (error as SqlError).code!.startsWith("ER_");
    }
  }

  async #waitFor(accepting: boolean, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (true) {
      if (await this.#accepting() === accepting) return true;
      if (Date.now() >= deadline) return false;
      await sleep(POLL_MS);
    }
  }

  async #command(command: string, signal: AbortSignal): Promise<CommandResult> {
    this.#log.debug(`MySQL: ${command}`);
    const run = this.#deps.runCommand ?? runShell;
    try {
      return await run(command, signal);
    } catch (error) {
      throw new DatabaseError(`MySQL: ${command}: ${(error as Error).message}`, { cause: error });
    }
  }

  async #stop(signal: AbortSignal): Promise<undefined> {
    const { stop } = this.#stopCommands!;
    const timeoutMs = this.#deps.stopTimeoutMs ?? 60_000;
    // From here on release() starts the server again, whatever happens.
    this.#stopAttempted = true;
    const bounded = AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]);
    const result = await this.#command(stop, bounded);
    if (signal.aborted) throw new DatabaseError("MySQL stop: interrupted");
    if (!result.success) {
      throw new DatabaseError(`MySQL: stop command failed (exit ${result.code}): ${stop}`);
    }
    if (!await this.#waitFor(false, timeoutMs)) {
      throw new DatabaseError(
        `MySQL: server at ${this.#where()} still accepts connections ${timeoutMs / 1000} s ` +
          `after the stop command: ${stop}`,
      );
    }
    this.#log.debug("MySQL: server stopped");
    return undefined;
  }

  async #start(): Promise<void> {
    const { start } = this.#stopCommands!;
    const timeoutMs = this.#deps.startTimeoutMs ?? 60_000;
    if (await this.#accepting()) {
      this.#log.debug("MySQL: server already accepts connections; not starting it");
      return;
    }
    const result = await this.#command(start, AbortSignal.timeout(timeoutMs));
    if (!result.success) {
      throw new DatabaseError(`MySQL: start command failed (exit ${result.code}): ${start}`);
    }
    if (!await this.#waitFor(true, timeoutMs)) {
      throw new DatabaseError(
        `MySQL: server at ${this.#where()} does not accept connections ${timeoutMs / 1000} s ` +
          `after the start command: ${start}`,
      );
    }
    this.#log.debug("MySQL: server started and accepts connections");
  }
}
