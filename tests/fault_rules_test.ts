/**
 * Smaller rules learned from fault testing, through the real program (moto, real XFS): timer
 * values in range, tag lengths in characters, hooks on stderr and under a time limit, a signal
 * during the release never ends in 0, and the device frozen is the device the plan checked.
 */
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { MOTO, type MotoEndpoint, startMoto } from "./support/moto.ts";
import { ignoreUnless } from "./support/real.ts";
import { baseEnv, runProgram, spawnProgram } from "./support/program.ts";
import { isFrozen, TMPFS, withTmpfsMount, withXfsMount, xfsRequirement } from "./support/xfs.ts";
import { ExitCode } from "../src/util/errors.ts";

const XFS = await xfsRequirement();

/** Runs without any network: the plan refuses before anything. */
async function dry(args: string[]) {
  const env = baseEnv({ AWS_REGION: "us-east-1" });
  try {
    return await runProgram(["--noaction", ...args, "vol-0123456789abcdef0"], { env });
  } finally {
    Deno.removeSync(env.HOME, { recursive: true });
  }
}

async function withMoto(
  fn: (s: { moto: MotoEndpoint; volume: string; env: Record<string, string> }) => Promise<void>,
): Promise<void> {
  const moto = await startMoto();
  const env = baseEnv({ ...moto.env, ECS_RUN_DIR: Deno.makeTempDirSync({ prefix: "ecs-run-" }) });
  try {
    const [volume] = await moto.createVolumes(1);
    await fn({ moto, volume, env });
  } finally {
    await moto.stop();
    Deno.removeSync(env.HOME, { recursive: true });
    Deno.removeSync(env.ECS_RUN_DIR, { recursive: true });
  }
}

Deno.test("--snapshot-timeout 0, and any time beyond the timer's range, are usage errors", async () => {
  for (
    const [args, pattern] of [
      [["--snapshot-timeout", "0"], /--snapshot-timeout: must be more than 0/],
      [["--snapshot-timeout", "0.0001"], /--snapshot-timeout: must be more than 0/],
      [["--snapshot-timeout", "2147484"], /--snapshot-timeout: must be at most 2147483 seconds/],
      [["--hook-timeout", "0"], /--hook-timeout: must be more than 0/],
      [["--wait=99999999"], /--wait: must be at most 2147483 seconds/],
    ] as [string[], RegExp][]
  ) {
    const out = await dry(args);
    assertEquals(out.code, ExitCode.usage, `${args.join(" ")}: ${out.stderr}`);
    assertMatch(out.stderr, pattern);
  }
  const fine = await dry(["--snapshot-timeout", "2147483", "--hook-timeout", "5"]);
  assertEquals(fine.code, 0, fine.stderr);
});

Deno.test("tag keys and values are measured in characters, as EC2 counts them", async () => {
  const emoji = "\u{1F600}"; // one character, two UTF-16 units
  const ok = await dry(["--tag", `${emoji.repeat(128)}=${emoji.repeat(256)}`]);
  assertEquals(ok.code, 0, ok.stderr);
  const longValue = await dry(["--tag", `k=${emoji.repeat(257)}`]);
  assertEquals(longValue.code, ExitCode.usage);
  assertMatch(longValue.stderr, /value longer than 256 characters/);
  const longKey = await dry(["--tag", `${emoji.repeat(129)}=v`]);
  assertEquals(longKey.code, ExitCode.usage);
  assertMatch(longKey.stderr, /key longer than 128 characters/);
});

Deno.test("hooks write to stderr, never into the stdout that carries the ids and the JSON", {
  ignore: ignoreUnless(MOTO),
}, async () => {
  await withMoto(async ({ moto, volume, env }) => {
    const hooks = [
      "--pre-freeze-command",
      "echo PRE-OUT; echo PRE-ERR >&2",
      "--post-thaw-command",
      "echo POST-OUT",
    ];
    const text = await runProgram([...hooks, volume], { env });
    assertEquals(text.code, 0, text.stderr);
    assertMatch(text.stdout, /^snap-[0-9a-f]+\n$/);
    for (const line of ["PRE-OUT", "PRE-ERR", "POST-OUT"]) {
      assertMatch(text.stderr, new RegExp(line));
    }
    const json = await runProgram([...hooks, "--output", "json", volume], { env });
    assertEquals(json.code, 0, json.stderr);
    assertEquals(JSON.parse(json.stdout).snapshots.length, 1);
    assertEquals((await moto.snapshotsOf([volume])).length, 2);
  });
});

Deno.test("a hook that hangs is killed at --hook-timeout: exit 8, nothing created", {
  ignore: ignoreUnless(MOTO),
}, async () => {
  await withMoto(async ({ moto, volume, env }) => {
    const started = performance.now();
    const out = await runProgram(
      ["--hook-timeout", "1", "--pre-freeze-command", "sleep 300", volume],
      { env },
    );
    assertEquals(out.code, ExitCode.hook, out.stderr);
    assertMatch(out.stderr, /--pre-freeze-command did not finish within 1 s; killed/);
    // The hook would run 300 s: ending within a generous minute proves it was killed.
    assert(performance.now() - started < 60_000, "bounded");
    assertEquals(out.stdout, "");
    assertEquals((await moto.snapshotsOf([volume])).length, 0);
  });
});

Deno.test("a stop signal during the release (post-thaw command) ends as stopped, never 0", {
  ignore: ignoreUnless(MOTO),
}, async () => {
  await withMoto(async ({ moto, volume, env }) => {
    const dir = Deno.makeTempDirSync({ prefix: "ecs-hook-" });
    try {
      const marker = `${dir}/post-thaw-started`;
      const child = spawnProgram(
        ["--post-thaw-command", `touch '${marker}'; sleep 2`, volume],
        { env },
      );
      for (let i = 0; i < 400; i++) {
        try {
          Deno.statSync(marker);
          break;
        } catch {
          await new Promise((resolve) => setTimeout(resolve, 25));
        }
      }
      child.kill("SIGTERM");
      const out = await child.output();
      assertEquals(out.code, 128 + 15, new TextDecoder().decode(out.stderr));
      assertEquals((await moto.snapshotsOf([volume])).length, 1, "the snapshot was made");
      assertMatch(new TextDecoder().decode(out.stdout), /snap-[0-9a-f]+/, "and its id printed");
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  });
});

Deno.test(
  "the file system frozen is the one the plan checked: another mounted over it in between is refused",
  { ignore: ignoreUnless(XFS, TMPFS, MOTO) },
  async () => {
    await withMoto(async ({ moto, volume, env }) => {
      await withXfsMount(async (mount) => {
        await withTmpfsMount(async (tmpfs) => {
          // The pre-freeze command runs after the plan and before the freeze: it mounts over.
          const over = `mount --bind '${tmpfs.mountPoint}' '${mount.mountPoint}'`;
          try {
            const out = await runProgram(
              ["--freeze-filesystem", mount.mountPoint, "--pre-freeze-command", over, volume],
              { env },
            );
            assertEquals(out.code, ExitCode.freeze, out.stderr);
            assertMatch(
              out.stderr,
              new RegExp(`refusing to freeze ${mount.mountPoint}: it is now device \\S+, not \\S+`),
            );
            assertEquals((await moto.snapshotsOf([volume])).length, 0);
          } finally {
            await new Deno.Command("umount", { args: [mount.mountPoint] }).output();
          }
          assertEquals(await isFrozen(mount.mountPoint), false);
        });
      });
    });
  },
);
