/** run/window_database.ts: the database before its lock: prepared, its files outside the frozen set warned about, its facts for the tag. */
import { assertEquals, assertRejects } from "./support/assert.ts";
import type { Database } from "../src/types/side_effects.ts";
import { prepareDatabase } from "../src/run/window_database.ts";
import { createLogger } from "../src/util/log.ts";
import { DatabaseError } from "../src/util/errors.ts";

function logger() {
  const lines: string[] = [];
  return { lines, log: createLogger({ write: (line) => lines.push(line) }) };
}

const base: Database = {
  prepare: () => Promise.resolve(),
  lock: () => Promise.resolve(undefined),
  release: () => Promise.resolve(),
};

Deno.test("files outside the frozen set are warned about; the facts are kept", async () => {
  const { lines, log } = logger();
  const facts = { engine: "mariadb", version: "10.11.6", paths: {} } as never;
  const db: Database = {
    ...base,
    files: () => Promise.resolve([{ what: "MySQL log_bin_basename", path: "/logs/binlog" }]),
    describe: () => Promise.resolve(facts),
  };
  const prepared = await prepareDatabase(db, ["/var/lib/mysql"], {
    log,
    unfrozen: (files) =>
      Promise.resolve(
        files.map((f) => ({ what: [f.what], path: f.path, realPath: f.path, mountPoint: "/logs" })),
      ),
  });
  assertEquals(prepared.facts, facts);
  assertEquals(prepared.unfrozen.length, 1);
  assertEquals(lines.length, 1, lines.join("\n"));
});

Deno.test("only the preparation fails the window; the rest are warnings", async () => {
  const { lines, log } = logger();
  const failing: Database = {
    ...base,
    files: () => Promise.reject(new Error("no privilege")),
    describe: () => Promise.reject(new Error("no version")),
  };
  const prepared = await prepareDatabase(failing, ["/data"], { log });
  assertEquals(prepared, { unfrozen: [], facts: undefined });
  assertEquals(lines.length, 2, lines.join("\n"));
  const refused: Database = { ...base, prepare: () => Promise.reject(new DatabaseError("denied")) };
  await assertRejects(() => prepareDatabase(refused, [], { log }), DatabaseError, "denied");
});
