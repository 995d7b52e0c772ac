/** The watchdog process: thaws the frozen mounts when the main process dies or a deadline passes. */
import { findFreezeProgram, findProgram, type FreezeProgram, searchDirs } from "../host/freeze.ts";
import { runProgram } from "../host/programs.ts";
import { delay } from "../util/deadline.ts";
import { LineReader } from "../util/lines.ts";
import { isSameProcessAlive, procReadable } from "../host/proc.ts";

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
}

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

const THAW_TRIES = 5;
const THAW_TIMEOUT_MS = 10_000;

function say(line: string): void {
  try {
    Deno.stdout.writeSync(new TextEncoder().encode(line + "\n"));
  } catch { /* the main process is gone: nobody to tell */ }
}

/** While thawing, lines wait here: a write to a stalled stderr pipe must not delay the thaw. */
let held: string[] | undefined;

function log(message: string): void {
  const line = `${
    new Date().toISOString()
  } ec2-consistent-snapshot watchdog[${Deno.pid}]: ${message}`;
  if (held) held.push(line);
  else writeLog(line);
}

function writeLog(line: string): void {
  try {
    Deno.stderr.writeSync(new TextEncoder().encode(line + "\n"));
  } catch { /* stderr closed */ }
}

/** Parses and checks the JSON argument; throws with a message naming what is wrong. */
export function parseWatchdogConfig(text: string | undefined): WatchdogConfig {
  const config = JSON.parse(text ?? "null") as WatchdogConfig;
  const ok = typeof config === "object" && config !== null &&
    Number.isSafeInteger(config.pid) && config.pid > 0 &&
    (config.startTime === undefined || Number.isSafeInteger(config.startTime)) &&
    Array.isArray(config.mountPoints) && config.mountPoints.length > 0 &&
    config.mountPoints.every((m) => typeof m === "string" && m.startsWith("/")) &&
    typeof config.deadlineMs === "number" && typeof config.sentAtEpochMs === "number" &&
    (config.pollMs === undefined || (typeof config.pollMs === "number" && config.pollMs > 0));
  if (!ok) throw new Error(`bad watchdog configuration: ${text}`);
  return config;
}

type Reason = "disarm" | "main process ended" | "main process gone" | "deadline passed";

/** Resolves with the first line `disarm` (as "disarm") or at the end of input. */
async function watchInput(lines: LineReader): Promise<Reason> {
  for await (const line of lines) if (line.trim() === WatchdogLine.disarm) return "disarm";
  return "main process ended";
}

/** Thaws one mount, retrying; true when it is thawed (or was not frozen). */
async function thawOne(program: FreezeProgram, mountPoint: string, path: string): Promise<boolean> {
  for (let attempt = 1; attempt <= THAW_TRIES; attempt++) {
    try {
      const result = await runProgram(program.path, ["-u", mountPoint], {
        timeoutMs: THAW_TIMEOUT_MS,
        path,
      });
      if (result.code === 0) {
        log(`thawed ${mountPoint}`);
        return true;
      }
      // EINVAL: the file system was not frozen (thawed already, or never frozen).
      if (/invalid argument/i.test(result.stderr)) {
        log(`${mountPoint} was not frozen`);
        return true;
      }
      log(`thaw of ${mountPoint} failed (try ${attempt}): ${result.stderr || result.code}`);
    } catch (error) {
      log(`thaw of ${mountPoint} failed (try ${attempt}): ${(error as Error).message}`);
    }
    await delay(200);
  }
  return false;
}

async function tellSyslog(logger: string | undefined, message: string): Promise<void> {
  if (!logger) return;
  try {
    await runProgram(logger, ["-t", "ec2-consistent-snapshot", "-p", "user.warning", message], {
      timeoutMs: 2_000,
    });
  } catch { /* best effort */ }
}

/**
 * The watchdog's main function, for `ec2-consistent-snapshot __watchdog CONFIG_JSON` (or `-`
 * for the configuration on the first line of stdin): `args` are the arguments after
 * {@linkcode WATCHDOG_ARG}. Resolves with the exit code; the caller
 * must `Deno.exit()` with it (stdin is still being read).
 *
 * It runs in its own session (the main process starts it detached) with `/` as working
 * directory, and never opens a file on the mounts it guards.
 *
 * @example
 * ```ts
 * if (Deno.args[0] === WATCHDOG_ARG) Deno.exit(await runWatchdog(Deno.args.slice(1)));
 * ```
 */
export async function runWatchdog(args: readonly string[]): Promise<number> {
  // A broken pipe is an end of input, like the end itself.
  const input = new LineReader(Deno.stdin.readable);
  let config: WatchdogConfig;
  let program: FreezeProgram;
  try {
    Deno.chdir("/");
    program = findFreezeProgram();
    let text = args[0];
    if (text === CONFIG_ON_STDIN) {
      const first = await input.next();
      // The main process ended (or gave up) before arming: nothing was frozen, nothing to do.
      if (first === undefined) return 0;
      text = first;
    }
    config = parseWatchdogConfig(text);
  } catch (error) {
    const message = (error as Error).message.replace(/\s+/g, " ");
    log(message);
    say(`${WatchdogLine.failed} ${message}`);
    return 2;
  }
  const path = searchDirs().join(":");
  const logger = findProgram("logger");
  const mounts = config.mountPoints.join(", ");

  // Our job outlives whoever asks us to stop; the deadline bounds it. SIGKILL still works.
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM", "SIGHUP"];
  const ignore = () => log("signal ignored: thawing is bounded by the deadline");
  for (const signal of signals) Deno.addSignalListener(signal, ignore);

  // The deadline runs on the monotonic clock; only the start-up is measured by the wall clock.
  const startUp = Math.min(Math.max(Date.now() - config.sentAtEpochMs, 0), config.deadlineMs);
  const deadline = performance.now() + config.deadlineMs - startUp;
  // The end of stdin says the main process ended; /proc (when Deno lets us read it) says so too
  // if someone else holds the pipe open.
  const { pid, startTime } = config;
  const mainAlive = startTime !== undefined && procReadable()
    ? () => {
      try {
        return isSameProcessAlive(pid, startTime);
      } catch {
        return true; // cannot tell: the end of stdin and the deadline still decide
      }
    }
    : () => true;

  let reason: Reason;
  let timer: ReturnType<typeof setInterval> | undefined;
  if (!mainAlive()) {
    reason = "main process gone";
  } else {
    say(WatchdogLine.armed);
    const watched = new Promise<Reason>((resolve) => {
      timer = setInterval(() => {
        if (!mainAlive()) resolve("main process gone");
        else if (performance.now() >= deadline) resolve("deadline passed");
      }, config.pollMs ?? 50);
    });
    reason = await Promise.race([watchInput(input), watched]);
    clearInterval(timer);
  }

  let code = 0;
  if (reason === "disarm") {
    say(WatchdogLine.disarmed);
  } else {
    held = [];
    log(`${reason} (main process ${config.pid}): thawing ${mounts}`);
    const results = [];
    for (const mountPoint of [...config.mountPoints].reverse()) {
      results.push(await thawOne(program, mountPoint, path));
    }
    const lines = held;
    held = undefined;
    for (const line of lines) writeLog(line);
    code = results.every(Boolean) ? 0 : 1;
    const message = `${reason} (main process ${config.pid}): ${
      code === 0 ? "thawed" : "COULD NOT THAW all of"
    } ${mounts}`;
    say(`${WatchdogLine.fired} ${message}`);
    await tellSyslog(logger, `watchdog: ${message}`);
  }
  for (const signal of signals) Deno.removeSignalListener(signal, ignore);
  return code;
}
