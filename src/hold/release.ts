/** `--release`: asks the holder to release, and reads what it measured; or says why nothing is held. */
import { AppError, ExitCode, HoldEndedError, NotHeldError } from "../util/errors.ts";
import type { Logger } from "../util/log.ts";
import { HoldLine } from "./protocol.ts";
import { writeLine } from "../util/lines.ts";
import {
  type HoldRecord,
  readHold,
  readRelease,
  type ReleaseRecord,
  removeStaleHold,
  type StatePaths,
} from "./state.ts";

/** How long the holder may take to release (a post-thaw command, a database start). */
const RELEASE_TIMEOUT_MS = 300_000;

const at = (epochMs: number) => new Date(epochMs).toISOString();

/**
 * Why nothing is held, from the record of the last release (or its absence): a hold that ended
 * before its --release (exit 17), or none to release at all (exit 14).
 */
function nothingHeld(last: ReleaseRecord | undefined): AppError {
  if (!last) return new NotHeldError("--release: nothing is held");
  switch (last.by) {
    case "deadline":
      return new HoldEndedError(
        `--release: nothing is held: released by the deadline at ${at(last.releasedAt)} ` +
          `(held since ${at(last.heldAt)})`,
      );
    case "signal":
      return new HoldEndedError(
        `--release: nothing is held: the holder was stopped by a signal and released at ` +
          at(last.releasedAt),
      );
    case "caller gone":
      return new HoldEndedError(
        `--release: nothing is held: the caller of --hold went away before it learnt of the ` +
          `hold, which was released at ${at(last.releasedAt)}`,
      );
    default:
      return new NotHeldError(
        `--release: nothing is held: the last hold was released at ${at(last.releasedAt)}`,
      );
  }
}

async function ask(socket: string): Promise<ReleaseRecord | undefined> {
  let conn: Deno.UnixConn;
  try {
    conn = await Deno.connect({ transport: "unix", path: socket });
  } catch {
    return undefined; // gone in between: the release record tells what happened
  }
  try {
    await writeLine(conn, HoldLine.release);
    const decoder = new TextDecoder();
    const buffer = new Uint8Array(65_536);
    let text = "";
    const timer = setTimeout(() => conn.close(), RELEASE_TIMEOUT_MS);
    try {
      while (!text.includes("\n")) {
        const n = await conn.read(buffer);
        if (n === null) break;
        text += decoder.decode(buffer.subarray(0, n), { stream: true });
      }
    } finally {
      clearTimeout(timer);
    }
    const line = text.split("\n")[0];
    return line ? JSON.parse(line) as ReleaseRecord : undefined;
  } catch {
    return undefined;
  } finally {
    try {
      conn.close();
    } catch { /* closed by the timer */ }
  }
}

/**
 * Releases the hold in place and returns what it measured. Throws HoldEndedError (exit 17) when
 * the hold ended before (its deadline, a holder that died or was stopped), NotHeldError (exit 14)
 * when there was none to release.
 *
 * @example
 * ```ts
 * import { statePaths } from "./state.ts";
 * import type { Logger } from "../util/log.ts";
 * const log = {} as Logger;
 * const record = await releaseHold(statePaths("/run/ec2-consistent-snapshot"), log);
 * record.timings.freezeWindowMs;
 * ```
 */
export async function releaseHold(paths: StatePaths, log: Logger): Promise<ReleaseRecord> {
  const status = readHold(paths);
  if (status.kind === "none") throw nothingHeld(readRelease(paths));
  if (status.kind === "stale") {
    removeStaleHold(paths, status.record);
    throw new HoldEndedError(
      `--release: nothing is held: the holder (pid ${status.record.pid}) ended without ` +
        "releasing; its watchdog thawed the file systems, and a database lock ended with its " +
        "connection",
    );
  }
  const record: HoldRecord = status.record;
  if (record.state !== "held") {
    throw new NotHeldError(
      `--release: nothing is held yet: the hold by process ${record.pid} is still being taken`,
    );
  }
  log.debug(`asking the holder (pid ${record.pid}) to release`);
  const answer = await ask(paths.socket) ?? readRelease(paths);
  if (!answer || answer.heldAt !== record.heldAt) {
    throw new AppError(
      `--release: the holder (pid ${record.pid}) did not answer; see ${paths.log}`,
      ExitCode.internal,
    );
  }
  if (answer.by !== "release") throw nothingHeld(answer);
  return answer;
}
