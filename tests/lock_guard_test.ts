/**
 * With recording fakes: the watchdog guards the database lock from its request, with each
 * step's bound; what someone else released while held (a thaw, a killed lock connection) makes
 * the snapshots of unknown consistency (exit 12), in the run and in hold mode.
 */
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { recorder } from "./support/recording.ts";
import { runSequence, type RunSpec } from "../src/run/sequence.ts";
import { SYNC_BOUND_MS } from "../src/run/window.ts";
import {
  MIN_HOLD_MS,
  snapshotHoldMs,
  WATCHDOG_MARGIN_MS,
  WATCHDOG_PHASE_MS,
} from "../src/plan/window.ts";
import { DEFAULT_LOCK_BOUND_MS } from "../src/types/side_effects.ts";
import { ExitCode, FreezeError, NotFrozenError } from "../src/util/errors.ts";
import { silentLogger } from "../src/util/log.ts";
import { textReport } from "../src/cli/report.ts";
import { hold } from "../src/hold/holder.ts";
import { readRelease, statePaths } from "../src/hold/state.ts";
import { defaultOptions } from "../src/types/options.ts";
import { planMysql } from "../src/plan/mysql.ts";
import { planWindow } from "../src/plan/window.ts";

const spec: RunSpec = {
  volumes: [
    { volumeId: "vol-1111aaaa", description: "d", tags: {} },
    { volumeId: "vol-2222bbbb", description: "d", tags: {} },
  ],
  freezeMounts: ["/a", "/b"],
  snapshotTimeoutMs: 1000,
  preFreezeCommand: "true",
  hookTimeoutMs: 3000,
  // As the plan's window says (plan/window.ts).
  watchdogDeadlineMs: snapshotHoldMs(1000) + WATCHDOG_MARGIN_MS,
};

function deps(r: ReturnType<typeof recorder>) {
  return { ...r, log: silentLogger, signal: new AbortController().signal, lookupRetryMs: 0 };
}

const M = WATCHDOG_MARGIN_MS;

Deno.test("the watchdog's deadline follows each step from the lock's request: lock, its tries, hook, sync, snapshots, after the thaw", async () => {
  const r = recorder();
  const result = await runSequence(spec, deps(r));
  assertEquals(result.problems, []);
  assertEquals(r.log.indexOf("arm "), r.log.indexOf("db lock") - 1, "armed before the request");
  assertEquals(r.bounds, [
    DEFAULT_LOCK_BOUND_MS + M, // the lock's own bound (this database says none)
    1_000 + M, // a step inside lock() (the fake guards one of 1 s)
    3_000 + M, // --pre-freeze-command: --hook-timeout
    SYNC_BOUND_MS + M, // the sync under the lock
    MIN_HOLD_MS + M, // frozen: --snapshot-timeout, at least the minimum hold
    WATCHDOG_PHASE_MS, // after the thaw: post-thaw command, database release
  ]);
});

Deno.test("--post-thaw-command runs under the database lock: the watchdog bounds it by --hook-timeout too", async () => {
  const r = recorder();
  await runSequence({ ...spec, postThawCommand: "true" }, deps(r));
  assertEquals(r.bounds.slice(-3), [
    WATCHDOG_PHASE_MS, // after the thaw
    3_000 + M, // the post-thaw command, the database still locked
    WATCHDOG_PHASE_MS + M, // the database's release
  ]);
});

Deno.test("the lock's own bound arms the watchdog; without a database it is armed at the freeze only", async () => {
  const r = recorder();
  await runSequence(spec, { ...deps(r), database: { ...r.database, lockBoundMs: 42_000 } });
  assertEquals(r.bounds[0], 42_000 + M);

  const none = recorder();
  await runSequence(spec, { ...deps(none), database: undefined });
  assertEquals(none.log.filter((s) => s.startsWith("arm")), ["arm /a,/b"]);
  assertEquals(none.bounds, [MIN_HOLD_MS + M, WATCHDOG_PHASE_MS]);
});

Deno.test("a file system thawed by someone else while held: every snapshot is of unknown consistency, exit 12", async () => {
  const r = recorder();
  r.faults.set("thaw /b", new NotFrozenError("cannot thaw /b: it is not frozen"));
  const result = await runSequence(spec, deps(r));
  assertEquals(result.problems[0].exitCode, ExitCode.consistencyUnknown);
  assertEquals(result.lookup?.consistencyUnknown.map((s) => s.snapshotId), ["snap-0", "snap-1"]);
  const all = result.problems.map((p) => p.message).join("\n");
  assertMatch(all, /created, consistency unknown: snap-0 of vol-1111aaaa, made while not/);
  assertMatch(all, /\/b was no longer frozen when this run thawed it/);
  assertEquals(textReport(result, false), "", "no id on stdout is taken for a good snapshot");
});

Deno.test("the database lock's connection gone before the thaw: exit 12; a thaw after a failed freeze is not a break", async () => {
  const r = recorder();
  const database = {
    ...r.database,
    stillHeld: () => Promise.resolve("the database lock's connection (id 7) no longer answers"),
  };
  const result = await runSequence(spec, { ...deps(r), database });
  assertEquals(result.problems[0].exitCode, ExitCode.consistencyUnknown);
  assertMatch(result.problems[0].message, /connection \(id 7\) no longer answers/);

  const failed = recorder();
  failed.faults.set("freeze /b", new FreezeError("freeze /b timed out"));
  failed.faults.set("thaw /b", new NotFrozenError("cannot thaw /b: it is not frozen"));
  const after = await runSequence(spec, deps(failed));
  assertEquals(after.problems.map((p) => p.exitCode), [ExitCode.freeze]);
});

Deno.test("hold: a file system thawed by someone else while held is recorded for --release: exit 12", async () => {
  const parent = Deno.makeTempDirSync({ prefix: "ecs-lock-guard-" });
  try {
    const dir = `${parent}/run`;
    const r = recorder();
    r.faults.set("thaw /a", new NotFrozenError("cannot thaw /a: it is not frozen"));
    const mount = (mountPoint: string, minor: number) => ({
      mountPoint,
      majorMinor: `7:${minor}`,
      fsType: "xfs",
      source: `/dev/loop${minor}`,
    });
    const code = await hold({
      plan: {
        holdMs: 20,
        window: planWindow({ ...defaultOptions(), hookTimeout: 30 }, {
          freezeMounts: [mount("/a", 1), mount("/b", 2)],
          database: planMysql(defaultOptions(), { settings: { home: "/nonexistent" } }),
          heldMs: 20,
        }),
        debug: false,
        quiet: false,
        runDir: dir,
        searchPath: "",
      },
      stateDir: dir,
    }, {
      ...r,
      acquireFreezeLocks: () => Promise.resolve({ release: () => Promise.resolve() }),
      log: silentLogger,
      tell: () => true,
      confirmation: Promise.resolve(true),
      signal: new AbortController().signal,
    });
    assertEquals(code, ExitCode.consistencyUnknown);
    const record = readRelease(statePaths(dir))!;
    assertEquals(record.problems[0].exitCode, ExitCode.consistencyUnknown);
    assert(record.problems[0].message.includes("/a was no longer frozen"));
  } finally {
    Deno.removeSync(parent, { recursive: true });
  }
});
