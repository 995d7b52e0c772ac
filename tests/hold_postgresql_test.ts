/**
 * PostgreSQL in hold mode, end to end on a real XFS mount with the data on it: `--hold
 * --postgresql` checkpoints, freezes and holds until `--release`, printing the WAL position at
 * the freeze; the same faults as MySQL's hold (the deadline, the holder killed, a second hold, a
 * caller killed before it learnt of the hold, a server that cannot be reached), and the dry run.
 */
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { postgresRequirement, type PostgresServer, startPostgres } from "./support/postgres.ts";
import { baseEnv, runProgram } from "./support/program.ts";
import { ignoreUnless, requireAvailable } from "./support/real.ts";
import { isFrozen, type TestMount, withXfsMount, xfsRequirement } from "./support/xfs.ts";
import { makeStateDir, release, runThenKillGroup, type StateDir } from "./support/hold.ts";
import { ExitCode } from "../src/util/errors.ts";

const POSTGRES = await postgresRequirement();
const XFS = await xfsRequirement();

interface Stack {
  mount: TestMount;
  pg: PostgresServer;
  state: StateDir;
  env: Record<string, string>;
  /** --freeze-filesystem MOUNT --postgresql */
  holdArgs: string[];
}

function realTest(name: string, fn: () => Promise<void>): void {
  Deno.test({ name, ignore: ignoreUnless(POSTGRES, XFS), fn });
}

async function withStack(fn: (s: Stack) => Promise<void>): Promise<void> {
  requireAvailable(POSTGRES);
  await withXfsMount(async (mount) => {
    const state = makeStateDir();
    let pg: PostgresServer | undefined;
    try {
      pg = await startPostgres({ datadir: `${mount.mountPoint}/pg` });
      await pg.psql(
        "CREATE ROLE snap LOGIN; GRANT pg_checkpoint, pg_read_all_settings TO snap; " +
          "CREATE TABLE t (id serial PRIMARY KEY, v text); INSERT INTO t (v) VALUES ('before')",
      );
      const env = baseEnv({
        ...state.env,
        PGHOST: pg.rundir,
        PGPORT: String(pg.port),
        PGUSER: "snap",
        PGDATABASE: "postgres",
      });
      await fn({
        mount,
        pg,
        state,
        env,
        holdArgs: ["--freeze-filesystem", mount.mountPoint, "--postgresql"],
      });
    } finally {
      await state.remove();
      // Thawed before the server stops: it cannot shut down on a frozen file system.
      await mount.thaw();
      await pg?.stop();
    }
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The redo point of the last checkpoint: it moves when a CHECKPOINT ran. */
async function redoLsn(pg: PostgresServer): Promise<string> {
  return (await pg.psql("SELECT redo_lsn FROM pg_control_checkpoint()")).trim();
}

realTest(
  "--hold --postgresql: checkpointed, frozen and held until --release, WAL position told",
  async () => {
    await withStack(async ({ mount, pg, env, holdArgs }) => {
      await pg.psql("INSERT INTO t (v) SELECT 'x' FROM generate_series(1, 1000)");
      const before = await redoLsn(pg);
      const held = await runThenKillGroup(["--hold", ...holdArgs], env);
      assertEquals(held.code, 0, held.stderr);
      const wal = /^ec2-consistent-snapshot: wal_lsn="([0-9A-F]+\/[0-9A-F]+)", timeline=1$/m
        .exec(held.stdout);
      assert(wal, `the WAL line: ${held.stdout}`);
      assertEquals(await isFrozen(mount.mountPoint), true, "held after --hold returned");
      await sleep(500);
      assertEquals(await isFrozen(mount.mountPoint), true, "still held");
      const out = await release(env);
      assertEquals(out.code, 0, out.stderr);
      assertMatch(out.stdout, /released; held [\d.]+ s, freeze window \d+ ms/);
      assertMatch(out.stdout, new RegExp(`wal_lsn="${wal[1].replace("/", "\\/")}"`));
      assertEquals(await isFrozen(mount.mountPoint), false, "thawed by --release");
      assert(before !== await redoLsn(pg), "a CHECKPOINT ran before the freeze");
      await pg.psql("INSERT INTO t (v) VALUES ('after')");
    });
  },
);

realTest("--noaction --hold --postgresql: connects and checks, holds nothing", async () => {
  await withStack(async ({ mount, env, holdArgs, state }) => {
    const dry = await runProgram(["--noaction", "--hold", ...holdArgs], { env });
    assertEquals(dry.code, 0, dry.stderr);
    assertMatch(dry.stderr, /would CHECKPOINT PostgreSQL/);
    assertEquals(await isFrozen(mount.mountPoint), false);
    assertEquals(state.holderPid(), undefined);
  });
});

realTest(
  "PostgreSQL hold faults: deadline, holder killed, second hold, caller gone, server down",
  async () => {
    await withStack(async ({ mount, pg, env, holdArgs, state }) => {
      // The deadline releases alone; a late --release says the hold ended (DLM's 203).
      const short = await runThenKillGroup(["--hold=5", ...holdArgs], env);
      assertEquals(short.code, 0, short.stderr);
      for (let i = 0; i < 600 && await isFrozen(mount.mountPoint); i++) await sleep(100);
      assertEquals(await isFrozen(mount.mountPoint), false, "released by the deadline");
      const late = await release(env);
      assertEquals(late.code, ExitCode.holdEnded, late.stderr);
      assertMatch(late.stderr, /released by the deadline/);

      // The holder SIGKILLed: its watchdog thaws.
      const killed = await runThenKillGroup(["--hold", ...holdArgs], env);
      assertEquals(killed.code, 0, killed.stderr);
      const pid = state.holderPid()!;
      Deno.kill(pid, "SIGKILL");
      assertEquals(await isFrozen(mount.mountPoint, 5_000), false, "the watchdog thawed");
      assertEquals((await release(env)).code, ExitCode.holdEnded);

      // A second hold while one is held is refused (DLM's 204), the first left intact.
      const first = await runThenKillGroup(["--hold", ...holdArgs], env);
      assertEquals(first.code, 0, first.stderr);
      const second = await runThenKillGroup(["--hold", ...holdArgs], env);
      assertEquals(second.code, ExitCode.holdInPlace, second.stderr);
      assertEquals(await isFrozen(mount.mountPoint), true);
      assertEquals((await release(env)).code, 0);

      // The caller killed before it learnt of the hold: the holder releases at once.
      const gone = await runThenKillGroup(
        ["--hold", ...holdArgs, "--pre-freeze-command", "sleep 2"],
        env,
        { killAfterMs: 1_000 },
      );
      assertEquals(gone.code, -1);
      for (let i = 0; i < 100 && state.holderPid() !== undefined; i++) await sleep(100);
      assertEquals(await isFrozen(mount.mountPoint), false);
      assertEquals(state.holderPid(), undefined);

      // The server cannot be reached: refused before anything is frozen (DLM's 206).
      const down = await runThenKillGroup(["--hold", ...holdArgs], { ...env, PGPORT: "9" });
      assertEquals(down.code, ExitCode.database, down.stderr);
      assertEquals(await isFrozen(mount.mountPoint), false);
      assertEquals(state.holderPid(), undefined);
      await pg.psql("INSERT INTO t (v) VALUES ('after')");
    });
  },
);
