/**
 * What the main process (watchdog/client.ts) and the watchdog (watchdog/process.ts) say to each
 * other: the hidden argument, the configuration (one JSON argument, or the first line of stdin),
 * later update lines, and the protocol's words.
 */

import type { StartProbe } from "../types/side_effects.ts";

/** The hidden first argument that makes the program a watchdog (`main.ts` dispatches on it). */
export const WATCHDOG_ARG = "__watchdog";

/**
 * In place of the configuration: it comes later, as the first line of stdin. The main process
 * starts the watchdog this way before anything is locked, and arms it at the freeze with one
 * line, so that a process start-up is not spent while the database is locked.
 */
export const CONFIG_ON_STDIN = "-";

/** What the main process tells the watchdog, as one JSON argument after {@linkcode WATCHDOG_ARG}. */
export interface WatchdogConfig {
  /** The main process. */
  pid: number;
  /**
   * Its start time (/proc/PID/stat field 22), so that a new process reusing the pid is not
   * taken for it. Without it (or without access to /proc) the watchdog relies on the end of
   * its stdin alone, which cannot be fooled by pid reuse.
   */
  startTime?: number;
  /** The mounts to thaw; thawed in reverse order. */
  mountPoints: string[];
  /** The hard deadline: milliseconds after `sentAtEpochMs`. */
  deadlineMs: number;
  /** When the main process started the watchdog (`Date.now()`): its start-up counts too. */
  sentAtEpochMs: number;
  /** How often to check the main process and the deadline; default 50 ms. */
  pollMs?: number;
  /**
   * A shell command (`sh -c`) run after the thaw when the watchdog fires: starts again a
   * database that `--mysql-stop` stopped. Absent (or null) when nothing is stopped.
   */
  startCommand?: string | null;
  /**
   * Before the start command: a server that answers here all through `waitMs` was not stopped
   * (the stop command stops another server, or none), or runs again: it is not started.
   */
  startProbe?: StartProbe | null;
  /**
   * At the deadline, a main process that is still alive (stopped, hung) is killed with SIGKILL
   * before the thaw, so that its database session and lock die with it. Default false (tests
   * arm a watchdog for their own process).
   */
  killAtDeadline?: boolean;
}

/**
 * A later line on the watchdog's stdin (JSON, after the configuration): new mounts, a new
 * deadline (from `sentAtEpochMs`), a start command set or cleared. Fields left out keep their
 * value.
 */
export type WatchdogUpdate =
  & Partial<
    Pick<
      WatchdogConfig,
      "mountPoints" | "deadlineMs" | "sentAtEpochMs" | "startCommand" | "startProbe"
    >
  >
  & {
    /**
     * Hold everything at least this long from when the line is read, even if the main process
     * dies: a create call was sent under the promise of its held-until tag.
     */
    holdMs?: number;
    /**
     * The process group of a hook that runs now (null: none): killed when the watchdog fires,
     * so that a hook does not outlive a main process that died or was ended.
     */
    hookGroup?: number | null;
  };

/**
 * The lines of the protocol. The watchdog writes `armed` on stdout once it watches, and later
 * either `disarmed` or `fired REASON`, or `failed REASON` when it cannot start. The main
 * process writes `disarm` on the watchdog's stdin; an end of stdin without it means the main
 * process ended without thawing.
 */
export const WatchdogLine = {
  armed: "armed",
  disarm: "disarm",
  disarmed: "disarmed",
  fired: "fired",
  failed: "failed",
} as const;

/** Parses and checks the JSON argument; throws with a message naming what is wrong. */
export function parseWatchdogConfig(text: string | undefined): WatchdogConfig {
  const config = JSON.parse(text ?? "null") as WatchdogConfig;
  const ok = typeof config === "object" && config !== null &&
    Number.isSafeInteger(config.pid) && config.pid > 0 &&
    (config.startTime === undefined || Number.isSafeInteger(config.startTime)) &&
    validUpdate(config) && Array.isArray(config.mountPoints) &&
    typeof config.deadlineMs === "number" && typeof config.sentAtEpochMs === "number" &&
    (config.mountPoints.length > 0 || typeof config.startCommand === "string" ||
      config.killAtDeadline === true) &&
    (config.killAtDeadline === undefined || typeof config.killAtDeadline === "boolean") &&
    (config.pollMs === undefined || (typeof config.pollMs === "number" && config.pollMs > 0));
  if (!ok) throw new Error(`bad watchdog configuration: ${text}`);
  return config;
}

function validUpdate(update: WatchdogUpdate): boolean {
  return (update.mountPoints === undefined ||
    (Array.isArray(update.mountPoints) &&
      update.mountPoints.every((m) => typeof m === "string" && m.startsWith("/")))) &&
    (update.deadlineMs === undefined || typeof update.deadlineMs === "number") &&
    (update.sentAtEpochMs === undefined || typeof update.sentAtEpochMs === "number") &&
    (update.holdMs === undefined || typeof update.holdMs === "number") &&
    (update.hookGroup === undefined || update.hookGroup === null ||
      (Number.isSafeInteger(update.hookGroup) && update.hookGroup > 1)) &&
    (update.startCommand === undefined || update.startCommand === null ||
      typeof update.startCommand === "string") &&
    (update.startProbe === undefined || update.startProbe === null ||
      (typeof update.startProbe === "object" && typeof update.startProbe.waitMs === "number" &&
        typeof update.startProbe.address === "object" && update.startProbe.address !== null));
}

/** Parses a later line of stdin as an update; undefined when it is not one. */
export function parseWatchdogUpdate(line: string): WatchdogUpdate | undefined {
  try {
    const update = JSON.parse(line) as WatchdogUpdate;
    return typeof update === "object" && update !== null && !Array.isArray(update) &&
        validUpdate(update)
      ? update
      : undefined;
  } catch {
    return undefined;
  }
}
