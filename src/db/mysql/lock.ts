/** Holding MySQL/MariaDB by a lock: flush and lock (or a backup lock/stage) with bounded tries, killing only our own waiting statement. */
import { DatabaseError } from "../../util/errors.ts";
import type {
  BinlogCoordinates,
  Database,
  DatabaseFacts,
  DatabaseFile,
} from "../../types/side_effects.ts";
import { LOCATIONS_SQL, mysqlFacts, mysqlLocations } from "./locations.ts";
import type { Logger } from "../../util/log.ts";
import { abortable, deadline, delay, within } from "../../util/deadline.ts";
import { describeMysqlSettings, type MysqlPlan } from "../../types/database_plans.ts";
import {
  connect,
  type Connection,
  ER_QUERY_INTERRUPTED,
  rows,
  type SqlError,
  sqlErrorText,
} from "./connection.ts";
import { readPosition, removeStatusFile, writeStatusFile } from "./positions.ts";
import {
  checkReplica,
  sqlThreadRunning,
  startSqlThread,
  stopSqlThread,
  waitSqlThreadStopped,
} from "./replica.ts";
import {
  lockModeProblem,
  parseServerInfo,
  type ServerStatements,
  serverStatements,
} from "./server.ts";

const KILL_WAIT_MS = 5_000;
const CLOSE_WAIT_MS = 2_000;
/** Bound of what follows the grant under the lock: the position, the status file. */
const AFTER_GRANT_MS = 30_000;
/** Bound of the check, before the thaw, that the lock's connection still answers. */
const STILL_HELD_MS = 3_000;

/** Told each step's bound before the step, for the watchdog (see Database.lock). */
export type Guard = (boundMs: number) => Promise<void>;
const unguarded: Guard = () => Promise.resolve();

type Settled = { ok: true } | { ok: false; error: unknown };

/** What {@linkcode MysqlLock} needs besides its plan. */
export interface MysqlLockDeps {
  /** Where --debug lines and warnings go. */
  log: Logger;
  /** Bound of one connection attempt. Default 10 s. */
  connectTimeoutMs?: number;
}

/**
 * The Database of the lock modes: prepare() connects and checks the server; lock() flushes and
 * locks with bounded tries and returns the coordinates; release() unlocks and disconnects.
 *
 * @example
 * ```ts
 * import type { MysqlPlan } from "../../types/database_plans.ts";
 * import type { Logger } from "../../util/log.ts";
 * const plan = {} as MysqlPlan, log = {} as Logger, signal = {} as AbortSignal;
 * const db = new MysqlLock(plan, { log });
 * await db.prepare();
 * try { await db.lock(signal); } finally { await db.release(); }
 * ```
 */
export class MysqlLock implements Database {
  readonly #plan: MysqlPlan;
  readonly #log: Logger;
  readonly #connectTimeoutMs: number;
  #statements?: ServerStatements;
  #main?: Connection;
  #killer?: Connection;
  #threadId?: number;
  #lockSent = false;
  #stageStarted = false;
  /** The replica lock mode stopped (or asked to stop) the SQL thread: release starts it. */
  #replicaStopped = false;
  #statusFileWritten?: string;
  #released = false;
  /** stillHeld() found the lock's connection gone, and said so: the release does not again. */
  #lostReported = false;
  /** The lock statement waiting on the server right now, if any. */
  #inFlight?: Promise<Settled>;

  /** False in the replica mode: clients may still write; only replication is stopped. */
  get holdsWrites(): boolean {
    return this.#plan.lockMode !== "replica";
  }

  /** Nothing is connected until prepare(). */
  constructor(plan: MysqlPlan, deps: MysqlLockDeps) {
    this.#plan = plan;
    this.#log = deps.log;
    this.#connectTimeoutMs = deps.connectTimeoutMs ?? 10_000;
  }

  #connect(purpose: string): Promise<Connection> {
    return connect(this.#plan.settings, {
      purpose,
      log: this.#log,
      timeoutMs: this.#connectTimeoutMs,
    });
  }

  /** Connects, learns the server, checks the lock mode and the privileges used under the lock. */
  async prepare(): Promise<void> {
    const mode = this.#plan.lockMode;
    this.#log.debug(describeMysqlSettings(this.#plan.settings));
    this.#main = await this.#connect("lock");
    const [row] = await rows(
      this.#main,
      "SELECT VERSION() AS version, @@version_comment AS comment, CONNECTION_ID() AS id",
    );
    this.#threadId = Number(row.id);
    let backupLocks = false;
    if (mode === "percona") {
      // Percona Server 5.6/5.7 say so in have_backup_locks; 8.x has the statement without it.
      try {
        const [locks] = await rows(this.#main, "SELECT @@have_backup_locks AS v");
        backupLocks = String(locks.v).toUpperCase() === "YES";
      } catch {
        backupLocks = /percona/i.test(String(row.comment)) &&
          !/mariadb/i.test(String(row.version));
      }
    }
    const info = parseServerInfo(String(row.version), backupLocks);
    this.#statements = serverStatements(info);
    this.#log.debug(
      `MySQL: server ${info.version}, connection id ${this.#threadId}, lock mode ${mode}`,
    );
    const problem = lockModeProblem(mode, info);
    if (problem) throw new DatabaseError(`MySQL: ${problem}`);
    // The statements run under the lock must not fail for want of privilege there.
    await rows(this.#main, this.#statements.replicaStatus);
    await rows(this.#main, this.#statements.binlogStatus);
    if (mode === "replica") await checkReplica(this.#main, this.#statements);
    this.#killer = await this.#connect("kill");
  }

  /** The longest lock() takes: every try of its (at most two) statements, kills and pauses. */
  get lockBoundMs(): number {
    const { lockTries, lockTimeoutMs, lockSleepMs } = this.#plan;
    return 2 * lockTries * (lockTimeoutMs + KILL_WAIT_MS + lockSleepMs) + AFTER_GRANT_MS;
  }

  /**
   * Whether the lock still holds: its connection answers (a lock of ours ends only with its
   * session, or by our own unlock). Undefined when it does; else why not.
   */
  async stillHeld(): Promise<string | undefined> {
    const main = this.#main;
    const replica = this.#replicaStopped;
    if (!main || !(this.#lockSent || this.#stageStarted || replica)) return undefined;
    // The replica mode: replication stopped outlives our session, but someone may start it.
    const sql = replica ? this.#statements!.replicaStatus : "SELECT 1";
    const answer = await within(
      rows(main, sql).then(
        (result) => ({ held: true as const, running: sqlThreadRunning(result[0]) }),
        (error: unknown) => ({
          held: false as const,
          why: sqlErrorText((error as Error).cause ?? error),
        }),
      ),
      STILL_HELD_MS,
    );
    if (answer?.held) {
      if (!replica || answer.running !== "Yes") return undefined;
      return "the replication SQL thread runs again (someone started it while held), so the " +
        "recorded position may not match the data";
    }
    const why = answer ? answer.why : `no answer within ${STILL_HELD_MS / 1000} s`;
    if (replica) return `the replica's state cannot be asked (${why})`;
    this.#lostReported = true;
    return `the database lock's connection (id ${this.#threadId}) no longer answers (${why}): ` +
      "it was killed or dropped while held, so writes may have gone on";
  }

  /** Where the server keeps data, redo log, binary and relay logs (no privilege needed). */
  async files(): Promise<DatabaseFile[]> {
    if (!this.#main) return [];
    return mysqlLocations(await rows(this.#main, LOCATIONS_SQL));
  }

  /** The engine, version, datadir and log_bin_basename, for the snapshots' database tag. */
  async describe(): Promise<DatabaseFacts> {
    if (!this.#main) throw new DatabaseError("MySQL: describe() before prepare()");
    return mysqlFacts(await rows(this.#main, `${LOCATIONS_SQL} OR Variable_name = 'version'`));
  }

  /** Flushes and locks; the coordinates when the mode stops commits and the binary log is on. */
  async lock(
    signal: AbortSignal,
    guard: Guard = unguarded,
  ): Promise<BinlogCoordinates | undefined> {
    if (!this.#main || !this.#statements) throw new DatabaseError("MySQL: lock() before prepare()");
    const mode = this.#plan.lockMode;
    try {
      await this.#setLogBinOff();
      switch (mode) {
        case "flush":
          await this.#retry("FLUSH LOCAL TABLES", "MySQL flush", signal, guard);
          this.#lockSent = true;
          await this.#retry(
            "FLUSH LOCAL TABLES WITH READ LOCK",
            "MySQL flush & lock",
            signal,
            guard,
          );
          break;
        case "percona":
          this.#lockSent = true;
          await this.#retry("LOCK TABLES FOR BACKUP", "Percona backup lock", signal, guard);
          break;
        case "instance":
          this.#lockSent = true;
          await this.#retry(
            "LOCK INSTANCE FOR BACKUP",
            "MySQL instance backup lock",
            signal,
            guard,
          );
          break;
        case "stage":
          this.#stageStarted = true;
          await this.#retry("BACKUP STAGE START", "MariaDB backup stage start", signal, guard);
          await this.#retry(
            "BACKUP STAGE BLOCK_COMMIT",
            "MariaDB backup stage block_commit",
            signal,
            guard,
          );
          break;
        case "replica": {
          // On the stack before the statement: a stop that timed out may still have stopped it.
          this.#replicaStopped = true;
          const stop = stopSqlThread(this.#statements);
          await this.#retry(stop, "MySQL stop replication", signal, guard);
          const waitMs = Math.max(this.#plan.lockTimeoutMs, 5_000);
          await waitSqlThreadStopped(this.#main!, this.#statements, waitMs, signal, this.#log);
          break;
        }
      }
      this.#log.debug(`MySQL: locked (${mode})`);
      await guard(AFTER_GRANT_MS);
      // Backup locks that let commits through give no position matching the data.
      if (mode === "percona" || mode === "instance") return undefined;
      const position = await readPosition(this.#main!, this.#statements, this.#log);
      if (position) {
        const c = position.coordinates;
        this.#log.debug(
          `MySQL: ${c.from} position ${c.file}:${c.position}` +
            (c.gtidExecuted ? ` gtid ${c.gtidExecuted}` : ""),
        );
      }
      const file = this.#plan.statusFile;
      if (file !== undefined) {
        // Written whole or not at all (beside it, then renamed): release() removes only a file
        // that this run did write.
        if (writeStatusFile(file, position, this.#log)) this.#statusFileWritten = file;
      }
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

  async #retry(sql: string, what: string, signal: AbortSignal, guard: Guard): Promise<void> {
    const { lockTries: tries, lockTimeoutMs, lockSleepMs } = this.#plan;
    for (let attempt = 1; attempt <= tries; attempt++) {
      if (signal.aborted) throw new DatabaseError(`${what}: interrupted`);
      this.#log.debug(`${what} (try ${attempt} of ${tries}): ${sql}`);
      // A waiting lock statement blocks writes too: the watchdog bounds each try.
      await guard(lockTimeoutMs + 2 * KILL_WAIT_MS);
      if (await this.#bounded(sql, what, lockTimeoutMs, signal)) return;
      this.#log.warn(`MySQL timeout at ${lockTimeoutMs / 1000} sec`);
      if (attempt < tries) {
        this.#log.debug(`Trying again in ${lockSleepMs / 1000} seconds`);
        await guard(lockSleepMs);
        // A stop signal ends the pause; the check at the top of the loop reports it.
        await delay(lockSleepMs, { signal }).catch(() => {});
      }
    }
    throw new DatabaseError(
      `${what}: not granted in ${tries} tries of ${lockTimeoutMs / 1000} s ` +
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
      () => ({ ok: true }),
      (error: unknown) => ({ ok: false, error }),
    );
    this.#inFlight = pending;
    pending.finally(() => {
      if (this.#inFlight === pending) this.#inFlight = undefined;
    });
    // The statement's own time limit, or the caller's stop signal, whichever comes first.
    let first: Settled | "timeout" | "abort";
    try {
      first = await abortable(pending, deadline(timeoutMs, signal));
    } catch {
      first = signal.aborted ? "abort" : "timeout";
    }
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
    const settled = await within(pending, KILL_WAIT_MS);
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
    const statement = `KILL QUERY ${Number(this.#threadId!)}`;
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

  /** Removes the status file, unlocks and disconnects; safe to call twice. */
  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    const problems: string[] = [];
    if (this.#statusFileWritten !== undefined) {
      const problem = await removeStatusFile(this.#statusFileWritten, this.#log);
      if (problem) problems.push(problem);
    }
    const inFlight = this.#inFlight;
    if (this.#main && inFlight) {
      // release() during a waiting lock statement (a signal): stop the statement first.
      await this.#killOurQuery();
      if (await within(inFlight, KILL_WAIT_MS) === undefined) {
        this.#main.destroy();
        this.#main = undefined;
      }
    }
    if (this.#main && (this.#lockSent || this.#stageStarted)) {
      const problem = await this.#unlock(this.#main);
      if (problem) problems.push(problem);
    }
    if (this.#replicaStopped) {
      const problem = await this.#startReplica();
      if (problem) problems.push(problem);
    }
    for (const conn of [this.#main, this.#killer]) {
      if (!conn) continue;
      try {
        const closed = await within(conn.end().then(() => true), CLOSE_WAIT_MS);
        if (!closed) conn.destroy();
      } catch {
        conn.destroy();
      }
    }
    this.#main = undefined;
    this.#killer = undefined;
    if (this.#lockSent || this.#stageStarted) this.#log.debug("MySQL: unlocked and disconnected");
    if (problems.length > 0) throw new DatabaseError(`MySQL release: ${problems.join("; ")}`);
  }

  /**
   * Starts the replication SQL thread again (on a new connection if ours is gone); a problem
   * when it could not be: replication stays stopped until someone starts it.
   */
  async #startReplica(): Promise<string | undefined> {
    const start = startSqlThread(this.#statements!);
    this.#log.debug(`MySQL: ${start}`);
    let conn = this.#main;
    try {
      conn ??= this.#main = await this.#connect("restart replication");
      const done = await within(conn.query(start).then(() => true), KILL_WAIT_MS);
      if (!done) throw new Error("no answer");
      return undefined;
    } catch (error) {
      return `${start} failed (${sqlErrorText(error)}): replication stays stopped until it is ` +
        "started by hand";
    }
  }

  /**
   * Unlocks; returns a problem when the lock's connection did not answer: it may have been
   * killed or dropped while held (writes went through), which no caller may report as success.
   */
  async #unlock(main: Connection): Promise<string | undefined> {
    const unlock = this.#stageStarted
      ? "BACKUP STAGE END"
      : this.#plan.lockMode === "instance"
      ? "UNLOCK INSTANCE"
      : "UNLOCK TABLES";
    this.#log.debug(`MySQL: ${unlock}`);
    try {
      const done = await within(main.query(unlock).then(() => true), KILL_WAIT_MS);
      if (!done) throw new Error("no answer");
    } catch (error) {
      // Closing the connection below releases the lock all the same.
      main.destroy();
      this.#main = undefined;
      // Already told (one line): the connection was found gone before the thaw.
      if (this.#lostReported) {
        this.#log.debug(`MySQL: ${unlock} failed (${sqlErrorText(error)}), as told before`);
        return undefined;
      }
      return `${unlock} failed (${sqlErrorText(error)}): the lock's connection may have been ` +
        "killed or dropped while held, so writes may have gone on; the database lock cannot be " +
        "vouched for";
    }
    return undefined;
  }
}
