/**
 * Hold mode for tests: a private state directory, `--hold` run as an orchestrator runs it (a
 * shell whose whole process group is killed as soon as the command returned), and cleanup of
 * a holder a test left behind.
 */
import { programCommand, type ProgramResult, runProgram } from "./program.ts";

/** A private state directory ($ECS_RUN_DIR), root only, removed by `remove()`. */
export interface StateDir {
  dir: string;
  env: Record<string, string>;
  /** The holder's pid from the hold record, if one is there. */
  holderPid(): number | undefined;
  /** Ends a holder left behind (SIGTERM: it releases), then removes the directory. */
  remove(): Promise<void>;
}

/** Makes a state directory under a new temporary directory (0700, as the program wants). */
export function makeStateDir(): StateDir {
  const parent = Deno.makeTempDirSync({ prefix: "ecs-hold-" });
  const dir = `${parent}/run`;
  const holderPid = () => {
    try {
      return JSON.parse(Deno.readTextFileSync(`${dir}/hold.json`)).pid as number;
    } catch {
      return undefined;
    }
  };
  return {
    dir,
    env: { ECS_RUN_DIR: dir },
    holderPid,
    async remove() {
      const pid = holderPid();
      if (pid !== undefined) {
        try {
          Deno.kill(pid, "SIGTERM");
        } catch { /* gone */ }
        for (let i = 0; i < 100 && holderPid() !== undefined; i++) {
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
      Deno.removeSync(parent, { recursive: true });
    },
  };
}

const shellQuote = (word: string) => `'${word.replaceAll("'", `'\\''`)}'`;

/**
 * Runs the program with `args` from a shell in a session of its own, as an orchestrator's
 * agent does; as soon as the program has returned, SIGKILLs the shell's whole process group.
 * Resolves with the program's exit code (-1 when the group was killed first, after
 * `killAfterMs`, default 120 s) and output.
 */
export async function runThenKillGroup(
  args: readonly string[],
  env: Record<string, string>,
  options: { killAfterMs?: number } = {},
): Promise<ProgramResult> {
  const { cmd, args: full } = programCommand(args);
  const line = [cmd, ...full].map(shellQuote).join(" ");
  const dir = Deno.makeTempDirSync({ prefix: "ecs-hold-out-" });
  const shell = new Deno.Command("sh", {
    args: ["-c", `${line} >"$1/out" 2>"$1/err"; echo "rc=$?"; exec sleep 60`, "sh", dir],
    env,
    clearEnv: true,
    cwd: "/",
    detached: true,
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = shell.stdout.getReader();
  let text = "";
  // Bounded: a program that never returns fails the test instead of hanging it.
  const timer = setTimeout(() => Deno.kill(-shell.pid, "SIGKILL"), options.killAfterMs ?? 120_000);
  while (!/rc=\d+\n/.test(text)) {
    const { value, done } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  clearTimeout(timer);
  try {
    Deno.kill(-shell.pid, "SIGKILL"); // the whole group: the shell, its sleep, anything left
  } catch { /* killed by the timer */ }
  await reader.cancel();
  await shell.status;
  const result = {
    code: Number(/rc=(\d+)/.exec(text)?.[1] ?? -1),
    stdout: Deno.readTextFileSync(`${dir}/out`),
    stderr: Deno.readTextFileSync(`${dir}/err`),
  };
  Deno.removeSync(dir, { recursive: true });
  return result;
}

/** `--release` through the real program. */
export function release(env: Record<string, string>, extra: string[] = []) {
  return runProgram(["--release", ...extra], { env });
}
