/** The freeze dead-man switch: starts and disarms the detached watchdog process. */
import { FreezeError } from "../util/errors.ts";
import type { ArmedWatchdog, StartProbe, Watchdog, WatchdogChange } from "../types/side_effects.ts";
import type { Logger } from "../util/log.ts";
import { procReadable, readProcessStat } from "../host/proc.ts";
import { isTimeout, withDeadline, within } from "../util/deadline.ts";
import { encodeLine, LineReader } from "../util/lines.ts";
import { selfCommand, type SelfCommandOptions, spawnSelf } from "../host/self.ts";
import {
  CONFIG_ON_STDIN,
  WATCHDOG_ARG,
  type WatchdogConfig,
  WatchdogLine,
  type WatchdogUpdate,
} from "./protocol.ts";

/** How to start the watchdog: the same program (host/self.ts), with the hidden first argument. */
export interface WatchdogCommandOptions extends Omit<SelfCommandOptions, "args"> {
  /** The configuration, or "stdin": it is sent later as the first line of stdin. */
  config: WatchdogConfig | "stdin";
}

/**
 * The program and arguments that start the watchdog. A compiled binary runs itself; under
 * `deno run` deno runs the entry module with the same permission flags as the binary has.
 *
 * @example
 * ```ts
 * const config = { pid: 42, mountPoints: ["/data"], deadlineMs: 15_000, sentAtEpochMs: Date.now() };
 * watchdogCommand({ standalone: true, execPath: "/usr/local/bin/ec2-consistent-snapshot", entry: "", config });
 * // { program: "/usr/local/bin/ec2-consistent-snapshot", args: ["__watchdog", "{...}"] }
 * ```
 */
export function watchdogCommand(options: WatchdogCommandOptions): {
  program: string;
  args: string[];
} {
  const config = options.config === "stdin" ? CONFIG_ON_STDIN : JSON.stringify(options.config);
  return selfCommand({ ...options, args: [WATCHDOG_ARG, config] });
}

/** Options of {@linkcode createWatchdog}. */
export interface WatchdogOptions {
  /** Where --debug steps go. */
  log: Logger;
  /** Entry module for `deno run`; default `Deno.mainModule` (ignored in a compiled binary). */
  entry?: string | URL;
  /** How long the watchdog may take to confirm it runs; default 30 s. */
  handshakeTimeoutMs?: number;
  /** How long it may take to confirm a disarm; default 5 s. */
  disarmTimeoutMs?: number;
  /**
   * The watchdog's stderr, where it says what it did: ours (default) or nowhere. Ours is never
   * on a frozen file system: the plan refuses to freeze the one that holds it.
   */
  stderr?: "inherit" | "null";
  /** How often the watchdog checks this process; default 50 ms. */
  pollMs?: number;
  /**
   * At the deadline, SIGKILL this process if it is still alive (stuck), so its database
   * session and lock end; default false. The command sets it; a test process must not.
   */
  killAtDeadline?: boolean;
}

/** What else an armed watchdog does when it fires, besides thawing. */
export interface ArmExtras {
  /** Runs this shell command after the thaw: starts a database that --mysql-stop stopped. */
  startCommand?: string;
  /** Checked before the start command: a server that answers all along is not started. */
  startProbe?: StartProbe;
}

/** A running, armed watchdog. */
export interface ArmedWatchdogProcess extends ArmedWatchdog {
  /** The watchdog's process id. */
  readonly pid: number;
  /**
   * Changes what the watchdog guards: mounts, a new deadline (from now), the start command
   * (null clears it), a minimum hold, a hook's process group. One line on its stdin, read in
   * order: no answer is awaited.
   */
  update(change: WatchdogChange): Promise<void>;
}

/** The real {@linkcode Watchdog}: its armed watchdog also tells its process id. */
export interface ProcessWatchdog extends Watchdog {
  /** Starts the watchdog process ahead, unarmed, so that arming costs one line. */
  prepare(): void;
  /** Arms it for `mountPoints`, `deadlineMs` from now; see {@linkcode Watchdog.arm}. */
  arm(
    mountPoints: readonly string[],
    deadlineMs: number,
    extras?: ArmExtras,
  ): Promise<ArmedWatchdogProcess>;
}

/** The next line; undefined at the end of the stream; "timeout" when none came in time. */
async function nextLine(
  lines: LineReader,
  timeoutMs: number,
): Promise<string | undefined | "timeout"> {
  try {
    return await withDeadline(timeoutMs, (signal) => lines.next(signal));
  } catch (error) {
    if (isTimeout(error)) return "timeout";
    throw error;
  }
}

async function settle(child: Deno.ChildProcess, timeoutMs: number): Promise<boolean> {
  return await within(child.status.then(() => true), timeoutMs) ?? false;
}

/**
 * Makes the real {@linkcode Watchdog}. `arm()` starts the same program detached (its own
 * session and process group, so a signal to ours does not reach it), with `/` as working
 * directory, and resolves once the watchdog confirms it watches. The watchdog thaws the mounts
 * when this process ends without disarming it (the end of its stdin, or this pid gone), or when
 * the deadline passes.
 *
 * @example
 * ```ts
 * import type { Freezer } from "../types/side_effects.ts";
 * import type { Logger } from "../util/log.ts";
 * const freezer = {} as Freezer, log = {} as Logger;
 * const watchdog = createWatchdog({ log });
 * const armed = await watchdog.arm(["/data"], 15_000);
 * await freezer.freeze("/data");
 * // ... snapshot, thaw ...
 * await armed.disarm();
 * ```
 */
export function createWatchdog(options: WatchdogOptions): ProcessWatchdog {
  const { log } = options;
  const handshakeTimeoutMs = options.handshakeTimeoutMs ?? 30_000;
  const disarmTimeoutMs = options.disarmTimeoutMs ?? 5_000;

  /** A watchdog started ahead by prepare(), waiting for its configuration on stdin. */
  let prepared: Deno.ChildProcess | undefined;

  function spawn(config: WatchdogConfig | "stdin"): Deno.ChildProcess {
    const text = config === "stdin" ? CONFIG_ON_STDIN : JSON.stringify(config);
    try {
      return spawnSelf({
        args: [WATCHDOG_ARG, text],
        entry: options.entry,
        stderr: options.stderr ?? "inherit",
      });
    } catch (error) {
      throw new FreezeError(`cannot start the watchdog: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }

  function prepare(): void {
    if (prepared) return;
    try {
      prepared = spawn("stdin");
      // Unarmed, it must not keep this process alive; it ends quietly at the end of its stdin.
      prepared.unref();
    } catch (error) {
      log.debug(`${(error as Error).message}; trying again when arming`);
    }
  }

  /** Arming the watchdog started ahead is one line on its stdin; undefined when it is gone. */
  async function sendToPrepared(config: WatchdogConfig): Promise<Deno.ChildProcess | undefined> {
    const candidate = prepared;
    prepared = undefined;
    if (!candidate) return undefined;
    try {
      const writer = candidate.stdin.getWriter();
      await writer.write(encodeLine(JSON.stringify(config)));
      writer.releaseLock();
      return candidate;
    } catch {
      log.debug(`the watchdog started ahead (${candidate.pid}) is gone; starting another`);
      try {
        candidate.kill("SIGKILL");
      } catch { /* gone */ }
      return undefined;
    }
  }

  async function arm(
    mountPoints: readonly string[],
    deadlineMs: number,
    extras: ArmExtras = {},
  ): Promise<ArmedWatchdogProcess> {
    // Deno 2.9 lets only --allow-all read /proc; without it the watchdog relies on its stdin.
    const startTime = procReadable() ? readProcessStat(Deno.pid)?.startTime : undefined;
    const config: WatchdogConfig = {
      pid: Deno.pid,
      ...(startTime !== undefined ? { startTime } : {}),
      mountPoints: [...mountPoints],
      deadlineMs,
      sentAtEpochMs: Date.now(),
      ...(options.pollMs ? { pollMs: options.pollMs } : {}),
      ...(extras.startCommand ? { startCommand: extras.startCommand } : {}),
      ...(extras.startProbe ? { startProbe: extras.startProbe } : {}),
      ...(options.killAtDeadline ? { killAtDeadline: true } : {}),
    };
    const child = await sendToPrepared(config) ?? spawn(config);
    const lines = new LineReader(child.stdout);
    const first = await nextLine(lines, handshakeTimeoutMs);
    if (first !== WatchdogLine.armed) {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      await lines.cancel();
      await child.stdin.close().catch(() => {});
      await settle(child, 2_000);
      const why = first === "timeout"
        ? `no answer within ${handshakeTimeoutMs} ms`
        : first?.startsWith(WatchdogLine.failed)
        ? first.slice(WatchdogLine.failed.length + 1)
        : "it exited";
      throw new FreezeError(`the watchdog did not start: ${why}`);
    }
    // It must not keep this process alive, nor be waited for when this process ends.
    child.unref();
    log.debug(
      `watchdog ${child.pid} armed for ${mountPoints.join(", ")} (deadline ${deadlineMs} ms)`,
    );

    let disarmed = false;
    /** The last line's write: one writer at a time (a second getWriter() would throw). */
    let writing: Promise<void> = Promise.resolve();
    function writeInOrder(text: string): Promise<void> {
      const next = writing.then(async () => {
        const writer = child.stdin.getWriter();
        try {
          await writer.write(encodeLine(text));
        } finally {
          writer.releaseLock();
        }
      });
      writing = next.catch(() => {});
      return next;
    }

    async function update(change: WatchdogChange): Promise<void> {
      if (disarmed) return;
      const line: WatchdogUpdate = {
        ...(change.mountPoints ? { mountPoints: [...change.mountPoints] } : {}),
        ...(change.deadlineMs !== undefined
          ? { deadlineMs: change.deadlineMs, sentAtEpochMs: Date.now() }
          : {}),
        ...(change.startCommand !== undefined ? { startCommand: change.startCommand } : {}),
        ...(change.holdMs !== undefined ? { holdMs: change.holdMs } : {}),
        ...(change.hookGroup !== undefined ? { hookGroup: change.hookGroup } : {}),
      };
      try {
        await writeInOrder(JSON.stringify(line));
      } catch (error) {
        throw new FreezeError(`the watchdog ${child.pid} is gone: ${(error as Error).message}`, {
          cause: error,
        });
      }
      log.debug(`watchdog ${child.pid} updated: ${Object.keys(line).join(", ")}`);
    }

    async function disarm(): Promise<void> {
      if (disarmed) return;
      disarmed = true;
      await writing; // an update still being written goes first
      const writer = child.stdin.getWriter();
      try {
        await writer.write(encodeLine(WatchdogLine.disarm));
        await writer.close();
      } catch { /* the watchdog is gone: what it said tells why */ }
      const said: string[] = [];
      let line: string | undefined | "timeout";
      while ((line = await nextLine(lines, disarmTimeoutMs)) !== undefined && line !== "timeout") {
        said.push(line);
      }
      if (line === "timeout") {
        log.warn(`watchdog ${child.pid} did not confirm the disarm; killing it`);
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
        await lines.cancel();
      }
      if (!await settle(child, 2_000)) log.warn(`watchdog ${child.pid} did not exit`);
      const fired = said.find((s) => s.startsWith(WatchdogLine.fired));
      if (fired) {
        log.warn(
          `the watchdog acted before the disarm: ${fired.slice(WatchdogLine.fired.length + 1)}`,
        );
      } else if (said.includes(WatchdogLine.disarmed)) {
        log.debug(`watchdog ${child.pid} disarmed`);
      } else if (line !== "timeout") {
        log.warn(`watchdog ${child.pid} ended without confirming the disarm`);
      }
    }
    return { pid: child.pid, disarm, update };
  }

  return { prepare, arm };
}
