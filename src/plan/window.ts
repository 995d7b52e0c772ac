/**
 * The consistency window's plan: what is held (the mounts frozen, the database locked, the
 * commands around the freeze) and the bounds the watchdog keeps it to. The run's Plan and the
 * hold plan both embed one; run/window_parts.ts wires it to the real parts.
 */
import { UsageError } from "../util/errors.ts";
import type { Logger } from "../util/log.ts";
import type { MountPoint } from "../host/mounts.ts";
import type { MysqlPlan, PostgresqlPlan } from "../types/database_plans.ts";
import type { Options } from "../types/options.ts";
import { type MysqlPlanDeps, planMysql } from "./mysql.ts";
import { describePostgresqlPlan, planPostgresql } from "./postgresql.ts";

/** A database to flush and lock (or stop, or checkpoint): decided, not connected. */
export type DatabasePlan = MysqlPlan | PostgresqlPlan;

/** Extra time the watchdog gives the normal thaw before it thaws by itself. */
export const WATCHDOG_MARGIN_MS = 5_000;

/** The watchdog's bound before the freeze and after the thaw, besides the commands' own. */
export const WATCHDOG_PHASE_MS = 15 * 60_000;

/**
 * The minimum hold: counted from just before the create calls are sent, nothing is released
 * before it ends while a call may still reach EC2 (no answer yet, aborted, or unknown), not
 * even on a stop signal, nor by the watchdog if this process dies. The create calls carry its
 * end, in EC2's time, as the held-until tag: a snapshot that started later may have been
 * taken after the thaw, and says so by itself. Short, so that a stop signal still ends the
 * run within seconds; long enough for a normal CreateSnapshot answer (a fraction of that).
 */
export const MIN_HOLD_MS = 3_000;

/**
 * How long a run may hold everything: --snapshot-timeout, but never less than the minimum hold
 * ({@linkcode MIN_HOLD_MS}), which is honoured even when --snapshot-timeout is shorter.
 *
 * @example
 * ```ts
 * snapshotHoldMs(10_000); // 10000
 * snapshotHoldMs(1_000); // 3000
 * ```
 */
export function snapshotHoldMs(snapshotTimeoutMs: number): number {
  return Math.max(snapshotTimeoutMs, MIN_HOLD_MS);
}

/** How long the watchdog lets the window last, counted from its arming. */
export interface WindowBounds {
  /**
   * While frozen: the step while everything is held (the snapshot calls, or the hold), plus
   * {@linkcode WATCHDOG_MARGIN_MS} for the thaw. Past it the watchdog thaws by itself.
   */
  frozenMs: number;
  /**
   * Outside the freeze (a database stopped before it; after the thaw, the post-thaw command
   * and the database's release): {@linkcode WATCHDOG_PHASE_MS} plus the commands' bound.
   */
  outsideMs: number;
}

/** What is held, and for how long: the consistency window, decided. */
export interface WindowPlan {
  /** The mount points to freeze, checked, in order. */
  freezeMounts: MountPoint[];
  /** The database to flush and lock (or stop), if any; checked, not connected. */
  database: DatabasePlan | undefined;
  /** --pre-freeze-command, --post-thaw-command and --hook-timeout (milliseconds). */
  hooks: { preFreeze?: string; postThaw?: string; timeoutMs: number };
  /** The watchdog's bounds. */
  bounds: WindowBounds;
}

/** What {@linkcode planDatabase} reads besides the options. */
export interface DatabasePlanInputs {
  /** The environment (PG* variables, $USER). */
  env: Record<string, string | undefined>;
  /** The home directory (~/.my.cnf, ~/.pgpass); undefined when unknown. */
  home: string | undefined;
  /** Where --debug steps go. */
  log: Logger;
  /** The MySQL plan's lookups (socket search, systemd units); tests replace them. */
  mysql?: MysqlPlanDeps;
}

/**
 * The database of the window, if the options name one: MySQL/MariaDB (--mysql, --percona,
 * --mysql-stop) or PostgreSQL (--postgresql), one per run. Reads option files, never connects;
 * throws UsageError on bad input.
 *
 * @example
 * ```ts
 * import { defaultOptions } from "../types/options.ts";
 * import { silentLogger } from "../util/log.ts";
 * const options = { ...defaultOptions(), postgresql: true };
 * const database = await planDatabase(options, { env: {}, home: "/root", log: silentLogger });
 * database?.kind; // "postgresql"
 * ```
 */
export async function planDatabase(
  options: Options,
  inputs: DatabasePlanInputs,
): Promise<DatabasePlan | undefined> {
  const { env, home, log } = inputs;
  const wantsMysql = options.mysql || options.percona || options.mysqlStop;
  // Before either is planned: a MySQL plan's own refusal (its socket, its files) is not the
  // problem when both were asked for.
  if (wantsMysql && options.postgresql) {
    throw new UsageError(
      "--postgresql cannot be combined with --mysql, --percona or --mysql-stop: one database per run",
    );
  }
  if (!options.postgresql) {
    return wantsMysql
      ? planMysql(options, { ...inputs.mysql, settings: { home, env, ...inputs.mysql?.settings } })
      : undefined;
  }
  const postgresql = await planPostgresql(options, {
    env,
    home,
    debug: (message) => log.debug(message),
  });
  log.debug(describePostgresqlPlan(postgresql)[1]);
  return postgresql;
}

/**
 * The window: the mounts and the database as planned, the commands around the freeze, and the
 * watchdog's bounds for a step that holds everything at most `heldMs`.
 *
 * @example
 * ```ts
 * import { defaultOptions } from "../types/options.ts";
 * const window = planWindow(defaultOptions(), { freezeMounts: [], database: undefined, heldMs: 10_000 });
 * window.bounds.frozenMs; // 15000
 * ```
 */
export function planWindow(
  options: Options,
  parts: { freezeMounts: MountPoint[]; database: DatabasePlan | undefined; heldMs: number },
): WindowPlan {
  const hookTimeoutMs = options.hookTimeout * 1000;
  return {
    freezeMounts: parts.freezeMounts,
    database: parts.database,
    hooks: {
      preFreeze: options.preFreezeCommand,
      postThaw: options.postThawCommand,
      timeoutMs: hookTimeoutMs,
    },
    bounds: {
      frozenMs: parts.heldMs + WATCHDOG_MARGIN_MS,
      // The commands run in the watchdog's phases outside the freeze: their bound counts too.
      outsideMs: WATCHDOG_PHASE_MS + hookTimeoutMs,
    },
  };
}
