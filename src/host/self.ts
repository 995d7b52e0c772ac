/** Running this program again, detached, in a hidden mode (the watchdog, the holder of hold mode). */
import { fileURLToPath } from "node:url";
import { RUN_FLAGS } from "./permissions.ts";

/** How this program was started: enough to start it again. */
export interface SelfCommandOptions {
  /** True in a `deno compile` binary (`Deno.build.standalone`). */
  standalone: boolean;
  /** `Deno.execPath()`: the binary itself when standalone, else the deno executable. */
  execPath: string;
  /** The program's entry module (path or file: URL), used under `deno run`. */
  entry: string | URL;
  /** The arguments: the hidden mode's first argument, then its own. */
  args: readonly string[];
}

/**
 * The program and arguments that run this program again with `args` (a hidden mode: the
 * watchdog, the holder of hold mode): the binary itself, or deno with the binary's flags.
 *
 * @example
 * ```ts
 * import { selfCommand } from "./self.ts";
 * selfCommand({ standalone: false, execPath: Deno.execPath(), entry: Deno.mainModule, args: ["__holder"] });
 * // { program: ".../deno", args: ["run", "--allow-all", "--no-code-cache", ".../main.ts", "__holder"] }
 * ```
 */
export function selfCommand(options: SelfCommandOptions): { program: string; args: string[] } {
  if (options.standalone) return { program: options.execPath, args: [...options.args] };
  const entry = String(options.entry);
  const path = entry.startsWith("file:") ? fileURLToPath(entry) : entry;
  // No code cache: deno writes nothing (on any file system) once the watchdog runs.
  return {
    program: options.execPath,
    args: ["run", ...RUN_FLAGS, "--no-code-cache", path, ...options.args],
  };
}

/** Options of {@linkcode spawnSelf}. */
export interface SpawnSelfOptions {
  /** The arguments: the hidden mode's first argument, then its own. */
  args: readonly string[];
  /** Entry module for `deno run`; default `Deno.mainModule` (ignored in a compiled binary). */
  entry?: string | URL;
  /** The child's stderr: ours or nowhere. */
  stderr: "inherit" | "null";
}

/**
 * Starts this program again in its own session (so that the end of the caller's process group
 * does not reach it), with `/` as working directory (it holds no mount busy), its stdin and
 * stdout piped for a line protocol. Throws what spawning throws.
 *
 * @example
 * ```ts
 * import { spawnSelf } from "./self.ts";
 * const child = spawnSelf({ args: ["__holder"], stderr: "null" });
 * child.unref();
 * ```
 */
export function spawnSelf(options: SpawnSelfOptions): Deno.ChildProcess {
  const { program, args } = selfCommand({
    standalone: Deno.build.standalone,
    execPath: Deno.execPath(),
    entry: options.entry ?? Deno.mainModule,
    args: options.args,
  });
  return new Deno.Command(program, {
    args,
    cwd: "/",
    detached: true,
    stdin: "piped",
    stdout: "piped",
    stderr: options.stderr,
    env: { DENO_NO_UPDATE_CHECK: "1" },
  }).spawn();
}
