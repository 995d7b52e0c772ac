/** run/freeze_mounts.ts: the window's file systems frozen, their thaws stacked; someone else's freeze left alone; a thaw that finds ours thawed is a break. */
import { assert, assertEquals, assertRejects } from "./support/assert.ts";
import { recorder } from "./support/recording.ts";
import { CleanupStack } from "../src/run/cleanup.ts";
import { type FreezeContext, freezeMounts, independent } from "../src/run/freeze_mounts.ts";
import { AlreadyFrozenError, NotFrozenError } from "../src/util/errors.ts";
import { silentLogger } from "../src/util/log.ts";

function context(r: ReturnType<typeof recorder>): FreezeContext & { thaws: number } {
  const ctx = {
    freezer: r.freezer,
    stack: new CleanupStack(),
    guard: { disarm: () => Promise.resolve() },
    log: silentLogger,
    checkSignal: () => {},
    onThaw: () => void ctx.thaws++,
    broken: [] as string[],
    thaws: 0,
  };
  return ctx;
}

Deno.test("independent file systems freeze at once; thaws unwind in reverse order", async () => {
  assert(independent(["/data", "/logs"]));
  const r = recorder();
  const ctx = context(r);
  await freezeMounts(["/data", "/logs"], ctx);
  assertEquals(r.log, ["freeze /data", "freeze /logs"]);
  assertEquals(await ctx.stack.unwind(), []);
  assertEquals(r.log.slice(2), ["thaw /logs", "thaw /data"]);
  assertEquals([ctx.thaws, ctx.broken], [2, []]);
});

Deno.test("a nested mount freezes after its parent; a failed freeze still thaws what froze", async () => {
  assert(!independent(["/data", "/data/sub"]));
  const r = recorder();
  r.faults.set("freeze /data/sub", new Error("EIO"));
  const ctx = context(r);
  await assertRejects(() => freezeMounts(["/data", "/data/sub"], ctx), Error, "EIO");
  await ctx.stack.unwind();
  assertEquals(r.log, ["freeze /data", "freeze /data/sub", "thaw /data/sub", "thaw /data"]);
});

Deno.test("someone else's freeze is left frozen; ours found thawed is a break", async () => {
  const r = recorder();
  r.faults.set("freeze /logs", new AlreadyFrozenError("frozen already"));
  const ctx = context(r);
  await assertRejects(() => freezeMounts(["/data", "/logs"], ctx), AlreadyFrozenError);
  r.faults.set("thaw /data", new NotFrozenError("not frozen"));
  await ctx.stack.unwind();
  assertEquals(r.log.filter((s) => s.startsWith("thaw")), ["thaw /data"], "/logs left alone");
  assertEquals(ctx.broken.length, 1);
  assert(ctx.broken[0].startsWith("/data was no longer frozen"));
});
