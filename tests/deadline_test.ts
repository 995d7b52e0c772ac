/** util/deadline.ts: the one deadline, abortable and the abortable sleep. */
import { assert, assertEquals } from "./support/assert.ts";
import {
  abortable,
  deadline,
  delay,
  isTimeout,
  withDeadline,
  within,
} from "../src/util/deadline.ts";

Deno.test("deadline aborts with a TimeoutError, or with the caller's reason first", async () => {
  const timed = deadline(10);
  await delay(30);
  assert(timed.aborted && isTimeout(timed.reason));
  const controller = new AbortController();
  const early = deadline(10_000, controller.signal);
  controller.abort(new Error("stop"));
  assert(early.aborted);
  assertEquals((early.reason as Error).message, "stop");
});

Deno.test("delay resolves after the time, rejects with the signal's reason", async () => {
  await delay(5);
  const controller = new AbortController();
  const sleeping = delay(10_000, { signal: controller.signal });
  controller.abort(new Error("stopped"));
  const error = await sleeping.then(() => undefined, (e: Error) => e);
  assertEquals(error?.message, "stopped");
  const already = await delay(5, { signal: controller.signal }).then(() => 0, () => 1);
  assertEquals(already, 1);
});

Deno.test("abortable and within: the promise's value, or the deadline", async () => {
  assertEquals(await abortable(Promise.resolve(1), deadline(1_000)), 1);
  const never = new Promise<number>(() => {});
  const error = await abortable(never, deadline(5)).then(() => undefined, (e) => e);
  assert(isTimeout(error));
  assertEquals(await within(Promise.resolve("ok"), 1_000), "ok");
  assertEquals(await within(never, 5), undefined);
});

Deno.test("withDeadline: the function's value, or its signal aborted at the time", async () => {
  assertEquals(await withDeadline(1_000, () => Promise.resolve(2)), 2);
  const error = await withDeadline(10, (signal) => delay(10_000, { signal })).catch((e) => e);
  assert(isTimeout(error));
  const controller = new AbortController();
  controller.abort(new Error("stop"));
  const early = await withDeadline(1_000, (s) => delay(10_000, { signal: s }), controller.signal)
    .catch((e) => e);
  assertEquals(early.message, "stop");
});
