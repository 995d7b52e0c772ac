/** host/programs.ts: the one way to run a program. */
import { assert, assertEquals } from "./support/assert.ts";
import { ProgramError, runProgram, shellCommand } from "../src/host/programs.ts";

Deno.test("runProgram: exit code and stderr in one line", async () => {
  const [sh, args] = shellCommand("echo 'bad\n  thing' >&2; exit 3");
  const result = await runProgram(sh, args, { timeoutMs: 5_000 });
  assertEquals(result, { code: 3, signal: null, stderr: "bad thing" });
});

Deno.test("runProgram: a time limit, a stop signal and a missing program are ProgramErrors", async () => {
  const late = await runProgram("sleep", ["5"], { timeoutMs: 50 }).catch((e) => e);
  assert(late instanceof ProgramError && late.details.kind === "timeout", String(late));
  const controller = new AbortController();
  setTimeout(() => controller.abort(new Error("stop")), 50);
  const stopped = await runProgram("sleep", ["5"], { signal: controller.signal }).catch((e) => e);
  assert(stopped instanceof ProgramError && stopped.details.kind === "aborted", String(stopped));
  const missing = await runProgram("/nonexistent/program", []).catch((e) => e);
  assert(missing instanceof ProgramError && missing.details.kind === "start", String(missing));
});
