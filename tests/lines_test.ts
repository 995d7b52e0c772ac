/** util/lines.ts: the one line reader and the one writer of text and lines. */
import { assert, assertEquals } from "./support/assert.ts";
import { encodeLine, LineReader, writeAllSync, writeLine } from "../src/util/lines.ts";
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

Deno.test("writeAllSync and writeLine write everything, a few bytes at a time if need be", async () => {
  const got: number[] = [];
  // A stream that takes at most 3 bytes per call, as a full pipe may.
  const take = (p: Uint8Array) => {
    const n = Math.min(3, p.length);
    got.push(...p.subarray(0, n));
    return n;
  };
  writeAllSync({ writeSync: take }, "héllo wörld\n");
  await writeLine({ write: (p) => Promise.resolve(take(p)) }, "second");
  assertEquals(new TextDecoder().decode(new Uint8Array(got)), "héllo wörld\nsecond\n");
  assertEquals(encodeLine("ok"), new TextEncoder().encode("ok\n"));
  const closed = {
    writeSync: (): number => {
      throw new Deno.errors.BrokenPipe("closed");
    },
  };
  let thrown: unknown;
  try {
    writeAllSync(closed, "x");
  } catch (error) {
    thrown = error;
  }
  assert(thrown instanceof Deno.errors.BrokenPipe, "the stream's error reaches the caller");
});
