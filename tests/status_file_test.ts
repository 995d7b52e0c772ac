/**
 * The MySQL status file (--mysql-master-status-file) is never written through a symbolic link:
 * with a real MariaDB and moto, through the real program, a link at that path is refused before
 * anything is locked and its target keeps its content.
 */
import { assertEquals, assertMatch } from "./support/assert.ts";
import { mariadbRequirement, type MariadbServer, startMariadb } from "./support/mariadb.ts";
import { MOTO, startMoto } from "./support/moto.ts";
import { baseEnv, runProgram } from "./support/program.ts";
import { ignoreUnless, requireAvailable } from "./support/real.ts";
import nodeAssert from "node:assert/strict";
import { DatabaseError, ExitCode } from "../src/util/errors.ts";
import { writeStatusFile } from "../src/db/mysql/positions.ts";
import { silentLogger } from "../src/util/log.ts";

const MARIADB = await mariadbRequirement();

Deno.test({
  name: "a symbolic link at the status file's path: refused, its target not overwritten",
  ignore: ignoreUnless(MARIADB, MOTO),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    requireAvailable(MARIADB);
    const moto = await startMoto();
    const dir = Deno.makeTempDirSync({ prefix: "ecs-status-" });
    const env = baseEnv(moto.env);
    let db: MariadbServer | undefined;
    try {
      db = await startMariadb();
      const [volume] = await moto.createVolumes(1);
      const defaults = `${dir}/my.cnf`;
      Deno.writeTextFileSync(defaults, `[client]\nuser = root\nsocket = ${db.socket}\n`, {
        mode: 0o600,
      });
      const precious = `${dir}/precious`;
      Deno.writeTextFileSync(precious, "root's file\n");
      const status = `${dir}/master-status`;
      const args = ["--mysql", "--mysql-defaults-file", defaults, "--mysql-master-status-file"];

      Deno.symlinkSync(precious, status);
      const linked = await runProgram([...args, status, volume], { env });
      assertEquals(linked.code, ExitCode.usage, linked.stderr);
      assertMatch(linked.stderr, /--mysql-master-status-file .*master-status is a symbolic link/);
      assertEquals(Deno.readTextFileSync(precious), "root's file\n");
      assertEquals(Deno.lstatSync(status).isSymlink, true);

      Deno.removeSync(status);
      Deno.symlinkSync(`${dir}/missing`, status); // a dangling link would create its target
      const dangling = await runProgram([...args, status, volume], { env });
      assertEquals(dangling.code, ExitCode.usage, dangling.stderr);
      assertEquals([...Deno.readDirSync(dir)].map((e) => e.name).sort(), [
        "master-status",
        "my.cnf",
        "precious",
      ]);
      assertEquals((await moto.snapshotsOf([volume])).length, 0);

      // A plain path: written beside and renamed, then removed after the snapshot.
      Deno.removeSync(status);
      const plain = await runProgram([...args, status, volume], { env });
      assertEquals(plain.code, 0, plain.stderr);
      assertEquals([...Deno.readDirSync(dir)].map((e) => e.name).sort(), ["my.cnf", "precious"]);
    } finally {
      await db?.stop();
      Deno.removeSync(dir, { recursive: true });
      Deno.removeSync(env.HOME, { recursive: true });
      await moto.stop();
    }
  },
});

Deno.test("a link put at the status file's path after the plan is not written through either", () => {
  const dir = Deno.makeTempDirSync({ prefix: "ecs-status-" });
  try {
    const precious = `${dir}/precious`;
    Deno.writeTextFileSync(precious, "root's file\n");
    const status = `${dir}/master-status`;
    Deno.symlinkSync(precious, status);
    const coordinates = { file: "bin.000001", position: 4, from: "source" as const };
    const position = { coordinates, doDb: "", ignoreDb: "" };
    nodeAssert.throws(
      () => writeStatusFile(status, position, silentLogger),
      (error: Error) =>
        error instanceof DatabaseError && /is a symbolic link; refusing/.test(error.message),
    );
    assertEquals(Deno.readTextFileSync(precious), "root's file\n");
    Deno.removeSync(status);
    assertEquals(writeStatusFile(status, position, silentLogger), true);
    assertMatch(Deno.readTextFileSync(status), /^master_log_file="bin.000001"\n/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
