/**
 * What `--hold` and the holder say to each other over the holder's stdin and stdout, and what
 * `--release` says over the holder's unix socket.
 *
 * `--hold` writes the request (one JSON line) on the holder's stdin. The holder answers with
 * lines on its stdout: `log LINE` (relayed to the caller's stderr), then either
 * `held JSON` or `failed CODE MESSAGE`. After `held`, `--hold` writes `ok` and exits; a holder
 * that sees the end of its stdin without `ok` knows that nobody learnt of the hold, and
 * releases at once. `--release` connects to the socket, writes `release`, and reads one JSON
 * line: the {@linkcode ReleaseRecord}, once everything is released.
 */
import type { HoldPlan } from "../plan/hold_plan.ts";
import type { BinlogCoordinates, WalPosition } from "../types/side_effects.ts";

/** The hidden first argument that makes the program the holder (`main.ts` dispatches on it). */
export const HOLDER_ARG = "__holder";

/** The first line the holder reads. */
export interface HoldRequest {
  /** What to hold, checked by `--hold`. */
  plan: HoldPlan;
  /** The state directory (the caller's $ECS_RUN_DIR or the default). */
  stateDir: string;
}

/** What the holder tells once everything is held. */
export interface HeldMessage {
  /** The holder's process id. */
  pid: number;
  /** When everything was held (epoch milliseconds). */
  heldAt: number;
  /** When the holder releases by itself (epoch milliseconds). */
  deadlineAt: number;
  /** The binary-log position taken while the database was locked. */
  binlog?: BinlogCoordinates;
  /** PostgreSQL: the WAL position and timeline at the freeze. */
  wal?: WalPosition;
}

/** The words of the protocol. */
export const HoldLine = {
  log: "log",
  held: "held",
  failed: "failed",
  ok: "ok",
  release: "release",
} as const;

/** How long the holder waits for `ok` after `held` before it takes the caller for gone. */
export const CONFIRM_TIMEOUT_MS = 10_000;
