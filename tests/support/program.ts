/**
 * Runs the program as it ships: the bundle that scripts/build.sh compiles (tests/support/bundle.ts
 * keeps it current), under `deno run` with exactly the flags the binary is compiled with
 * (RUN_FLAGS), or the binary named by $ECS_BINARY.
 */
import { fileURLToPath } from "node:url";
import { RUN_FLAGS } from "../../src/host/permissions.ts";
import { currentBundle } from "./bundle.ts";

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
/** The program's source entry point (what the bundle is made from). */
export const SOURCE_MAIN = `${ROOT}src/main.ts`;
/** The entry point the tests run: the bundle's main.js, built from src/ when it changed. */
export const MAIN = await currentBundle();

/** The command line that starts the program: the binary, or deno run with the flags. */
export function programCommand(args: readonly string[]): { cmd: string; args: string[] } {
  const binary = Deno.env.get("ECS_BINARY");
  if (binary) return { cmd: binary, args: [...args] };
  // --no-config: the bundle needs no deno.json (build.sh compiles it so too); without it deno
  // would read the repository's deno.json and deno.lock, 2 MB that the binary does not have.
  return { cmd: Deno.execPath(), args: ["run", ...RUN_FLAGS, "--no-config", MAIN, ...args] };
}

export interface ProgramResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ProgramOptions {
  /** Environment variables; the test's own environment is NOT inherited except PATH and HOME. */
  env?: Record<string, string>;
  cwd?: string;
}

/** Prefix of the folder that holds one test process's HOME directories: `ecs-homes-PID-`. */
const HOMES_PREFIX = "ecs-homes-";

/**
 * The folder of this process's HOME directories, made on first use. It goes when the process
 * ends (not before: a test may read what the program left in a HOME after it exits); a folder
 * left by a test process that was killed (no unload) is removed by the next one.
 */
let homesDir: string | undefined;

function homesFolder(): string {
  if (homesDir) return homesDir;
  homesDir = Deno.makeTempDirSync({ prefix: `${HOMES_PREFIX}${Deno.pid}-` });
  const tmp = homesDir.slice(0, homesDir.lastIndexOf("/"));
  for (const entry of Deno.readDirSync(tmp)) {
    const pid = new RegExp(`^${HOMES_PREFIX}(\\d+)-`).exec(entry.name)?.[1];
    if (pid === undefined || pid === String(Deno.pid) || processAlive(Number(pid))) continue;
    try {
      Deno.removeSync(`${tmp}/${entry.name}`, { recursive: true });
    } catch { /* another test process got there first */ }
  }
  globalThis.addEventListener("unload", () => {
    try {
      Deno.removeSync(homesDir!, { recursive: true });
    } catch { /* already gone */ }
  });
  return homesDir;
}

/** True while a process with this pid exists. */
function processAlive(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

/** A new empty HOME for one run of the program, removed with its folder (see homesFolder). */
function freshHome(): string {
  return Deno.makeTempDirSync({ dir: homesFolder(), prefix: "home-" });
}

/**
 * A clean environment: no AWS variables leak in from the machine running the tests, and HOME is
 * a new empty directory (unless `extra` names one).
 */
export function baseEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    HOME: extra.HOME ?? freshHome(),
    DENO_DIR: Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME")}/.cache/deno`,
    AWS_EC2_METADATA_DISABLED: "true",
    ...extra,
  };
}

/** Starts the program and returns the child, for tests that signal it mid-run. */
export function spawnProgram(args: readonly string[], options: ProgramOptions = {}) {
  const { cmd, args: fullArgs } = programCommand(args);
  return new Deno.Command(cmd, {
    args: fullArgs,
    env: options.env ?? baseEnv(),
    clearEnv: true,
    cwd: options.cwd ?? ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** Runs the program to completion. */
export async function runProgram(
  args: readonly string[],
  options: ProgramOptions = {},
): Promise<ProgramResult> {
  const out = await spawnProgram(args, options).output();
  const decoder = new TextDecoder();
  return {
    code: out.code,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
  };
}
