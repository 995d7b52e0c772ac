/**
 * The standing fault table for the lock's request, from outside: a run stopped (SIGSTOP) while
 * its lock waits behind an admin's table lock, or during --post-thaw-command (still under the
 * lock), is ended by its watchdog at the step's bound, so its session and lock end.
 */
import { killQuietly, readPidFile } from "./support/processes.ts";
import { assertEquals } from "./support/assert.ts";
import { mariadbRequirement } from "./support/mariadb.ts";
import { MOTO } from "./support/moto.ts";
import { spawnProgram } from "./support/program.ts";
import { ignoreUnless, requireAvailable } from "./support/real.ts";
import { isFrozen, xfsRequirement } from "./support/xfs.ts";
import { programSessions, withMysqlStack } from "./support/mysql_stack.ts";

const MARIADB = await mariadbRequirement();
const XFS = await xfsRequirement();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

Deno.test({
  name: "a run stopped (SIGSTOP) while its lock waits, not granted: ended at the lock's bound",
  ignore: ignoreUnless(MARIADB, XFS, MOTO),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    requireAvailable(MARIADB);
    await withMysqlStack(async (s) => {
      // An admin's session holds a table lock: the program's flush waits behind it.
      const admin = s.db.sql("LOCK TABLES app.t WRITE; DO SLEEP(90); UNLOCK TABLES;").catch(
        () => {},
      );
      await sleep(1_000);
      const child = spawnProgram([
        ...s.mysqlArgs,
        "--mysql-lock-mode",
        "flush",
        "--lock-timeout",
        "10",
        "--lock-tries",
        "1",
        "--freeze-filesystem",
        s.mount.mountPoint,
        s.volume,
      ], { env: s.env });
      try {
        let waiting = false;
        for (let i = 0; i < 600 && !waiting; i++) {
          await sleep(100);
          const out = await s.db.sql(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = 'snap' AND INFO LIKE 'FLUSH%'",
          );
          waiting = Number(out.trim().split("\n").at(-1)) > 0;
        }
        if (!waiting) {
          const list = await s.db.sql(
            "SELECT USER, STATE, INFO FROM information_schema.PROCESSLIST",
          );
          throw new Error(`no lock requested: ${list}`);
        }
        Deno.kill(child.pid, "SIGSTOP");
        const status = await child.status;
        assertEquals(status.signal, "SIGKILL", "ended by its watchdog");
        for (let i = 0; i < 100 && await programSessions(s.db) > 0; i++) await sleep(100);
        assertEquals(await programSessions(s.db), 0, "its session and request are gone");
        assertEquals(await isFrozen(s.mount.mountPoint), false);
        assertEquals((await s.moto.snapshotsOf([s.volume])).length, 0);
      } finally {
        killQuietly(child.pid);
        await child.output().catch(() => {});
        const ids = await s.db.sql(
          "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE 'DO SLEEP%'",
        );
        for (const id of ids.trim().split("\n").filter((l) => /^\d+$/.test(l))) {
          await s.db.sql(`KILL QUERY ${id}`).catch(() => {});
        }
        await admin;
      }
    });
  },
});

Deno.test({
  name:
    "a run stopped (SIGSTOP) during --post-thaw-command, still under the lock: ended at the bound",
  ignore: ignoreUnless(MARIADB, XFS, MOTO),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    requireAvailable(MARIADB);
    await withMysqlStack(async (s) => {
      const child = spawnProgram([
        ...s.mysqlArgs,
        "--freeze-filesystem",
        s.mount.mountPoint,
        "--post-thaw-command",
        `echo $PPID > ${s.dir}/main.pid; exec sleep 120`,
        "--hook-timeout",
        "2",
        s.volume,
      ], { env: s.env });
      try {
        Deno.kill(await readPidFile(`${s.dir}/main.pid`), "SIGSTOP");
        assertEquals((await child.status).signal, "SIGKILL", "ended by its watchdog");
        for (let i = 0; i < 100 && await programSessions(s.db) > 0; i++) await sleep(100);
        assertEquals(await programSessions(s.db), 0, "its session and lock are gone");
        assertEquals(await isFrozen(s.mount.mountPoint), false);
        assertEquals((await s.moto.snapshotsOf([s.volume])).length, 1, "the snapshot made");
      } finally {
        killQuietly(child.pid);
        await child.output().catch(() => {});
      }
    });
  },
});
