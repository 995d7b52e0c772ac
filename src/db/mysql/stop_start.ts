/** Holding MySQL/MariaDB by stopping it (--mysql-stop): the stop command, then the start command, each bounded and checked. */
import { DatabaseError } from "../../util/errors.ts";
import type { Database } from "../../types/side_effects.ts";
import type { Logger } from "../../util/log.ts";
import { deadline, delay, within } from "../../util/deadline.ts";
import { ProgramError, runProgram, shellCommand } from "../../host/programs.ts";
import { describeMysqlSettings, type MysqlPlan, mysqlWhere } from "../../types/database_plans.ts";
import { accepting, connect, type Connection } from "./connection.ts";

const POLL_MS = 250;

/** The outcome of a shell command. */
export interface CommandResult {
  /** Exit code 0, not killed. */
  success: boolean;
  /** The exit code (128 + the signal when killed). */
  code: number;
}

/** What {@linkcode MysqlStopStart} needs besides its plan; all but `log` have defaults. */
export interface MysqlStopStartDeps {
  /** Where --debug lines and warnings go. */
  log: Logger;
  /** Runs a shell command; default `sh -c` (host/programs.ts), its stdout sent to stderr. */
  runCommand?: (command: string, signal: AbortSignal) => Promise<CommandResult>;
  /** Bound of one connection attempt. Default 10 s (5 s at most for the probes). */
  connectTimeoutMs?: number;
  /** Bound of the stop command. Default 60 s. */
  stopTimeoutMs?: number;
  /**
   * Bound of the wait, after the stop command exited 0, for the server to go (our connection
   * to it ends, its address stops answering). Default 15 s.
   */
  stopConfirmMs?: number;
  /** Bound of the wait for the server to accept connections after the start. Default 60 s. */
  startTimeoutMs?: number;
}

async function runShell(command: string, signal: AbortSignal): Promise<CommandResult> {
  // stdout goes to stderr: our stdout carries only the snapshot ids.
  const [sh, args] = shellCommand(command, { shell: "sh", stdoutToStderr: true });
  const result = await runProgram(sh, args, { output: "inherit", signal, cwd: null });
  return { success: result.code === 0 && result.signal === null, code: result.code };
}

/**
 * The Database of --mysql-stop: prepare() checks a server runs, lock() stops it (and starts it
 * again when stopping fails), release() starts it and waits until it accepts connections.
 *
 * @example
 * ```ts
 * import type { MysqlPlan } from "../../types/database_plans.ts";
 * import type { Logger } from "../../util/log.ts";
 * const plan = {} as MysqlPlan, log = {} as Logger, signal = {} as AbortSignal;
 * const db = new MysqlStopStart(plan, { log });
 * await db.prepare();
 * try { await db.lock(signal); } finally { await db.release(); }
 * ```
 */
export class MysqlStopStart implements Database {
  readonly #plan: MysqlPlan;
  readonly #commands: { stop: string; start: string };
  readonly #deps: MysqlStopStartDeps;
  readonly #log: Logger;
  #stopAttempted = false;
  /** The stop command ran, but the server we are connected to did not go: nothing to start. */
  #notStopped = false;
  #released = false;
  /** A connection held from prepare(): the server that the stop command stops ends it. */
  #sentinel?: Connection;
  #sentinelEnded = false;

  /** `plan.commands` must be set (the plan does when `stop` is). */
  constructor(plan: MysqlPlan, deps: MysqlStopStartDeps) {
    if (!plan.commands) throw new Error("MysqlStopStart: the plan has no stop/start commands");
    this.#plan = plan;
    this.#commands = plan.commands;
    this.#deps = deps;
    this.#log = deps.log;
  }

  /** The longest lock() takes: the stop command, then the wait for the server to go. */
  get lockBoundMs(): number {
    return (this.#deps.stopTimeoutMs ?? 60_000) + this.#confirmMs + 10_000;
  }

  get #confirmMs(): number {
    return this.#deps.stopConfirmMs ?? 15_000;
  }

  /**
   * Whether the server is still down (before the thaw): undefined when it is; else that it
   * answers again (someone started it while the snapshots were made).
   */
  async stillHeld(): Promise<string | undefined> {
    if (!this.#stopAttempted || this.#notStopped || !await this.#accepting()) return undefined;
    return `the server at ${mysqlWhere(this.#plan.settings)} answers again: someone started it ` +
      "while it was to be stopped";
  }

  /** Checks that a server runs there; connects no further. */
  async prepare(): Promise<void> {
    this.#log.debug(describeMysqlSettings(this.#plan.settings));
    this.#log.debug(
      `MySQL stop command: ${this.#commands.stop}; start command: ${this.#commands.start}`,
    );
    if (!await this.#accepting()) {
      throw new DatabaseError(
        `MySQL: --mysql-stop: no server is running at ${mysqlWhere(this.#plan.settings)}`,
      );
    }
    // Held until release: its end says that the server we talk to is the one that stopped.
    try {
      const sentinel = await connect(this.#plan.settings, {
        purpose: "stop check",
        log: this.#log,
        timeoutMs: Math.min(this.#deps.connectTimeoutMs ?? 10_000, 5_000),
      });
      const ended = () => this.#sentinelEnded = true;
      sentinel.on("end", ended);
      sentinel.on("error", ended);
      this.#sentinel = sentinel;
    } catch (error) {
      // No login (stop and start need none): the address alone tells that it went.
      this.#log.debug(`MySQL: no connection to watch the stop: ${(error as Error).message}`);
    }
  }

  /** Stops the server; a failed stop starts it again before it throws. */
  async lock(signal: AbortSignal): Promise<undefined> {
    try {
      return await this.#stop(signal);
    } catch (error) {
      // Start it again now: a failed stop must not leave the server down.
      await this.release().catch((releaseError) =>
        this.#log.error(`MySQL: start after failed stop: ${releaseError.message}`)
      );
      throw error;
    }
  }

  /** Starts the server again when a stop was attempted; safe to call twice. */
  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    this.#sentinel?.destroy();
    this.#sentinel = undefined;
    // Start only what was stopped.
    if (!this.#stopAttempted || this.#notStopped) return;
    try {
      await this.#start();
    } catch (error) {
      throw new DatabaseError(`MySQL release: ${(error as Error).message}`, { cause: error });
    }
  }

  #accepting(): Promise<boolean> {
    return accepting(this.#plan.settings, Math.min(this.#deps.connectTimeoutMs ?? 10_000, 5_000));
  }

  async #waitFor(wanted: boolean, timeoutMs: number): Promise<boolean> {
    const until = Date.now() + timeoutMs;
    while (true) {
      if (await this.#accepting() === wanted) return true;
      if (Date.now() >= until) return false;
      await delay(POLL_MS);
    }
  }

  /**
   * True once the server has gone (within the confirmation bound): its address no longer
   * answers, and our connection to it (when there is one) has ended.
   */
  async #gone(): Promise<boolean> {
    const until = Date.now() + this.#confirmMs;
    while (true) {
      const ended = this.#sentinel === undefined || this.#sentinelEnded || await this.#pingFails();
      if (ended && !await this.#accepting()) return true;
      if (Date.now() >= until) return false;
      await delay(POLL_MS);
    }
  }

  /** True when the held connection no longer answers (the server ended it). */
  async #pingFails(): Promise<boolean> {
    const sentinel = this.#sentinel!;
    const answered = await within(sentinel.query("SELECT 1").then(() => true, () => false), 2_000);
    if (answered !== true) this.#sentinelEnded = true;
    return answered !== true;
  }

  async #command(command: string, signal: AbortSignal): Promise<CommandResult> {
    this.#log.debug(`MySQL: ${command}`);
    const run = this.#deps.runCommand ?? runShell;
    try {
      return await run(command, signal);
    } catch (error) {
      if (error instanceof ProgramError && error.details.kind !== "start") {
        // Killed (SIGKILL) at its time limit or by a stop signal: a command that failed.
        return { success: false, code: 137 };
      }
      const cause = error instanceof ProgramError ? error.details.cause : error;
      throw new DatabaseError(`MySQL: ${command}: ${(cause as Error).message}`, { cause });
    }
  }

  async #stop(signal: AbortSignal): Promise<undefined> {
    const { stop } = this.#commands;
    const timeoutMs = this.#deps.stopTimeoutMs ?? 60_000;
    // From here on release() starts the server again, whatever happens.
    this.#stopAttempted = true;
    const bounded = deadline(timeoutMs, signal);
    const result = await this.#command(stop, bounded);
    if (signal.aborted) throw new DatabaseError("MySQL stop: interrupted");
    if (!result.success) {
      throw new DatabaseError(`MySQL: stop command failed (exit ${result.code}): ${stop}`);
    }
    if (!await this.#gone()) {
      this.#notStopped = !this.#sentinelEnded;
      const where = mysqlWhere(this.#plan.settings);
      throw new DatabaseError(
        this.#notStopped
          ? `MySQL: --mysql-stop: the stop command exited 0, but the server at ${where} still ` +
            `answers ${this.#confirmMs / 1000} s later${
              this.#sentinel ? " and our connection to it is open" : ""
            }: the command stops another server, or none; nothing was stopped, so nothing is ` +
            `started (check --mysql-stop-command: ${stop})`
          : `MySQL: server at ${where} still accepts connections ${this.#confirmMs / 1000} s ` +
            `after the stop command: ${stop}`,
      );
    }
    this.#log.debug("MySQL: server stopped");
    return undefined;
  }

  async #start(): Promise<void> {
    const { start } = this.#commands;
    const timeoutMs = this.#deps.startTimeoutMs ?? 60_000;
    if (await this.#accepting()) {
      this.#log.debug("MySQL: server already accepts connections; not starting it");
      return;
    }
    const result = await this.#command(start, deadline(timeoutMs));
    if (!result.success) {
      throw new DatabaseError(`MySQL: start command failed (exit ${result.code}): ${start}`);
    }
    if (!await this.#waitFor(true, timeoutMs)) {
      throw new DatabaseError(
        `MySQL: server at ${mysqlWhere(this.#plan.settings)} does not accept connections ` +
          `${timeoutMs / 1000} s after the start command: ${start}`,
      );
    }
    this.#log.debug("MySQL: server started and accepts connections");
  }
}
