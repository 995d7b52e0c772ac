/**
 * The program run by a real unprivileged user (made with useradd, run through setpriv, removed
 * afterwards): a run or hold that would freeze is refused in the plan (exit 3, one line), before
 * anything is locked; --release and --noaction --hold end in one line, never a stack trace.
 */
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { programCommand } from "./support/program.ts";
import { ignoreUnless, rootRequirement } from "./support/real.ts";
import { isFrozen, TMPFS, withTmpfsMount } from "./support/xfs.ts";
import { ExitCode } from "../src/util/errors.ts";
import { canFreeze } from "../src/host/proc.ts";
import { checkCanFreeze } from "../src/plan/machine.ts";

const ROOT = rootRequirement("useradd and setpriv");

interface User {
  name: string;
  uid: number;
  /** Its HOME and DENO_DIR (owned by it), removed with it. */
  home: string;
}

async function command(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return text;
}

/** Makes a user without a home in /etc/passwd's sense, runs `fn`, removes the user. */
async function withUser(fn: (user: User) => Promise<void>): Promise<void> {
  const name = `ecs-u${Deno.pid}`;
  await command("useradd", ["-M", "-s", "/usr/sbin/nologin", name]);
  const home = Deno.makeTempDirSync({ prefix: "ecs-unpriv-" });
  try {
    const uid = Number((await command("id", ["-u", name])).trim());
    Deno.chmodSync(home, 0o755);
    Deno.chownSync(home, uid, null);
    await fn({ name, uid, home });
  } finally {
    await command("userdel", [name]).catch(() => {});
    Deno.removeSync(home, { recursive: true });
  }
}

/** Runs the program (the bundle, under a deno anyone can run) as `user`. */
async function runAs(user: User, args: string[], env: Record<string, string> = {}) {
  const { cmd, args: full } = programCommand(args);
  const out = await new Deno.Command("setpriv", {
    args: [
      "--reuid",
      String(user.uid),
      "--regid",
      String(user.uid),
      "--clear-groups",
      cmd,
      ...full,
    ],
    env: {
      PATH: "/usr/local/bin:/usr/bin:/bin",
      HOME: user.home,
      DENO_DIR: `${user.home}/deno`,
      DENO_NO_UPDATE_CHECK: "1",
      AWS_EC2_METADATA_DISABLED: "true",
      ...env,
    },
    clearEnv: true,
    cwd: user.home,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

/** Exactly one line, and not a stack trace. */
function oneLine(stderr: string): string {
  const lines = stderr.trim().split("\n");
  assertEquals(lines.length, 1, stderr);
  assert(!/^\s+at /m.test(stderr), stderr);
  return lines[0];
}

Deno.test("canFreeze reads CAP_SYS_ADMIN from CapEff; checkCanFreeze refuses only a freeze", () => {
  assertEquals(canFreeze("Name:\tx\nCapEff:\t000001ffffffffff\n"), true);
  assertEquals(canFreeze("Name:\tx\nCapEff:\t0000000000000000\n"), false);
  assertEquals(canFreeze("CapEff:\t0000000000200000\n"), true, "bit 21 alone");
  checkCanFreeze([], () => false); // nothing to freeze: nothing to refuse
  let refused: unknown;
  try {
    checkCanFreeze(["/data"], () => false);
  } catch (error) {
    refused = error;
  }
  assertEquals((refused as { exitCode?: number }).exitCode, ExitCode.preflight);
  assertMatch(String(refused), /freezing needs root \(CAP_SYS_ADMIN\).*\/data/);
});

Deno.test({
  name: "not root: a run, --hold and --noaction --hold that would freeze are refused in the plan",
  ignore: ignoreUnless(ROOT, TMPFS),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withTmpfsMount(async (mount) => {
      // A mount point the user can reach (the test's temporary parent is root's, 0700).
      Deno.chmodSync(mount.mountPoint.slice(0, mount.mountPoint.lastIndexOf("/")), 0o755);
      await withUser(async (user) => {
        const run = `${user.home}/run`; // the user's own: nothing of root's is in the way
        const freeze = ["--freeze-filesystem", mount.mountPoint];
        for (
          const args of [
            [...freeze, "--region", "us-east-1", "vol-0123456789abcdef0"],
            ["--hold", "30", ...freeze],
            ["--noaction", "--hold", ...freeze],
          ]
        ) {
          const out = await runAs(user, args, { ECS_RUN_DIR: run });
          assertEquals(out.code, ExitCode.preflight, `${args.join(" ")}: ${out.stderr}`);
          assertMatch(oneLine(out.stderr), /freezing needs root \(CAP_SYS_ADMIN\)/);
          assertEquals(await isFrozen(mount.mountPoint), false);
        }
        let left: string[] = [];
        try {
          left = [...Deno.readDirSync(run)].map((e) => e.name);
        } catch { /* never made: better still */ }
        assertEquals(left, [], "no lock, record or watchdog was made");
      });
    });
  },
});

Deno.test({
  name:
    "not root: --release and --noaction --hold where the state is root's end in one line, exit 3",
  ignore: ignoreUnless(ROOT),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const parent = Deno.makeTempDirSync({ prefix: "ecs-unpriv-state-" });
    try {
      Deno.chmodSync(parent, 0o755);
      const run = `${parent}/run`;
      Deno.mkdirSync(run, { mode: 0o700 }); // root's, as /run/ec2-consistent-snapshot is
      Deno.writeTextFileSync(`${run}/released.json`, "{}\n", { mode: 0o600 });
      await withUser(async (user) => {
        const release = await runAs(user, ["--release"], { ECS_RUN_DIR: run });
        assertEquals(release.code, ExitCode.preflight, release.stderr);
        assertMatch(oneLine(release.stderr), /permission denied .*run it as root/);

        const dry = await runAs(user, ["--noaction", "--hold", "--mysql"], { ECS_RUN_DIR: run });
        assertEquals(dry.code, ExitCode.preflight, dry.stderr);
        assertMatch(oneLine(dry.stderr), /permission denied .*run it as root/);
      });
    } finally {
      Deno.removeSync(parent, { recursive: true });
    }
  },
});
