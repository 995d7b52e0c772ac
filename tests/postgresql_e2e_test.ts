/**
 * PostgreSQL end to end through the real program: a real PostgreSQL 15 whose data lives on the
 * XFS loop mount that is frozen (and a standby), against moto, read from outside with psql.
 */
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import {
  postgresRequirement,
  type PostgresServer,
  startPostgres,
  waitStandbySynced,
} from "./support/postgres.ts";
import { MOTO, type MotoEndpoint, startMoto } from "./support/moto.ts";
import { baseEnv, runProgram, spawnProgram } from "./support/program.ts";
import { type Proxy, startProxy } from "./support/proxy.ts";
import { ignoreUnless, requireAvailable } from "./support/real.ts";
import { isFrozen, type TestMount, withXfsMount, xfsRequirement } from "./support/xfs.ts";
import { ExitCode } from "../src/util/errors.ts";

const POSTGRES = await postgresRequirement();
const ignore = ignoreUnless(POSTGRES, await xfsRequirement(), MOTO);

interface Stack {
  moto: MotoEndpoint;
  proxy: Proxy;
  volume: string;
  mount: TestMount;
  pg: PostgresServer;
  /** Environment of the program: moto through the proxy, PG* for the user snap. */
  env: Record<string, string>;
}

/** PostgreSQL (data on the XFS mount, or a standby there), moto behind a proxy, a volume. */
async function withStack(
  options: { standby?: boolean },
  fn: (s: Stack) => Promise<void>,
): Promise<void> {
  requireAvailable(POSTGRES);
  await withXfsMount(async (mount) => {
    const moto = await startMoto();
    const proxy = startProxy(moto.url);
    let primary: PostgresServer | undefined;
    let standby: PostgresServer | undefined;
    try {
      primary = await startPostgres(
        options.standby ? {} : { datadir: `${mount.mountPoint}/pg` },
      );
      await primary.psql(
        "CREATE ROLE snap LOGIN; GRANT pg_checkpoint, pg_read_all_settings TO snap; " +
          "CREATE TABLE t (id serial PRIMARY KEY, v text); INSERT INTO t (v) VALUES ('before')",
      );
      if (options.standby) {
        standby = await startPostgres({
          datadir: `${mount.mountPoint}/standby`,
          standbyOf: primary,
        });
        await waitStandbySynced(primary, standby);
      }
      const pg = standby ?? primary;
      const [volume] = await moto.createVolumes(1);
      const env = baseEnv({
        ...moto.env,
        AWS_ENDPOINT_URL_EC2: proxy.url,
        PGHOST: pg.rundir,
        PGPORT: String(pg.port),
        PGUSER: "snap",
        PGDATABASE: "postgres",
      });
      await fn({ moto, proxy, volume, mount, pg, env });
    } finally {
      // Thawed before the servers stop: a server cannot shut down on a frozen file system.
      await mount.thaw();
      await standby?.stop();
      await primary?.stop();
      await proxy.stop();
      await moto.stop();
    }
  });
}

/** Compares two LSNs ("X/Y" in hex). */
function compareLsn(a: string, b: string): number {
  const value = (lsn: string) => {
    const [high, low] = lsn.trim().split("/");
    return BigInt(`0x${high}`) * 2n ** 32n + BigInt(`0x${low}`);
  };
  const d = value(a) - value(b);
  return d < 0n ? -1 : d > 0n ? 1 : 0;
}

const checkpoints = async (pg: PostgresServer) =>
  Number(await pg.psql("SELECT checkpoints_req FROM pg_stat_bgwriter"));

const snapshotCalls = (proxy: Proxy) =>
  proxy.seen.filter((r) => r.action === "CreateSnapshot" && !r.dryRun).length;

Deno.test({
  name: "postgresql e2e: CHECKPOINT, the server's WAL position, a writer waits while frozen",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withStack({}, async ({ moto, proxy, volume, mount, pg, env }) => {
      const lsnBefore = (await pg.psql("SELECT pg_current_wal_lsn()")).trim();
      const requested = await checkpoints(pg);
      let arrived!: () => void;
      const held = new Promise<void>((resolve) => arrived = resolve);
      let release!: (forward: boolean) => void;
      const released = new Promise<boolean>((resolve) => release = resolve);
      proxy.decide = (r) =>
        r.action === "CreateSnapshot" && !r.dryRun ? (arrived(), released) : "forward";
      const child = spawnProgram(
        ["--postgresql", "--freeze-filesystem", mount.mountPoint, volume],
        { env },
      );
      let writer: Promise<string> | undefined;
      let writerDone = false;
      try {
        await held;
        writer = pg.psql("INSERT INTO t (v) VALUES ('during')").finally(() => writerDone = true);
        await new Promise((resolve) => setTimeout(resolve, 500));
        assertEquals(writerDone, false, "the INSERT waits while the file system is frozen");
        assertEquals(await isFrozen(mount.mountPoint), true);
      } finally {
        release(true);
      }
      const out = await child.output();
      const stderr = new TextDecoder().decode(out.stderr);
      assertEquals(out.code, 0, stderr);
      await writer;
      assertEquals(await pg.psql("SELECT v FROM t ORDER BY id"), "before\nduring\n");
      const lines = new TextDecoder().decode(out.stdout).trimEnd().split("\n");
      const match = /^ec2-consistent-snapshot: wal_lsn="([0-9A-F]+\/[0-9A-F]+)", timeline=1$/
        .exec(lines[0]);
      assert(match, `WAL line: ${lines[0]}`);
      const lsnAfter = (await pg.psql("SELECT pg_current_wal_lsn()")).trim();
      assert(compareLsn(lsnBefore, match[1]) <= 0, `${lsnBefore} <= ${match[1]}`);
      assert(compareLsn(match[1], lsnAfter) <= 0, `${match[1]} <= ${lsnAfter}`);
      assertEquals(
        await pg.psql(`SELECT '${match[1]}'::pg_lsn <= pg_current_wal_lsn()`),
        "t\n",
        "psql agrees the position is one the server has passed",
      );
      assert((await checkpoints(pg)) >= requested + 1, "a checkpoint was requested");
      assertMatch(lines[1], /^snap-[0-9a-f]+$/);
      assertEquals((await moto.snapshotsOf([volume])).length, 1);
      assertEquals(await isFrozen(mount.mountPoint), false);
      assertEquals(/warning/i.test(stderr), false, `no warning: ${stderr}`);

      const quiet = await runProgram(
        ["--postgresql", "--quiet", "--freeze-filesystem", mount.mountPoint, volume],
        { env },
      );
      assertEquals([quiet.code, quiet.stdout], [0, ""], quiet.stderr);

      const json = await runProgram(
        ["--postgresql", "--output", "json", "--freeze-filesystem", mount.mountPoint, volume],
        { env },
      );
      assertEquals(json.code, 0, json.stderr);
      const doc = JSON.parse(json.stdout);
      assertEquals(doc.wal.timeline, 1);
      assertEquals(doc.wal.from, "primary");
      assert(compareLsn(doc.wal.lsn, match[1]) >= 0);
      assertEquals(doc.unfrozen, []);
      assertEquals(doc.timings.databaseLockMs, null, "PostgreSQL holds no lock");
    });
  },
});

Deno.test({
  name: "postgresql e2e: a wrong user or a missing socket fails before the freeze (exit 6)",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withStack({}, async ({ proxy, volume, mount, env }) => {
      const args = ["--postgresql", "--freeze-filesystem", mount.mountPoint, volume];
      const stranger = await runProgram(args, { env: { ...env, PGUSER: "stranger" } });
      assertEquals(stranger.code, ExitCode.database, stranger.stderr);
      assertMatch(stranger.stderr, /role "stranger" does not exist/);
      const missing = await runProgram(
        ["--postgresql-host", `${mount.dir}/no-such-dir`, ...args],
        { env },
      );
      assertEquals(missing.code, ExitCode.database, missing.stderr);
      assertMatch(missing.stderr, /cannot connect to socket .*no-such-dir.*no such socket/);
      assertEquals(missing.stderr.trim().split("\n").length, 1, missing.stderr);
      assertEquals(snapshotCalls(proxy), 0);
      assertEquals(await isFrozen(mount.mountPoint), false);
    });
  },
});

Deno.test({
  name: "postgresql e2e: --noaction connects to nothing and never prints the password",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withStack({}, async ({ volume, mount, env }) => {
      // A listener in place of the server's socket: any connection attempt would be seen.
      const dir = Deno.makeTempDirSync({ prefix: "ecs-pg-noaction-" });
      const listener = Deno.listen({ transport: "unix", path: `${dir}/.s.PGSQL.5432` });
      let accepted = 0;
      const accepting = (async () => {
        for await (const conn of listener) {
          accepted++;
          conn.close();
        }
      })();
      try {
        const password = "pg-Dry-Secret-41";
        const dryEnv = { ...env, PGHOST: dir, PGPORT: "5432", PGPASSWORD: password };
        const args = ["-n", "--postgresql", "--freeze-filesystem", mount.mountPoint, volume];
        const text = await runProgram(args, { env: dryEnv });
        assertEquals(text.code, 0, text.stderr);
        // The text plan goes to stderr (stdout stays free of anything but snapshot ids).
        assertEquals(text.stdout, "");
        assertMatch(
          text.stderr,
          new RegExp(
            `would CHECKPOINT PostgreSQL .*\\nPostgreSQL: socket ${dir} .*user snap \\(\\$PGUSER\\)`,
          ),
        );
        const json = await runProgram([...args, "--output", "json", "--debug"], { env: dryEnv });
        assertEquals(json.code, 0, json.stderr);
        const planned = JSON.parse(json.stdout).database;
        assertEquals([planned.kind, planned.user, planned.password], ["postgresql", "snap", "set"]);
        for (const output of [text.stdout, text.stderr, json.stdout, json.stderr]) {
          assertEquals(output.includes(password), false);
        }
        assertEquals(accepted, 0, "no connection in a dry run");
      } finally {
        listener.close();
        await accepting.catch(() => {});
        Deno.removeSync(dir, { recursive: true });
      }
    });
  },
});

Deno.test({
  name: "postgresql e2e: on a standby, the position is pg_last_wal_replay_lsn()",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withStack({ standby: true }, async ({ volume, mount, pg, env }) => {
      const out = await runProgram(
        ["--postgresql", "--output", "json", "--freeze-filesystem", mount.mountPoint, volume],
        { env },
      );
      assertEquals(out.code, 0, out.stderr);
      const doc = JSON.parse(out.stdout);
      assertEquals(doc.wal.from, "standby");
      assertEquals(doc.wal.lsn, (await pg.psql("SELECT pg_last_wal_replay_lsn()")).trim());
      assertEquals(doc.snapshots[0].error, null);
    });
  },
});

Deno.test({
  name: "postgresql e2e: a CHECKPOINT cancelled by an administrator is said to be, the run goes on",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withStack({}, async ({ moto, volume, mount, pg, env }) => {
      // A stopped checkpointer: the CHECKPOINT waits for it until the administrator cancels it.
      const checkpointer = Number(
        await pg.psql("SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'"),
      );
      assert(checkpointer > 0, "the checkpointer's pid");
      Deno.kill(checkpointer, "SIGSTOP");
      try {
        const child = spawnProgram(
          ["--postgresql", "--freeze-filesystem", mount.mountPoint, volume],
          { env },
        );
        const waiting = "SELECT pid FROM pg_stat_activity WHERE query = 'CHECKPOINT' " +
          "AND application_name = 'ec2-consistent-snapshot'";
        let cancelled = false;
        for (let i = 0; i < 1_200 && !cancelled; i++) {
          const pid = (await pg.psql(waiting)).trim();
          if (pid !== "") {
            cancelled = (await pg.psql(`SELECT pg_cancel_backend(${pid})`)).trim() === "t";
          } else await new Promise((resolve) => setTimeout(resolve, 50));
        }
        assert(cancelled, "the program's CHECKPOINT was seen and cancelled");
        const out = await child.output();
        const stderr = new TextDecoder().decode(out.stderr);
        assertEquals(out.code, 0, stderr);
        assertMatch(
          stderr,
          /warning: PostgreSQL: CHECKPOINT was cancelled after \d+\.\d s by another session/,
        );
        assert(!/did not finish/.test(stderr), stderr);
        assertEquals((await moto.snapshotsOf([volume])).length, 1);
        assertEquals(await isFrozen(mount.mountPoint), false);
      } finally {
        Deno.kill(checkpointer, "SIGCONT");
      }
    });
  },
});
