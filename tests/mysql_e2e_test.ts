/**
 * MySQL/MariaDB end to end through the real program: a real MariaDB whose data lives on the
 * XFS loop mount that is frozen, a concurrent writer and a concurrent long query, against moto.
 */
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { mariadbRequirement, session } from "./support/mariadb.ts";
import { MOTO, tagsOf } from "./support/moto.ts";
import { type MysqlStack, withMysqlStack } from "./support/mysql_stack.ts";
import { runProgram, spawnProgram } from "./support/program.ts";
import { ignoreUnless, requireAvailable } from "./support/real.ts";
import { holder, isCreate } from "./support/stack.ts";
import { isFrozen, xfsRequirement } from "./support/xfs.ts";
import { ExitCode } from "../src/util/errors.ts";

const MARIADB = await mariadbRequirement();
const XFS = await xfsRequirement();

/** The stack of these tests (support/mysql_stack.ts): MariaDB whose data is on the frozen XFS mount. */
function withStack(fn: (s: MysqlStack) => Promise<void>): Promise<void> {
  requireAvailable(MARIADB);
  return withMysqlStack(fn);
}

Deno.test({
  name: "locked and frozen while the snapshot is initiated; a writer waits and completes after",
  ignore: ignoreUnless(MARIADB, XFS, MOTO),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withStack(async ({ moto, proxy, volume, mount, db, env, dir, mysqlArgs }) => {
      const [file, position] = (await db.sql("SHOW MASTER STATUS")).split("\t");
      const statusFile = `${dir}/master-status`;
      let arrived!: () => void;
      const held = new Promise<void>((resolve) => arrived = resolve);
      let release!: (forward: boolean) => void;
      const released = new Promise<boolean>((resolve) => release = resolve);
      proxy.decide = (r) =>
        r.action === "CreateSnapshot" && !r.dryRun ? (arrived(), released) : "forward";
      const child = spawnProgram([
        ...mysqlArgs,
        "--mysql-master-status-file",
        statusFile,
        "--freeze-filesystem",
        mount.mountPoint,
        volume,
      ], { env });
      let writer: ReturnType<typeof session> | undefined;
      try {
        await held;
        writer = session(db, "INSERT INTO app.t (v) VALUES ('during')");
        await new Promise((resolve) => setTimeout(resolve, 500));
        assertEquals(writer.finished(), false, "the INSERT waits while the snapshot is initiated");
        assertEquals(await isFrozen(mount.mountPoint), true);
        assertMatch(Deno.readTextFileSync(statusFile), new RegExp(`master_log_file="${file}"`));
      } finally {
        release(true);
      }
      const out = await child.output();
      const stdout = new TextDecoder().decode(out.stdout);
      assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
      await writer?.done;
      assertEquals(await db.sql("SELECT v FROM app.t ORDER BY id"), "before\nduring\n");
      const lines = stdout.trimEnd().split("\n");
      assertEquals(
        lines[0],
        `ec2-consistent-snapshot: master_log_file="${file}", master_log_pos=${position}`,
      );
      assertMatch(lines[1], /^snap-[0-9a-f]+$/);
      const snapshots = await moto.snapshotsOf([volume]);
      assertEquals(snapshots.length, 1);
      // The snapshot describes itself: the volume set and the database at the lock.
      const tags = tagsOf(snapshots[0]);
      assertEquals(tags["ec2-consistent-snapshot:volumes"], "1");
      assertMatch(
        tags["ec2-consistent-snapshot:database"],
        new RegExp(
          `^mariadb 10\\.[\\d.]+ datadir=${mount.mountPoint}/mysql log-bin=\\S+ ` +
            `binlog=${file}:${position}( gtid=\\S+)?$`,
        ),
      );
      assertEquals(await isFrozen(mount.mountPoint), false);
      let statusFileGone = false;
      try {
        Deno.statSync(statusFile);
      } catch {
        statusFileGone = true;
      }
      assert(statusFileGone, "the status file is removed after the snapshot");
      const events = await db.sql(`SHOW BINLOG EVENTS IN '${file}'`);
      assertEquals(
        /FLUSH|UNLOCK/i.test(events),
        false,
        "no FLUSH statement reaches the binary log",
      );
    });
  },
});

Deno.test({
  name: "a long query keeps the lock from being granted: give up, nothing frozen, only ours killed",
  ignore: ignoreUnless(MARIADB, XFS, MOTO),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withStack(async ({ moto, proxy, volume, mount, db, env, mysqlArgs }) => {
      const long = session(db, "UPDATE app.t SET v = IF(SLEEP(8), 'x', 'slept') WHERE id = 1");
      await new Promise((resolve) => setTimeout(resolve, 300));
      const out = await runProgram([
        ...mysqlArgs,
        "--lock-timeout",
        "0.3",
        "--lock-tries",
        "2",
        "--lock-sleep",
        "0.2",
        "--freeze-filesystem",
        mount.mountPoint,
        volume,
      ], { env });
      assertEquals(out.code, ExitCode.database, out.stderr);
      assertMatch(out.stderr, /lock/i);
      assertEquals(proxy.seen.filter((r) => r.action === "CreateSnapshot" && !r.dryRun).length, 0);
      assertEquals((await moto.snapshotsOf([volume])).length, 0);
      assertEquals(await isFrozen(mount.mountPoint), false);
      const started = performance.now();
      await db.sql("INSERT INTO app.t (v) VALUES ('after')");
      assert(performance.now() - started < 20_000, "writes are not blocked afterwards");
      assertEquals(long.finished(), false, "the other session's query was not killed");
      await long.done;
      assertEquals(await db.sql("SELECT v FROM app.t WHERE id = 1"), "slept\n");
    });
  },
});

Deno.test({
  name: "--noaction with --mysql opens no connection; a wrong password fails before any freeze",
  ignore: ignoreUnless(MARIADB, XFS, MOTO),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withStack(async ({ proxy, volume, mount, db, env, dir, mysqlArgs }) => {
      const connections = async () =>
        Number((await db.sql("SHOW GLOBAL STATUS LIKE 'Connections'")).split("\t")[1]);
      const before = await connections();
      const dry = await runProgram([
        "-n",
        ...mysqlArgs,
        "--freeze-filesystem",
        mount.mountPoint,
        volume,
      ], { env });
      assertEquals(dry.code, 0, dry.stderr);
      assertMatch(dry.stderr, /would flush and lock MySQL\/MariaDB/);
      assertEquals(await connections(), before + 1, "only our own count query connected");

      const wrong = `${dir}/wrong.cnf`;
      Deno.writeTextFileSync(
        wrong,
        `[client]\nuser = snap\npassword = nope-Wrong-1\nsocket = ${db.socket}\n`,
        { mode: 0o600 },
      );
      const out = await runProgram(
        [
          "--mysql",
          "--mysql-defaults-file",
          wrong,
          "--freeze-filesystem",
          mount.mountPoint,
          volume,
        ],
        { env },
      );
      assertEquals(out.code, ExitCode.database, out.stderr);
      assertMatch(out.stderr, /Access denied/);
      assertEquals(out.stderr.includes("nope-Wrong-1"), false);
      assertEquals(proxy.seen.filter((r) => r.action === "CreateSnapshot" && !r.dryRun).length, 0);
      assertEquals(await isFrozen(mount.mountPoint), false);
    });
  },
});

Deno.test({
  name: "--mysql-stop, --debug and a closed stderr: thawed, the server started again, exit 13",
  ignore: ignoreUnless(MARIADB, XFS, MOTO),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withStack(async ({ moto, proxy, volume, mount, db, env, mysqlArgs }) => {
      const hold = holder(isCreate);
      proxy.decide = hold.decide;
      const child = spawnProgram([
        ...mysqlArgs,
        "--mysql-stop",
        "--mysql-stop-command",
        db.stopCommand,
        "--mysql-start-command",
        db.startCommand,
        "--freeze-filesystem",
        mount.mountPoint,
        "--snapshot-timeout",
        "60",
        "-d",
        volume,
      ], { env });
      try {
        await hold.seen;
        // Every debug line from here on meets a closed pipe.
        await child.stderr.cancel();
        assertEquals(await isFrozen(mount.mountPoint), true);
      } finally {
        hold.release();
      }
      const out = await child.output();
      assertEquals(out.code, ExitCode.output);
      assertEquals(await isFrozen(mount.mountPoint), false, "thawed by the program, not later");
      await db.waitReady(20_000);
      assertEquals((await db.sql("SELECT COUNT(*) FROM app.t")).trim(), "1");
      const [made] = await moto.snapshotsOf([volume]);
      assertEquals(new TextDecoder().decode(out.stdout), `${made.SnapshotId}\n`);
    });
  },
});
