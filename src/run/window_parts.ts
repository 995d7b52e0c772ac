/**
 * The one wiring of the consistency window to the real parts: the plan's window becomes the
 * window's spec, and the freezer, the hooks, the watchdog, the database and the file-system
 * freeze locks are made from it. The run (cli/execute.ts), the holder (hold/holder.ts) and
 * `--hold`'s checks (cli/hold_command.ts) all get their parts here; a database added here is
 * one that every window can hold.
 */
import type { Logger } from "../util/log.ts";
import type { Database, HeldExclusion } from "../types/side_effects.ts";
import type { DatabasePlan, WindowPlan } from "../plan/window.ts";
import { mysqlStartProbe } from "../types/database_plans.ts";
import { createFreezer } from "../host/freeze.ts";
import { acquireFreezeLocks, type FreezeTarget } from "../host/freeze_lock.ts";
import { createWatchdog } from "../watchdog/client.ts";
import { createHooks } from "./hooks.ts";
import type { WindowDeps, WindowSpec } from "./window.ts";

/**
 * The window's spec, as the window runs it: the mounts by name, the commands around the
 * freeze, the watchdog's bounds, and the command that starts a database stopped by
 * `--mysql-stop`, or a replica's replication (the watchdog runs it if this process dies first).
 *
 * @example
 * ```ts
 * import type { WindowPlan } from "../plan/window.ts";
 * const window = {} as WindowPlan;
 * const spec = windowSpec(window);
 * spec.watchdogDeadlineMs; // window.bounds.frozenMs
 * ```
 */
export function windowSpec(window: WindowPlan): WindowSpec {
  const { database, hooks, bounds } = window;
  return {
    freezeMounts: window.freezeMounts.map((m) => m.mountPoint),
    preFreezeCommand: hooks.preFreeze,
    postThawCommand: hooks.postThaw,
    watchdogDeadlineMs: bounds.frozenMs,
    watchdogPhaseMs: bounds.outsideMs,
    hookTimeoutMs: hooks.timeoutMs,
    // What the watchdog runs if the tool dies: start a stopped server, or its replication.
    databaseStartCommand: database?.kind === "mysql"
      ? (database.stop ? database.commands?.start : database.replicaStartCommand)
      : undefined,
    // How the watchdog tells that the database it started again answers.
    databaseStartProbe: database?.kind === "mysql" ? mysqlStartProbe(database) : undefined,
  };
}

/**
 * The database of the window, made from its plan; undefined without one. Each driver loads
 * only when a window uses it: not for `--help`, `--noaction`, nor for the other database.
 *
 * @example
 * ```ts
 * import { silentLogger } from "../util/log.ts";
 * import type { WindowPlan } from "../plan/window.ts";
 * const window = {} as WindowPlan;
 * const database = await windowDatabase(window.database, silentLogger);
 * await database?.prepare(); // connects, checks the lock mode and privileges; locks nothing
 * await database?.release();
 * ```
 */
export async function windowDatabase(
  plan: DatabasePlan | undefined,
  log: Logger,
): Promise<Database | undefined> {
  switch (plan?.kind) {
    case undefined:
      return undefined;
    case "mysql": {
      const { createMysqlDatabase } = await import("../db/mysql/database.ts");
      return createMysqlDatabase(plan, { log });
    }
    case "postgresql": {
      const { createPostgresqlDatabase } = await import("../db/postgresql/database.ts");
      return createPostgresqlDatabase(plan, { log });
    }
  }
}

/** Who holds the window, and where its parts look and write. */
export interface WindowIo {
  /** Where --debug steps, warnings and errors go. */
  log: Logger;
  /** Who holds the freeze locks, in their messages: "run" or "hold". */
  purpose: "run" | "hold";
  /** The run directory of the freeze locks (plan/machine.ts). */
  runDir: string;
  /** Where sync and fsfreeze are looked for first (plan/machine.ts). */
  searchPath: string;
  /** Where the commands' output goes besides ours: the holder's log file. */
  hookOutputFile?: string;
  /** The watchdog's stderr: ours (the run) or nowhere (the detached holder); ours by default. */
  watchdogStderr?: "inherit" | "null";
}

/** The window's parts, real: what {@linkcode WindowDeps} takes besides the log and the signal. */
export type WindowParts = Pick<WindowDeps, "freezer" | "hooks" | "watchdog" | "database"> & {
  /** Takes the file-system freeze locks of the window's mounts; undefined without mounts. */
  exclusion?: () => Promise<HeldExclusion>;
};

/**
 * The file systems whose freeze locks the window takes: each mount and its device.
 *
 * @example
 * ```ts
 * import type { WindowPlan } from "../plan/window.ts";
 * const window = {} as WindowPlan;
 * freezeTargets(window); // [{ mountPoint: "/data", device: "259:1" }]
 * ```
 */
export function freezeTargets(window: WindowPlan): FreezeTarget[] {
  return window.freezeMounts.map((m) => ({ mountPoint: m.mountPoint, device: m.majorMinor }));
}

/**
 * The real parts of a window: the freezer (sync, fsfreeze) checking each mount's device, the
 * hooks bounded by --hook-timeout, the watchdog (which kills a process stuck past its
 * deadline, so that its database lock dies too), the database, and the freeze locks.
 *
 * @example
 * ```ts
 * import { silentLogger } from "../util/log.ts";
 * import type { WindowPlan } from "../plan/window.ts";
 * const window = {} as WindowPlan;
 * const parts = await windowParts(window, {
 *   log: silentLogger, purpose: "run", runDir: "/run/ec2-consistent-snapshot", searchPath: "/usr/bin",
 * });
 * ```
 */
export async function windowParts(window: WindowPlan, io: WindowIo): Promise<WindowParts> {
  const { log } = io;
  const mounts = window.freezeMounts;
  return {
    freezer: createFreezer({
      log,
      search: { path: io.searchPath },
      devices: new Map(mounts.map((m) => [m.mountPoint, m.majorMinor])),
    }),
    hooks: createHooks({ log, outputFile: io.hookOutputFile, timeoutMs: window.hooks.timeoutMs }),
    watchdog: createWatchdog({ log, stderr: io.watchdogStderr, killAtDeadline: true }),
    database: await windowDatabase(window.database, log),
    exclusion: mounts.length > 0
      ? () => acquireFreezeLocks(freezeTargets(window), { runDir: io.runDir, purpose: io.purpose })
      : undefined,
  };
}
