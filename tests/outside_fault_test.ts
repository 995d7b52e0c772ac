/**
 * The standing fault table, from outside, through the real program (XFS on loop, MariaDB, moto):
 * the watchdog itself stopped (in a run, in a hold), --mysql-stop killed as its stop command
 * exits, a held lock's connection killed by an admin, the server down before --hold, two holds
 * racing, --release racing the deadline. Each: its exit code, one line, nothing left frozen, locked or stopped.
 */
import { alive, killQuietly } from "./support/processes.ts";
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { mariadbRequirement } from "./support/mariadb.ts";
import { MOTO } from "./support/moto.ts";
import { baseEnv, runProgram, spawnProgram } from "./support/program.ts";
import { ignoreUnless, requireAvailable } from "./support/real.ts";
import { isFrozen, thawQuietly, withXfsMount, xfsRequirement } from "./support/xfs.ts";
import { answers, type MysqlStack, withMysqlStack } from "./support/mysql_stack.ts";
import { holder, isCreate, withStack } from "./support/stack.ts";
import { makeStateDir, release, runThenKillGroup } from "./support/hold.ts";
import { ExitCode } from "../src/util/errors.ts";

const MARIADB = await mariadbRequirement();
const XFS = await xfsRequirement();
const REAL = { sanitizeResources: false, sanitizeOps: false };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function withDb(fn: (s: MysqlStack) => Promise<void>): Promise<void> {
  requireAvailable(MARIADB);
  await withMysqlStack(fn);
}

/** The children of `pid` (from /proc), e.g. the watchdog started by the program. */
function childrenOf(pid: number): number[] {
  const found: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[1]) === pid) found.push(Number(entry.name));
    } catch { /* gone */ }
  }
  return found;
}

/** Processes whose command line has the watchdog's hidden argument and our run directory. */
function watchdogsOf(pid: number): number[] {
  return childrenOf(pid).filter((child) => {
    try {
      return Deno.readTextFileSync(`/proc/${child}/cmdline`).includes("__watchdog");
    } catch {
      return false;
    }
  });
}

function oneLine(stderr: string): string {
  const lines = stderr.trim().split("\n");
  assertEquals(lines.length, 1, stderr);
  return lines[0];
}

Deno.test({
  name:
    "the watchdog stopped (SIGSTOP) while CreateSnapshot is in flight: the run still ends, thawed, no watchdog left",
  ignore: ignoreUnless(XFS, MOTO),
  ...REAL,
  async fn() {
    await withStack(async ({ moto, proxy, volume, mount, env }) => {
      const create = holder(isCreate);
      proxy.decide = create.decide;
      const child = spawnProgram(["--freeze-filesystem", mount.mountPoint, volume], { env });
      let dogs: number[] = [];
      try {
        await create.seen;
        dogs = watchdogsOf(child.pid);
        assert(dogs.length > 0, "a watchdog runs");
        for (const dog of dogs) Deno.kill(dog, "SIGSTOP");
        create.release();
        const out = await child.output();
        const stderr = new TextDecoder().decode(out.stderr);
        assertEquals(out.code, ExitCode.ok, stderr);
        assertMatch(oneLine(stderr), /watchdog \d+ did not confirm the disarm; killing it/);
        assertEquals(await isFrozen(mount.mountPoint), false);
        for (const dog of dogs) {
          for (let i = 0; i < 50 && alive(dog); i++) await sleep(100);
          assertEquals(alive(dog), false, "no stopped watchdog left behind");
        }
        assertEquals((await moto.snapshotsOf([volume])).length, 1);
      } finally {
        for (const dog of dogs) killQuietly(dog);
        create.drop();
        killQuietly(child.pid);
        await thawQuietly(mount.mountPoint);
      }
    });
  },
});

Deno.test({
  name:
    "--mysql-stop: the program killed (SIGKILL) as its stop command exits: its watchdog starts the server",
  ignore: ignoreUnless(MARIADB, XFS, MOTO),
  ...REAL,
  async fn() {
    await withDb(async (s) => {
      const out = await runProgram([
        ...s.mysqlArgs,
        "--mysql-stop",
        "--mysql-stop-command",
        `(${s.db.stopCommand}); kill -9 $PPID`,
        "--mysql-start-command",
        s.db.startCommand,
        "--freeze-filesystem",
        s.mount.mountPoint,
        s.volume,
      ], { env: s.env });
      assertEquals(out.code, 137, out.stderr);
      assertMatch(out.stderr, /watchdog.*started the database again/);
      assert(await answers(s.db, 60_000), "started again by the watchdog");
      assertEquals(await isFrozen(s.mount.mountPoint), false);
      assertEquals((await s.moto.snapshotsOf([s.volume])).length, 0);
    });
  },
});

Deno.test({
  name:
    "two holds racing on one file system: one holds, the other is refused in one line; one release thaws",
  ignore: ignoreUnless(XFS),
  ...REAL,
  async fn() {
    await withXfsMount(async (mount) => {
      const state = makeStateDir();
      const env = baseEnv(state.env);
      try {
        const args = ["--hold", "30", "--freeze-filesystem", mount.mountPoint];
        const [a, b] = await Promise.all([
          runThenKillGroup(args, env),
          runThenKillGroup(args, env),
        ]);
        const codes = [a.code, b.code].sort();
        assertEquals(codes[0], ExitCode.ok);
        assert(([ExitCode.busy, 16] as number[]).includes(codes[1]), `${a.stderr}${b.stderr}`);
        oneLine([a, b].find((r) => r.code !== 0)!.stderr);
        assertEquals(await isFrozen(mount.mountPoint), true);
        const out = await release(env);
        assertEquals(out.code, ExitCode.ok, out.stderr);
        assertEquals(await isFrozen(mount.mountPoint), false);
      } finally {
        await state.remove();
        await thawQuietly(mount.mountPoint);
      }
    });
  },
});

for (const delay of [4_700, 4_950, 5_050, 5_200]) {
  Deno.test({
    name: `--release racing the deadline (${delay} ms into a 5 s hold): 0 or 17, one line, thawed`,
    ignore: ignoreUnless(XFS),
    ...REAL,
    async fn() {
      await withXfsMount(async (mount) => {
        const state = makeStateDir();
        const env = baseEnv(state.env);
        try {
          const held = await runThenKillGroup([
            "--hold",
            "5",
            "--freeze-filesystem",
            mount.mountPoint,
          ], env);
          assertEquals(held.code, ExitCode.ok, held.stderr);
          await sleep(delay - 300);
          const out = await release(env);
          assert(([ExitCode.ok, ExitCode.holdEnded] as number[]).includes(out.code), out.stderr);
          if (out.code !== 0) oneLine(out.stderr);
          assertEquals(await isFrozen(mount.mountPoint, 3_000), false);
        } finally {
          await state.remove();
          await thawQuietly(mount.mountPoint);
        }
      });
    },
  });
}

Deno.test({
  name: "a hold whose watchdog is stopped (SIGSTOP): --release still releases, exit 0, thawed",
  ignore: ignoreUnless(XFS),
  ...REAL,
  async fn() {
    await withXfsMount(async (mount) => {
      const state = makeStateDir();
      const env = baseEnv(state.env);
      let dogs: number[] = [];
      try {
        const held = await runThenKillGroup([
          "--hold",
          "30",
          "--freeze-filesystem",
          mount.mountPoint,
        ], env);
        assertEquals(held.code, ExitCode.ok, held.stderr);
        dogs = watchdogsOf(state.holderPid()!);
        assert(dogs.length > 0);
        for (const dog of dogs) Deno.kill(dog, "SIGSTOP");
        const out = await release(env);
        assertEquals(out.code, ExitCode.ok, out.stderr);
        assertEquals(await isFrozen(mount.mountPoint), false);
        for (const dog of dogs) {
          for (let i = 0; i < 50 && alive(dog); i++) await sleep(100);
          assertEquals(alive(dog), false);
        }
      } finally {
        for (const dog of dogs) killQuietly(dog);
        await state.remove();
        await thawQuietly(mount.mountPoint);
      }
    });
  },
});

Deno.test({
  name: "a held lock's connection killed by an admin: --release exits 12 in one line; thawed",
  ignore: ignoreUnless(MARIADB, XFS, MOTO),
  ...REAL,
  async fn() {
    await withDb(async (s) => {
      const state = makeStateDir();
      const env = { ...s.env, ...state.env };
      try {
        const held = await runThenKillGroup([
          "--hold",
          "30",
          ...s.mysqlArgs,
          "--freeze-filesystem",
          s.mount.mountPoint,
        ], env);
        assertEquals(held.code, ExitCode.ok, held.stderr);
        const ids =
          (await s.db.sql("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = 'snap'"))
            .trim().split("\n").filter((line) => /^\d+$/.test(line));
        assert(ids.length > 0);
        for (const id of ids) await s.db.sql(`KILL CONNECTION ${id}`);
        const out = await release(env);
        assertEquals(out.code, ExitCode.consistencyUnknown, out.stderr);
        oneLine(out.stderr);
        assertEquals(await isFrozen(s.mount.mountPoint), false);
      } finally {
        await state.remove();
        await thawQuietly(s.mount.mountPoint);
      }
    });
  },
});

Deno.test({
  name: "--hold --mysql with the server stopped: one line, exit 6, nothing frozen",
  ignore: ignoreUnless(MARIADB, XFS, MOTO),
  ...REAL,
  async fn() {
    await withDb(async (s) => {
      const state = makeStateDir();
      const env = { ...s.env, ...state.env };
      try {
        await new Deno.Command("sh", { args: ["-c", s.db.stopCommand] }).output();
        const held = await runThenKillGroup([
          "--hold",
          "30",
          ...s.mysqlArgs,
          "--freeze-filesystem",
          s.mount.mountPoint,
        ], env);
        assertEquals(held.code, ExitCode.database, held.stderr);
        oneLine(held.stderr);
        assertEquals(await isFrozen(s.mount.mountPoint), false);
      } finally {
        await new Deno.Command("sh", { args: ["-c", s.db.startCommand] }).output();
        await s.db.waitReady(60_000);
        await state.remove();
      }
    });
  },
});
