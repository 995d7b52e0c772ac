/**
 * A new user's first run, through the program: no credentials, a dry run that says whether it
 * found any, a description that swallowed the volume id, the old tool's spellings, and the
 * --debug windows of a run that froze nothing.
 */
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { baseEnv, runProgram } from "./support/program.ts";
import { startStubEndpoint } from "./support/stub_endpoint.ts";
import { MOTO, startMoto } from "./support/moto.ts";
import { ignoreUnless } from "./support/real.ts";
import { ExitCode } from "../src/util/errors.ts";
import { windowText } from "../src/run/window_timings.ts";

const VOL = "vol-0123456789abcdef0";

Deno.test("no credentials anywhere: one line saying where it looked and how to give them", async () => {
  const endpoint = startStubEndpoint(() => new Response("", { status: 500 }));
  try {
    const run = await runProgram(["--region", "eu-west-1", "--ec2-endpoint", endpoint.url, VOL], {
      env: baseEnv(),
    });
    assertEquals(run.code, ExitCode.preflight, run.stderr);
    const lines = run.stderr.trim().split("\n");
    assertEquals(lines.length, 1, run.stderr);
    assertMatch(lines[0], /no AWS credentials found: looked at .*~\/\.aws\/credentials/);
    assertMatch(lines[0], /give them with --profile NAME/);
    assert(!/CredentialsProviderError|vol-/.test(lines[0]), "not the SDK's words, no volume");
    assertEquals(endpoint.count(), 0, "no request without credentials");
  } finally {
    await endpoint.stop();
  }
});

Deno.test("--noaction says whether credentials were found", async () => {
  const none = await runProgram(["-n", "--region", "eu-west-1", VOL], { env: baseEnv() });
  assertEquals(none.code, 0, none.stderr);
  assertMatch(none.stderr, /credentials: .*nothing in the environment or ~\/\.aws/);
  // baseEnv disables instance metadata: no IAM role can be asked either, and the plan says so.
  assertMatch(none.stderr, /instance metadata is disabled .*: a run would find none/);
  const imds = await runProgram(["-n", "--region", "eu-west-1", VOL], {
    env: baseEnv({ AWS_EC2_METADATA_DISABLED: "false" }),
  });
  assertMatch(imds.stderr, /only the instance's IAM role \(IMDSv2\) is left/);
  const home = Deno.makeTempDirSync({ prefix: "ecs-home-" });
  try {
    Deno.mkdirSync(`${home}/.aws`);
    Deno.writeTextFileSync(
      `${home}/.aws/credentials`,
      "[default]\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = x\n",
    );
    const found = await runProgram(["-n", "--region", "eu-west-1", VOL], {
      env: baseEnv({ HOME: home }),
    });
    assertEquals(found.code, 0, found.stderr);
    assertMatch(found.stderr, /credentials: .*found: the default profile/);
  } finally {
    Deno.removeSync(home, { recursive: true });
  }
});

Deno.test("--description that took the volume id: the error says so", async () => {
  const run = await runProgram(["--region", "eu-west-1", "--description", VOL], {
    env: baseEnv(),
  });
  assertEquals(run.code, ExitCode.usage, run.stderr);
  assertMatch(run.stderr, new RegExp(`--description took ${VOL} as its value`));
});

Deno.test("--tag that took the volume id: the error says so, as the README promises", async () => {
  const run = await runProgram(["--region", "eu-west-1", "--tag", VOL], { env: baseEnv() });
  assertEquals(run.code, ExitCode.usage, run.stderr);
  assertEquals(run.stderr.trim().split("\n").length, 1, run.stderr);
  assertMatch(run.stderr, new RegExp(`--tag took ${VOL} as its value`));
});

Deno.test("the old tool's spellings through the program", async () => {
  const env = baseEnv({ AWS_ACCESS_KEY_ID: "AKIAEXAMPLE", AWS_SECRET_ACCESS_KEY: "x" });
  const old = await runProgram(
    ["-region", "eu-west-1", "-desc", "nightly", "-quiet", "-noaction", VOL],
    { env },
  );
  assertEquals(old.code, 0, old.stderr);
  assertMatch(old.stderr, new RegExp(`would snapshot ${VOL} description="nightly"`));
  const help = await runProgram(["-?"], { env });
  assertEquals(help.code, 0, help.stderr);
  assertMatch(help.stdout, /^ec2-consistent-snapshot /);
  const ambiguous = await runProgram(["-s", "5", VOL], { env });
  assertEquals(ambiguous.code, ExitCode.usage);
  assertMatch(ambiguous.stderr, /option -s is ambiguous: --signature-version, --snapshot-timeout/);
  const unknown = await runProgram(["-regoin", "eu-west-1", VOL], { env });
  assertEquals(unknown.code, ExitCode.usage);
  assertMatch(unknown.stderr, /unknown option -regoin/);
});

Deno.test("windows in words: nothing frozen is said, never '-ms'", () => {
  assertEquals(
    windowText({ freezeWindowMs: null, lockWindowMs: null }),
    "nothing was frozen, nothing was locked",
  );
  assertEquals(
    windowText({ freezeWindowMs: 12, lockWindowMs: 15 }),
    "freeze window 12 ms, lock window 15 ms",
  );
});

Deno.test("--debug of a run that freezes nothing", { ignore: ignoreUnless(MOTO) }, async () => {
  const moto = await startMoto();
  try {
    const [volume] = await moto.createVolumes(1);
    const run = await runProgram(["--debug", volume], { env: baseEnv(moto.env) });
    assertEquals(run.code, 0, run.stderr);
    assertMatch(run.stderr, /released; nothing was frozen, nothing was locked/);
    assert(!/-ms\b/.test(run.stderr), run.stderr);
  } finally {
    await moto.stop();
  }
});
