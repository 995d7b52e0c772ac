/** PostgreSQL: connect and check privileges, CHECKPOINT before the freeze, the WAL position at the freeze, where the files are. */

import type { Client, QueryResultRow } from "pg";
import { DatabaseError, socketErrorText } from "../../util/errors.ts";
import { within } from "../../util/deadline.ts";
import type {
  Database,
  DatabaseFacts,
  DatabaseFile,
  WalPosition,
} from "../../types/side_effects.ts";
import type { Logger } from "../../util/log.ts";
import { trustedLoopbackPort, trustedPostgresqlSocketDir } from "../../host/socket_trust.ts";
import type { PostgresqlPlan, PostgresqlSettings } from "../../types/database_plans.ts";

/** What createPostgresqlDatabase needs; all but `log` have defaults. */
export interface PostgresqlDeps {
  /** Where debug lines and warnings go. */
  log: Logger;
  /** Bound of the connection attempt. Default 10 s. */
  connectTimeoutMs?: number;
  /** Bound of every other statement. Default 10 s. */
  queryTimeoutMs?: number;
}

/** The SQLSTATE of a statement cancelled by statement_timeout (or a cancel request). */
const QUERY_CANCELED = "57014";
/** The SQLSTATE of a missing privilege. */
const INSUFFICIENT_PRIVILEGE = "42501";
/** Extra time the client gives the server's own statement_timeout before it disconnects. */
const CLIENT_MARGIN_MS = 5_000;
const CLOSE_WAIT_MS = 2_000;

interface PgError {
  message?: string;
  code?: string;
}

function pgErrorText(error: unknown): string {
  const e = error as PgError;
  const socket = socketErrorText(e);
  if (e?.code === "ENOENT") {
    return `${socket} (is the server running, and is the host or socket directory right?)`;
  }
  return socket ?? e?.message ?? String(error);
}

/** The PostgreSQL Database: the optional parts of Database are all there. */
export interface PostgresqlDatabase extends Database {
  /** A checkpoint holds no writes. */
  readonly holdsWrites: false;
  /** data_directory, pg_wal (as the server names it) and the tablespace locations. */
  files(): Promise<DatabaseFile[]>;
  /** pg_current_wal_lsn() (or pg_last_wal_replay_lsn() on a standby) and the timeline. */
  positionAtFreeze(signal: AbortSignal): Promise<WalPosition>;
}

/**
 * Makes the PostgreSQL implementation of Database. Nothing is connected until prepare(); the
 * driver (pg) is loaded only then. lock() runs CHECKPOINT (a restartpoint on a standby) and
 * holds nothing: a frozen file system is a crash-consistent image, which PostgreSQL recovers.
 *
 * @example
 * ```ts
 * import type { PostgresqlPlan } from "../../types/database_plans.ts";
 * import type { Logger } from "../../util/log.ts";
 * const plan = {} as PostgresqlPlan, log = {} as Logger, signal = {} as AbortSignal;
 * const db = createPostgresqlDatabase(plan, { log });
 * await db.prepare();
 * await db.lock(signal); // CHECKPOINT
 * const wal = await db.positionAtFreeze!(signal); // { lsn: "0/3000060", timeline: 1, ... }
 * await db.release();
 * ```
 */
export function createPostgresqlDatabase(
  plan: PostgresqlPlan,
  deps: PostgresqlDeps,
): PostgresqlDatabase {
  return new PostgresqlConnection(plan, deps);
}

class PostgresqlConnection implements PostgresqlDatabase {
  readonly holdsWrites = false as const;
  readonly #plan: PostgresqlSettings;
  readonly #checkpointTimeoutMs: number;
  readonly #deps: PostgresqlDeps;
  readonly #log: Logger;
  #client?: Client;
  #standby = false;
  #released = false;

  constructor(plan: PostgresqlPlan, deps: PostgresqlDeps) {
    this.#plan = plan.settings;
    this.#checkpointTimeoutMs = plan.checkpointTimeoutMs;
    this.#deps = deps;
    this.#log = deps.log;
  }

  #where(): string {
    const p = this.#plan;
    return p.host.startsWith("/") ? `socket ${p.host}/.s.PGSQL.${p.port}` : `${p.host}:${p.port}`;
  }

  async prepare(): Promise<void> {
    const plan = this.#plan;
    const { default: pg } = await import("pg");
    // A socket's directory is checked again right before the password is sent, and its real
    // path used (a link or a socket swapped since the plan is caught here).
    const serverUsers = plan.serverUsers ?? ["postgres"];
    const host = plan.host.startsWith("/")
      ? trustedPostgresqlSocketDir(plan.host, plan.port, serverUsers)
      : plan.host;
    if (host === plan.host && !host.startsWith("/")) {
      const fix = "--postgresql-host";
      trustedLoopbackPort({ host, port: plan.port, serverUsers, what: "PostgreSQL", fix });
    }
    const client = new pg.Client({
      host,
      port: plan.port,
      user: plan.user,
      database: plan.database,
      password: plan.password ?? (() => {
        // A password file ignored for its mode is said as such: the user has one, it was not used.
        throw new Error(
          plan.sources.password.startsWith("none (")
            ? `the server asks for a password, and there is ${plan.sources.password}`
            : "the server asks for a password, and none is set ($PGPASSWORD, ~/.pgpass or " +
              "the service file)",
        );
      }),
      connectionTimeoutMillis: this.#deps.connectTimeoutMs ?? 10_000,
      application_name: "ec2-consistent-snapshot",
    });
    // An unhandled 'error' event would end the process; errors surface through the queries.
    client.on("error", (error: unknown) => {
      this.#log.debug(`PostgreSQL connection: ${pgErrorText(error)}`);
    });
    try {
      await client.connect();
    } catch (error) {
      throw new DatabaseError(
        `PostgreSQL: cannot connect to ${this.#where()} as ${plan.user} (database ` +
          `${plan.database}): ${pgErrorText(error)}`,
        { cause: error },
      );
    }
    this.#client = client;
    const [info] = await this.#rows(
      "SELECT current_setting('server_version_num')::int AS version, " +
        "current_setting('server_version') AS name, pg_is_in_recovery() AS standby, " +
        "(SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser",
    );
    this.#standby = info.standby === true;
    let mayCheckpoint = info.superuser === true;
    if (!mayCheckpoint && Number(info.version) >= 150000) {
      const [role] = await this.#rows(
        "SELECT pg_has_role(current_user, 'pg_checkpoint', 'USAGE') AS ok",
      );
      mayCheckpoint = role.ok === true;
    }
    if (!mayCheckpoint) {
      throw new DatabaseError(
        `PostgreSQL: user ${plan.user} may not run CHECKPOINT: ` +
          (Number(info.version) >= 150000
            ? `GRANT pg_checkpoint TO ${plan.user}, or connect as a superuser`
            : `PostgreSQL ${info.name} allows it only to superusers`),
      );
    }
    // The statement run at the freeze must not fail for want of privilege there.
    await this.#rows(this.#positionSql());
    this.#log.debug(
      `PostgreSQL: server ${info.name}${this.#standby ? ", a standby" : ""}, user ${plan.user}` +
        (info.superuser ? " (superuser)" : " (pg_checkpoint)"),
    );
  }

  #positionSql(): string {
    const lsn = this.#standby ? "pg_last_wal_replay_lsn()" : "pg_current_wal_lsn()";
    return `SELECT ${lsn}::text AS lsn, pg_is_in_recovery() AS standby, ` +
      "(SELECT timeline_id FROM pg_control_checkpoint()) AS timeline";
  }

  /** Runs one statement, bounded; aborting `signal` disconnects (the server ends it). */
  async #rows(
    sql: string,
    bound: { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<QueryResultRow[]> {
    const client = this.#client;
    if (!client) throw new DatabaseError("PostgreSQL: not connected");
    const timeoutMs = bound.timeoutMs ?? this.#deps.queryTimeoutMs ?? 10_000;
    const { signal } = bound;
    const onAbort = () => this.#disconnect();
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      if (signal?.aborted) throw signal.reason;
      const result = await client.query({ text: sql, query_timeout: timeoutMs });
      return result.rows;
    } catch (error) {
      if (signal?.aborted) {
        throw new DatabaseError(`PostgreSQL: ${sql}: interrupted`, { cause: error });
      }
      if ((error as Error)?.message === "Query read timeout") {
        // The server did not answer at all: nothing more can be asked of this connection.
        this.#disconnect();
        throw new DatabaseError(`PostgreSQL: ${sql}: no answer in ${timeoutMs / 1000} s`, {
          cause: error,
        });
      }
      throw new DatabaseError(`PostgreSQL: ${sql}: ${pgErrorText(error)}`, { cause: error });
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  }

  /**
   * CHECKPOINT (on a standby a restartpoint), so that a restore replays little WAL. Bounded by
   * the server's statement_timeout; a checkpoint that does not finish in time is a warning, not
   * a failure: the frozen file system is consistent without it. Holds nothing.
   */
  async lock(signal: AbortSignal): Promise<undefined> {
    const timeoutMs = this.#checkpointTimeoutMs;
    await this.#rows(`SET statement_timeout = ${Math.max(1, Math.round(timeoutMs))}`);
    const what = this.#standby ? "CHECKPOINT (a restartpoint on this standby)" : "CHECKPOINT";
    this.#log.debug(`PostgreSQL: ${what}`);
    const started = performance.now();
    try {
      await this.#rows("CHECKPOINT", { timeoutMs: timeoutMs + CLIENT_MARGIN_MS, signal });
    } catch (error) {
      const cause = (error as { cause?: PgError }).cause;
      if (cause?.code !== QUERY_CANCELED) throw error;
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      // The server's statement_timeout cannot fire before its bound; a cancel earlier (or one
      // the server calls a user request) came from someone else: pg_cancel_backend, an admin.
      const byTimeout = performance.now() - started >= timeoutMs &&
        !/user request/i.test(cause.message ?? "");
      this.#log.warn(
        byTimeout
          ? `PostgreSQL: CHECKPOINT did not finish in ${timeoutMs / 1000} s; going on ` +
            "(a restore will replay more WAL)"
          : `PostgreSQL: CHECKPOINT was cancelled after ${seconds} s by another session ` +
            "(pg_cancel_backend, an administrator); going on (a restore will replay more WAL)",
      );
    }
    await this.#rows("SET statement_timeout = 0");
    return undefined;
  }

  async positionAtFreeze(signal: AbortSignal): Promise<WalPosition> {
    const [row] = await this.#rows(this.#positionSql(), { signal });
    if (row.standby !== this.#standby) {
      throw new DatabaseError(
        `PostgreSQL: the server was ${
          this.#standby ? "promoted" : "made a standby"
        } during the run`,
      );
    }
    const position: WalPosition = {
      lsn: String(row.lsn),
      timeline: Number(row.timeline),
      from: this.#standby ? "standby" : "primary",
    };
    this.#log.debug(
      `PostgreSQL: WAL position ${position.lsn}, timeline ${position.timeline} (${position.from})`,
    );
    return position;
  }

  async describe(): Promise<DatabaseFacts> {
    const [row] = await this.#rows(
      "SELECT current_setting('server_version') AS version, " +
        "CASE WHEN pg_has_role(current_user, 'pg_read_all_settings', 'USAGE') OR " +
        "(SELECT rolsuper FROM pg_roles WHERE rolname = current_user) " +
        "THEN current_setting('data_directory') END AS dir",
    );
    const version = String(row.version);
    return {
      engine: "postgresql",
      version: /^\d+(\.\d+)*/.exec(version)?.[0] ?? version,
      ...(row.dir ? { dataDir: String(row.dir) } : {}),
    };
  }

  async files(): Promise<DatabaseFile[]> {
    const files: DatabaseFile[] = [];
    try {
      const [row] = await this.#rows("SELECT current_setting('data_directory') AS dir");
      const dir = String(row.dir);
      files.push({ what: "PostgreSQL data_directory", path: dir });
      files.push({ what: "PostgreSQL pg_wal", path: `${dir}/pg_wal` });
    } catch (error) {
      if ((error as { cause?: PgError }).cause?.code !== INSUFFICIENT_PRIVILEGE) throw error;
      this.#log.warn(
        `PostgreSQL: user ${this.#plan.user} may not read data_directory, so whether the data ` +
          `and pg_wal lie on the frozen file systems is not checked ` +
          `(GRANT pg_read_all_settings TO ${this.#plan.user})`,
      );
    }
    const tablespaces = await this.#rows(
      "SELECT spcname AS name, pg_tablespace_location(oid) AS location FROM pg_tablespace " +
        "WHERE pg_tablespace_location(oid) <> '' ORDER BY spcname",
    );
    for (const t of tablespaces) {
      files.push({ what: `PostgreSQL tablespace ${t.name}`, path: String(t.location) });
    }
    return files;
  }

  #disconnect(): void {
    const client = this.#client;
    if (!client) return;
    this.#client = undefined;
    // The socket goes at once; the server ends our statement when it notices.
    (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream
      ?.destroy();
    client.end().catch(() => {});
  }

  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    const client = this.#client;
    if (!client) return;
    this.#client = undefined;
    const closed = await within(client.end().then(() => true, () => true), CLOSE_WAIT_MS);
    if (!closed) {
      (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream
        ?.destroy();
    }
    this.#log.debug("PostgreSQL: disconnected");
  }
}
