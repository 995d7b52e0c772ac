/** `--release`: asks the holder to release, and reads what it measured; or says why nothing is held. */
import { type AppError, HoldEndedError, NotHeldError, PreflightError } from "../util/errors.ts";
import { readProcessStat } from "../host/proc.ts";
import { WATCHDOG_MARGIN_MS } from "../plan/window.ts";
import type { Logger } from "../util/log.ts";
import { HoldLine } from "./protocol.ts";
import { writeLine } from "../util/lines.ts";
import {
  holderAlive,
  type HoldRecord,
  readHold,
  readRelease,
  recordExists,
  type ReleaseRecord,
  removeStaleHold,
  type StatePaths,
} from "./state.ts";

/** How long the holder may take to release (a post-thaw command, a database start). */
const RELEASE_TIMEOUT_MS = 300_000;
/** A holder stopped (SIGSTOP) this long is taken for one that will not answer. */
const STOPPED_MS = 2_000;

const at = (epochMs: number) => new Date(epochMs).toISOString();

/**
 * Why nothing is held, from the record of the last release (or its absence): a hold that ended
 * before its --release (exit 17), or none to release at all (exit 14).
 */
function nothingHeld(last: ReleaseRecord | undefined, paths: StatePaths): AppError {
  if (!last) {
    return new NotHeldError(
      recordExists(paths.released)
        ? `--release: nothing is held (the record of the last release, ${paths.released}, is ` +
          "damaged and was ignored)"
        : "--release: nothing is held",
    );
  }
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

/** How the holder is while --release waits for its answer. */
type Holder = "running" | "gone" | "stopped";

function holderState(record: HoldRecord): Holder {
  if (!holderAlive(record)) return "gone";
  return /^[Tt]$/.test(readProcessStat(record.pid)?.state ?? "") ? "stopped" : "running";
}

/**
 * Asks the holder to release and reads its answer; undefined when none came: the holder ended
 * (killed) or stayed stopped (SIGSTOP) for STOPPED_MS, or RELEASE_TIMEOUT_MS passed.
 */
async function ask(socket: string, record: HoldRecord): Promise<ReleaseRecord | undefined> {
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
    // A holder that is gone or stopped will not answer: no reason to wait for it.
    let stoppedSince: number | undefined;
    const watch = setInterval(() => {
      const state = holderState(record);
      stoppedSince = state === "stopped" ? stoppedSince ?? performance.now() : undefined;
      if (
        state === "gone" ||
        (stoppedSince !== undefined && performance.now() - stoppedSince >= STOPPED_MS)
      ) {
        try {
          conn.close();
        } catch { /* closed */ }
      }
    }, 100);
    try {
      while (!text.includes("\n")) {
        const n = await conn.read(buffer);
        if (n === null) break;
        text += decoder.decode(buffer.subarray(0, n), { stream: true });
      }
    } finally {
      clearTimeout(timer);
      clearInterval(watch);
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

/** Why the holder gave no answer: killed, stopped, or stuck (exit 17: not consistent). */
function unanswered(record: HoldRecord, paths: StatePaths): AppError {
  const by = record.deadlineAt === undefined
    ? "its deadline"
    : `${at(record.deadlineAt + WATCHDOG_MARGIN_MS)}`;
  switch (holderState(record)) {
    case "gone":
      return new HoldEndedError(
        `--release: the holder (pid ${record.pid}) ended without answering (killed); its ` +
          "watchdog thawed the file systems, and a database lock ended with its connection",
      );
    case "stopped":
      return new HoldEndedError(
        `--release: the holder (pid ${record.pid}) is stopped (SIGSTOP) and cannot release; ` +
          `its watchdog ends it and releases everything by ${by}`,
      );
    default:
      return new HoldEndedError(
        `--release: the holder (pid ${record.pid}) did not answer within ` +
          `${RELEASE_TIMEOUT_MS / 1000} s; its watchdog ends it by ${by}; see ${paths.log}`,
      );
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
  if (status.kind === "none") {
    if (recordExists(paths.hold)) {
      throw new PreflightError(
        `--release: the hold record ${paths.hold} is damaged: which process holds cannot be ` +
          "told, so nothing was released (a holder releases by itself at its deadline)",
      );
    }
    throw nothingHeld(readRelease(paths), paths);
  }
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
  const asked = await ask(paths.socket, record);
  const recorded = readRelease(paths);
  const answer = asked ?? (recorded?.heldAt === record.heldAt ? recorded : undefined);
  if (!answer) throw unanswered(record, paths);
  if (answer.by !== "release") throw nothingHeld(answer, paths);
  return answer;
}
