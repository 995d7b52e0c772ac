/** Tests of the MySQL/MariaDB lock, coordinates, status file and stop/start, on a real MariaDB. */

import assert from "node:assert/strict";
import { binlogLine } from "../src/cli/report.ts";
import { DatabaseError, UsageError } from "../src/util/errors.ts";
import type { BinlogCoordinates } from "../src/types/side_effects.ts";
import { createLogger, type Logger } from "../src/util/log.ts";
import {
  createMysqlDatabase as databaseFromPlan,
  type MysqlDeps,
} from "../src/db/mysql/database.ts";
import { type MysqlPlanDeps, planMysql } from "../src/plan/mysql.ts";
import type { Database } from "../src/types/side_effects.ts";
import {
  formatMasterStatusFile,
  lockModeProblem,
  parseServerInfo,
  serverStatements,
} from "../src/db/mysql/server.ts";
import { defaultOptions, type Options } from "../src/types/options.ts";
import {
  mariadbRequirement,
  type MariadbServer,
  startMariadb,
  startReplica,
  waitReplicaSynced,
} from "./support/mariadb.ts";
import { ignoreUnless, requireAvailable } from "./support/real.ts";

const MARIADB = await mariadbRequirement();

const PASSWORD = "Snap-Secret-4711";

function mysqlOptions(server: MariadbServer, overrides: Partial<Options> = {}): Options {
  return {
    ...defaultOptions(),
    mysql: true,
    mysqlDefaultsFile: undefined,
    mysqlSocket: server.socket,
    mysqlUsername: "snap",
    mysqlPassword: PASSWORD,
    lockTimeout: 0.3,
    lockTries: 3,
    lockSleep: 0.1,
    ...overrides,
  };
}

/**
 * The database as the program makes it: the plan from the options (here at prepare(), so the
 * plan's usage errors arrive where these tests await them), then the part the plan chose.
 */
function createMysqlDatabase(options: Options, deps: MysqlDeps & MysqlPlanDeps): Database {
  let db: Database | undefined;
  return {
    async prepare() {
      db = databaseFromPlan(planMysql(options, deps), deps);
      await db.prepare();
    },
    lock: (signal) => db!.lock(signal),
    release: async () => await db?.release(),
  };
}

function recordingLogger(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  return { log: createLogger({ debug: true, write: (line) => lines.push(line) }), lines };
}

/** Another client session, run by the `mariadb` client in the background. */
interface Session {
  done: Promise<{ code: number; stdout: string; stderr: string }>;
  finished(): boolean;
}

function session(server: MariadbServer, query: string): Session {
  const child = new Deno.Command("mariadb", {
    args: ["--no-defaults", `--socket=${server.socket}`, "--user=root", "-N", "-B", "-e", query],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let finished = false;
  const done = child.output().then((out) => {
    finished = true;
    const decoder = new TextDecoder();
    return {
      code: out.code,
      stdout: decoder.decode(out.stdout).trim(),
      stderr: decoder.decode(out.stderr).trim(),
    };
  });
  return { done, finished: () => finished };
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function masterStatus(server: MariadbServer): Promise<{ file: string; position: number }> {
  const [file, position] = (await server.sql("SHOW MASTER STATUS")).trim().split("\t");
  return { file, position: Number(position) };
}

async function binlogEventsText(server: MariadbServer): Promise<string> {
  const logs = (await server.sql("SHOW BINARY LOGS")).trim().split("\n").map((l) =>
    l.split("\t")[0]
  );
  let text = "";
  for (const log of logs) text += await server.sql(`SHOW BINLOG EVENTS IN '${log}'`);
  return text;
}

async function rejectsWith<E extends Error>(
  promise: Promise<unknown>,
  type: new (...args: never[]) => E,
  pattern: RegExp,
): Promise<E> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof type, `expected ${type.name}, got ${error}`);
    assert.match(error.message, pattern);
    return error;
  }
  throw new assert.AssertionError({ message: `expected ${type.name}: nothing was thrown` });
}

Deno.test("statements follow the server version", () => {
  const maria = (v: string) => serverStatements(parseServerInfo(`${v}-MariaDB`));
  const mysql = (v: string) => serverStatements(parseServerInfo(v));
  assert.equal(maria("10.4.30").replicaStatus, "SHOW SLAVE STATUS");
  assert.equal(maria("10.5.1").replicaStatus, "SHOW REPLICA STATUS");
  assert.equal(maria("10.5.1").binlogStatus, "SHOW MASTER STATUS");
  assert.equal(maria("10.11.6").binlogStatus, "SHOW BINLOG STATUS");
  assert.equal(mysql("8.0.21").replicaStatus, "SHOW SLAVE STATUS");
  assert.equal(mysql("8.0.22").replicaStatus, "SHOW REPLICA STATUS");
  assert.equal(mysql("8.1.0").binlogStatus, "SHOW MASTER STATUS");
  assert.equal(mysql("8.4.3").binlogStatus, "SHOW BINARY LOG STATUS");
  assert.match(
    lockModeProblem("instance", parseServerInfo("10.11.6-MariaDB"))!,
    /MariaDB.*stage/,
  );
  assert.match(lockModeProblem("stage", parseServerInfo("8.4.3"))!, /MySQL.*instance/);
  assert.equal(lockModeProblem("instance", parseServerInfo("8.0.35")), undefined);
  assert.match(lockModeProblem("instance", parseServerInfo("5.7.44"))!, /8\.0/);
  assert.match(lockModeProblem("percona", parseServerInfo("8.0.35"))!, /no backup locks/);
  assert.equal(lockModeProblem("percona", parseServerInfo("8.0.35-27", true)), undefined);
});

Deno.test("the old tool's output line and status file", () => {
  const coordinates: BinlogCoordinates = {
    file: "mysql-bin.000042",
    position: 1234,
    from: "source",
  };
  assert.equal(
    binlogLine(coordinates),
    'ec2-consistent-snapshot: master_log_file="mysql-bin.000042", master_log_pos=1234',
  );
  assert.equal(
    formatMasterStatusFile(coordinates, "app", ""),
    'master_log_file="mysql-bin.000042"\nmaster_log_pos="1234"\n' +
      'master_binlog_do_db="app"\nmaster_binlog_ignore_db=""\n',
  );
});

Deno.test("usage errors come before any connection", async () => {
  const { log } = recordingLogger();
  const base = { ...defaultOptions(), mysql: true, mysqlSocket: "/nonexistent.sock" };
  await rejectsWith(
    createMysqlDatabase({ ...base, mysqlLockMode: "bogus" }, { log }).prepare(),
    UsageError,
    /--mysql-lock-mode: must be one of/,
  );
  await rejectsWith(
    createMysqlDatabase({ ...base, percona: true, mysqlLockMode: "stage" }, { log }).prepare(),
    UsageError,
    /--percona conflicts/,
  );
  await rejectsWith(
    createMysqlDatabase({ ...base, percona: true, mysqlMasterStatusFile: "/tmp/x" }, { log })
      .prepare(),
    UsageError,
    /--mysql-master-status-file: the percona lock mode/,
  );
  await rejectsWith(
    createMysqlDatabase({ ...base, mysqlMasterStatusFile: "/nonexistent-dir/status" }, { log })
      .prepare(),
    UsageError,
    /directory \/nonexistent-dir does not exist/,
  );
});

Deno.test({
  name: "real MariaDB: lock, coordinates, status file, timeouts, stop/start, replica",
  ignore: ignoreUnless(MARIADB),
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    requireAvailable(MARIADB);
    const server = await startMariadb();
    try {
      await server.sql(
        `CREATE USER 'snap'@'localhost' IDENTIFIED BY '${PASSWORD}';
         GRANT ALL PRIVILEGES ON *.* TO 'snap'@'localhost';
         CREATE USER 'snap'@'127.0.0.1' IDENTIFIED BY '${PASSWORD}';
         GRANT ALL PRIVILEGES ON *.* TO 'snap'@'127.0.0.1';
         CREATE USER 'minimal'@'localhost' IDENTIFIED BY '${PASSWORD}';
         GRANT RELOAD, BINLOG MONITOR, SLAVE MONITOR ON *.* TO 'minimal'@'localhost';
         CREATE DATABASE app;
         CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(20)) ENGINE=InnoDB;
         INSERT INTO app.t (v) VALUES ('before');
         CREATE TABLE app.w (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(20)) ENGINE=InnoDB;`,
      );

      await t.step("FTWRL holds another session's INSERT until release()", async () => {
        const { log, lines } = recordingLogger();
        const db = createMysqlDatabase(mysqlOptions(server), { log });
        await db.prepare();
        const coordinates = await db.lock(new AbortController().signal);
        let insert: Session | undefined;
        try {
          assert.ok(coordinates);
          assert.equal(coordinates.from, "source");
          const status = await masterStatus(server);
          assert.equal(coordinates.file, status.file);
          assert.equal(coordinates.position, status.position);
          const gtid = (await server.sql("SELECT @@GLOBAL.gtid_binlog_pos")).trim();
          assert.equal(coordinates.gtidExecuted, gtid === "" ? undefined : gtid);
          insert = session(server, "INSERT INTO app.t (v) VALUES ('during')");
          await delay(700);
          assert.equal(insert.finished(), false, "the INSERT must wait while locked");
        } finally {
          await db.release();
        }
        const result = await insert.done;
        assert.equal(result.code, 0, result.stderr);
        assert.equal(
          (await server.sql("SELECT COUNT(*) FROM app.t WHERE v = 'during'")).trim(),
          "1",
        );
        await db.release(); // a second call does nothing
        assert.equal(lines.some((line) => line.includes(PASSWORD)), false);
        assert.ok(lines.some((line) => line.includes("FLUSH LOCAL TABLES WITH READ LOCK")));
      });

      await t.step(
        "a lock whose connection was killed while held is not released as held",
        async () => {
          const { log } = recordingLogger();
          const db = createMysqlDatabase(mysqlOptions(server), { log });
          await db.prepare();
          await db.lock(new AbortController().signal);
          // An administrator (or a dropped network) ends the session that holds the read lock.
          const holder = (await server.sql(
            "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO IS NULL AND USER = 'snap' " +
              "ORDER BY ID LIMIT 1",
          )).trim();
          await server.sql(`KILL ${holder}`);
          await delay(200);
          await assert.rejects(() => db.release(), /cannot be vouched for/);
          await db.release(); // a second call does nothing
        },
      );

      await t.step("no FLUSH statement reaches the binary log", async () => {
        for (const user of ["snap", "minimal"]) {
          const { log, lines } = recordingLogger();
          const db = createMysqlDatabase(mysqlOptions(server, { mysqlUsername: user }), { log });
          await db.prepare();
          try {
            await db.lock(new AbortController().signal);
          } finally {
            await db.release();
          }
          if (user === "minimal") {
            assert.ok(lines.some((line) => /sql_log_bin = 0 not allowed/.test(line)), user);
          }
        }
        assert.doesNotMatch(await binlogEventsText(server), /FLUSH|UNLOCK/i);
      });

      await t.step("the status file exists while locked and is gone after", async () => {
        const dir = await Deno.makeTempDir({ prefix: "ecs-status-" });
        try {
          const file = `${dir}/master-status`;
          const { log } = recordingLogger();
          const db = createMysqlDatabase(
            mysqlOptions(server, { mysqlMasterStatusFile: file }),
            { log },
          );
          await db.prepare();
          const coordinates = await db.lock(new AbortController().signal);
          try {
            assert.equal(
              await Deno.readTextFile(file),
              `master_log_file="${coordinates!.file}"\n` +
                `master_log_pos="${coordinates!.position}"\n` +
                `master_binlog_do_db=""\nmaster_binlog_ignore_db=""\n`,
            );
          } finally {
            await db.release();
          }
          await rejectsWith(Deno.stat(file), Deno.errors.NotFound, /./);
        } finally {
          await Deno.remove(dir, { recursive: true });
        }
      });

      await t.step(
        "a long write keeps the lock from being granted: give up, kill only our own",
        async () => {
          // MariaDB's FTWRL does not wait for SELECTs, but it waits for a running write.
          const long = session(
            server,
            "UPDATE app.t SET v = IF(SLEEP(10), 'killed', 'long') WHERE id = 1",
          );
          await delay(300);
          const { log, lines } = recordingLogger();
          const db = createMysqlDatabase(mysqlOptions(server), { log });
          try {
            await db.prepare();
            const started = Date.now();
            await rejectsWith(
              db.lock(new AbortController().signal),
              DatabaseError,
              /MySQL flush & lock: not granted in 3 tries of 0\.3 s/,
            );
            // Gave up while the long write still runs (not by waiting for it to end).
            assert.equal(long.finished(), false, `gave up after ${Date.now() - started} ms`);
            assert.equal(lines.filter((line) => /KILL QUERY \d+/.test(line)).length, 3);
            // Writes are not blocked afterwards, while the long write still runs.
            assert.equal(long.finished(), false);
            const writeStarted = Date.now();
            const written = await session(server, "INSERT INTO app.w (v) VALUES ('after')").done;
            assert.equal(written.code, 0, written.stderr);
            assert.ok(Date.now() - writeStarted < 20_000, "the INSERT was not blocked");
          } finally {
            await db.release();
          }
          // The other session's statement was not killed: it finishes normally.
          const result = await long.done;
          assert.equal(result.code, 0, result.stderr);
          assert.equal((await server.sql("SELECT v FROM app.t WHERE id = 1")).trim(), "long");
        },
      );

      await t.step("aborting the signal kills our waiting statement", async () => {
        const long = session(
          server,
          "UPDATE app.t SET v = IF(SLEEP(3), 'killed', 'long2') WHERE id = 1",
        );
        await delay(300);
        const { log } = recordingLogger();
        const db = createMysqlDatabase(
          mysqlOptions(server, { lockTimeout: 30, lockTries: 1 }),
          { log },
        );
        try {
          await db.prepare();
          const controller = new AbortController();
          setTimeout(() => controller.abort(), 500);
          const started = Date.now();
          await rejectsWith(db.lock(controller.signal), DatabaseError, /interrupted/);
          assert.ok(Date.now() - started < 15_000, "interrupted, not waited out (30 s)");
          const written = await session(server, "INSERT INTO app.w (v) VALUES ('abort')").done;
          assert.equal(written.code, 0, written.stderr);
        } finally {
          await db.release();
        }
        const result = await long.done;
        assert.equal(result.code, 0, result.stderr);
        assert.equal((await server.sql("SELECT v FROM app.t WHERE id = 1")).trim(), "long2");
      });

      await t.step("backup stage lock mode blocks commits on MariaDB", async () => {
        const { log } = recordingLogger();
        const db = createMysqlDatabase(mysqlOptions(server, { mysqlLockMode: "stage" }), { log });
        await db.prepare();
        const coordinates = await db.lock(new AbortController().signal);
        let insert: Session | undefined;
        try {
          assert.deepEqual(
            { file: coordinates?.file, position: coordinates?.position },
            await masterStatus(server),
          );
          insert = session(server, "INSERT INTO app.t (v) VALUES ('stage')");
          await delay(700);
          assert.equal(insert.finished(), false, "the commit must wait in BLOCK_COMMIT");
        } finally {
          await db.release();
        }
        assert.equal((await insert.done).code, 0);
      });

      await t.step("clear errors from prepare()", async () => {
        const { log, lines } = recordingLogger();
        const wrong = await rejectsWith(
          createMysqlDatabase(mysqlOptions(server, { mysqlPassword: "wrong-password-99" }), {
            log,
          }).prepare(),
          DatabaseError,
          /cannot connect to socket .* as snap: Access denied/,
        );
        assert.equal(wrong.message.includes("wrong-password-99"), false);
        await rejectsWith(
          createMysqlDatabase(mysqlOptions(server, { mysqlSocket: "/nonexistent/x.sock" }), {
            log,
          }).prepare(),
          DatabaseError,
          /cannot connect to socket \/nonexistent\/x\.sock as snap: no such socket/,
        );
        await rejectsWith(
          createMysqlDatabase(
            mysqlOptions(server, {
              mysqlSocket: undefined,
              mysqlHost: "127.0.0.1",
              mysqlPort: 1,
            }),
            { log },
          ).prepare(),
          DatabaseError,
          /127\.0\.0\.1:1 .*connection refused/,
        );
        await rejectsWith(
          createMysqlDatabase(mysqlOptions(server, { mysqlLockMode: "instance" }), { log })
            .prepare(),
          DatabaseError,
          /instance.*MariaDB/,
        );
        await rejectsWith(
          createMysqlDatabase(mysqlOptions(server, { percona: true }), { log }).prepare(),
          DatabaseError,
          /--percona: .* has no backup locks/,
        );
        const dir = await Deno.makeTempDir({ prefix: "ecs-mycnf-" });
        try {
          await Deno.writeTextFile(`${dir}/bad.cnf`, "[client\npassword=x\n");
          await rejectsWith(
            createMysqlDatabase(
              mysqlOptions(server, {
                mysqlDefaultsFile: `${dir}/bad.cnf`,
                mysqlPassword: undefined,
              }),
              { log },
            ).prepare(),
            UsageError,
            /bad\.cnf, line 1: bad group/,
          );
          // The file's settings are used: TCP with the file's port and password.
          await Deno.writeTextFile(
            `${dir}/good.cnf`,
            `[client]\nhost = 127.0.0.1\nport = ${server.port}\nuser = snap\n` +
              `password = "${PASSWORD}"\n`,
          );
          const db = createMysqlDatabase(
            {
              ...defaultOptions(),
              mysql: true,
              mysqlDefaultsFile: `${dir}/good.cnf`,
            },
            { log },
          );
          await db.prepare();
          await db.release();
        } finally {
          await Deno.remove(dir, { recursive: true });
        }
        assert.equal(lines.some((line) => line.includes(PASSWORD)), false);
      });

      await t.step("--mysql-stop: stopped while locked, back afterwards, data intact", async () => {
        const { log } = recordingLogger();
        const db = createMysqlDatabase(
          mysqlOptions(server, {
            mysqlStop: true,
            mysqlStopCommand: server.stopCommand,
            mysqlStartCommand: server.startCommand,
          }),
          { log },
        );
        await db.prepare();
        const rows = (await server.sql("SELECT COUNT(*) FROM app.t")).trim();
        assert.equal(await db.lock(new AbortController().signal), undefined);
        await rejectsWith(server.sql("SELECT 1"), Error, /Can't connect|No such file/);
        await db.release();
        assert.equal((await server.sql("SELECT COUNT(*) FROM app.t")).trim(), rows);
        await db.release(); // idempotent: does not start a second server
      });

      await t.step("--mysql-stop: interrupted after the stop, the server is started", async () => {
        const { log } = recordingLogger();
        const db = createMysqlDatabase(
          mysqlOptions(server, {
            mysqlStop: true,
            mysqlStopCommand: `(${server.stopCommand}) && sleep 3`,
            mysqlStartCommand: server.startCommand,
          }),
          { log },
        );
        await db.prepare();
        const rows = (await server.sql("SELECT COUNT(*) FROM app.t")).trim();
        const controller = new AbortController();
        setTimeout(() => controller.abort(), 1500);
        await rejectsWith(db.lock(controller.signal), DatabaseError, /interrupted/);
        assert.equal((await server.sql("SELECT COUNT(*) FROM app.t")).trim(), rows);
        await db.release();
      });

      await t.step("release() during a waiting lock kills our statement", async () => {
        const long = session(
          server,
          "UPDATE app.t SET v = IF(SLEEP(3), 'killed', 'long3') WHERE id = 1",
        );
        await delay(300);
        const { log } = recordingLogger();
        const db = createMysqlDatabase(
          mysqlOptions(server, { lockTimeout: 30, lockTries: 1 }),
          { log },
        );
        await db.prepare();
        const locking = db.lock(new AbortController().signal).then(
          () => undefined,
          (error: unknown) => error,
        );
        await delay(300);
        await db.release();
        const error = await locking;
        assert.ok(error instanceof DatabaseError, String(error));
        assert.match(error.message, /MySQL flush & lock: interrupted/);
        const written = await session(server, "INSERT INTO app.w (v) VALUES ('released')").done;
        assert.equal(written.code, 0, written.stderr);
        const result = await long.done;
        assert.equal(result.code, 0, result.stderr);
        assert.equal((await server.sql("SELECT v FROM app.t WHERE id = 1")).trim(), "long3");
      });

      await t.step("--mysql-stop: a failing start command fails loudly", async () => {
        const { log } = recordingLogger();
        const db = createMysqlDatabase(
          mysqlOptions(server, {
            mysqlStop: true,
            mysqlStopCommand: server.stopCommand,
            mysqlStartCommand: "exit 3",
          }),
          { log, startTimeoutMs: 2000 },
        );
        await db.prepare();
        await db.lock(new AbortController().signal);
        try {
          await rejectsWith(db.release(), DatabaseError, /start command failed \(exit 3\)/);
        } finally {
          const start = new Deno.Command("sh", { args: ["-c", server.startCommand] });
          await start.output();
          await server.waitReady();
        }
      });

      await t.step("replica: coordinates are the replica's executed position", async () => {
        const replica = await startReplica(server);
        try {
          await waitReplicaSynced(server, replica);
          // The user 'snap' came through replication.
          // Let the replica read more than it executes: executed < read.
          await replica.sql("STOP SLAVE SQL_THREAD");
          const executed = await masterStatus(server);
          await server.sql("INSERT INTO app.t (v) VALUES ('unapplied')");
          const latest = await masterStatus(server);
          for (let i = 0;; i++) {
            const [status] = await replica.rows("SHOW SLAVE STATUS");
            if (Number(status.Read_Master_Log_Pos) === latest.position) break;
            assert.ok(i < 100, `the replica did not read up to ${latest.position}`);
            await delay(100);
          }
          const { log } = recordingLogger();
          const db = createMysqlDatabase(mysqlOptions(replica), { log });
          await db.prepare();
          let coordinates: BinlogCoordinates | undefined;
          try {
            coordinates = await db.lock(new AbortController().signal);
          } finally {
            await db.release();
          }
          assert.equal(coordinates?.from, "replica");
          assert.equal(coordinates?.file, executed.file);
          assert.equal(coordinates?.position, executed.position);
          assert.notEqual(coordinates?.position, latest.position);
          await replica.sql("START SLAVE SQL_THREAD");
          await waitReplicaSynced(server, replica);
          assert.equal(
            (await replica.sql("SELECT COUNT(*) FROM app.t WHERE v = 'unapplied'")).trim(),
            "1",
          );
        } finally {
          await replica.stop();
        }
      });
    } finally {
      await server.stop();
    }
  },
});

Deno.test({
  name: "test support: a given datadir is initialised there and kept after stop()",
  ignore: ignoreUnless(MARIADB),
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    requireAvailable(MARIADB);
    const parent = await Deno.makeTempDir({ prefix: "ecs-datadir-" });
    try {
      const datadir = `${parent}/data`;
      const first = await startMariadb({ datadir });
      try {
        await first.sql(
          "CREATE DATABASE kept; CREATE TABLE kept.t (x INT); INSERT INTO kept.t VALUES (7)",
        );
      } finally {
        await first.stop();
      }
      assert.ok((await Deno.stat(`${datadir}/kept`)).isDirectory);
      const second = await startMariadb({ datadir });
      try {
        assert.equal((await second.sql("SELECT x FROM kept.t")).trim(), "7");
      } finally {
        await second.stop();
      }
    } finally {
      await Deno.remove(parent, { recursive: true });
    }
  },
});
