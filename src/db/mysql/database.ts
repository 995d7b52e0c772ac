/** The MySQL/MariaDB Database: a lock (lock.ts) or a stop and start (stop_start.ts), as the plan says. */
import type { Database } from "../../types/side_effects.ts";
import type { MysqlPlan } from "../../types/database_plans.ts";
import { MysqlLock, type MysqlLockDeps } from "./lock.ts";
import { MysqlStopStart, type MysqlStopStartDeps } from "./stop_start.ts";

/** What createMysqlDatabase needs besides the plan; all but `log` have defaults. */
export type MysqlDeps = MysqlLockDeps & MysqlStopStartDeps;

/**
 * Makes the MySQL/MariaDB implementation of Database from its plan. Nothing is connected until
 * prepare(); the driver (mysql2) is loaded only then.
 *
 * @example
 * ```ts
 * import type { MysqlPlan } from "../../types/database_plans.ts";
 * import type { Logger } from "../../util/log.ts";
 * const plan = {} as MysqlPlan, log = {} as Logger, signal = {} as AbortSignal;
 * const db = createMysqlDatabase(plan, { log });
 * await db.prepare();
 * const coordinates = await db.lock(signal);
 * try { // snapshot
 * } finally { await db.release(); }
 * ```
 */
export function createMysqlDatabase(plan: MysqlPlan, deps: MysqlDeps): Database {
  return plan.stop ? new MysqlStopStart(plan, deps) : new MysqlLock(plan, deps);
}
