/** --config FILE: good files merged under the command line, bad files refused by file and line. */
import { DescribeSnapshotsCommand } from "@aws-sdk/client-ec2";
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { MOTO, startMoto } from "./support/moto.ts";
import { ignoreUnless } from "./support/real.ts";
import { baseEnv, runProgram } from "./support/program.ts";
import { mergeConfig, parseConfigText } from "../src/cli/config_file.ts";
import { UsageError } from "../src/util/errors.ts";
import { parseCommandLine } from "../src/cli/parse.ts";

/** Writes a configuration file; adds its path to `written`, for the test to remove. */
function writeConfig(text: string, written: string[]): string {
  const path = Deno.makeTempFileSync({ prefix: "ecs-config-", suffix: ".conf" });
  written.push(path);
  Deno.writeTextFileSync(path, text);
  return path;
}

Deno.test("the command line wins; lists and volumes from the command line replace the file's", () => {
  const file = parseConfigText(
    [
      "# nightly backups",
      "region = eu-west-1",
      "[ec2-consistent-snapshot]",
      "description = from the file",
      'tag = "team=db;env=prod"',
      "volume = vol-0000000a",
      "volume = vol-0000000b",
      "snapshot-timeout = 20",
      "multi-volume",
      "wait",
      "xfs-filesystem = /data",
    ].join("\n"),
    "f.conf",
  );
  const fromFile = mergeConfig(parseCommandLine([]), file);
  assertEquals(fromFile.options.region, "eu-west-1");
  assertEquals(fromFile.options.tag, ["team=db;env=prod"]);
  assertEquals(fromFile.options.snapshotTimeout, 20);
  assertEquals(fromFile.options.multiVolume, true);
  assertEquals(fromFile.options.wait, 3600);
  assertEquals(fromFile.options.freezeFilesystem, ["/data"]);
  assertEquals(fromFile.volumeIds, ["vol-0000000a", "vol-0000000b"]);
  assertEquals(fromFile.fromConfigFile?.has("region"), true);

  const both = mergeConfig(
    parseCommandLine(["--region", "us-east-2", "--tag", "x=y", "vol-0000000c"]),
    file,
  );
  assertEquals(both.options.region, "us-east-2");
  assertEquals(both.options.tag, ["x=y"]);
  assertEquals(both.options.description, ["from the file"]);
  assertEquals(both.volumeIds, ["vol-0000000c"]);
  assertEquals(both.fromConfigFile?.has("region"), false);
});

Deno.test("bad configuration files name the file and the line", () => {
  const cases: [string, RegExp][] = [
    [
      "region = us-east-1\nregoin = eu-west-1",
      /^f\.conf:2: unknown key \(did you mean 'region'\?\); keys are long option names/,
    ],
    ["tga[] = a=b", /^f\.conf:1: unknown key \(did you mean 'tag'\?\)/],
    ["config = other.conf", /^f\.conf:1: 'config' is accepted on the command line only/],
    ["[ec2-consistent-snapshots]\nregion = x", /^f\.conf:1: unknown section/],
    ["\n\ntag = a=b;c=d", /^f\.conf:3: .*';' or '#'.*double quotes/],
    ["tag[] = a=b", /^f\.conf:1: write 'tag' once per value/],
    ["region", /^f\.conf:1: 'region' needs a value/],
  ];
  for (const [text, pattern] of cases) {
    try {
      parseConfigText(text, "f.conf");
      throw new Error(`accepted: ${text}`);
    } catch (error) {
      if (!(error instanceof UsageError)) throw error;
      assertMatch(error.message, pattern);
    }
  }
  try {
    mergeConfig(parseCommandLine([]), parseConfigText("\nkeep = -1\n", "f.conf"));
    throw new Error("accepted keep = -1");
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    assertMatch(error.message, /^f\.conf:2: --keep: must not be negative/);
  }
});

Deno.test("a run configured by a file, against moto", { ignore: ignoreUnless(MOTO) }, async () => {
  const moto = await startMoto();
  const written: string[] = [];
  try {
    const [a, b] = await moto.createVolumes(2);
    const config = writeConfig(
      `[ec2-consistent-snapshot]\ndescription = from the file\ntag = "team=db;env=prod"\n` +
        `volume = ${a}\nvolume = ${b}\n`,
      written,
    );
    const result = await runProgram(["--config", config], { env: baseEnv(moto.env) });
    assertEquals(result.code, 0, result.stderr);
    const ids = result.stdout.trimEnd().split("\n");
    const made = (await moto.client().send(new DescribeSnapshotsCommand({ SnapshotIds: ids })))
      .Snapshots!;
    assertEquals(made.map((s) => s.VolumeId).sort(), [a, b].sort());
    for (const snapshot of made) {
      assertEquals(snapshot.Description, "from the file");
      const tags = Object.fromEntries(snapshot.Tags!.map((t) => [t.Key, t.Value]));
      assertEquals([tags.team, tags.env], ["db", "prod"]);
    }

    const bad = writeConfig("region = us-east-1\nwiat = 60\n", written);
    const refused = await runProgram(["--config", bad, a], { env: baseEnv(moto.env) });
    assertEquals(refused.code, 2);
    assertEquals(refused.stdout, "");
    assertMatch(refused.stderr, new RegExp(`${bad}:2: unknown key \\(did you mean 'wait'\\?\\)`));

    const missing = await runProgram(["--config", "/nonexistent.conf", a], {
      env: baseEnv(moto.env),
    });
    assertEquals(missing.code, 2);
    assertMatch(missing.stderr, /--config \/nonexistent\.conf: cannot read: no such file/);
  } finally {
    for (const path of written) await Deno.remove(path);
    await moto.stop();
  }
});

const SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzSECRETKEY";

Deno.test("a bad line is named by file and line, never shown: a secret never reaches the output", async () => {
  const env = baseEnv();
  const cases: [string, RegExp][] = [
    // The secret on a line of its own, after its key.
    [
      `aws-access-key-id = AKIAEXAMPLE\naws-secret-access-key =\n${SECRET}\n`,
      /:3: unknown key; .*not shown.*line 2 gives 'aws-secret-access-key' an empty value/,
    ],
    [`[${SECRET}]\n`, /:1: unknown section; use \[ec2-consistent-snapshot\]/],
    [`${SECRET} = 1\n`, /:1: unknown key; keys are long option names/],
    [`${SECRET}[] = 1\n`, /:1: unknown key; keys are long option names/],
  ];
  for (const [text, pattern] of cases) {
    const config = writeConfig(text, []);
    try {
      const result = await runProgram(["--config", config, "vol-00000001"], { env });
      assertEquals(result.code, 2, result.stderr);
      assertEquals(result.stdout, "");
      assertMatch(result.stderr, pattern);
      assert(!result.stderr.includes(SECRET) && !result.stdout.includes(SECRET), result.stderr);
      assert(!result.stderr.includes("SECRETKEY"), result.stderr);
    } finally {
      Deno.removeSync(config);
    }
  }
  Deno.removeSync(env.HOME, { recursive: true });
});

Deno.test("control characters in what is echoed are escaped", async () => {
  const env = baseEnv();
  const config = writeConfig("keep = 1\x1b[2J\x07\n", []);
  try {
    const result = await runProgram(["--config", config, "vol-00000001"], { env });
    assertEquals(result.code, 2, result.stderr);
    assertMatch(result.stderr, /:1: --keep: must be a whole number, got '1\\x1b\[2J\\x07'/);
    // deno-lint-ignore no-control-regex
    assert(!/[\x00-\x08\x0b-\x1f\x7f]/.test(result.stderr), JSON.stringify(result.stderr));
    const cli = await runProgram(["--keep", "2\u202e1", "--region", "a\rb", "vol-00000001"], {
      env,
    });
    assertEquals(cli.code, 2);
    assert(!/[\r\u202e]/.test(cli.stderr), JSON.stringify(cli.stderr));
    assertMatch(cli.stderr, /\\u\{202e\}/);
  } finally {
    Deno.removeSync(config);
    Deno.removeSync(env.HOME, { recursive: true });
  }
});
