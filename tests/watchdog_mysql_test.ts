/**
 * The watchdog covers the database too, through the real program with a real MariaDB whose data
 * lives on the XFS loop mount that is frozen: a SIGKILLed run with --mysql-stop has its server
 * started again; a run stopped (SIGSTOP) while locked and frozen is killed at the deadline, so
 * its session and lock die, and the mount is thawed.
 */
import { assert, assertEquals } from "./support/assert.ts";
import { mariadbRequirement } from "./support/mariadb.ts";
import { MOTO } from "./support/moto.ts";
import { spawnProgram } from "./support/program.ts";
import type { Proxy, SeenRequest } from "./support/proxy.ts";
import { ignoreUnless, requireAvailable } from "./support/real.ts";
import { isFrozen, xfsRequirement } from "./support/xfs.ts";
import { answers, type MysqlStack, withMysqlStack } from "./support/mysql_stack.ts";

const MARIADB = await mariadbRequirement();
const XFS = await xfsRequirement();

async function withStack(fn: (s: MysqlStack) => Promise<void>): Promise<void> {
  requireAvailable(MARIADB);
  await withMysqlStack(fn);
}

/** Holds CreateSnapshot calls until `drop()`; `seen` resolves when the first arrives. */
function holdCreate(proxy: Proxy) {
  let arrived!: () => void;
  const seen = new Promise<void>((resolve) => arrived = resolve);
  let settle!: (forward: boolean) => void;
  const released = new Promise<boolean>((resolve) => settle = resolve);
  proxy.decide = (r: SeenRequest) =>
    r.action === "CreateSnapshot" && !r.dryRun ? (arrived(), released) : "forward";
  return { seen, drop: () => settle(false) };
}

Deno.test({
  name: "--mysql-stop and a SIGKILLed run: the watchdog thaws and starts the server again",
  ignore: ignoreUnless(MARIADB, XFS, MOTO),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withStack(async ({ moto, proxy, volume, mount, db, env, mysqlArgs }) => {
      const hold = holdCreate(proxy);
      const child = spawnProgram([
        ...mysqlArgs,
        "--mysql-stop",
        "--mysql-stop-command",
        db.stopCommand,
        "--mysql-start-command",
        db.startCommand,
        "--freeze-filesystem",
        mount.mountPoint,
        volume,
      ], { env });
      try {
        await hold.seen;
        assertEquals(await answers(db, 300), false, "the server is stopped while frozen");
        assertEquals(await isFrozen(mount.mountPoint), true);
        child.kill("SIGKILL");
        await child.output();
      } finally {
        hold.drop();
      }
      assertEquals(await isFrozen(mount.mountPoint, 30_000), false, "thawed by the watchdog");
      assert(await answers(db, 60_000), "the watchdog started the server again");
      await db.sql("INSERT INTO app.t (v) VALUES ('after')");
      assertEquals(await db.sql("SELECT v FROM app.t ORDER BY id"), "before\nafter\n");
      assertEquals((await moto.snapshotsOf([volume])).length, 0);
    });
  },
});

Deno.test({
  name:
    "a run stopped (SIGSTOP) while locked and frozen: killed at the deadline, thawed, its lock gone",
  ignore: ignoreUnless(MARIADB, XFS, MOTO),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withStack(async ({ moto, proxy, volume, mount, db, env, mysqlArgs }) => {
      const hold = holdCreate(proxy);
      const child = spawnProgram([
        ...mysqlArgs,
        "--freeze-filesystem",
        mount.mountPoint,
        "--snapshot-timeout",
        "2",
        volume,
      ], { env });
      let writer: Promise<string> | undefined;
      try {
        await hold.seen;
        const stoppedAt = performance.now();
        Deno.kill(child.pid, "SIGSTOP");
        let written = false;
        writer = db.sql("INSERT INTO app.t (v) VALUES ('waited')").finally(() => written = true);
        await new Promise((resolve) => setTimeout(resolve, 500));
        assertEquals(written, false, "the INSERT waits for the lock");
        // The deadline: --snapshot-timeout (2 s) plus the watchdog's margin (5 s) from arming.
        const status = await child.status;
        assertEquals(status.signal, "SIGKILL", "ended by its watchdog");
        // The deadline is 7 s after arming; generously bounded for a busy machine.
        assert(performance.now() - stoppedAt < 7_000 + 20_000, "at the deadline, not much later");
        assertEquals(await isFrozen(mount.mountPoint, 30_000), false, "thawed");
        await writer;
        // The lock died with the killed session: another session can take it and write.
        await db.sql("FLUSH TABLES WITH READ LOCK; UNLOCK TABLES;");
        await db.sql("INSERT INTO app.t (v) VALUES ('after')");
      } finally {
        hold.drop();
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
        await child.output().catch(() => {});
        await writer?.catch(() => {});
      }
      assertEquals(await db.sql("SELECT v FROM app.t ORDER BY id"), "before\nwaited\nafter\n");
      assertEquals((await moto.snapshotsOf([volume])).length, 0);
    });
  },
});
