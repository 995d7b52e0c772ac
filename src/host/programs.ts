/** The one way to run a program: Deno.Command, no input, a time limit or signal, stderr captured or passed through. */
import { abortable, deadline, isTimeout } from "../util/deadline.ts";

/** Why a program did not give a result. */
export class ProgramError extends Error {
  /**
   * @example
   * ```ts
   * throw new ProgramError("sync did not finish within 100 ms", { kind: "timeout" });
   * ```
   */
  /** `details.kind` says why; `details.cause` is the underlying error, if any. */
  constructor(
    message: string,
    readonly details: { kind: "start" | "timeout" | "aborted"; cause?: unknown },
  ) {
    super(message, { cause: details.cause });
    this.name = "ProgramError";
  }
}

/** The outcome of a program that ran to its end. */
export interface ProgramResult {
  /** The exit code. */
  code: number;
  /** The signal that ended it, if one did. */
  signal: Deno.Signal | null;
  /** Standard error in one line (whitespace collapsed); "" unless captured. */
  stderr: string;
}

/** Options of {@linkcode runProgram}. */
export interface RunProgramOptions {
  /** Give up after this long; the program is killed (if the kernel lets it). */
  timeoutMs?: number;
  /** The caller's signal (a stop signal): aborting it kills the program. */
  signal?: AbortSignal;
  /** PATH for the program (so scripts such as xfs_freeze find their helpers under cron). */
  path?: string;
  /** "capture": stdout dropped, stderr kept for the result; "inherit": both passed through. */
  output?: "capture" | "inherit";
  /** Working directory; default `/` (never a file system that may be frozen); null: ours. */
  cwd?: string | null;
  /**
   * Runs it in a process group of its own (a new session), and at the timeout or abort kills
   * the whole group: what it started in the background dies with it.
   */
  group?: boolean;
  /** Told the program's pid once it runs (with `group`, also its process group's id). */
  onStart?: (pid: number) => void;
}

/**
 * One line from a program's output.
 *
 * @example
 * ```ts
 * oneLine(new TextEncoder().encode("fsfreeze: cannot open\n  /x\n")); // "fsfreeze: cannot open /x"
 * ```
 */
export function oneLine(bytes: Uint8Array): string {
  return new TextDecoder().decode(bytes).replace(/\s+/g, " ").trim();
}

/**
 * Runs a program with no input and its working directory at `/`, bounded by `timeoutMs` and
 * `signal`. Throws ProgramError when it cannot be started ("start"), does not finish in time
 * ("timeout") or the signal aborts ("aborted"); then it is killed and not waited for.
 *
 * @example
 * ```ts
 * const result = await runProgram("/usr/sbin/fsfreeze", ["-f", "/data"], { timeoutMs: 60_000 });
 * if (result.code !== 0) throw new Error(result.stderr);
 * ```
 */
export async function runProgram(
  program: string,
  args: readonly string[],
  options: RunProgramOptions = {},
): Promise<ProgramResult> {
  const shown = [program, ...args].join(" ");
  const capture = (options.output ?? "capture") === "capture";
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(program, {
      args: [...args],
      ...(options.cwd === null ? {} : { cwd: options.cwd ?? "/" }),
      stdin: "null",
      ...(options.group ? { detached: true } : {}),
      stdout: capture ? "null" : "inherit",
      stderr: capture ? "piped" : "inherit",
      ...(options.path ? { env: { PATH: options.path } } : {}),
    }).spawn();
    options.onStart?.(child.pid);
  } catch (error) {
    throw new ProgramError(`cannot run ${shown}: ${(error as Error).message}`, {
      kind: "start",
      cause: error,
    });
  }
  const bound = options.timeoutMs !== undefined
    ? deadline(options.timeoutMs, options.signal)
    : options.signal;
  const output = capture
    ? child.output()
    : child.status.then((s) => ({ ...s, stderr: new Uint8Array() }));
  if (!bound) return finished(await output);
  try {
    return finished(await abortable(output, bound));
  } catch (error) {
    if (!bound.aborted) throw error;
  }
  // A process blocked in the kernel (a freeze waiting on a sync) may not die at once; do not
  // wait for it, and do not let it keep this process alive.
  try {
    if (options.group) Deno.kill(-child.pid, "SIGKILL");
    else child.kill("SIGKILL");
  } catch { /* already gone */ }
  child.unref();
  output.catch(() => {});
  if (isTimeout(bound.reason) && !options.signal?.aborted) {
    throw new ProgramError(`${shown} did not finish within ${options.timeoutMs} ms`, {
      kind: "timeout",
    });
  }
  throw new ProgramError(`${shown}: interrupted`, { kind: "aborted", cause: bound.reason });
}

function finished(status: { code: number; signal: Deno.Signal | null; stderr: Uint8Array }) {
  return { code: status.code, signal: status.signal, stderr: oneLine(status.stderr) };
}

/**
 * The program and arguments that run `command` with `sh -c`; with `stdoutToStderr`, the
 * command's stdout goes to stderr (our stdout carries only the snapshot ids); with `appendTo`,
 * its stdout and stderr are appended to that file (the holder of hold mode has no terminal).
 *
 * @example
 * ```ts
 * const [sh, args] = shellCommand("systemctl stop mariadb", { stdoutToStderr: true });
 * await runProgram(sh, args, { output: "inherit", timeoutMs: 60_000 });
 * ```
 */
export function shellCommand(
  command: string,
  options: { shell?: string; stdoutToStderr?: boolean; appendTo?: string } = {},
): [string, string[]] {
  const shell = options.shell ?? "/bin/sh";
  // sh -c SCRIPT NAME COMMAND: $0 is the file, $1 the command, neither parsed by us.
  if (options.appendTo !== undefined) {
    return [shell, ["-c", 'exec >>"$0" 2>&1; eval "$1"', options.appendTo, command]];
  }
  return options.stdoutToStderr
    ? [shell, ["-c", 'exec 1>&2; eval "$1"', "sh", command]]
    : [shell, ["-c", command]];
}
