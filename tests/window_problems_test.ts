/** run/problems.ts: the most serious problem first; a stop signal always counts. */
import { assert, assertEquals } from "./support/assert.ts";
import { SignalError } from "../src/run/cleanup.ts";
import { addLateStop, asAppError, sortProblems, stepProblem } from "../src/run/problems.ts";
import {
  type AppError,
  ConsistencyUnknownError,
  FreezeError,
  HookError,
  PreflightError,
  SnapshotError,
  StoppedError,
} from "../src/util/errors.ts";

Deno.test("sortProblems: unknown consistency, a stop, a freeze, a snapshot, a hook, in that order", () => {
  const hook = new HookError("hook");
  const snapshot = new SnapshotError("snapshot");
  const freeze = new FreezeError("freeze");
  const stop = new StoppedError("SIGTERM", 143);
  const unknown = new ConsistencyUnknownError("unknown");
  assertEquals(sortProblems([hook, snapshot, freeze, stop, unknown]), [
    unknown,
    stop,
    freeze,
    snapshot,
    hook,
  ]);
});

Deno.test("stepProblem and addLateStop: the stop signal is what counts", () => {
  const stopped = new AbortController();
  stopped.abort(new SignalError("SIGINT"));
  const fromStep = stepProblem(new Error("aborted"), stopped.signal, (m) => new PreflightError(m));
  assert(fromStep instanceof StoppedError, String(fromStep));

  const running = new AbortController().signal;
  const own = stepProblem(new Error("no route"), running, (m) => new PreflightError(m));
  assert(own instanceof PreflightError && own.message === "no route");

  const problems: AppError[] = [];
  addLateStop(running, problems);
  assertEquals(problems, []);
  addLateStop(stopped.signal, problems);
  assert(problems[0] instanceof StoppedError);
  addLateStop(stopped.signal, problems);
  assertEquals(problems.length, 1, "a stop is counted once");
  assertEquals(asAppError(fromStep, (m) => new FreezeError(m)), fromStep);
});
