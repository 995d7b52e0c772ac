/**
 * The `replica` lock mode: on a replica, the replication SQL thread stopped instead of a lock, so
 * that long queries on the replica are not waited for; started again at the release.
 */
import { DatabaseError } from "../../util/errors.ts";
import type { Logger } from "../../util/log.ts";
import { delay } from "../../util/deadline.ts";
import { type Connection, rows } from "./connection.ts";
import type { ServerStatements } from "./server.ts";

/** How often, and how long, to look whether the SQL thread has stopped. */
const POLL_MS = 100;

/** The SQL thread's state in a replica status row: "Yes", "No", or undefined when not a replica. */
export function sqlThreadRunning(status: Record<string, unknown> | undefined): string | undefined {
  if (!status) return undefined;
  const value = status.Replica_SQL_Running ?? status.Slave_SQL_Running;
  return value === undefined || value === null ? undefined : String(value);
}

/**
 * Checks that the server is a replica whose SQL thread runs; throws DatabaseError otherwise
 * (not a replica; or stopped by someone, whose stop is not ours to end).
 */
export async function checkReplica(main: Connection, statements: ServerStatements): Promise<void> {
  const [status] = await rows(main, statements.replicaStatus);
  const running = sqlThreadRunning(status);
  if (running === undefined) {
    throw new DatabaseError(
      `MySQL: --mysql-lock-mode replica: this server is not a replica (${statements.replicaStatus} ` +
        "is empty); use --mysql-lock-mode flush",
    );
  }
  if (running !== "Yes") {
    throw new DatabaseError(
      `MySQL: --mysql-lock-mode replica: the replication SQL thread is not running ` +
        `(SQL thread: ${running}); it was stopped by someone else, and the tool starts only what ` +
        "it stopped: start it, or use --mysql-lock-mode flush",
    );
  }
}

/** Waits until the SQL thread no longer runs, up to `timeoutMs`; throws if it still does. */
export async function waitSqlThreadStopped(
  main: Connection,
  statements: ServerStatements,
  timeoutMs: number,
  signal: AbortSignal,
  log: Logger,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (true) {
    const [status] = await rows(main, statements.replicaStatus);
    const running = sqlThreadRunning(status);
    if (running !== "Yes") {
      log.debug(`MySQL: replication SQL thread stopped (${running})`);
      return;
    }
    if (Date.now() >= until || signal.aborted) {
      throw new DatabaseError(
        `MySQL: the replication SQL thread still runs ${timeoutMs / 1000} s after ` +
          `STOP ${statements.replica} SQL_THREAD`,
      );
    }
    await delay(POLL_MS, { signal }).catch(() => {});
  }
}

/** The statement that starts the SQL thread again. */
export function startSqlThread(statements: ServerStatements): string {
  return `START ${statements.replica} SQL_THREAD`;
}

/** The statement that stops it. */
export function stopSqlThread(statements: ServerStatements): string {
  return `STOP ${statements.replica} SQL_THREAD`;
}
