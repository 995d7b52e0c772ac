/** writeFileAtomic: whole or nothing, beside the target then renamed, never through a symbolic link. */
import nodeAssert from "node:assert/strict";
import { assert, assertEquals } from "./support/assert.ts";
import { writeFileAtomic } from "../src/util/files.ts";

/** Asserts that `fn` throws an error of `type` (whose message includes `text`, if given). */
function assertThrows(
  fn: () => unknown,
  // deno-lint-ignore no-explicit-any
  type: new (...args: any[]) => Error = Error,
  text = "",
): void {
  nodeAssert.throws(fn, (error: Error) => error instanceof type && error.message.includes(text));
}

function withDir(body: (dir: string) => void): void {
  const dir = Deno.makeTempDirSync({ prefix: "ecs-atomic-" });
  try {
    body(dir);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

Deno.test("writes a new file, replaces an old one, with the mode asked, and leaves no temp file", () => {
  withDir((dir) => {
    const path = `${dir}/status`;
    writeFileAtomic(path, "one\n", { mode: 0o600 });
    assertEquals(Deno.readTextFileSync(path), "one\n");
    assertEquals((Deno.statSync(path).mode ?? 0) & 0o777, 0o600);
    const before = Deno.statSync(path).ino;
    writeFileAtomic(path, new TextEncoder().encode("two\n"), { sync: true });
    assertEquals(Deno.readTextFileSync(path), "two\n");
    assert(Deno.statSync(path).ino !== before, "a new file renamed over the old one");
    assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["status"]);
  });
});

Deno.test("a symbolic link at the path is refused: its target is not written", () => {
  withDir((dir) => {
    const target = `${dir}/precious`;
    Deno.writeTextFileSync(target, "keep me\n");
    const path = `${dir}/status`;
    Deno.symlinkSync(target, path);
    assertThrows(() => writeFileAtomic(path, "overwritten\n"), Error, "is a symbolic link");
    assertEquals(Deno.readTextFileSync(target), "keep me\n");
    assert(Deno.lstatSync(path).isSymlink, "the link is left as it was");
    Deno.removeSync(path);
    Deno.symlinkSync(`${dir}/missing`, path); // a dangling link: creating would follow it
    assertThrows(() => writeFileAtomic(path, "x"), Error, "is a symbolic link");
    assertThrows(() => Deno.lstatSync(`${dir}/missing`));
    Deno.mkdirSync(`${dir}/adir`);
    assertThrows(() => writeFileAtomic(`${dir}/adir`, "x"), Error, "not a regular file");
    assertEquals(
      [...Deno.readDirSync(dir)].map((e) => e.name).sort(),
      ["adir", "precious", "status"],
    );
  });
});

Deno.test("a failed write leaves the old file whole and no temp file", () => {
  withDir((dir) => {
    const path = `${dir}/status`;
    writeFileAtomic(path, "old\n");
    Deno.chmodSync(dir, 0o500); // the directory refuses new files (root ignores this)
    try {
      if (Deno.uid() !== 0) {
        assertThrows(() => writeFileAtomic(path, "new\n"));
        assertEquals(Deno.readTextFileSync(path), "old\n");
      }
    } finally {
      Deno.chmodSync(dir, 0o700);
    }
    assertThrows(() => writeFileAtomic(`${dir}/no/such/dir/file`, "x"), Deno.errors.NotFound);
    assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["status"]);
  });
});
