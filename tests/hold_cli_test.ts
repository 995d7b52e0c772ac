/** `--hold [SECONDS]` and `--release` on the command line and in the plan: values, refusals, and the answers without a hold. */
import { assertEquals, assertMatch, assertRejects } from "./support/assert.ts";
import { parseCommandLine } from "../src/cli/parse.ts";
import { mergeConfig, parseConfigText } from "../src/cli/config_file.ts";
import { buildHoldPlan } from "../src/plan/hold_plan.ts";
import { silentLogger } from "../src/util/log.ts";
import { ExitCode, UsageError } from "../src/util/errors.ts";
import { makeStateDir } from "./support/hold.ts";
import { baseEnv, runProgram } from "./support/program.ts";

/** Asserts that `fn` throws a UsageError whose message includes `text`. */
function assertThrows(fn: () => unknown, _type: typeof UsageError, text: string): void {
  let thrown: unknown;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  assertEquals(thrown instanceof UsageError && thrown.message.includes(text), true, String(thrown));
}

Deno.test("--hold takes an optional value: bare, =N, or a following number only", () => {
  assertEquals(parseCommandLine(["--hold"]).options.hold, 60);
  assertEquals(parseCommandLine(["--hold=90"]).options.hold, 90);
  assertEquals(parseCommandLine(["--hold", "90"]).options.hold, 90);
  assertEquals(parseCommandLine(["--hold", "7.5"]).options.hold, 7.5);
  // Below 5 s a hold would be released before an orchestrator could start its snapshots.
  assertThrows(
    () => parseCommandLine(["--hold", "0.0004"]),
    UsageError,
    "--hold: must be at least 5 seconds",
  );
  assertThrows(() => parseCommandLine(["--hold=4.9"]), UsageError, "at least 5 seconds");
  const volume = parseCommandLine(["--hold", "vol-0123abcd"]);
  assertEquals([volume.options.hold, volume.volumeIds], [60, ["vol-0123abcd"]]);
  const option = parseCommandLine(["--hold", "--mysql"]);
  assertEquals([option.options.hold, option.options.mysql], [60, true]);
  // Abbreviations, as Getopt::Long: an exact name wins, an ambiguous one names the candidates.
  assertEquals(parseCommandLine(["--hold-w", "8", "--hold"]).options.holdWithin, 8);
  assertThrows(() => parseCommandLine(["--hol"]), UsageError, "--hold, --hold-within");
  assertEquals(parseCommandLine([]).options.hold, undefined);
  assertThrows(
    () => parseCommandLine(["--hold=601"]),
    UsageError,
    "--hold: must be at most 600 seconds",
  );
  assertThrows(() => parseCommandLine(["--hold=-1"]), UsageError, "must not be negative");
  assertEquals(parseCommandLine(["--release"]).options.release, true);
  // --wait keeps its meaning: a number after it is refused (it could be meant as a volume id).
  assertEquals(parseCommandLine(["--wait"]).options.wait, 3600);
  assertThrows(() => parseCommandLine(["--wait", "90"]), UsageError, "write --wait=90");
});

Deno.test("--hold and --release are command-line options only", () => {
  assertThrows(() => parseConfigText("hold = 60\n", "x.conf"), UsageError, "command line only");
  assertThrows(() => parseConfigText("release\n", "x.conf"), UsageError, "command line only");
});

function plan(argv: string[], config?: string, cwd?: string) {
  const parsed = parseCommandLine(argv);
  const args = config ? mergeConfig(parsed, parseConfigText(config, "x.conf")) : parsed;
  return buildHoldPlan({
    args,
    commandLineVolumes: parsed.volumeIds,
    log: silentLogger,
    env: {},
    cwd: cwd ?? Deno.cwd(),
    home: "/nonexistent",
  });
}

Deno.test("the hold plan refuses volume ids, snapshot options and an empty hold", async () => {
  await assertRejects(() => plan(["--hold", "--mysql", "vol-0123abcd"]), UsageError, "volume ids");
  for (const option of [["--tag", "a=b"], ["--description", "d"], ["--keep", "3"], ["--wait"]]) {
    await assertRejects(
      () => plan(["--hold", "--mysql", ...option]),
      UsageError,
      `${option[0]} is not accepted`,
    );
  }
  await assertRejects(
    () => plan(["--hold", "--no-freeze-filesystem", "/"]),
    UsageError,
    "--no-freeze-filesystem is not accepted",
  );
  await assertRejects(() => plan(["--hold"]), UsageError, "nothing to hold");
  await assertRejects(() => plan(["--hold=0", "--mysql"]), UsageError, "at least 5 seconds");
});

Deno.test("the hold plan: a configuration file's snapshot options and volumes are ignored", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ecs-hold-plan-" });
  Deno.writeTextFileSync(`${dir}/my.cnf`, "[client]\nuser = snap\n");
  const held = await plan(
    ["--hold", "30", "--mysql", "--mysql-defaults-file", "my.cnf"],
    "tag = a=b\nkeep = 3\nvolume = vol-0123abcd\n",
    dir,
  ).finally(() => Deno.removeSync(dir, { recursive: true }));
  assertEquals(held.holdMs, 30_000);
  const { database, freezeMounts } = held.window;
  const mysql = database?.kind === "mysql" ? database : undefined;
  assertEquals([mysql?.lockMode, mysql?.stop], ["flush", false]);
  assertEquals(freezeMounts, []);
  assertEquals(mysql?.settings.files, [`${dir}/my.cnf`], "read, by an absolute path");
});

Deno.test("through the program: --release with nothing held exits 14; bad input exits 2", async () => {
  const state = makeStateDir();
  const env = baseEnv(state.env);
  try {
    const none = await runProgram(["--release"], { env });
    assertEquals(none.code, ExitCode.notHeld, none.stderr);
    assertEquals(none.stderr, "ec2-consistent-snapshot: --release: nothing is held\n");
    const both = await runProgram(["--release", "--hold"], { env });
    assertEquals(both.code, ExitCode.usage);
    assertMatch(both.stderr, /give one of them/);
    const volume = await runProgram(["--hold", "--mysql", "vol-0123abcd"], { env });
    assertEquals(volume.code, ExitCode.usage);
    assertMatch(volume.stderr, /--hold makes no snapshot: volume ids are not accepted/);
  } finally {
    await state.remove();
  }
});
