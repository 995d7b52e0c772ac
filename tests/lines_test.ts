/** util/lines.ts: the one line reader. */
import { assert, assertEquals } from "./support/assert.ts";
import { LineReader } from "../src/util/lines.ts";
import { deadline, isTimeout } from "../src/util/deadline.ts";

Deno.test("LineReader: lines across chunks, the last one unterminated, then the end", async () => {
  const chunks = ["one\ntw", "o\n", "three"].map((s) => new TextEncoder().encode(s));
  const lines = new LineReader(ReadableStream.from(chunks));
  assertEquals(await lines.next(), "one");
  const rest: string[] = [];
  for await (const line of lines) rest.push(line);
  assertEquals(rest, ["two", "three"]);
  assertEquals(await lines.next(), undefined);
});

Deno.test("LineReader: a bounded read rejects with the deadline and loses nothing", async () => {
  let push: (text: string) => void = () => {};
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      push = (text) => controller.enqueue(new TextEncoder().encode(text));
    },
  });
  const lines = new LineReader(stream);
  const error = await lines.next(deadline(10)).then(() => undefined, (e) => e);
  assert(isTimeout(error));
  push("late\n");
  assertEquals(await lines.next(deadline(1_000)), "late");
  await lines.cancel();
});
