/** --noaction --mysql: the plan reads and checks ~/.my.cnf and says what it would do, without connecting. */
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { baseEnv, runProgram } from "./support/program.ts";
import { ExitCode } from "../src/util/errors.ts";

const VOL = "vol-0123456789abcdef0";
const SECRET = "My-Cnf-Secret-42";

/** A HOME of its own with `text` as its .my.cnf; removed afterwards. */
async function withHome(text: string, fn: (env: Record<string, string>) => Promise<void>) {
  const env = baseEnv({ AWS_REGION: "us-east-1" });
  try {
    Deno.writeTextFileSync(`${env.HOME}/.my.cnf`, text, { mode: 0o600 });
    await fn(env);
  } finally {
    Deno.removeSync(env.HOME, { recursive: true });
  }
}

Deno.test("--noaction --mysql: a malformed ~/.my.cnf is a usage error naming it", async () => {
  await withHome("[client\nuser = backup\n", async (env) => {
    const out = await runProgram(["--noaction", "--mysql", VOL], { env });
    assertEquals(out.code, ExitCode.usage, out.stderr);
    assertMatch(out.stderr, /\.my\.cnf/);
    assertEquals(out.stderr.trim().split("\n").length, 1, out.stderr);
    assertEquals(out.stdout, "");
  });
});

Deno.test("--noaction --mysql: ~/.my.cnf read, the MySQL plan printed, nothing connected", async () => {
  const cnf = (home: string) =>
    `[client]\nuser = backup\npassword = ${SECRET}\nsocket = ${home}/nothing-listens.sock\n`;
  await withHome("", async (env) => {
    Deno.writeTextFileSync(`${env.HOME}/.my.cnf`, cnf(env.HOME), { mode: 0o600 });
    const out = await runProgram(
      ["--noaction", "--mysql", "--mysql-master-status-file", `${env.HOME}/status`, VOL],
      { env },
    );
    // No server listens on that socket: a connection attempt would have failed the run.
    assertEquals(out.code, ExitCode.ok, out.stderr);
    assertMatch(out.stderr, /would flush and lock MySQL\/MariaDB, lock mode flush/);
    assertMatch(out.stderr, /socket \S+nothing-listens\.sock \(file\) as backup, password set/);
    assertMatch(out.stderr, /\.my\.cnf/);
    assertMatch(out.stderr, /would write the binary log position to \S+status/);
    assertEquals(out.stdout, "", "the plan goes to stderr");
    assert(!out.stdout.includes(SECRET) && !out.stderr.includes(SECRET), "the password shows");

    const stop = await runProgram([
      "--noaction",
      "--mysql-stop",
      "--mysql-stop-command",
      "systemctl stop db",
      "--mysql-start-command",
      "systemctl start db",
      "--output",
      "json",
      VOL,
    ], { env });
    assertEquals(stop.code, ExitCode.ok, stop.stderr);
    const database = JSON.parse(stop.stdout).database;
    assertEquals(database.stop, true);
    assertEquals(database.user, "backup");
    assertEquals(database.stopCommand, "systemctl stop db");
    assertEquals(database.startCommand, "systemctl start db");
    assert(!stop.stdout.includes(SECRET), "the password shows in JSON");

    const badDir = await runProgram(
      ["--noaction", "--mysql", "--mysql-master-status-file", "/nonexistent-dir/s", VOL],
      { env },
    );
    assertEquals(badDir.code, ExitCode.usage, badDir.stderr);
    assertMatch(badDir.stderr, /directory \/nonexistent-dir does not exist/);
  });
});
