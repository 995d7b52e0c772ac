/**
 * Where credentials come from, proved by what reaches the EC2 endpoint: the access key id each
 * request was signed with, seen by a proxy in front of moto.
 */
import { assertEquals, assertMatch } from "./support/assert.ts";
import { startImdsServer } from "./support/imds_server.ts";
import { MOTO, type MotoEndpoint, startMoto } from "./support/moto.ts";
import { ignoreUnless } from "./support/real.ts";
import { baseEnv, runProgram } from "./support/program.ts";
import { type Proxy, startProxy } from "./support/proxy.ts";

async function withEndpoint(
  fn: (s: { moto: MotoEndpoint; proxy: Proxy; volume: string; dir: string }) => Promise<void>,
): Promise<void> {
  const moto = await startMoto();
  const proxy = startProxy(moto.url);
  const dir = Deno.makeTempDirSync({ prefix: "ecs-creds-" });
  try {
    const [volume] = await moto.createVolumes(1);
    await fn({ moto, proxy, volume, dir });
  } finally {
    Deno.removeSync(dir, { recursive: true });
    await proxy.stop();
    await moto.stop();
  }
}

function keysUsed(proxy: Proxy): string[] {
  return [...new Set(proxy.seen.map((r) => r.accessKeyId ?? "unsigned"))];
}

/** An environment with no credentials of its own, talking to the proxy. */
function env(proxy: Proxy, extra: Record<string, string> = {}) {
  return baseEnv({ AWS_REGION: "us-east-1", AWS_ENDPOINT_URL_EC2: proxy.url, ...extra });
}

Deno.test("each credential source signs the requests with its own key", {
  ignore: ignoreUnless(MOTO),
}, async (t) => {
  await withEndpoint(async ({ proxy, volume, dir }) => {
    const write = (name: string, text: string) => {
      Deno.writeTextFileSync(`${dir}/${name}`, text, { mode: 0o600 });
      return `${dir}/${name}`;
    };
    const cases: [string, string[], Record<string, string>, string][] = [
      [
        "key options",
        ["--aws-access-key-id", "AKIAOPTION", "--aws-secret-access-key", "secret-option"],
        {},
        "AKIAOPTION",
      ],
      [
        "key options beat the environment",
        ["--aws-access-key-id", "AKIAOPTION", "--aws-secret-access-key", "secret-option"],
        { AWS_ACCESS_KEY_ID: "AKIAENV", AWS_SECRET_ACCESS_KEY: "secret-env" },
        "AKIAOPTION",
      ],
      [
        "key files",
        [
          "--aws-access-key-id-file",
          write("id", "AKIAIDFILE\n"),
          "--aws-secret-access-key-file",
          write("secret", "secret-file\n"),
        ],
        {},
        "AKIAIDFILE",
      ],
      [
        "legacy credentials file",
        ["--aws-credentials-file", write("awssecret", "AKIALEGACY\nsecret-legacy\n")],
        {},
        "AKIALEGACY",
      ],
      ["$AWS_CREDENTIALS", [], {
        AWS_CREDENTIALS: write("envfile", "AKIAENVFILE\nsecret-envfile\n"),
      }, "AKIAENVFILE"],
      [
        "the environment",
        [],
        { AWS_ACCESS_KEY_ID: "AKIAENV", AWS_SECRET_ACCESS_KEY: "secret-env" },
        "AKIAENV",
      ],
      ["--profile", ["--profile", "backup"], {
        AWS_SHARED_CREDENTIALS_FILE: write(
          "credentials",
          "[backup]\naws_access_key_id = AKIAPROFILE\naws_secret_access_key = secret-profile\n",
        ),
        AWS_CONFIG_FILE: write("config", ""),
      }, "AKIAPROFILE"],
      ["$AWS_PROFILE", [], {
        AWS_PROFILE: "backup",
        AWS_SHARED_CREDENTIALS_FILE: write(
          "credentials2",
          "[backup]\naws_access_key_id = AKIAPROFILE2\naws_secret_access_key = secret-profile\n",
        ),
        AWS_CONFIG_FILE: write("config2", ""),
      }, "AKIAPROFILE2"],
    ];
    for (const [name, args, extra, expected] of cases) {
      await t.step(name, async () => {
        proxy.seen.length = 0;
        const result = await runProgram(["-d", ...args, volume], { env: env(proxy, extra) });
        assertEquals(result.code, 0, result.stderr);
        assertEquals(keysUsed(proxy), [expected]);
        assertMatch(result.stderr, /credentials from /);
        assertEquals(
          /secret-(option|env|file|legacy|envfile|profile)\b/.test(result.stderr),
          false,
          "no secret in the debug log",
        );
      });
    }
  });
});

Deno.test("--use-iam-role takes the instance role's credentials from IMDSv2", {
  ignore: ignoreUnless(MOTO),
}, async () => {
  await withEndpoint(async ({ proxy, volume }) => {
    const imds = startImdsServer({
      region: "us-east-1",
      role: {
        name: "backup-role",
        accessKeyId: "ASIAROLE",
        secretAccessKey: "secret-role",
        token: "token-role",
      },
    });
    try {
      const result = await runProgram(["-d", "--use-iam-role", volume], {
        env: env(proxy, {
          AWS_ACCESS_KEY_ID: "AKIAENV",
          AWS_SECRET_ACCESS_KEY: "secret-env",
          AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.url,
          AWS_EC2_METADATA_DISABLED: "false",
        }),
      });
      assertEquals(result.code, 0, result.stderr);
      assertEquals(keysUsed(proxy), ["ASIAROLE"]);
      assertMatch(result.stderr, /credentials from the instance's IAM role/);
    } finally {
      await imds.stop();
    }
  });
});

Deno.test("the region comes from the instance metadata when nothing else names it", {
  ignore: ignoreUnless(MOTO),
}, async () => {
  await withEndpoint(async ({ proxy, volume }) => {
    const imds = startImdsServer({ region: "us-east-1" });
    try {
      const result = await runProgram(["-d", volume], {
        env: baseEnv({
          AWS_ACCESS_KEY_ID: "AKIAENV",
          AWS_SECRET_ACCESS_KEY: "secret-env",
          AWS_ENDPOINT_URL_EC2: proxy.url,
          AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.url,
          AWS_EC2_METADATA_DISABLED: "false",
        }),
      });
      assertEquals(result.code, 0, result.stderr);
      assertMatch(result.stderr, /region us-east-1 from the instance metadata/);
      assertEquals(imds.requests.filter((r) => r.status === 401).length, 0);
    } finally {
      await imds.stop();
    }
  });
});

Deno.test("an AWS shared credentials file (INI) given as a legacy key file is refused by line, never shown", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ecs-creds-ini-" });
  const secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYINISECRET";
  try {
    const ini = `${dir}/credentials`;
    Deno.writeTextFileSync(
      ini,
      `\n[default]\naws_access_key_id = AKIAINIFILE\naws_secret_access_key = ${secret}\n`,
      { mode: 0o600 },
    );
    const cases: [string[], Record<string, string>, string][] = [
      [["--aws-credentials-file", ini], {}, "--aws-credentials-file"],
      [[], { AWS_CREDENTIALS: ini }, "\\$AWS_CREDENTIALS"],
      [
        ["--aws-access-key-id-file", ini, "--aws-secret-access-key-file", ini],
        {},
        "--aws-access-key-id-file",
      ],
    ];
    for (const [args, extra, option] of cases) {
      const env = baseEnv({ AWS_REGION: "us-east-1", ...extra });
      const result = await runProgram([...args, "vol-00000001"], { env });
      Deno.removeSync(env.HOME, { recursive: true });
      assertEquals(result.code, 2, result.stderr);
      assertEquals(result.stdout, "");
      assertMatch(
        result.stderr,
        new RegExp(
          `${option} ${ini}: line 2 is INI .*use --profile NAME instead, with AWS_SHARED_CREDENTIALS_FILE=${ini}`,
        ),
      );
      assertEquals(result.stderr.includes(secret), false);
      assertEquals(result.stderr.includes("AKIAINIFILE"), false);
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
