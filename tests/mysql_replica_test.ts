/**
 * `--mysql-lock-mode replica` against a real MariaDB replica (two mariadbd, the replica's data on a
 * real XFS mount, moto for EC2): the replication SQL thread stopped while frozen and snapshotted,
 * the executed position reported, replication started again; the watchdog starts it again when
 * the tool is killed; a server that is not a replica is refused before anything is held.
 */
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { baseEnv, runProgram, spawnProgram } from "./support/program.ts";
import { mariadbRequirement, type MariadbServer, startMariadb } from "./support/mariadb.ts";
import { MOTO, type MotoEndpoint, startMoto } from "./support/moto.ts";
import { isFrozen, type TestMount, withXfsMount, xfsRequirement } from "./support/xfs.ts";
import { ignoreUnless, requireAvailable } from "./support/real.ts";
import { ExitCode } from "../src/util/errors.ts";

const MARIADB = await mariadbRequirement();
const XFS = await xfsRequirement();
const PASSWORD = "replica-test-pw";

interface Replication {
  primary: MariadbServer;
  replica: MariadbServer;
  mount: TestMount;
  moto: MotoEndpoint;
  volume: string;
  env: Record<string, string>;
  dir: string;
  /** The tool's options for the replica. */
  mysqlArgs: string[];
}

async function sqlRunning(replica: MariadbServer): Promise<string> {
  const [status] = await replica.rows("SHOW SLAVE STATUS");
  return status?.Slave_SQL_Running ?? "not a replica";
}

async function until(what: string, check: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function withReplication(fn: (r: Replication) => Promise<void>): Promise<void> {
  requireAvailable(MARIADB);
  await withXfsMount(async (mount) => {
    const moto = await startMoto();
    const dir = Deno.makeTempDirSync({ prefix: "ecs-replica-" });
    let primary: MariadbServer | undefined;
    let replica: MariadbServer | undefined;
    try {
      primary = await startMariadb({ serverId: 1 });
      replica = await startMariadb({ serverId: 2, datadir: `${mount.mountPoint}/mysql` });
      await primary.sql(
        "CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY 'repl'; " +
          "GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1';",
      );
      const [at] = await primary.rows("SHOW MASTER STATUS");
      await replica.sql(
        `CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=${primary.port}, ` +
          `MASTER_USER='repl', MASTER_PASSWORD='repl', MASTER_LOG_FILE='${at.File}', ` +
          `MASTER_LOG_POS=${at.Position}; START SLAVE; ` +
          `CREATE USER 'snap'@'localhost' IDENTIFIED BY '${PASSWORD}'; ` +
          "GRANT RELOAD, BINLOG MONITOR, SLAVE MONITOR, REPLICATION SLAVE ADMIN ON *.* " +
          "TO 'snap'@'localhost';",
      );
      await primary.sql(
        "CREATE DATABASE app; CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, " +
          "v VARCHAR(20)) ENGINE=InnoDB; INSERT INTO app.t (v) VALUES ('before');",
      );
      const rowsOnReplica = async () =>
        (await replica!.sql("SELECT COUNT(*) FROM app.t").catch(() => "0")).trim();
      await until("the replica to apply the first row", async () => await rowsOnReplica() === "1");
      const defaults = `${dir}/my.cnf`;
      Deno.writeTextFileSync(
        defaults,
        `[client]\nuser = snap\npassword = "${PASSWORD}"\nsocket = ${replica.socket}\n`,
        { mode: 0o600 },
      );
      const [volume] = await moto.createVolumes(1);
      await fn({
        primary,
        replica,
        mount,
        moto,
        volume,
        env: baseEnv(moto.env),
        dir,
        mysqlArgs: [
          "--mysql",
          "--mysql-defaults-file",
          defaults,
          "--mysql-lock-mode",
          "replica",
          "--freeze-filesystem",
          mount.mountPoint,
        ],
      });
    } finally {
      await replica?.stop();
      await primary?.stop();
      Deno.removeSync(dir, { recursive: true });
      await moto.stop();
    }
  });
}

Deno.test({
  name: "replica mode: replication stopped while frozen, its executed position, started again",
  ignore: ignoreUnless(MARIADB, XFS, MOTO),
}, async () => {
  await withReplication(async ({ primary, replica, mount, moto, volume, env, dir, mysqlArgs }) => {
    // While everything is held: what the replica says, and a write on the primary.
    const seen = `${dir}/seen`;
    const hook =
      `mariadb --no-defaults -uroot --socket=${replica.socket} -e 'SHOW SLAVE STATUS\\G'` +
      ` > ${seen}; mariadb --no-defaults -uroot --socket=${primary.socket} ` +
      `-e "INSERT INTO app.t (v) VALUES ('while held')"; sleep 1`;
    const run = await runProgram([...mysqlArgs, "--pre-freeze-command", hook, volume], { env });
    assertEquals(run.code, 0, run.stderr);
    const status = Deno.readTextFileSync(seen);
    assertMatch(status, /Slave_SQL_Running: No/);
    assertMatch(status, /Slave_IO_Running: Yes/, "only the SQL thread is stopped");
    const executed = /Exec_Master_Log_Pos: (\d+)/.exec(status)![1];
    const file = /Relay_Master_Log_File: (\S+)/.exec(status)![1];
    // The old tool's line, with the position that matches the data (not the one read).
    assertMatch(
      run.stdout,
      new RegExp(`master_log_file="${file}", master_log_pos=${executed}\\n`),
    );
    assertEquals(await isFrozen(mount.mountPoint), false);
    assertEquals(await sqlRunning(replica), "Yes", "replication started again");
    await until(
      "the write made while held to reach the replica",
      async () => (await replica.sql("SELECT COUNT(*) FROM app.t")).trim() === "2",
    );
    assertEquals((await moto.snapshotsOf([volume])).length, 1);
  });
});

Deno.test({
  name: "replica mode: the tool killed while replication is stopped; the watchdog starts it",
  ignore: ignoreUnless(MARIADB, XFS, MOTO),
}, async () => {
  await withReplication(async ({ replica, mount, volume, env, mysqlArgs }) => {
    const child = spawnProgram([...mysqlArgs, "--pre-freeze-command", "sleep 60", volume], {
      env,
    });
    try {
      await until("the SQL thread to stop", async () => await sqlRunning(replica) === "No");
      child.kill("SIGKILL");
      await child.output();
      await until(
        "the watchdog to start replication",
        async () => await sqlRunning(replica) === "Yes",
      );
      assertEquals(await isFrozen(mount.mountPoint), false);
    } finally {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
    }
  });
});

Deno.test({
  name: "replica mode on a server that is not a replica: refused before anything is held",
  ignore: ignoreUnless(MARIADB, XFS, MOTO),
}, async () => {
  await withReplication(async ({ primary, mount, volume, env, dir }) => {
    const defaults = `${dir}/primary.cnf`;
    await primary.sql(
      `CREATE USER 'snap'@'localhost' IDENTIFIED BY '${PASSWORD}'; ` +
        "GRANT RELOAD, BINLOG MONITOR, SLAVE MONITOR ON *.* TO 'snap'@'localhost';",
    );
    Deno.writeTextFileSync(
      defaults,
      `[client]\nuser = snap\npassword = "${PASSWORD}"\nsocket = ${primary.socket}\n`,
      { mode: 0o600 },
    );
    const run = await runProgram([
      "--mysql",
      "--mysql-defaults-file",
      defaults,
      "--mysql-lock-mode",
      "replica",
      "--freeze-filesystem",
      mount.mountPoint,
      volume,
    ], { env });
    assertEquals(run.code, ExitCode.database, run.stderr);
    assertMatch(run.stderr, /not a replica/);
    assertEquals(await isFrozen(mount.mountPoint), false);
    const password = await runProgram([
      "--mysql",
      "--mysql-password",
      "x",
      "--mysql-lock-mode",
      "replica",
      volume,
    ], { env });
    assertEquals(password.code, ExitCode.usage);
    assertMatch(password.stderr, /give the password in an option file/);
    assert(!password.stderr.includes("x\n"));
  });
});

Deno.test({
  name:
    "replica mode: replication started by someone else while held: the snapshot is of unknown consistency (exit 12)",
  ignore: ignoreUnless(MARIADB, XFS, MOTO),
}, async () => {
  await withReplication(async ({ replica, mount, moto, volume, env, mysqlArgs }) => {
    // An administrator starts the SQL thread again under the tool (here, from its own hook).
    const hook =
      `mariadb --no-defaults -uroot --socket=${replica.socket} -e 'START SLAVE SQL_THREAD'`;
    const run = await runProgram([...mysqlArgs, "--pre-freeze-command", hook, volume], { env });
    assertEquals(run.code, ExitCode.consistencyUnknown, run.stderr);
    assertMatch(run.stderr, /created, consistency unknown: snap-\S+ of vol-/);
    assertMatch(run.stderr, /replication SQL thread runs again/);
    assertEquals(run.stdout.includes("snap-"), false, "no id on stdout is taken for good");
    assertEquals(await isFrozen(mount.mountPoint), false);
    assertEquals((await moto.snapshotsOf([volume])).length, 1, "kept, for the user to judge");
  });
});
