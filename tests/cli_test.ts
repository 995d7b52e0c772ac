/** The command line as a user meets it: --help, --version, --noaction and every bad input. */
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { baseEnv, runProgram } from "./support/program.ts";
import { startStubEndpoint } from "./support/stub_endpoint.ts";
import { OPTION_TABLE } from "../src/types/options.ts";
import { ExitCode } from "../src/util/errors.ts";

/** An endpoint that counts requests and answers none usefully: proves "no network call". */
function countingEndpoint() {
  return startStubEndpoint(() => new Response("unexpected", { status: 500 }));
}

const VOL = "vol-0123456789abcdef0";
const VOL2 = "vol-1234abcd";

Deno.test("--help lists every option with its default", async () => {
  const { code, stdout } = await runProgram(["--help"]);
  assertEquals(code, 0);
  for (const spec of OPTION_TABLE) {
    assert(stdout.includes(`--${spec.name}`), `--help lacks --${spec.name}`);
    if ("default" in spec) assert(stdout.includes(`(default: ${spec.default})`));
  }
  assert(stdout.includes("-h, -?, --help") && stdout.includes("--xfs-filesystem"));
});

Deno.test("--version prints the version", async () => {
  const { code, stdout } = await runProgram(["--version"]);
  assertEquals(code, 0);
  assertMatch(stdout, /^ec2-consistent-snapshot \d+\.\d+\.\d+\n$/);
});

Deno.test("bad input: one clear line, a documented exit code, no network call", async (t) => {
  const endpoint = countingEndpoint();
  const dir = Deno.makeTempDirSync();
  const unreadable = `${dir}/missing-credentials`;
  const oneLine = `${dir}/one-line`;
  Deno.writeTextFileSync(oneLine, "AKIAONLYONELINE\n", { mode: 0o600 });
  const env = baseEnv({
    AWS_ACCESS_KEY_ID: "AKIAIOSFODNN7EXAMPLE",
    AWS_SECRET_ACCESS_KEY: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    AWS_REGION: "us-east-1",
  });
  const longKey = "k".repeat(129);
  const manyTags = Array.from({ length: 50 }, (_, i) => `k${i}=v`).join(";");
  // The tool adds three tags of its own (the marker, the run id, held-until): 48 are too many.
  const tags46 = Array.from({ length: 46 }, (_, i) => `k${i}=v`).join(";");
  const cases: [string, string[], RegExp, number][] = [
    ["unknown option", ["--frobnicate", VOL], /unknown option --frobnicate/, ExitCode.usage],
    ["missing value", [VOL, "--region"], /--region: needs a value/, ExitCode.usage],
    [
      "non-numeric timeout",
      ["--snapshot-timeout", "soon", VOL],
      /--snapshot-timeout: must be a number/,
      ExitCode.usage,
    ],
    [
      "negative timeout",
      ["--lock-timeout=-1", VOL],
      /--lock-timeout: must not be negative/,
      ExitCode.usage,
    ],
    [
      "fractional count",
      ["--lock-tries", "1.5", VOL],
      /--lock-tries: must be a whole number/,
      ExitCode.usage,
    ],
    ["flag with a value", ["--debug=yes please", VOL], /--debug: takes no value/, ExitCode.usage],
    ["malformed volume id", ["vol-xyz"], /malformed volume id 'vol-xyz'/, ExitCode.usage],
    ["volume id of 9 digits", ["vol-123456789"], /malformed volume id/, ExitCode.usage],
    ["upper-case volume id", ["vol-ABCDEF12"], /malformed volume id/, ExitCode.usage],
    ["duplicate volume", [VOL, VOL], /volume vol-0123456789abcdef0 given twice/, ExitCode.usage],
    [
      "no volume",
      [],
      /no volume ids or mount points were given: name the EBS volumes/,
      ExitCode.usage,
    ],
    [
      "tag without =",
      ["--tag", "novalue", VOL],
      /--tag 'novalue': expected KEY=VALUE/,
      ExitCode.usage,
    ],
    ["empty tag key", ["--tag", "=v", VOL], /--tag '=v': empty key/, ExitCode.usage],
    ["tag key too long", ["--tag", `${longKey}=v`, VOL], /key longer than 128/, ExitCode.usage],
    [
      "tag value too long",
      ["--tag", `k=${"v".repeat(257)}`, VOL],
      /value longer than 256/,
      ExitCode.usage,
    ],
    ["aws: tag prefix", ["--tag", "aws:x=1", VOL], /reserved by AWS/, ExitCode.usage],
    ["too many tags", ["--tag", manyTags, VOL], /50 tags; EC2 allows 50/, ExitCode.usage],
    ["46 tags and the tool's 5", ["--tag", tags46, VOL], /46 tags; .* adds 5/, ExitCode.usage],
    [
      "the run-id tag is the tool's",
      ["--tag", "ec2-consistent-snapshot:run-id=x", VOL],
      /set by the tool itself/,
      ExitCode.usage,
    ],
    [
      "description count",
      ["--description", "a", "--description", "b", VOL, VOL2, "vol-2345abcd"],
      /--description given 2 times for 3 volumes/,
      ExitCode.usage,
    ],
    [
      "tag count",
      ["--tag", "a=1", "--tag", "b=2", VOL],
      /--tag given 2 times for 1 volume: give it once$/m,
      ExitCode.usage,
    ],
    [
      "bad output format",
      ["--output", "xml", VOL],
      /--output: expected text or json/,
      ExitCode.usage,
    ],
    [
      "bad endpoint",
      ["--ec2-endpoint", "not a url", VOL],
      /--ec2-endpoint: expected an http\(s\) URL/,
      ExitCode.usage,
    ],
    [
      "unreadable credentials file",
      ["--aws-credentials-file", unreadable, VOL],
      /--aws-credentials-file .*missing-credentials: cannot read: no such file/,
      ExitCode.usage,
    ],
    [
      "one-line credentials file",
      ["--aws-credentials-file", oneLine, VOL],
      /expected two lines/,
      ExitCode.usage,
    ],
    [
      "key file without secret file",
      ["--aws-access-key-id-file", oneLine, VOL],
      /must be given together/,
      ExitCode.usage,
    ],
    [
      "two credential sources",
      ["--profile", "x", "--aws-credentials-file", oneLine, VOL],
      /conflicting credential options/,
      ExitCode.usage,
    ],
    ["ambiguous abbreviation", ["--mysql-s", VOL], /option --mysql-s is ambiguous/, ExitCode.usage],
    [
      "MongoDB is not supported",
      ["--mongo", VOL],
      /--mongo: not supported .*freeze the file system that holds MongoDB's data/,
      ExitCode.usage,
    ],
  ];
  try {
    for (const [name, args, message, exitCode] of cases) {
      await t.step(name, async () => {
        const result = await runProgram(["--ec2-endpoint", endpoint.url, ...args], { env });
        assertEquals(result.code, exitCode, `exit code for ${name}: ${result.stderr}`);
        assertEquals(result.stdout, "");
        const lines = result.stderr.trimEnd().split("\n");
        assertEquals(lines.length, 1, `one line on stderr, got: ${result.stderr}`);
        assertMatch(lines[0], /^ec2-consistent-snapshot: /);
        assertMatch(lines[0], message);
      });
    }
    assertEquals(endpoint.count(), 0, "a bad input must not reach the network");
  } finally {
    await endpoint.stop();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("--noaction prints the plan on stderr and makes no network call", async () => {
  const endpoint = countingEndpoint();
  try {
    const env = baseEnv({
      AWS_ACCESS_KEY_ID: "AKIAEXAMPLE",
      AWS_SECRET_ACCESS_KEY: "s3cr3t-value",
    });
    const result = await runProgram(
      ["-n", "--region", "eu-west-1", "--ec2-endpoint", endpoint.url, "--desc", "nightly", VOL],
      { env },
    );
    assertEquals(result.code, 0, result.stderr);
    assertEquals(result.stdout, "", "stdout stays for snapshot ids, as with the old tool");
    assert(result.stderr.includes(`would snapshot ${VOL} description="nightly"`));
    assert(result.stderr.includes("region: eu-west-1 (--region)"));
    const json = await runProgram(
      ["-n", "--output=json", "--region", "eu-west-1", "--ec2-endpoint", endpoint.url, VOL],
      { env },
    );
    assertEquals(JSON.parse(json.stdout).noaction, true, "JSON, asked for, on stdout");
    assertEquals(endpoint.count(), 0);
  } finally {
    await endpoint.stop();
  }
});

Deno.test("no secret is printed, even with --debug", async () => {
  const secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY";
  const result = await runProgram(
    [
      "-d",
      "-n",
      "--region",
      "us-east-1",
      "--aws-access-key-id",
      "AKIAEXAMPLE",
      "--aws-secret-access-key",
      secret,
      VOL,
    ],
  );
  assertEquals(result.code, 0, result.stderr);
  assert(!result.stdout.includes(secret) && !result.stderr.includes(secret));
  assertMatch(result.stderr, /--aws-secret-access-key on the command line is visible/);
  assertMatch(
    result.stderr,
    /credentials from the --aws-access-key-id and --aws-secret-access-key options/,
  );
});

Deno.test("a credentials file readable by others is warned about", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    const file = `${dir}/awssecret`;
    Deno.writeTextFileSync(file, "AKIAFROMFILE\nsecret-from-file-xyz\n");
    Deno.chmodSync(file, 0o644);
    const result = await runProgram([
      "-d",
      "-n",
      "--region",
      "us-east-1",
      "--aws-credentials-file",
      file,
      VOL,
    ]);
    assertEquals(result.code, 0, result.stderr);
    assertMatch(result.stderr, /readable by group or others; chmod 600 it/);
    assertMatch(result.stderr, /credentials from the credentials file .*awssecret/);
    assert(!result.stderr.includes("secret-from-file-xyz"));
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("~/.awssecret is the old tool's default, after the environment", async () => {
  const env = baseEnv();
  Deno.writeTextFileSync(`${env.HOME}/.awssecret`, "AKIAHOME\nhome-secret-abc\n", { mode: 0o600 });
  const fromFile = await runProgram(["-d", "-n", "--region", "us-east-1", VOL], { env });
  assertMatch(fromFile.stderr, /credentials from the credentials file .*\.awssecret/);
  const fromEnv = await runProgram(["-d", "-n", "--region", "us-east-1", VOL], {
    env: { ...env, AWS_ACCESS_KEY_ID: "AKIAENV", AWS_SECRET_ACCESS_KEY: "env-secret-abc" },
  });
  assertMatch(fromEnv.stderr, /credentials from the environment/);
  Deno.mkdirSync(`${env.HOME}/.aws`, { recursive: true });
  Deno.writeTextFileSync(
    `${env.HOME}/.aws/credentials`,
    "[backup]\naws_access_key_id = AKIAPROFILE\naws_secret_access_key = profile-secret\n",
    { mode: 0o600 },
  );
  const fromOption = await runProgram(
    ["-d", "-n", "--region", "us-east-1", "--profile", "backup", VOL],
    { env: { ...env, AWS_ACCESS_KEY_ID: "AKIAENV", AWS_SECRET_ACCESS_KEY: "env-secret-abc" } },
  );
  assertMatch(fromOption.stderr, /credentials from the profile backup/);
});

Deno.test("off EC2 without a region: says so, and what to pass", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close(); // nothing listens there: as off EC2
  const env = baseEnv({ AWS_EC2_METADATA_SERVICE_ENDPOINT: `http://127.0.0.1:${port}` });
  delete env.AWS_EC2_METADATA_DISABLED;
  const result = await runProgram([VOL], { env });
  assertEquals(result.code, ExitCode.preflight, result.stderr);
  assertEquals(result.stderr.trim().split("\n").length, 1, result.stderr);
  assertMatch(result.stderr, /no region given .* this is not an EC2 instance, or its metadata/);
  assertMatch(result.stderr, /give --region$/m);
});

Deno.test("the edges a new user hits: -V, --wait 600, --keep -1, a region typo, no such profile", async () => {
  const version = await runProgram(["-V"]);
  assertEquals(version.code, 0);
  assertMatch(version.stdout, /^ec2-consistent-snapshot \d+\.\d+\.\d+/);
  const cases: [string[], RegExp][] = [
    [["--wait", "600", VOL], /^ec2-consistent-snapshot: --wait 600: .* write --wait=600 /],
    [["--keep", "-1", VOL], /--keep: must not be negative, got '-1'/],
    [["--keep=-1", VOL], /--keep: must not be negative, got '-1'/],
    [["-n", "--region", "us-eest-1", VOL], /--region us-eest-1: not an AWS region the AWS SDK/],
    [["-n", "--region", "us-east-1", "--profile", "nosuch", VOL], /--profile nosuch: no such prof/],
  ];
  for (const [args, message] of cases) {
    const result = await runProgram(args, { env: baseEnv() });
    assertEquals(result.code, ExitCode.usage, `${args.join(" ")}: ${result.stderr}`);
    assertEquals(result.stderr.trim().split("\n").length, 1, result.stderr);
    assertMatch(result.stderr, message);
  }
  // A region the SDK does not list is fine with an endpoint of one's own (a newer region, moto).
  const endpoint = await runProgram(
    ["-n", "--region", "xx-test-1", "--ec2-endpoint", "http://127.0.0.1:9", VOL],
    { env: baseEnv({ AWS_ACCESS_KEY_ID: "AKIAEXAMPLE", AWS_SECRET_ACCESS_KEY: "s3cr3t" }) },
  );
  assertEquals(endpoint.code, 0, endpoint.stderr);
});
