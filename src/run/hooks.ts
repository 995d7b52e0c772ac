/** --pre-freeze-command and --post-thaw-command: shell commands run around the freeze. */
import { HookError } from "../util/errors.ts";
import type { Hooks } from "../types/side_effects.ts";
import type { Logger } from "../util/log.ts";
import { ProgramError, type ProgramResult, runProgram, shellCommand } from "../host/programs.ts";

/** Options of {@linkcode createHooks}. */
export interface HooksOptions {
  /** Where --debug steps go. */
  log: Logger;
  /** The shell; default `/bin/sh` (an absolute path: cron's PATH is short). */
  shell?: string;
  /** Append the commands' output (stdout and stderr) to this file instead of passing it through. */
  outputFile?: string;
  /**
   * Bound of each command (--hook-timeout, default 30 s): they run while the database is
   * locked. Past it the command and everything it started are killed.
   */
  timeoutMs?: number;
}

/**
 * Makes the real {@linkcode Hooks}: `sh -c COMMAND` with no input, its output (stdout too)
 * sent to our stderr, since our stdout carries only the snapshot ids or the JSON report, in a
 * process group of its own that is killed whole at the time limit. A non-zero exit, a signal,
 * the time limit or a shell that cannot be started is a HookError naming the option.
 *
 * @example
 * ```ts
 * import { silentLogger } from "../util/log.ts";
 * const hooks = createHooks({ log: silentLogger });
 * await hooks.run("pre-freeze", "systemctl stop my-app-writer");
 * ```
 */
export function createHooks(options: HooksOptions): Hooks {
  const { log } = options;
  const shell = options.shell ?? "/bin/sh";
  const timeoutMs = options.timeoutMs ?? 30_000;
  return {
    async run(which, command, runOptions = {}) {
      const option = `--${which}-command`;
      log.debug(`${option}: ${shell} -c ${JSON.stringify(command)}`);
      let status: ProgramResult;
      try {
        const [program, args] = shellCommand(command, {
          shell,
          stdoutToStderr: true,
          appendTo: options.outputFile,
        });
        status = await runProgram(program, args, {
          output: "inherit",
          cwd: null,
          timeoutMs,
          group: true,
          onStart: runOptions.onStart,
        });
      } catch (error) {
        if (error instanceof ProgramError && error.details.kind === "timeout") {
          throw new HookError(
            `${option} did not finish within ${timeoutMs / 1000} s; killed (with what it ` +
              "started); see --hook-timeout",
          );
        }
        const cause = error instanceof ProgramError ? error.details.cause : error;
        throw new HookError(`${option}: cannot run ${shell}: ${(cause as Error).message}`, {
          cause,
        });
      }
      if (status.signal) throw new HookError(`${option} was killed by ${status.signal}`);
      if (status.code !== 0) {
        throw new HookError(`${option} failed with exit code ${status.code}`);
      }
      log.debug(`${option}: done`);
    },
  };
}
