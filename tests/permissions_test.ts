/** Keeps scripts/run-flags and src/host/permissions.ts saying the same thing. */
import assert from "node:assert/strict";
import { RUN_FLAGS } from "../src/host/permissions.ts";

Deno.test("scripts/run-flags matches RUN_FLAGS", async () => {
  const text = await Deno.readTextFile(new URL("../scripts/run-flags", import.meta.url));
  assert.deepEqual(text.trim().split(/\s+/), [...RUN_FLAGS]);
});
