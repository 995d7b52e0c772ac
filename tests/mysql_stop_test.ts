/**
 * --mysql-stop against a real MariaDB: a server that someone starts again while it was to be
 * stopped is found before the thaw (stillHeld), and not started a second time at the release.
 */
import { assertEquals, assertMatch } from "./support/assert.ts";
import { MysqlStopStart } from "../src/db/mysql/stop_start.ts";
import { planMysql } from "../src/plan/mysql.ts";
import { defaultOptions } from "../src/types/options.ts";
import { mariadbRequirement, startMariadb } from "./support/mariadb.ts";
import { ignoreUnless, requireAvailable } from "./support/real.ts";
import { createLogger } from "../src/util/log.ts";

const MARIADB = await mariadbRequirement();

Deno.test({
  name:
    "--mysql-stop: a server started again by someone else while stopped is told before the thaw",
  ignore: ignoreUnless(MARIADB),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    requireAvailable(MARIADB);
    const db = await startMariadb();
    try {
      const plan = planMysql({
        ...defaultOptions(),
        mysql: true,
        mysqlStop: true,
        mysqlSocket: db.socket,
        mysqlUsername: "root",
        mysqlStopCommand: db.stopCommand,
        mysqlStartCommand: db.startCommand,
      });
      const lines: string[] = [];
      const log = createLogger({ debug: true, write: (line) => lines.push(line) });
      const database = new MysqlStopStart(plan, { log });
      await database.prepare();
      try {
        await database.lock(new AbortController().signal);
        assertEquals(await database.stillHeld(), undefined, "stopped, as it should be");
        // An administrator starts it again while the snapshots are made.
        await new Deno.Command("sh", { args: ["-c", db.startCommand] }).output();
        await db.waitReady(60_000);
        assertMatch((await database.stillHeld()) ?? "", /answers again: someone started it/);
      } finally {
        await database.release();
      }
      assertMatch(lines.join("\n"), /already accepts connections; not starting it/);
      await db.waitReady(10_000);
    } finally {
      await db.stop();
    }
  },
});
