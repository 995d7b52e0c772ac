/** The sequence with a database that holds nothing (PostgreSQL): order, position, file warnings, faults. */
import { snapshotHoldMs, WATCHDOG_MARGIN_MS } from "../src/plan/window.ts";
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { recorder } from "./support/recording.ts";
import { runSequence, type RunSpec } from "../src/run/sequence.ts";
import type { Database, DatabaseFile } from "../src/types/side_effects.ts";
import { DatabaseError, ExitCode } from "../src/util/errors.ts";
import { createLogger } from "../src/util/log.ts";
import { textReport, walLine } from "../src/cli/report.ts";

const spec: RunSpec = {
  volumes: [{ volumeId: "vol-1111aaaa", description: "d", tags: {} }],
  freezeMounts: ["/a"],
  snapshotTimeoutMs: 1000,
  watchdogDeadlineMs: snapshotHoldMs(1000) + WATCHDOG_MARGIN_MS,
};

const WAL = { lsn: "0/3000060", timeline: 1, from: "primary" as const };

/** A recorder whose database is PostgreSQL-like: a checkpoint, files, a position at the freeze. */
function setup(files: DatabaseFile[] = [{ what: "PostgreSQL pg_wal", path: "/w" }]) {
  const r = recorder();
  const step = (name: string): Promise<void> => {
    r.log.push(name);
    const fault = r.faults.get(name);
    return fault ? Promise.reject(fault) : Promise.resolve();
  };
  const database: Database = {
    holdsWrites: false,
    prepare: () => step("db prepare"),
    async lock() {
      await step("db checkpoint");
      return undefined;
    },
    release: () => step("db release"),
    async files() {
      await step("db files");
      return files;
    },
    async positionAtFreeze() {
      await step("db position");
      return WAL;
    },
  };
  const lines: string[] = [];
  const log = createLogger({ write: (line) => lines.push(line) });
  const unfrozenAsked: [readonly DatabaseFile[], readonly string[]][] = [];
  return {
    r,
    lines,
    unfrozenAsked,
    deps: {
      ...r,
      database,
      log,
      signal: new AbortController().signal,
      unfrozen: (f: readonly DatabaseFile[], mounts: readonly string[]) => {
        unfrozenAsked.push([f, mounts]);
        return Promise.resolve(
          f.map((file) => ({
            what: [file.what],
            path: file.path,
            realPath: file.path,
            mountPoint: "/w",
          })),
        );
      },
    },
  };
}

Deno.test("postgresql sequence: files in preflight, checkpoint, position after the last sync", async () => {
  const { r, deps, lines, unfrozenAsked } = setup();
  const result = await runSequence(spec, deps);
  assertEquals(r.log, [
    "preflight vol-1111aaaa",
    "db prepare",
    "db files",
    "sync",
    "db checkpoint",
    "sync",
    "db position",
    "arm /a",
    "freeze /a",
    "create",
    "thaw /a",
    "update ",
    "db release",
    "disarm",
  ]);
  assertEquals(result.problems, []);
  assertEquals(result.wal, WAL);
  assertEquals(unfrozenAsked, [[[{ what: "PostgreSQL pg_wal", path: "/w" }], ["/a"]]]);
  assertEquals(result.unfrozen.map((u) => u.mountPoint), ["/w"]);
  assertEquals(lines.filter((l) => /warning/.test(l)).length, 1);
  assertMatch(lines.join("\n"), /PostgreSQL pg_wal \/w lies on \/w, which is not frozen/);
  assertEquals(result.timings.databaseLockMs, null, "a checkpoint holds nothing");
  assert(result.timings.lockWindowMs !== null && result.timings.freezeWindowMs !== null);
  // Nothing is held before the freeze; bounded generously (a busy machine), not by speed.
  assert(result.timings.lockWindowMs <= result.timings.freezeWindowMs + 1_000);
});

Deno.test("postgresql sequence: without a freeze, no file check; the position is still taken", async () => {
  const { r, deps, unfrozenAsked } = setup();
  const result = await runSequence({ ...spec, freezeMounts: [] }, deps);
  assertEquals(unfrozenAsked, []);
  assertEquals(r.log.includes("db files"), false);
  assertEquals(result.wal, WAL);
});

Deno.test("postgresql sequence: a failed position query fails the run before anything is frozen", async () => {
  const { r, deps } = setup();
  r.faults.set("db position", new DatabaseError("PostgreSQL: no answer"));
  const result = await runSequence(spec, deps);
  assertEquals(result.problems[0].exitCode, ExitCode.database);
  assertEquals(r.log.some((s) => s.startsWith("freeze") || s === "create"), false);
  assertEquals(r.log.at(-1), "db release");
});

Deno.test("postgresql sequence: a failed file query is a warning; the run goes on", async () => {
  const { r, deps, lines } = setup();
  r.faults.set("db files", new DatabaseError("PostgreSQL: permission denied"));
  const result = await runSequence(spec, deps);
  assertEquals(result.problems, []);
  assert(r.log.includes("create"));
  assertMatch(lines.join("\n"), /could not check where the database keeps its files/);
});

Deno.test("postgresql report: the WAL line in the style of the binary-log line; --quiet prints none", () => {
  assertEquals(walLine(WAL), 'ec2-consistent-snapshot: wal_lsn="0/3000060", timeline=1');
  const result = {
    outcomes: [{ volumeId: "vol-1111aaaa", ok: true as const, snapshotId: "snap-1" }],
    requests: [],
    lookup: null,
    binlog: undefined,
    wal: WAL,
    unfrozen: [],
    timings: {
      preflightMs: 1,
      createMs: 1,
      freezeWindowMs: 1,
      lockWindowMs: 1,
      databaseLockMs: null,
    },
    problems: [],
  };
  assertEquals(
    textReport(result, false),
    'ec2-consistent-snapshot: wal_lsn="0/3000060", timeline=1\nsnap-1\n',
  );
  assertEquals(textReport(result, true), "");
});
