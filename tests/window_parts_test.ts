/** run/window_parts.ts: the one wiring of a window: its spec from the plan, its database by kind, its freeze locks only with mounts. */
import { assert, assertEquals } from "./support/assert.ts";
import { defaultOptions } from "../src/types/options.ts";
import { silentLogger } from "../src/util/log.ts";
import { planMysql } from "../src/plan/mysql.ts";
import { planWindow } from "../src/plan/window.ts";
import { freezeTargets, windowDatabase, windowParts, windowSpec } from "../src/run/window_parts.ts";

const mount = { mountPoint: "/data", majorMinor: "259:1", fsType: "xfs", source: "/dev/nvme1n1" };
const settings = { socketExists: () => false, loginName: () => "snap", home: "/nonexistent" };

Deno.test("windowSpec: the mounts by name, the commands, the bounds, the start command of --mysql-stop", () => {
  const options = {
    ...defaultOptions(),
    mysqlStop: true,
    mysqlStopCommand: "systemctl stop mariadb",
    mysqlStartCommand: "systemctl start mariadb",
    preFreezeCommand: "true",
  };
  const database = planMysql(options, { settings });
  const window = planWindow(options, { freezeMounts: [mount], database, heldMs: 30_000 });
  assertEquals(windowSpec(window), {
    freezeMounts: ["/data"],
    preFreezeCommand: "true",
    postThawCommand: undefined,
    watchdogDeadlineMs: window.bounds.frozenMs,
    watchdogPhaseMs: window.bounds.outsideMs,
    hookTimeoutMs: window.hooks.timeoutMs,
    databaseStartCommand: "systemctl start mariadb",
    databaseStartProbe: windowSpec(window).databaseStartProbe,
  });
  assert(windowSpec(window).databaseStartProbe !== undefined, "the start is probed first");
  assertEquals(freezeTargets(window), [{ mountPoint: "/data", device: "259:1" }]);
});

Deno.test("windowDatabase: none without a database, else the one the plan names", async () => {
  assertEquals(await windowDatabase(undefined, silentLogger), undefined);
  const mysql = await windowDatabase(
    planMysql({ ...defaultOptions(), mysql: true }, { settings }),
    silentLogger,
  );
  assert(mysql !== undefined && typeof mysql.lock === "function");
  await mysql.release(); // never connected: nothing to release
});

Deno.test("windowParts: the file-system freeze locks only when there are mounts to freeze", async () => {
  const io = { log: silentLogger, purpose: "run" as const, runDir: "/nonexistent", searchPath: "" };
  const none = planWindow(defaultOptions(), { freezeMounts: [], database: undefined, heldMs: 1 });
  assertEquals((await windowParts(none, io)).exclusion, undefined);
  const some = planWindow(defaultOptions(), {
    freezeMounts: [mount],
    database: undefined,
    heldMs: 1,
  });
  assert((await windowParts(some, io)).exclusion !== undefined);
});
