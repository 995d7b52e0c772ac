/**
 * The PostgreSQL Database against a real PostgreSQL 15 (and a standby made with
 * pg_basebackup): checkpoint, WAL position, privileges, passwords, file locations.
 */
import { assert, assertEquals, assertMatch, assertRejects } from "./support/assert.ts";
import {
  postgresRequirement,
  type PostgresServer,
  startPostgres,
  waitStandbySynced,
} from "./support/postgres.ts";
import { ignoreUnless, requireAvailable } from "./support/real.ts";
import { createPostgresqlDatabase } from "../src/db/postgresql/database.ts";
import { resolvePostgresqlSettings } from "../src/plan/postgresql_settings.ts";
import type { PostgresqlPlan, PostgresqlSettings } from "../src/types/database_plans.ts";
import { createLogger } from "../src/util/log.ts";
import { DatabaseError } from "../src/util/errors.ts";

const POSTGRES = await postgresRequirement();
const ignore = ignoreUnless(POSTGRES);

function logger() {
  const lines: string[] = [];
  return { lines, log: createLogger({ debug: true, write: (line) => lines.push(line) }) };
}

function planFor(
  server: PostgresServer,
  overrides: Partial<PostgresqlSettings> = {},
  checkpointTimeoutMs = 60_000,
): PostgresqlPlan {
  return {
    kind: "postgresql",
    settings: {
      host: server.rundir,
      port: server.port,
      user: "postgres",
      database: "postgres",
      sources: { host: "test", port: "test", user: "test", database: "test", password: "none" },
      ...overrides,
    },
    checkpointTimeoutMs,
  };
}

async function withServer(fn: (server: PostgresServer) => Promise<void>): Promise<void> {
  requireAvailable(POSTGRES);
  const server = await startPostgres();
  try {
    await fn(server);
  } finally {
    await server.stop();
  }
}

async function checkpointsRequested(server: PostgresServer): Promise<number> {
  return Number(await server.psql("SELECT checkpoints_req FROM pg_stat_bgwriter"));
}

/** Compares two LSNs ("X/Y" in hex): negative, zero or positive. */
function compareLsn(a: string, b: string): number {
  const value = (lsn: string) => {
    const [high, low] = lsn.trim().split("/");
    return BigInt(`0x${high}`) * 2n ** 32n + BigInt(`0x${low}`);
  };
  const d = value(a) - value(b);
  return d < 0n ? -1 : d > 0n ? 1 : 0;
}

Deno.test({
  name: "postgresql: CHECKPOINT is requested, the position is the server's, nothing is held",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withServer(async (server) => {
      await server.psql("CREATE TABLE t (v text); INSERT INTO t VALUES ('before')");
      const before = await checkpointsRequested(server);
      const { log, lines } = logger();
      const db = createPostgresqlDatabase(planFor(server), { log });
      try {
        await db.prepare();
        assertEquals(db.holdsWrites, false);
        await db.lock(AbortSignal.timeout(30_000));
        assertEquals(await checkpointsRequested(server), before + 1);
        // Nothing is held: a write goes through while the program is between lock and release.
        await server.psql("INSERT INTO t VALUES ('during')");
        const wal = await db.positionAtFreeze(AbortSignal.timeout(10_000));
        const after = (await server.psql("SELECT pg_current_wal_lsn()")).trim();
        assertEquals(wal.from, "primary");
        assertEquals(wal.timeline, 1);
        assertMatch(wal.lsn, /^[0-9A-F]+\/[0-9A-F]+$/);
        assert(compareLsn(wal.lsn, after) <= 0, `${wal.lsn} <= ${after}`);
        const timeline = await server.psql("SELECT timeline_id FROM pg_control_checkpoint()");
        assertEquals(Number(timeline), wal.timeline);
      } finally {
        await db.release();
        await db.release();
      }
      assertMatch(lines.join("\n"), /PostgreSQL: server 15\.\d+ .*, user postgres \(superuser\)/);
      const sessions = await server.psql(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'ec2-consistent-snapshot'",
      );
      assertEquals(sessions.trim(), "0", "disconnected after release");
    });
  },
});

Deno.test({
  name: "postgresql: a CHECKPOINT cancelled by an administrator is reported as cancelled",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withServer(async (server) => {
      // A stopped checkpointer: the CHECKPOINT waits for it until someone cancels it.
      const checkpointer = Number(
        await server.psql("SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'"),
      );
      assert(checkpointer > 0, "the checkpointer's pid");
      const { log, lines } = logger();
      const db = createPostgresqlDatabase(planFor(server), { log });
      Deno.kill(checkpointer, "SIGSTOP");
      try {
        await db.prepare();
        const locking = db.lock(AbortSignal.timeout(120_000));
        const waiting = "SELECT count(*) FROM pg_stat_activity WHERE query = 'CHECKPOINT' " +
          "AND application_name = 'ec2-consistent-snapshot'";
        for (let i = 0; i < 400 && (await server.psql(waiting)).trim() !== "1"; i++) {
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        await server.psql(
          "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query = 'CHECKPOINT' " +
            "AND application_name = 'ec2-consistent-snapshot'",
        );
        await locking;
        const text = lines.join("\n");
        assertMatch(text, /CHECKPOINT was cancelled after \d+\.\d s by another session/);
        assert(!/did not finish in 60 s/.test(text), text);
      } finally {
        Deno.kill(checkpointer, "SIGCONT");
        await db.release();
      }
    });
  },
});

Deno.test({
  name:
    "postgresql: a CHECKPOINT that outlasts its bound is cancelled with a warning, not a failure",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withServer(async (server) => {
      // Dirty buffers to write, so that the checkpoint takes longer than its 1 ms bound.
      await server.psql(
        "CREATE TABLE big AS SELECT g, repeat('x', 200) AS v FROM generate_series(1, 50000) g",
      );
      const { log, lines } = logger();
      const db = createPostgresqlDatabase(planFor(server, {}, 1), { log });
      try {
        await db.prepare();
        await db.lock(AbortSignal.timeout(30_000));
        assertMatch(lines.join("\n"), /CHECKPOINT did not finish in 0\.001 s; going on/);
        // The connection is still good, and the bound is gone again.
        assertMatch((await db.positionAtFreeze(AbortSignal.timeout(10_000))).lsn, /\//);
      } finally {
        await db.release();
      }
    });
  },
});

Deno.test({
  name: "postgresql: pg_checkpoint suffices; without it prepare fails naming the grant",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withServer(async (server) => {
      await server.psql("CREATE ROLE snap LOGIN; CREATE ROLE nobody LOGIN");
      const denied = createPostgresqlDatabase(planFor(server, { user: "nobody" }), {
        log: logger().log,
      });
      try {
        await assertRejects(
          () => denied.prepare(),
          DatabaseError,
          "PostgreSQL: user nobody may not run CHECKPOINT: GRANT pg_checkpoint TO nobody",
        );
      } finally {
        await denied.release();
      }

      await server.psql("GRANT pg_checkpoint TO snap");
      const before = await checkpointsRequested(server);
      const { log, lines } = logger();
      const db = createPostgresqlDatabase(planFor(server, { user: "snap" }), { log });
      try {
        await db.prepare();
        await db.lock(AbortSignal.timeout(30_000));
        assertEquals(await checkpointsRequested(server), before + 1);
        assertMatch((await db.positionAtFreeze(AbortSignal.timeout(10_000))).lsn, /\//);
        // Without pg_read_all_settings: a warning that the data directory is not checked.
        assertEquals(await db.files(), []);
        assertMatch(lines.join("\n"), /GRANT pg_read_all_settings TO snap/);
      } finally {
        await db.release();
      }
    });
  },
});

Deno.test({
  name: "postgresql: a password from ~/.pgpass reaches the server; none, or a wrong one, fails",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withServer(async (server) => {
      const password = "pg-Secret-7e1";
      await server.psql(
        `CREATE ROLE snap LOGIN PASSWORD '${password}'; GRANT pg_checkpoint TO snap`,
      );
      const hba = `${server.datadir}/pg_hba.conf`;
      Deno.writeTextFileSync(
        hba,
        "local all snap scram-sha-256\n" + Deno.readTextFileSync(hba),
      );
      await server.psql("SELECT pg_reload_conf()");
      const home = Deno.makeTempDirSync({ prefix: "ecs-pghome-" });
      try {
        Deno.writeTextFileSync(
          `${home}/.pgpass`,
          `${server.rundir}:${server.port}:*:snap:${password}\n`,
          { mode: 0o600 },
        );
        const settings = await resolvePostgresqlSettings({
          options: {
            postgresqlHost: server.rundir,
            postgresqlPort: server.port,
            postgresqlUsername: "snap",
            postgresqlDbname: "postgres",
          },
          env: {},
          home,
        });
        assertEquals(settings.password, password);
        const plan: PostgresqlPlan = { kind: "postgresql", settings, checkpointTimeoutMs: 60_000 };
        const db = createPostgresqlDatabase(plan, { log: logger().log });
        try {
          await db.prepare();
        } finally {
          await db.release();
        }
        const none = createPostgresqlDatabase({
          ...plan,
          settings: { ...settings, password: undefined },
        }, {
          log: logger().log,
        });
        await assertRejects(() => none.prepare(), DatabaseError, /none is set/);
        const wrong = createPostgresqlDatabase({
          ...plan,
          settings: { ...settings, password: "wrong-Pass" },
        }, {
          log: logger().log,
        });
        const error = await assertRejects(
          () => wrong.prepare(),
          DatabaseError,
          /password authentication failed for user "snap"/,
        );
        assertEquals(error.message.includes("wrong-Pass"), false);
        // A ~/.pgpass others may read is ignored, as libpq does, and the error says so.
        Deno.chmodSync(`${home}/.pgpass`, 0o644);
        const open = await resolvePostgresqlSettings({
          options: {
            postgresqlHost: server.rundir,
            postgresqlPort: server.port,
            postgresqlUsername: "snap",
            postgresqlDbname: "postgres",
          },
          env: {},
          home,
        });
        assertEquals(open.password, undefined);
        const ignored = createPostgresqlDatabase({ ...plan, settings: open }, {
          log: logger().log,
        });
        const said = await assertRejects(() => ignored.prepare(), DatabaseError);
        assertMatch(said.message, /there is none \(.*\.pgpass was ignored: mode 0644 lets group/);
        assert(!said.message.includes("none is set"), said.message);
      } finally {
        Deno.removeSync(home, { recursive: true });
      }
    });
  },
});

Deno.test({
  name: "postgresql: no socket, or a wrong user, fails in prepare with a clear line",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withServer(async (server) => {
      const missing = createPostgresqlDatabase(planFor(server, { port: 1 }), {
        log: logger().log,
      });
      await assertRejects(
        () => missing.prepare(),
        DatabaseError,
        `PostgreSQL: cannot connect to socket ${server.rundir}/.s.PGSQL.1 as postgres`,
      );
      const stranger = createPostgresqlDatabase(planFor(server, { user: "stranger" }), {
        log: logger().log,
      });
      await assertRejects(
        () => stranger.prepare(),
        DatabaseError,
        /role "stranger" does not exist/,
      );
    });
  },
});

Deno.test({
  name: "postgresql: files are the data directory, the real pg_wal and the tablespaces",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    requireAvailable(POSTGRES);
    const dir = Deno.makeTempDirSync({ prefix: "ecs-pgfiles-" });
    const server = await startPostgres({ datadir: `${dir}/data`, waldir: `${dir}/wal` });
    try {
      Deno.mkdirSync(`${dir}/space`);
      await new Deno.Command("chown", { args: ["postgres:postgres", `${dir}/space`] }).output();
      await server.psql(`CREATE TABLESPACE space LOCATION '${dir}/space'`);
      const db = createPostgresqlDatabase(planFor(server), { log: logger().log });
      try {
        await db.prepare();
        assertEquals(await db.files(), [
          { what: "PostgreSQL data_directory", path: `${dir}/data` },
          { what: "PostgreSQL pg_wal", path: `${dir}/data/pg_wal` },
          { what: "PostgreSQL tablespace space", path: `${dir}/space` },
        ]);
        assertEquals(Deno.realPathSync(`${dir}/data/pg_wal`), `${dir}/wal`);
      } finally {
        await db.release();
      }
    } finally {
      await server.stop();
      Deno.removeSync(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "postgresql: on a standby, a restartpoint and pg_last_wal_replay_lsn()",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withServer(async (primary) => {
      await primary.psql("CREATE TABLE t (v text); INSERT INTO t VALUES ('x')");
      const standby = await startPostgres({ standbyOf: primary });
      try {
        const replayed = await waitStandbySynced(primary, standby);
        const { log, lines } = logger();
        const db = createPostgresqlDatabase(planFor(standby), { log });
        try {
          await db.prepare();
          await db.lock(AbortSignal.timeout(30_000));
          const wal = await db.positionAtFreeze(AbortSignal.timeout(10_000));
          assertEquals(wal.from, "standby");
          assertEquals(wal.lsn, (await standby.psql("SELECT pg_last_wal_replay_lsn()")).trim());
          assert(compareLsn(wal.lsn, replayed) >= 0);
          assertEquals(wal.timeline, 1);
        } finally {
          await db.release();
        }
        assertMatch(lines.join("\n"), /a standby/);
        assertMatch(lines.join("\n"), /restartpoint/);
      } finally {
        await standby.stop();
      }
    });
  },
});
