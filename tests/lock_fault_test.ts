/**
 * The standing fault table for the database lock and the freeze, through the real program
 * (MariaDB on an XFS loop mount, moto behind the fault proxy): a run or a holder stopped
 * (SIGSTOP) under the lock before its freeze is ended at the step's bound, with its hook, so
 * its lock ends;
 * a file system thawed, or the lock's connection killed, from outside while CreateSnapshot is
 * in flight makes the snapshot "created, consistency unknown" (exit 12), never good.
 */
import { alive, killQuietly, readPidFile } from "./support/processes.ts";
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { mariadbRequirement } from "./support/mariadb.ts";
import { MOTO } from "./support/moto.ts";
import { runProgram, spawnProgram } from "./support/program.ts";
import { ignoreUnless, requireAvailable } from "./support/real.ts";
import { isFrozen, thawQuietly, xfsRequirement } from "./support/xfs.ts";
import {
  answers,
  type MysqlStack,
  programSessions,
  withMysqlStack,
} from "./support/mysql_stack.ts";
import { holder, isCreate, withStack } from "./support/stack.ts";
import { makeStateDir, release, runThenKillGroup } from "./support/hold.ts";
import { ExitCode } from "../src/util/errors.ts";

const MARIADB = await mariadbRequirement();
const XFS = await xfsRequirement();
const REAL = { sanitizeResources: false, sanitizeOps: false };

async function withDb(fn: (s: MysqlStack) => Promise<void>): Promise<void> {
  requireAvailable(MARIADB);
  await withMysqlStack(fn);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A pre-freeze command that writes its parent's pid (the program's) and its own, then sleeps
 * longer than --hook-timeout: the program is stopped while it runs.
 */
const slowHook = (dir: string) =>
  `echo $PPID > ${dir}/main.pid; echo $$ > ${dir}/hook.pid; exec sleep 120`;

/**
 * Stops the program (SIGSTOP) during its pre-freeze command, under the lock: an INSERT waits;
 * once the watchdog has ended the program (at --hook-timeout plus its margin) the INSERT goes
 * through and no session of the program is left. `ended` resolves when the program is gone.
 */
async function stoppedUnderTheLock(
  s: MysqlStack,
  ended: (pid: number) => Promise<void>,
): Promise<void> {
  const pid = await readPidFile(`${s.dir}/main.pid`);
  Deno.kill(pid, "SIGSTOP");
  let written = false;
  const writer = s.db.sql("INSERT INTO app.t (v) VALUES ('waited')").finally(() => written = true);
  try {
    await sleep(500);
    assertEquals(written, false, "the INSERT waits for the lock");
    await ended(pid);
    assertEquals(await Promise.race([writer.then(() => true), sleep(60_000)]), true);
    // The hook it was running was ended with it, by the watchdog.
    const hook = await readPidFile(`${s.dir}/hook.pid`, 1_000);
    for (let i = 0; i < 100 && alive(hook); i++) await sleep(100);
    assertEquals(alive(hook), false, "the pre-freeze command was killed too");
  } finally {
    killQuietly(pid);
    killQuietly(await readPidFile(`${s.dir}/hook.pid`, 1).catch(() => undefined));
    await writer.catch(() => {});
  }
  for (let i = 0; i < 100 && await programSessions(s.db) > 0; i++) await sleep(100);
  assertEquals(await programSessions(s.db), 0, "the run's sessions, and its lock, are gone");
  await s.db.sql("FLUSH TABLES WITH READ LOCK; UNLOCK TABLES;");
  assertEquals(await isFrozen(s.mount.mountPoint), false, "never frozen");
  assertEquals((await s.moto.snapshotsOf([s.volume])).length, 0);
}

Deno.test({
  name: "a run stopped (SIGSTOP) during --pre-freeze-command under the lock: ended at the bound",
  ignore: ignoreUnless(MARIADB, XFS, MOTO),
  ...REAL,
  async fn() {
    await withDb(async (s) => {
      const child = spawnProgram([
        ...s.mysqlArgs,
        "--freeze-filesystem",
        s.mount.mountPoint,
        "--pre-freeze-command",
        slowHook(s.dir),
        "--hook-timeout",
        "2",
        s.volume,
      ], { env: s.env });
      try {
        await stoppedUnderTheLock(s, async () => {
          const status = await child.status;
          assertEquals(status.signal, "SIGKILL", "ended by its watchdog");
        });
      } finally {
        killQuietly(child.pid);
        await child.output().catch(() => {});
      }
    });
  },
});

Deno.test({
  name: "a holder stopped (SIGSTOP) during --pre-freeze-command under the lock: ended at the bound",
  ignore: ignoreUnless(MARIADB, XFS, MOTO),
  ...REAL,
  async fn() {
    await withDb(async (s) => {
      const state = makeStateDir();
      const env = { ...s.env, ...state.env };
      const holding = runThenKillGroup([
        "--hold",
        "30",
        ...s.mysqlArgs,
        "--freeze-filesystem",
        s.mount.mountPoint,
        "--pre-freeze-command",
        slowHook(s.dir),
        "--hook-timeout",
        "2",
      ], env);
      try {
        await stoppedUnderTheLock(s, async (pid) => {
          for (let i = 0; i < 600 && alive(pid); i++) await sleep(100);
          assertEquals(alive(pid), false, "the holder was ended by its watchdog");
        });
        const held = await holding;
        assertEquals(held.code, ExitCode.holdEnded, held.stderr);
        assertEquals(held.stderr.trim().split("\n").length, 1, held.stderr);
        assertEquals(
          (await release(env)).code,
          ExitCode.holdEnded,
          "the hold ended before --release",
        );
      } finally {
        await holding.catch(() => {});
        await state.remove();
      }
    });
  },
});

Deno.test({
  name:
    "the file system thawed from outside while CreateSnapshot is in flight: exit 12, never good",
  ignore: ignoreUnless(XFS, MOTO),
  ...REAL,
  async fn() {
    await withStack(async ({ moto, proxy, volume, mount, env }) => {
      const create = holder(isCreate);
      proxy.decide = create.decide;
      const running = runProgram([
        "--freeze-filesystem",
        mount.mountPoint,
        "--output",
        "json",
        volume,
      ], { env });
      try {
        await create.seen;
        await thawQuietly(mount.mountPoint); // an administrator's fsfreeze -u
        create.release();
        const out = await running;
        assertEquals(out.code, ExitCode.consistencyUnknown, out.stderr);
        const report = JSON.parse(out.stdout);
        const [snapshot] = report.snapshots;
        assertEquals(snapshot.outcome, "consistencyUnknown");
        assertEquals(snapshot.consistencyUnknown, [snapshot.snapshotId]);
        assertMatch(out.stderr, new RegExp(`created, consistency unknown: ${snapshot.snapshotId}`));
        assertMatch(out.stderr, /was no longer frozen when this run thawed it/);
        assertEquals((await moto.snapshotsOf([volume])).length, 1, "kept, for the user to judge");
      } finally {
        create.drop();
        await running.catch(() => {});
        await thawQuietly(mount.mountPoint);
      }
    });
  },
});

Deno.test({
  name: "the lock's connection killed from outside while CreateSnapshot is in flight: exit 12",
  ignore: ignoreUnless(MARIADB, XFS, MOTO),
  ...REAL,
  async fn() {
    await withDb(async ({ db, proxy, volume, mount, env, mysqlArgs }) => {
      const create = holder(isCreate);
      proxy.decide = create.decide;
      const running = runProgram([
        ...mysqlArgs,
        "--freeze-filesystem",
        mount.mountPoint,
        volume,
      ], { env });
      try {
        await create.seen;
        // An administrator kills the program's sessions (the lock's among them).
        const ids = (await db.sql(
          "SELECT ID FROM information_schema.PROCESSLIST WHERE USER = 'snap'",
        )).trim().split("\n").filter((line) => /^\d+$/.test(line));
        assert(ids.length > 0, "the program's sessions are there");
        for (const id of ids) await db.sql(`KILL CONNECTION ${id}`);
        create.release();
        const out = await running;
        assertEquals(out.code, ExitCode.consistencyUnknown, out.stderr);
        assertMatch(out.stderr, /created, consistency unknown: snap-/);
        assertMatch(out.stderr, /lock's connection \(id \d+\) no longer answers/);
        assertEquals(out.stdout.includes("snap-"), false, "no id on stdout is taken for good");
      } finally {
        create.drop();
        await running.catch(() => {});
        await thawQuietly(mount.mountPoint);
      }
      assert(await answers(db, 10_000));
    });
  },
});

Deno.test({
  name:
    "--mysql-stop whose stop command stops nothing: one line, exit 6, nothing started or frozen",
  ignore: ignoreUnless(MARIADB, XFS, MOTO),
  ...REAL,
  async fn() {
    await withDb(async ({ moto, db, dir, volume, mount, env, mysqlArgs }) => {
      const started = `${dir}/started`;
      const out = await runProgram([
        ...mysqlArgs,
        "--mysql-stop",
        "--mysql-stop-command",
        "true",
        "--mysql-start-command",
        `touch ${started}`,
        "--freeze-filesystem",
        mount.mountPoint,
        volume,
      ], { env });
      assertEquals(out.code, ExitCode.database, out.stderr);
      const errors = out.stderr.trim().split("\n");
      assertEquals(errors.length, 1, out.stderr);
      assertMatch(errors[0], /stop command exited 0, but the server at .* still answers/);
      assertMatch(errors[0], /nothing was stopped, so nothing is started/);
      assertEquals(await isFrozen(mount.mountPoint), false);
      assert(await answers(db, 5_000), "the server runs as before");
      let startedExists = true;
      try {
        Deno.statSync(started);
      } catch {
        startedExists = false;
      }
      assertEquals(startedExists, false, "the start command never ran");
      assertEquals((await moto.snapshotsOf([volume])).length, 0);
    });
  },
});
