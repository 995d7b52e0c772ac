/**
 * The watchdog process: when the main process dies or a deadline passes, it thaws the frozen
 * mounts, starts a database stopped with --mysql-stop, and ends a main process stuck past the
 * deadline (so that its database session and lock die with it).
 */
import { answersThroughout, describeAddress } from "./probe.ts";
import { findFreezeProgram, findProgram, type FreezeProgram, searchDirs } from "../host/freeze.ts";
import { runProgram, shellCommand } from "../host/programs.ts";
import { delay } from "../util/deadline.ts";
import { isSameProcessAlive, procReadable } from "../host/proc.ts";
import { LineReader, writeAllSync } from "../util/lines.ts";
import {
  CONFIG_ON_STDIN,
  parseWatchdogConfig,
  parseWatchdogUpdate,
  type WatchdogConfig,
  WatchdogLine,
  type WatchdogUpdate,
} from "./protocol.ts";

const THAW_TRIES = 5;
const THAW_TIMEOUT_MS = 10_000;
/** How long the lines a dead main process left in the pipe are read before acting. */
const DRAIN_MS = 200;
/** Bound of the start command (a database start may replay its logs). */
const START_TIMEOUT_MS = 300_000;
/** How long to wait for a killed main process to be gone (its database session closed). */
const KILL_WAIT_MS = 10_000;

function say(line: string): void {
  try {
    writeAllSync(Deno.stdout, line + "\n");
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
    writeAllSync(Deno.stderr, line + "\n");
  } catch { /* stderr closed */ }
}

type Reason = "disarm" | "main process ended" | "main process gone" | "deadline passed";

/**
 * Resolves with the first line `disarm` (as "disarm") or at the end of input; hands each
 * update line to `onUpdate` on the way.
 */
async function watchInput(
  lines: LineReader,
  onUpdate: (update: WatchdogUpdate) => void,
): Promise<Reason> {
  for await (const line of lines) {
    const trimmed = line.trim();
    if (trimmed === WatchdogLine.disarm) return "disarm";
    if (trimmed === "") continue;
    const update = parseWatchdogUpdate(trimmed);
    if (update) onUpdate(update);
    else log(`ignored a line that is not an update (${trimmed.length} characters)`);
  }
  return "main process ended";
}

/** Waits (bounded) until a killed main process is gone; true when it is. */
async function waitGone(gone: () => boolean): Promise<boolean> {
  const end = performance.now() + KILL_WAIT_MS;
  while (performance.now() < end) {
    if (gone()) return true;
    await delay(25);
  }
  return gone();
}

/** Runs the start command through `sh -c`; true when it exits 0. */
async function runStartCommand(command: string, path: string): Promise<boolean> {
  try {
    const [shell, args] = shellCommand(command);
    const result = await runProgram(shell, args, { timeoutMs: START_TIMEOUT_MS, path });
    if (result.code === 0) {
      log(`started the database again: ${command}`);
      return true;
    }
    log(`start command failed (exit ${result.code}): ${command}: ${result.stderr}`);
  } catch (error) {
    log(`start command failed: ${command}: ${(error as Error).message}`);
  }
  return false;
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
 * `__watchdog` (WATCHDOG_ARG in watchdog/protocol.ts); `search.path` is where fsfreeze and logger are looked for before the
 * system directories (the entry passes `$PATH`). Resolves with the exit code; the caller must
 * `Deno.exit()` with it (stdin is still being read).
 *
 * It runs in its own session (the main process starts it detached) with `/` as working
 * directory, and never opens a file on the mounts it guards.
 *
 * @example
 * ```ts
 * import { WATCHDOG_ARG } from "./protocol.ts";
 * const search = { path: Deno.env.get("PATH") ?? "" };
 * if (Deno.args[0] === WATCHDOG_ARG) Deno.exit(await runWatchdog(Deno.args.slice(1), search));
 * ```
 */
export async function runWatchdog(
  args: readonly string[],
  search: { path: string },
): Promise<number> {
  // A broken pipe is an end of input, like the end itself.
  const input = new LineReader(Deno.stdin.readable);
  let config: WatchdogConfig;
  let program: FreezeProgram;
  try {
    Deno.chdir("/");
    program = findFreezeProgram(search);
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
  const path = searchDirs(search).join(":");
  const logger = findProgram("logger", search);
  let mountPoints = [...config.mountPoints];
  let startCommand = config.startCommand ?? undefined;
  let startProbe = config.startProbe ?? undefined;
  let hookGroup: number | undefined;

  // Our job outlives whoever asks us to stop; the deadline bounds it. SIGKILL still works.
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM", "SIGHUP"];
  const ignore = () => log("signal ignored: thawing is bounded by the deadline");
  for (const signal of signals) Deno.addSignalListener(signal, ignore);

  // The deadline runs on the monotonic clock; only the start-up is measured by the wall clock.
  const deadlineFrom = (deadlineMs: number, sentAtEpochMs: number) =>
    performance.now() + deadlineMs -
    Math.min(Math.max(Date.now() - sentAtEpochMs, 0), deadlineMs);
  let deadline = deadlineFrom(config.deadlineMs, config.sentAtEpochMs);
  /** Nothing is thawed (or started) before this monotonic instant: the run's minimum hold. */
  let holdUntil = 0;
  const update = (change: WatchdogUpdate) => {
    if (change.holdMs !== undefined) {
      holdUntil = Math.max(holdUntil, performance.now() + Math.min(change.holdMs, 60_000));
    }
    if (change.hookGroup !== undefined) hookGroup = change.hookGroup ?? undefined;
    if (change.mountPoints) mountPoints = [...change.mountPoints];
    if (change.startCommand !== undefined) startCommand = change.startCommand ?? undefined;
    if (change.startProbe !== undefined) startProbe = change.startProbe ?? undefined;
    if (change.deadlineMs !== undefined) {
      deadline = deadlineFrom(change.deadlineMs, change.sentAtEpochMs ?? Date.now());
    }
  };
  // The end of stdin says the main process ended; /proc (when Deno lets us read it) says so too
  // if someone else holds the pipe open.
  const { pid, startTime } = config;
  const canTell = startTime !== undefined && procReadable();
  const mainAlive = canTell
    ? () => {
      try {
        return isSameProcessAlive(pid, startTime!);
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
    const lines = watchInput(input, update);
    reason = await Promise.race([lines, watched]);
    clearInterval(timer);
    if (reason === "main process gone") {
      // Lines it wrote before it died may still wait in the pipe (a minimum hold among them):
      // its end of the pipe is closed, so they are read at once, up to the end.
      await Promise.race([lines, delay(DRAIN_MS)]);
    }
  }

  let code = 0;
  if (reason === "disarm") {
    say(WatchdogLine.disarmed);
  } else {
    held = [];
    const mounts = mountPoints.join(", ") || "nothing frozen";
    const hold = holdUntil - performance.now();
    if (hold > 0) {
      // A create call may still reach EC2 under its held-until promise: keep it.
      log(`${reason}: holding ${Math.ceil(hold)} ms more (the run's minimum hold)`);
      await delay(hold);
    }
    log(`${reason} (main process ${config.pid}): thawing ${mounts}`);
    // A main process alive past its deadline is stuck (stopped, hung): end it, so that its
    // database session and lock end too. It cannot be killed before it may have thawed, so it
    // is killed first; a process blocked on a frozen file system dies once that is thawed.
    // Only a process known by its start time is killed: never a new one that reuses the pid.
    const stuck = reason === "deadline passed" && config.killAtDeadline === true && canTell &&
      mainAlive();
    if (stuck) {
      try {
        Deno.kill(config.pid, "SIGKILL");
        log(`main process ${config.pid} still running at the deadline: killed`);
      } catch (error) {
        log(`cannot kill main process ${config.pid}: ${(error as Error).message}`);
      }
    }
    if (hookGroup !== undefined) {
      // The hook the main process was running: it must not go on without it.
      try {
        Deno.kill(-hookGroup, "SIGKILL");
        log(`killed the hook's process group ${hookGroup}`);
      } catch { /* ended already */ }
    }
    const results = [];
    for (const mountPoint of [...mountPoints].reverse()) {
      results.push(await thawOne(program, mountPoint, path));
    }
    const lines = held;
    held = undefined;
    for (const line of lines) writeLog(line);
    let killed = true;
    if (stuck) {
      killed = await waitGone(() => !mainAlive());
      if (!killed) log(`main process ${config.pid} did not end within ${KILL_WAIT_MS} ms`);
    }
    // Start only what was stopped: a server that answers all along was not (or runs again).
    const running = startCommand && startProbe
      ? await answersThroughout(startProbe.address, startProbe.waitMs)
      : false;
    if (running) {
      log(`the database answers at ${describeAddress(startProbe!.address)}: not starting it`);
    }
    const started = startCommand && !running ? await runStartCommand(startCommand, path) : true;
    code = results.every(Boolean) && started && killed ? 0 : 1;
    const done = [
      mountPoints.length > 0
        ? `${results.every(Boolean) ? "thawed" : "COULD NOT THAW all of"} ${mounts}`
        : "",
      stuck ? (killed ? "killed the stuck main process" : "COULD NOT END the main process") : "",
      startCommand
        ? (running
          ? "the database runs: not started"
          : started
          ? "started the database"
          : "COULD NOT START the database")
        : "",
    ].filter(Boolean).join("; ");
    const message = `${reason} (main process ${config.pid}): ${done || "nothing to do"}`;
    say(`${WatchdogLine.fired} ${message}`);
    await tellSyslog(logger, `watchdog: ${message}`);
  }
  for (const signal of signals) Deno.removeSignalListener(signal, ignore);
  return code;
}
