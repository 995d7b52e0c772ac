/**
 * Hold mode's fault table through the real program (XFS on loop): a holder stopped or killed
 * while held, a file system thawed from outside, a full run directory, damaged state files. Each ends in its documented exit code
 * and one line, never exit 1 with a stack trace; nothing is left frozen or half-written.
 */
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { alive } from "./support/processes.ts";
import { baseEnv, runProgram } from "./support/program.ts";
import { ignoreUnless } from "./support/real.ts";
import {
  isFrozen,
  type TestMount,
  thawQuietly,
  TMPFS,
  withTmpfsMount,
  withXfsMount,
  xfsRequirement,
} from "./support/xfs.ts";
import { makeStateDir, release, runThenKillGroup, type StateDir } from "./support/hold.ts";
import { ExitCode } from "../src/util/errors.ts";

const XFS = await xfsRequirement();
const REAL = { sanitizeResources: false, sanitizeOps: false };

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Exactly one line, and not a stack trace. */
function oneLine(stderr: string): string {
  const lines = stderr.trim().split("\n");
  assertEquals(lines.length, 1, stderr);
  assert(!/^\s+at /m.test(stderr), stderr);
  return lines[0];
}

async function withHeld(
  seconds: number,
  fn: (
    mount: TestMount,
    state: StateDir,
    env: Record<string, string>,
    pid: number,
  ) => Promise<void>,
): Promise<void> {
  await withXfsMount(async (mount) => {
    const state = makeStateDir();
    const env = baseEnv(state.env);
    try {
      const held = await runThenKillGroup(
        ["--hold", String(seconds), "--freeze-filesystem", mount.mountPoint],
        env,
      );
      assertEquals(held.code, ExitCode.ok, held.stderr);
      assertEquals(await isFrozen(mount.mountPoint), true);
      await fn(mount, state, env, state.holderPid()!);
    } finally {
      const pid = state.holderPid();
      if (pid !== undefined) {
        try {
          Deno.kill(pid, "SIGCONT");
        } catch { /* gone */ }
      }
      await state.remove();
    }
  });
}

Deno.test({
  name:
    "a holder stopped (SIGSTOP) while held: --release says so at once (exit 17, one line); its watchdog ends it at the deadline",
  ignore: ignoreUnless(XFS),
  ...REAL,
  async fn() {
    await withHeld(5, async (mount, _state, env, pid) => {
      Deno.kill(pid, "SIGSTOP");
      const out = await release(env);
      assertEquals(out.code, ExitCode.holdEnded, out.stderr);
      assertMatch(oneLine(out.stderr), /holder \(pid \d+\) is stopped \(SIGSTOP\).*its watchdog/);
      for (let i = 0; i < 600 && alive(pid); i++) await sleep(100);
      assertEquals(alive(pid), false, "ended by its watchdog");
      assertEquals(await isFrozen(mount.mountPoint, 3_000), false, "thawed by the watchdog");
      const late = await release(env);
      assertEquals(late.code, ExitCode.holdEnded, late.stderr);
      oneLine(late.stderr);
    });
  },
});

Deno.test({
  name: "a holder killed (SIGKILL) while held: --release exits 17 in one line; thawed",
  ignore: ignoreUnless(XFS),
  ...REAL,
  async fn() {
    await withHeld(30, async (mount, _state, env, pid) => {
      Deno.kill(pid, "SIGKILL");
      for (let i = 0; i < 100 && alive(pid); i++) await sleep(50);
      const out = await release(env);
      assertEquals(out.code, ExitCode.holdEnded, out.stderr);
      assertMatch(oneLine(out.stderr), /ended without releasing/);
      assertEquals(await isFrozen(mount.mountPoint, 3_000), false);
    });
  },
});

Deno.test({
  name: "a full run directory: --hold exits 3 in one line, nothing frozen, no temporary file left",
  ignore: ignoreUnless(XFS, TMPFS),
  ...REAL,
  async fn() {
    await withTmpfsMount(async (tmpfs) => {
      await withXfsMount(async (mount) => {
        const run = `${tmpfs.mountPoint}/run`;
        Deno.mkdirSync(run, { mode: 0o700 });
        // Fill the file system (a small tmpfs) to the last byte.
        await new Deno.Command("dd", {
          args: ["if=/dev/zero", `of=${tmpfs.mountPoint}/fill`, "bs=64k"],
          stdout: "null",
          stderr: "null",
        }).output();
        const env = baseEnv({ ECS_RUN_DIR: run });
        const out = await runThenKillGroup(
          ["--hold", "30", "--freeze-filesystem", mount.mountPoint],
          env,
        );
        assertEquals(out.code, ExitCode.preflight, out.stderr);
        assertMatch(oneLine(out.stderr), /cannot write .*hold\.json: No space left on device/);
        assertEquals(await isFrozen(mount.mountPoint), false);
        const left = [...Deno.readDirSync(run)].map((e) => e.name).filter((n) => /tmp/.test(n));
        assertEquals(left, [], "no temporary file left behind");
      });
    });
  },
});

Deno.test({
  name: "a file system thawed from outside while held: --release exits 12 in one line",
  ignore: ignoreUnless(XFS),
  ...REAL,
  async fn() {
    await withHeld(30, async (mount, _state, env) => {
      await thawQuietly(mount.mountPoint); // an administrator's fsfreeze -u
      const out = await release(env);
      assertEquals(out.code, ExitCode.consistencyUnknown, out.stderr);
      assertMatch(oneLine(out.stderr), /hold was broken before its release: .* no longer frozen/);
    });
  },
});

Deno.test({
  name: "a full run directory: a normal run exits 3 in one line before anything is frozen",
  ignore: ignoreUnless(XFS, TMPFS),
  ...REAL,
  async fn() {
    await withTmpfsMount(async (tmpfs) => {
      await withXfsMount(async (mount) => {
        const run = `${tmpfs.mountPoint}/run`;
        Deno.mkdirSync(run, { mode: 0o700 });
        await new Deno.Command("dd", {
          args: ["if=/dev/zero", `of=${tmpfs.mountPoint}/fill`, "bs=64k"],
          stdout: "null",
          stderr: "null",
        }).output();
        const out = await runProgram([
          "--freeze-filesystem",
          mount.mountPoint,
          "--region",
          "us-east-1",
          "--ec2-endpoint",
          "http://127.0.0.1:9",
          "vol-0123456789abcdef0",
        ], {
          env: baseEnv({
            ECS_RUN_DIR: run,
            AWS_ACCESS_KEY_ID: "AKIDEXAMPLE",
            AWS_SECRET_ACCESS_KEY: "secret-example",
          }),
        });
        assertEquals(out.code, ExitCode.preflight, out.stderr);
        assertMatch(oneLine(out.stderr), /cannot write .*: No space left on device/);
        assertEquals(await isFrozen(mount.mountPoint), false);
        const left = [...Deno.readDirSync(run)].map((e) => e.name).filter((n) => /tmp/.test(n));
        assertEquals(left, [], "no temporary file left behind");
      });
    });
  },
});

Deno.test("damaged state files: --release ends in one line with its exit code, never a stack trace", async () => {
  const state = makeStateDir();
  try {
    Deno.mkdirSync(state.dir, { mode: 0o700 });
    const env = baseEnv(state.env);
    const bad = { by: "deadline", heldAt: 1e300, releasedAt: "tomorrow", pid: 1 };
    Deno.writeTextFileSync(`${state.dir}/released.json`, JSON.stringify(bad), { mode: 0o600 });
    const late = await release(env);
    assertEquals(late.code, ExitCode.notHeld, late.stderr);
    assertMatch(oneLine(late.stderr), /released\.json, is damaged and was ignored/);

    Deno.writeTextFileSync(`${state.dir}/hold.json`, '{"pid":"x"}', { mode: 0o600 });
    const held = await release(env);
    assertEquals(held.code, ExitCode.preflight, held.stderr);
    assertMatch(oneLine(held.stderr), /hold record .* is damaged/);
  } finally {
    Deno.removeSync(`${state.dir}/hold.json`);
    await state.remove();
  }
});
