/**
 * Hold mode end to end, as Data Lifecycle Manager and the other orchestrators use it: `--hold`
 * from a shell whose process group is killed at once, the file system and a real MariaDB probed
 * from outside, `--release`, the deadline, SIGKILL of the holder, a second hold, a normal run on
 * a held mount, and the dry run.
 */
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import {
  mariadbRequirement,
  type MariadbServer,
  session,
  startMariadb,
} from "./support/mariadb.ts";
import { baseEnv, runProgram } from "./support/program.ts";
import { ignoreUnless, requireAvailable, type Requirement } from "./support/real.ts";
import { isFrozen, type TestMount, withXfsMount, xfsRequirement } from "./support/xfs.ts";
import { makeStateDir, release, runThenKillGroup, type StateDir } from "./support/hold.ts";
import { MOTO, startMoto } from "./support/moto.ts";
import { ExitCode } from "../src/util/errors.ts";

interface Stack {
  mount: TestMount;
  db: MariadbServer;
  state: StateDir;
  env: Record<string, string>;
  /** --freeze-filesystem MOUNT --mysql and the test server's settings. */
  holdArgs: string[];
}

const MARIADB = await mariadbRequirement();
const XFS = await xfsRequirement();

/** A test on real XFS and MariaDB: ignored outside CI when they are missing, failed in CI. */
function realTest(name: string, fn: () => Promise<void>, more: Requirement[] = []): void {
  Deno.test({ name, ignore: ignoreUnless(MARIADB, XFS, ...more), fn });
}

async function withStack(fn: (s: Stack) => Promise<void>): Promise<void> {
  requireAvailable(MARIADB);
  await withXfsMount(async (mount) => {
    const state = makeStateDir();
    const env = baseEnv(state.env);
    let db: MariadbServer | undefined;
    try {
      db = await startMariadb();
      await db.sql(
        `CREATE DATABASE app;
         CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(20)) ENGINE=InnoDB;
         INSERT INTO app.t (v) VALUES ('before');`,
      );
      const holdArgs = [
        "--freeze-filesystem",
        mount.mountPoint,
        "--mysql",
        "--mysql-socket",
        db.socket,
        "--mysql-username",
        "root",
      ];
      await fn({ mount, db, state, env, holdArgs });
    } finally {
      await state.remove();
      await db?.stop();
    }
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

realTest(
  "--hold returns held (caller's group killed): frozen and locked until --release",
  async () => {
    await withStack(async ({ mount, db, env, holdArgs }) => {
      const held = await runThenKillGroup(["--hold", "60", ...holdArgs], env);
      assertEquals(held.code, 0, held.stderr);
      assertMatch(
        held.stdout,
        /^ec2-consistent-snapshot: master_log_file="[^"]+", master_log_pos=\d+\n$/,
      );
      assertEquals(await isFrozen(mount.mountPoint), true, "frozen after the caller's group died");
      const insert = session(db, "INSERT INTO app.t (v) VALUES ('during')");
      await sleep(1_000);
      assertEquals(insert.finished(), false, "an INSERT waits for the lock");

      const out = await release(env);
      assertEquals(out.code, 0, out.stderr);
      assertMatch(out.stdout, /master_log_file="[^"]+", master_log_pos=\d+\n/);
      const windows = /freeze window (\d+) ms, lock window (\d+) ms, database lock (\d+) ms/.exec(
        out.stdout,
      );
      assert(windows, out.stdout);
      assert(Number(windows[1]) >= 1_000 && Number(windows[2]) >= Number(windows[1]));
      await insert.done;
      assertEquals(await isFrozen(mount.mountPoint), false, "thawed after --release");
      assertEquals((await db.sql("SELECT COUNT(*) FROM app.t")).trim(), "2");
    });
  },
);

realTest("the deadline releases alone; a late --release says so and exits 17", async () => {
  await withStack(async ({ mount, db, env, holdArgs }) => {
    const held = await runThenKillGroup(["--hold=5", ...holdArgs], env);
    assertEquals(held.code, 0, held.stderr);
    assertEquals(await isFrozen(mount.mountPoint), true);
    // The deadline is 5 s; the bound is generous (a busy machine), the release is what counts.
    const thawedBy = Date.now() + 60_000;
    while (await isFrozen(mount.mountPoint) && Date.now() < thawedBy) await sleep(250);
    assertEquals(await isFrozen(mount.mountPoint), false, "thawed by the holder at the deadline");
    await db.sql("INSERT INTO app.t (v) VALUES ('after')");
    const late = await release(env);
    assertEquals(late.code, ExitCode.holdEnded, late.stderr);
    assertMatch(late.stderr, /released by the deadline at \d{4}-\d\d-\d\dT/);
    assertEquals(late.stdout, "");
  });
});

realTest(
  "SIGKILL of the holder: the watchdog thaws, the lock ends with the connection",
  async () => {
    await withStack(async ({ mount, db, state, env, holdArgs }) => {
      const held = await runThenKillGroup(["--hold", ...holdArgs], env);
      assertEquals(held.code, 0, held.stderr);
      const pid = state.holderPid();
      assert(pid !== undefined, "the hold record names the holder");
      Deno.kill(pid, "SIGKILL");
      assertEquals(await isFrozen(mount.mountPoint, 30_000), false, "the watchdog thawed");
      const insert = session(db, "INSERT INTO app.t (v) VALUES ('after kill')");
      await insert.done;
      const out = await release(env);
      assertEquals(out.code, ExitCode.holdEnded);
      assertMatch(out.stderr, /ended without releasing/);
      assertEquals(state.holderPid(), undefined, "the stale record was cleaned");
      // The dead holder's freeze lock and record are taken over: a new hold works.
      const again = await runThenKillGroup(["--hold", ...holdArgs], env);
      assertEquals(again.code, 0, again.stderr);
      assertEquals(await isFrozen(mount.mountPoint), true);
      assertEquals((await release(env)).code, 0);
    });
  },
);

realTest("a second hold is refused (exit 16) and leaves the first intact", async () => {
  await withStack(async ({ mount, env, holdArgs }) => {
    const first = await runThenKillGroup(["--hold", ...holdArgs], env);
    assertEquals(first.code, 0, first.stderr);
    const second = await runThenKillGroup(["--hold", "--freeze-filesystem", mount.mountPoint], env);
    assertEquals(second.code, ExitCode.holdInPlace, second.stderr);
    assertMatch(second.stderr, /a hold by process \d+ .* is in place/);
    assertEquals(await isFrozen(mount.mountPoint), true, "the first hold still holds");
    const out = await release(env);
    assertEquals(out.code, 0, out.stderr);
    assertEquals(await isFrozen(mount.mountPoint), false);
  });
});

realTest("a normal run on a held mount is refused before anything is locked", async () => {
  await withStack(async ({ mount, env, holdArgs }) => {
    const moto = await startMoto();
    try {
      const [volume] = await moto.createVolumes(1);
      const held = await runThenKillGroup(["--hold", ...holdArgs], env);
      assertEquals(held.code, 0, held.stderr);
      const run = await runProgram(
        ["--freeze-filesystem", mount.mountPoint, volume],
        { env: { ...env, ...moto.env } },
      );
      assertEquals(run.code, ExitCode.busy, run.stderr);
      assertMatch(run.stderr, /a hold/);
      assertEquals((await moto.snapshotsOf([volume])).length, 0);
      assertEquals((await release(env)).code, 0);
    } finally {
      await moto.stop();
    }
  });
}, [MOTO]);

realTest("a caller killed before the hold was confirmed: the holder releases at once", async () => {
  await withStack(async ({ mount, db, state, env, holdArgs }) => {
    // The pre-freeze command runs under the database lock; the caller dies meanwhile.
    const held = await runThenKillGroup(
      ["--hold", ...holdArgs, "--pre-freeze-command", "sleep 2"],
      env,
      { killAfterMs: 1_000 },
    );
    assertEquals(held.code, -1, "the caller was killed before it returned");
    // Nothing stays frozen: polled, generously bounded (a busy machine is slower, not different).
    const until = Date.now() + 60_000;
    await sleep(3_000);
    while (await isFrozen(mount.mountPoint) && Date.now() < until) await sleep(250);
    assertEquals(await isFrozen(mount.mountPoint), false, "nothing stays frozen");
    await session(db, "INSERT INTO app.t (v) VALUES ('unlocked')").done;
    assertEquals(state.holderPid(), undefined, "the holder is gone and its record with it");
    assertEquals((await release(env)).code, ExitCode.notHeld);
  });
});

realTest(
  "--hold --mysql-stop: the server is down while held, up at --release or by the watchdog",
  async () => {
    await withStack(async ({ mount, db, state, env }) => {
      const args = [
        "--freeze-filesystem",
        mount.mountPoint,
        "--mysql-stop",
        "--mysql-socket",
        db.socket,
        "--mysql-username",
        "root",
        "--mysql-stop-command",
        db.stopCommand,
        "--mysql-start-command",
        db.startCommand,
      ];
      const held = await runThenKillGroup(["--hold", ...args], env);
      assertEquals(held.code, 0, held.stderr);
      assertEquals(await isFrozen(mount.mountPoint), true);
      let down = false;
      await db.sql("SELECT 1").catch(() => down = true);
      assert(down, "the server is stopped while held");
      const out = await release(env);
      assertEquals(out.code, 0, out.stderr);
      await db.waitReady(30_000);
      assertEquals(await isFrozen(mount.mountPoint), false);

      // The holder killed while the server is down: its watchdog thaws and starts the server.
      const again = await runThenKillGroup(["--hold", ...args], env);
      assertEquals(again.code, 0, again.stderr);
      Deno.kill(state.holderPid()!, "SIGKILL");
      assertEquals(await isFrozen(mount.mountPoint, 30_000), false, "the watchdog thawed");
      await db.waitReady(60_000);
    });
  },
);

realTest("--noaction --hold checks the database and the mounts and touches nothing", async () => {
  await withStack(async ({ mount, db, state, env, holdArgs }) => {
    const log = `${db.rundir}/general.log`;
    await db.sql(`SET GLOBAL general_log_file = '${log}'; SET GLOBAL general_log = 1;`);
    const out = await runProgram(["--noaction", "--hold", ...holdArgs], { env });
    await db.sql("SET GLOBAL general_log = 0");
    assertEquals(out.code, 0, out.stderr);
    assertMatch(out.stderr, /would flush and lock MySQL\/MariaDB, lock mode flush \(connected/);
    assertMatch(out.stderr, new RegExp(`would freeze ${mount.mountPoint} \\(xfs`));
    assertEquals(out.stdout, "", "nothing on stdout looks like a result");
    const statements = Deno.readTextFileSync(log);
    assertMatch(statements, /SELECT VERSION\(\)/, "it connected and checked");
    assert(!/FLUSH|LOCK|BACKUP STAGE/i.test(statements), statements);
    assertEquals(await isFrozen(mount.mountPoint), false);
    assertEquals(state.holderPid(), undefined);

    const bad = await runProgram(
      ["--noaction", "--hold", ...holdArgs, "--mysql-username", "nobody-here"],
      { env },
    );
    assertEquals(bad.code, ExitCode.database, bad.stderr);
  });
});
