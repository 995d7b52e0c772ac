/** `--hold`: starts the detached holder, relays what it says, and returns once everything is held. */
import { AppError, ExitCode, HoldEndedError } from "../util/errors.ts";
import type { Logger } from "../util/log.ts";
import { spawnSelf } from "../host/self.ts";
import { encodeLine, LineReader } from "../util/lines.ts";
import { writeStderr } from "../util/log.ts";
import { within } from "../util/deadline.ts";
import type { HoldPlan } from "../plan/hold_plan.ts";
import { type HeldMessage, HOLDER_ARG, HoldLine, type HoldRequest } from "./protocol.ts";
import { ensureStateDir, type StatePaths } from "./state.ts";

/** Options of {@linkcode startHold}. */
export interface StartHoldOptions {
  /** Where --debug steps go. */
  log: Logger;
  /** The state directory and its files. */
  paths: StatePaths;
  /** Writes a relayed log line (already formatted by the holder's logger); default stderr. */
  relay?: (line: string) => void;
  /** Entry module for `deno run`; default `Deno.mainModule` (ignored in a compiled binary). */
  entry?: string | URL;
}

/**
 * Why the holder's output ended before it said `held` or `failed`: killed (SIGKILL: by its
 * watchdog when stopped or stuck past a step's bound, or by someone else), exit 17; a holder
 * that exited by itself without a word is a bug, exit 1.
 */
async function endedWithoutHolding(child: Deno.ChildProcess, paths: StatePaths): Promise<AppError> {
  const status = await within(child.status, 5_000);
  if (status?.signal) {
    return new HoldEndedError(
      `--hold: the holder (pid ${child.pid}) was killed by ${status.signal} before everything ` +
        "was held (stopped or stuck past a step's bound, its watchdog ends it; or someone " +
        `killed it); what it took is released by its watchdog; see ${paths.log}`,
    );
  }
  return new AppError(
    `--hold: the holder (pid ${child.pid}) ended without holding ` +
      `(exit ${status?.code ?? "unknown"}); see ${paths.log}`,
    ExitCode.internal,
  );
}

/**
 * Starts the holder in its own session (so that the end of the caller's process group does
 * not reach it) with `/` as working directory, sends it the plan, and resolves once it confirms
 * that everything is held. Throws the holder's error (its exit code) when it could not hold.
 *
 * @example
 * ```ts
 * import type { HoldPlan } from "../plan/hold_plan.ts";
 * import { statePaths } from "./state.ts";
 * import type { Logger } from "../util/log.ts";
 * const plan = {} as HoldPlan, log = {} as Logger;
 * const held = await startHold(plan, { log, paths: statePaths(plan.runDir) });
 * // held.deadlineAt: when the holder releases by itself
 * ```
 */
export async function startHold(plan: HoldPlan, options: StartHoldOptions): Promise<HeldMessage> {
  const { log, paths } = options;
  const relay = options.relay ?? ((line: string) => writeStderr(line + "\n"));
  ensureStateDir(paths);
  let child: Deno.ChildProcess;
  try {
    child = spawnSelf({ args: [HOLDER_ARG], entry: options.entry, stderr: "null" });
  } catch (error) {
    throw new AppError(`cannot start the holder: ${(error as Error).message}`, ExitCode.internal);
  }
  const request: HoldRequest = { plan, stateDir: paths.dir };
  const writer = child.stdin.getWriter();
  const send = (line: string) => writer.write(encodeLine(line));
  // A holder gone at once (its output ends) is told apart below.
  await send(JSON.stringify(request)).catch(() => {});
  log.debug(`holder ${child.pid} started`);
  const lines = new LineReader(child.stdout);
  try {
    while (true) {
      // No time limit of our own: the lock's tries and timeouts bound the holder's work.
      const line = await lines.next();
      if (line === undefined) throw await endedWithoutHolding(child, paths);
      const space = line.indexOf(" ");
      const word = space < 0 ? line : line.slice(0, space);
      const rest = space < 0 ? "" : line.slice(space + 1);
      if (word === HoldLine.log) {
        relay(rest);
      } else if (word === HoldLine.held) {
        await send(HoldLine.ok);
        return JSON.parse(rest) as HeldMessage;
      } else if (word === HoldLine.failed) {
        const [code, ...message] = rest.split(" ");
        throw new AppError(message.join(" "), Number(code) || ExitCode.internal);
      }
    }
  } finally {
    await writer.close().catch(() => {});
    await lines.cancel();
    // It must not keep this process alive, nor be waited for when this process ends.
    child.unref();
  }
}
