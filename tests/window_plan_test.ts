/** plan/window.ts: the window's plan, the same for the run and the hold: its database, its commands, its bounds. */
import { assertEquals, assertRejects } from "./support/assert.ts";
import { defaultOptions } from "../src/types/options.ts";
import { silentLogger } from "../src/util/log.ts";
import { UsageError } from "../src/util/errors.ts";
import {
  MIN_HOLD_MS,
  planDatabase,
  planWindow,
  snapshotHoldMs,
  WATCHDOG_MARGIN_MS,
  WATCHDOG_PHASE_MS,
} from "../src/plan/window.ts";

const inputs = { env: {}, home: "/nonexistent", log: silentLogger };
const noSockets = { settings: { socketExists: () => false, loginName: () => "snap" } };

Deno.test("planDatabase: none, MySQL or PostgreSQL, one per run", async () => {
  assertEquals(await planDatabase(defaultOptions(), inputs), undefined);
  const mysql = await planDatabase({ ...defaultOptions(), mysql: true }, {
    ...inputs,
    mysql: noSockets,
  });
  assertEquals(mysql?.kind, "mysql");
  const postgresql = await planDatabase({ ...defaultOptions(), postgresql: true }, inputs);
  assertEquals(postgresql?.kind, "postgresql");
  await assertRejects(
    () =>
      planDatabase({ ...defaultOptions(), mysql: true, postgresql: true }, {
        ...inputs,
        mysql: noSockets,
      }),
    UsageError,
    "one database per run",
  );
  // Refused as such even where the MySQL plan alone would fail (here: its option file).
  await assertRejects(
    () =>
      planDatabase({
        ...defaultOptions(),
        mysql: true,
        mysqlDefaultsFile: "/nonexistent/my.cnf",
        postgresql: true,
      }, { ...inputs, mysql: noSockets }),
    UsageError,
    "one database per run",
  );
});

Deno.test("planWindow: the commands around the freeze and the watchdog's bounds", () => {
  const options = {
    ...defaultOptions(),
    preFreezeCommand: "sync-app",
    postThawCommand: "resume-app",
    hookTimeout: 45,
  };
  const window = planWindow(options, { freezeMounts: [], database: undefined, heldMs: 60_000 });
  assertEquals(window.hooks, { preFreeze: "sync-app", postThaw: "resume-app", timeoutMs: 45_000 });
  assertEquals(window.bounds, {
    frozenMs: 60_000 + WATCHDOG_MARGIN_MS,
    outsideMs: WATCHDOG_PHASE_MS + 45_000,
  });
});

Deno.test("a run holds at least the minimum hold, even with a shorter --snapshot-timeout", () => {
  assertEquals(snapshotHoldMs(10_000), 10_000);
  assertEquals(snapshotHoldMs(1_000), MIN_HOLD_MS);
});
