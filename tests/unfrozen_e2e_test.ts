/**
 * The warning for database files outside the frozen set, through the real program: MariaDB
 * with its binary log, and PostgreSQL with pg_wal (a symlink), on a second XFS mount that is
 * not frozen; and no warning when everything is on the frozen mount.
 */
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { mariadbRequirement, type MariadbServer, startMariadb } from "./support/mariadb.ts";
import { postgresRequirement, type PostgresServer, startPostgres } from "./support/postgres.ts";
import { MOTO, startMoto } from "./support/moto.ts";
import { baseEnv, runProgram } from "./support/program.ts";
import { ignoreUnless, requireAvailable } from "./support/real.ts";
import { isFrozen, type TestMount, withXfsMount, xfsRequirement } from "./support/xfs.ts";

const MARIADB = await mariadbRequirement();
const POSTGRES = await postgresRequirement();
const XFS = await xfsRequirement();

/** Two XFS mounts (the first is frozen, the second not), moto and a volume. */
async function withTwoMounts(
  fn: (
    frozen: TestMount,
    other: TestMount,
    run: (args: string[], extraEnv?: Record<string, string>) => ReturnType<typeof runProgram>,
  ) => Promise<void>,
): Promise<void> {
  await withXfsMount((frozen) =>
    withXfsMount(async (other) => {
      const moto = await startMoto();
      const env = baseEnv(moto.env);
      try {
        const [volume] = await moto.createVolumes(1);
        await fn(frozen, other, (args, extraEnv = {}) =>
          runProgram(
            [...args, "--output", "json", "--freeze-filesystem", frozen.mountPoint, volume],
            { env: { ...env, ...extraEnv } },
          ));
      } finally {
        await frozen.thaw();
        await moto.stop();
      }
    })
  );
}

Deno.test({
  name: "unfrozen e2e: MariaDB's binary log on a file system not frozen is named, once",
  ignore: ignoreUnless(MARIADB, XFS, MOTO),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    requireAvailable(MARIADB);
    await withTwoMounts(async (frozen, other, run) => {
      let db: MariadbServer | undefined;
      const dir = Deno.makeTempDirSync({ prefix: "ecs-unfrozen-e2e-" });
      try {
        Deno.mkdirSync(`${other.mountPoint}/binlog`);
        db = await startMariadb({
          datadir: `${frozen.mountPoint}/mysql`,
          logBin: false,
          extraArgs: [`--log-bin=${other.mountPoint}/binlog/binlog`],
        });
        const defaults = `${dir}/my.cnf`;
        Deno.writeTextFileSync(defaults, `[client]\nuser = root\nsocket = ${db.socket}\n`, {
          mode: 0o600,
        });
        const out = await run(["--mysql", "--mysql-defaults-file", defaults]);
        assertEquals(out.code, 0, out.stderr);
        const warnings = out.stderr.split("\n").filter((line) => /warning/i.test(line));
        assertEquals(warnings.length, 1, out.stderr);
        assertMatch(
          warnings[0],
          new RegExp(
            `MySQL log_bin_basename ${other.mountPoint}/binlog lies on ${other.mountPoint}, ` +
              "which is not frozen",
          ),
        );
        const doc = JSON.parse(out.stdout);
        assertEquals(doc.unfrozen, [{
          what: ["MySQL log_bin_basename"],
          path: `${other.mountPoint}/binlog`,
          realPath: `${other.mountPoint}/binlog`,
          mountPoint: other.mountPoint,
        }]);
        assert(doc.binlog.file.startsWith("binlog."), "the position is still recorded");
        assertEquals(await isFrozen(frozen.mountPoint), false);
        // --quiet hides chatter, not this: the backup may not restore to the recorded position.
        const quiet = await run(["--mysql", "--quiet", "--mysql-defaults-file", defaults]);
        assertEquals(quiet.code, 0, quiet.stderr);
        assertMatch(quiet.stderr, /warning: MySQL log_bin_basename .* which is not frozen/);
      } finally {
        await db?.stop();
        Deno.removeSync(dir, { recursive: true });
        // Room for the second server: the XFS is small and a datadir is about 130 MB.
        Deno.removeSync(`${frozen.mountPoint}/mysql`, { recursive: true });
      }

      // Everything on the frozen mount: no warning.
      let all: MariadbServer | undefined;
      const dir2 = Deno.makeTempDirSync({ prefix: "ecs-unfrozen-e2e-" });
      try {
        all = await startMariadb({ datadir: `${frozen.mountPoint}/mysql2` });
        Deno.writeTextFileSync(`${dir2}/my.cnf`, `[client]\nuser=root\nsocket=${all.socket}\n`);
        const out = await run(["--mysql", "--mysql-defaults-file", `${dir2}/my.cnf`]);
        assertEquals(out.code, 0, out.stderr);
        assertEquals(/warning/i.test(out.stderr), false, out.stderr);
        assertEquals(JSON.parse(out.stdout).unfrozen, []);
      } finally {
        await all?.stop();
        Deno.removeSync(dir2, { recursive: true });
      }
    });
  },
});

Deno.test({
  name: "unfrozen e2e: PostgreSQL's pg_wal symlinked to a file system not frozen is named",
  ignore: ignoreUnless(POSTGRES, XFS, MOTO),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    requireAvailable(POSTGRES);
    await withTwoMounts(async (frozen, other, run) => {
      let pg: PostgresServer | undefined;
      try {
        pg = await startPostgres({
          datadir: `${frozen.mountPoint}/pg`,
          waldir: `${other.mountPoint}/wal`,
        });
        const env = { PGHOST: pg.rundir, PGPORT: String(pg.port), PGUSER: "postgres" };
        const out = await run(["--postgresql"], env);
        assertEquals(out.code, 0, out.stderr);
        const warnings = out.stderr.split("\n").filter((line) => /warning/i.test(line));
        assertEquals(warnings.length, 1, out.stderr);
        assertMatch(
          warnings[0],
          new RegExp(
            `PostgreSQL pg_wal ${frozen.mountPoint}/pg/pg_wal \\(-> ${other.mountPoint}/wal\\) ` +
              `lies on ${other.mountPoint}, which is not frozen`,
          ),
        );
        assertEquals(JSON.parse(out.stdout).unfrozen[0].mountPoint, other.mountPoint);
      } finally {
        await frozen.thaw();
        await pg?.stop();
      }

      let all: PostgresServer | undefined;
      try {
        all = await startPostgres({ datadir: `${frozen.mountPoint}/pg2` });
        const env = { PGHOST: all.rundir, PGPORT: String(all.port), PGUSER: "postgres" };
        const out = await run(["--postgresql"], env);
        assertEquals(out.code, 0, out.stderr);
        assertEquals(/warning/i.test(out.stderr), false, out.stderr);
        assertEquals(JSON.parse(out.stdout).unfrozen, []);
      } finally {
        await frozen.thaw();
        await all?.stop();
      }
    });
  },
});
