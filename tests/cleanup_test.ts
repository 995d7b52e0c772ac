/** The cleanup stack: reverse order, exactly once, every release attempted, late pushes released. */
import { assertEquals } from "./support/assert.ts";
import { CleanupStack } from "../src/run/cleanup.ts";

Deno.test("unwinds in reverse order, once, even when called twice at the same time", async () => {
  const order: string[] = [];
  const stack = new CleanupStack();
  for (const name of ["a", "b", "c"]) stack.push(name, () => void order.push(name));
  const [first, second] = await Promise.all([stack.unwind(), stack.unwind()]);
  assertEquals(order, ["c", "b", "a"]);
  assertEquals([first, second], [[], []]);
  await stack.unwind();
  assertEquals(order, ["c", "b", "a"]);
});

Deno.test("a failing release does not stop the others; failures are returned", async () => {
  const order: string[] = [];
  const stack = new CleanupStack();
  stack.push("a", () => void order.push("a"));
  stack.push("b", () => {
    throw new Error("b broke");
  });
  stack.push("c", () => Promise.reject(new Error("c broke")));
  const failures = await stack.unwind();
  assertEquals(order, ["a"]);
  assertEquals(failures.map((f) => [f.name, (f.error as Error).message]), [
    ["c", "c broke"],
    ["b", "b broke"],
  ]);
});

Deno.test("a release pushed while unwinding runs at once and is awaited", async () => {
  const order: string[] = [];
  const stack = new CleanupStack();
  stack.push("a", async () => {
    await new Promise((r) => setTimeout(r, 10));
    order.push("a");
  });
  const unwinding = stack.unwind();
  stack.push("late", () => void order.push("late"));
  await unwinding;
  assertEquals(order.sort(), ["a", "late"]);
  assertEquals(stack.closed, true);
});
