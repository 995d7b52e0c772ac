/**
 * The SSM document for Data Lifecycle Manager (packaging/ssm-document-dlm.json): DLM's format
 * (schema 2.2, the parameters `executionId` and `command`, a bounded step), the exit-code table
 * it and the README share, and its script body run in bash as the SSM Agent runs it (parameters
 * substituted, the process group killed once it returned) against the real program on a real XFS
 * mount, for each command and fault: the exit codes DLM reads.
 */
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { programCommand, ROOT } from "./support/program.ts";
import { makeStateDir } from "./support/hold.ts";
import { isFrozen, withXfsMount, xfsRequirement } from "./support/xfs.ts";
import { ignoreUnless, requireAvailable, type Requirement } from "./support/real.ts";
import { ExitCode } from "../src/util/errors.ts";
import { acquireFreezeLocks } from "../src/host/freeze_lock.ts";

const XFS = await xfsRequirement();

interface SsmDocument {
  schemaVersion: string;
  parameters: Record<string, { type: string; default?: string; allowedValues?: string[] }>;
  mainSteps: { action: string; inputs: { runCommand: string[]; timeoutSeconds?: number } }[];
}

const DOCUMENT: SsmDocument = JSON.parse(
  Deno.readTextFileSync(`${ROOT}packaging/ssm-document-dlm.json`),
);

Deno.test("the DLM document has DLM's required format", () => {
  assertEquals(DOCUMENT.schemaVersion, "2.2");
  assertEquals(Object.keys(DOCUMENT.parameters).sort(), ["command", "executionId"]);
  assertEquals(DOCUMENT.parameters.command.allowedValues, ["pre-script", "post-script", "dry-run"]);
  assertEquals(DOCUMENT.parameters.command.type, "String");
  assertEquals(DOCUMENT.parameters.executionId.type, "String");
  assertEquals(DOCUMENT.mainSteps.length, 1);
  assertEquals(DOCUMENT.mainSteps[0].action, "aws:runShellScript");
  const body = DOCUMENT.mainSteps[0].inputs.runCommand.join("\n");
  const placeholders = [...body.matchAll(/\{\{\s*(\w+)\s*\}\}/g)].map((m) => m[1]);
  assertEquals([...new Set(placeholders)].sort(), ["command", "executionId"]);
  // The agent ends a step after timeoutSeconds (default an hour): above DLM's largest
  // ExecutionTimeout (120 s), so that DLM's own timeout comes first.
  const timeout = DOCUMENT.mainSteps[0].inputs.timeoutSeconds;
  assert(timeout !== undefined && timeout > 120 && timeout <= 300, `timeoutSeconds ${timeout}`);
});

const CFN_LINT = `${ROOT}.tools/venv/bin/cfn-lint`;
const CFN_LINT_FOUND: Requirement = {
  available: (() => {
    try {
      return Deno.statSync(CFN_LINT).isFile;
    } catch {
      return false;
    }
  })(),
  reason: "cfn-lint not found in .tools/venv; run scripts/setup.sh",
};

Deno.test({
  name: "the CloudFormation template passes cfn-lint and ships the document as it is",
  ignore: ignoreUnless(CFN_LINT_FOUND),
}, async () => {
  requireAvailable(CFN_LINT_FOUND);
  const path = `${ROOT}packaging/dlm-stack.json`;
  const out = await new Deno.Command(CFN_LINT, { args: [path], stdout: "piped", stderr: "piped" })
    .output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assertEquals(out.code, 0, text);
  const template = JSON.parse(Deno.readTextFileSync(path));
  const resources = template.Resources;
  assertEquals(resources.Document.Properties.Content, DOCUMENT, "the same document as shipped");
  assertEquals(resources.Document.Properties.Tags, [{ Key: "DLMScriptsAccess", Value: "true" }]);
  const [schedule] = resources.Policy.Properties.PolicyDetails.Schedules;
  const [script] = schedule.CreateRule.Scripts;
  assertEquals(script.ExecutionHandler, { Ref: "Document" });
  assertEquals(script.Stages, ["PRE", "POST"]);
  assertEquals(script.ExecuteOperationOnScriptFailure, false);
  // The document gives up holding after 8 s by default: DLM's timeout must leave it room.
  assert(template.Parameters.ExecutionTimeout.MinValue >= 10);
  const policies = JSON.stringify(resources.DlmRole.Properties.ManagedPolicyArns);
  assertMatch(policies, /AWSDataLifecycleManagerSSMFullAccess/);
});

/** The mapping the script makes: `pre_code` and `post_code`, run in bash. */
async function mapped(fn: "pre_code" | "post_code", code: number): Promise<number> {
  const body = DOCUMENT.mainSteps[0].inputs.runCommand;
  const definition = body.find((line) => line.startsWith(`${fn}() `))!;
  const out = await new Deno.Command("bash", { args: ["-c", `${definition}\n${fn} ${code}`] })
    .output();
  return Number(new TextDecoder().decode(out.stdout).trim());
}

Deno.test("the document maps every exit code to DLM's, as the README's table says", async () => {
  const readme = Deno.readTextFileSync(`${ROOT}README.md`);
  const rows = [...readme.matchAll(/^\| (\d+)(?: \(\w+\))? +\| (\d+) +\| (\d+) +\|/gm)];
  const codes = Object.values(ExitCode);
  assertEquals(
    rows.map((r) => Number(r[1])).sort((a, b) => a - b),
    [...codes].sort((a, b) => a - b),
  );
  for (const [, ours, pre, post] of rows) {
    assertEquals(await mapped("pre_code", Number(ours)), Number(pre), `pre-script, exit ${ours}`);
    assertEquals(
      await mapped("post_code", Number(ours)),
      Number(post),
      `post-script, exit ${ours}`,
    );
  }
  // As AWS defines them: "application not ready" (206) at any stage; 204 only for a hold in place.
  assertEquals(await mapped("pre_code", ExitCode.database), 206);
  assertEquals(await mapped("pre_code", ExitCode.busy), 206);
  assertEquals(await mapped("pre_code", ExitCode.holdInPlace), 204);
  assertEquals(await mapped("post_code", ExitCode.holdEnded), 203);
  assertEquals(await mapped("post_code", ExitCode.notHeld), 205);
});

/** MAJ:MIN of the file system mounted at `mountPoint`, from mountinfo. */
function majorMinor(mountPoint: string): string {
  const line = Deno.readTextFileSync("/proc/self/mountinfo").split("\n")
    .find((l) => l.split(" ")[4] === mountPoint)!;
  return line.split(" ")[2];
}

/** The script as the agent runs it: the parameters substituted into the text. */
function scriptFor(command: string, executionId: string): string {
  return DOCUMENT.mainSteps[0].inputs.runCommand.join("\n")
    .replaceAll(/\{\{\s*command\s*\}\}/g, command)
    .replaceAll(/\{\{\s*executionId\s*\}\}/g, executionId) + "\n";
}

Deno.test({
  name: "the DLM document's script, run in bash against the real program",
  ignore: ignoreUnless(XFS),
}, async () => {
  await withXfsMount(async (mount) => {
    const state = makeStateDir();
    const dir = Deno.makeTempDirSync({ prefix: "ecs-dlm-" });
    try {
      // The program as `ec2-consistent-snapshot` on PATH, as it is installed.
      const { cmd, args } = programCommand([]);
      const quoted = [cmd, ...args].map((w) => `'${w}'`).join(" ");
      Deno.mkdirSync(`${dir}/bin`);
      Deno.writeTextFileSync(
        `${dir}/bin/ec2-consistent-snapshot`,
        `#!/bin/sh\nexec ${quoted} "$@"\n`,
        { mode: 0o755 },
      );
      const config = `${dir}/ec2-consistent-snapshot.conf`;
      Deno.writeTextFileSync(
        config,
        `freeze-filesystem = ${mount.mountPoint}\n# shared with the cron job: ignored by --hold\n` +
          `tag = "Backup=daily"\n`,
      );
      const env = {
        PATH: `${dir}/bin:${Deno.env.get("PATH") ?? "/usr/bin:/bin"}`,
        HOME: dir,
        DENO_DIR: Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME")}/.cache/deno`,
        ECS_CONFIG: config,
        ECS_RUN_DIR: state.dir,
      };
      const id = "0a1b2c3d-1234-4abc-9def-0123456789ab";
      const agent = async (command: string, extra: Record<string, string> = {}) => {
        const script = `${dir}/_script.sh`;
        Deno.writeTextFileSync(script, scriptFor(command, id), { mode: 0o700 });
        const child = new Deno.Command("bash", {
          args: [script],
          env: { ...env, ...extra },
          clearEnv: true,
          cwd: dir,
          detached: true,
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
        }).spawn();
        const out = await child.output();
        try {
          Deno.kill(-child.pid, "SIGKILL"); // the agent ends the whole group
        } catch { /* nothing left in it */ }
        const decode = (b: Uint8Array) => new TextDecoder().decode(b);
        return { code: out.code, output: decode(out.stdout) + decode(out.stderr) };
      };

      const dry = await agent("dry-run");
      assertEquals(dry.code, 0, dry.output);
      assertMatch(dry.output, /would freeze .* \(xfs/);
      assertMatch(dry.output, new RegExp(`executionId ${id}`));
      assertEquals(await isFrozen(mount.mountPoint), false, "the dry run froze nothing");

      const pre = await agent("pre-script");
      assertEquals(pre.code, 0, pre.output);
      assertEquals(await isFrozen(mount.mountPoint), true, "held after the pre script");
      const again = await agent("pre-script");
      assertEquals(again.code, 204, again.output);

      const post = await agent("post-script");
      assertEquals(post.code, 0, post.output);
      assertMatch(post.output, /freeze window \d+ ms/);
      assertEquals(await isFrozen(mount.mountPoint), false, "released by the post script");
      const twice = await agent("post-script");
      assertEquals(twice.code, 205, twice.output);

      const short = await agent("pre-script", { ECS_HOLD_SECONDS: "5" });
      assertEquals(short.code, 0, short.output);
      // The deadline (5 s) releases; bounded generously, the release is what counts.
      for (let i = 0; i < 600 && await isFrozen(mount.mountPoint); i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const expired = await agent("post-script");
      assertEquals(expired.code, 203, expired.output);
      assertMatch(expired.output, /released by the deadline/);

      // The holder killed while held: its watchdog thaws; the post script says the hold ended early.
      const killed = await agent("pre-script");
      assertEquals(killed.code, 0, killed.output);
      const { pid } = JSON.parse(Deno.readTextFileSync(`${state.dir}/hold.json`));
      Deno.kill(pid, "SIGKILL");
      for (let i = 0; i < 100 && await isFrozen(mount.mountPoint); i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assertEquals(await isFrozen(mount.mountPoint), false, "thawed by the watchdog");
      const ended = await agent("post-script");
      assertEquals(ended.code, 203, ended.output);
      assertMatch(ended.output, /ended without releasing/);

      const bad = await agent("pre-script", { ECS_CONFIG: `${dir}/missing.conf` });
      assertEquals(bad.code, 201, bad.output);
      assert(!(await isFrozen(mount.mountPoint)));

      // A run of the tool freezes the file system: not a hold in place (204), the application
      // is not ready (206).
      const run = await acquireFreezeLocks(
        [{ mountPoint: mount.mountPoint, device: majorMinor(mount.mountPoint) }],
        { runDir: state.dir, purpose: "run" },
      );
      try {
        const busy = await agent("pre-script");
        assertEquals(busy.code, 206, busy.output);
        assertMatch(busy.output, /tool exit 11/);
      } finally {
        await run.release();
      }
      assert(!(await isFrozen(mount.mountPoint)));

      // A database that cannot be reached: 206 too.
      const noDatabase = `${dir}/no-database.conf`;
      Deno.writeTextFileSync(
        noDatabase,
        `freeze-filesystem = ${mount.mountPoint}\nmysql = true\nmysql-host = 127.0.0.1\n` +
          `mysql-port = 9\nmysql-username = nobody\nlock-tries = 1\n`,
      );
      const unreachable = await agent("pre-script", { ECS_CONFIG: noDatabase });
      assertEquals(unreachable.code, 206, unreachable.output);
      assertMatch(unreachable.output, /tool exit 6/);
      assert(!(await isFrozen(mount.mountPoint)));

      // Not everything held within ECS_HOLD_WITHIN (here a slow pre-freeze command): the pre
      // script gives up by itself, everything released, before DLM's ExecutionTimeout.
      const slow = `${dir}/slow.conf`;
      Deno.writeTextFileSync(
        slow,
        `freeze-filesystem = ${mount.mountPoint}\npre-freeze-command = sleep 2\n`,
      );
      const late = await agent("pre-script", { ECS_CONFIG: slow, ECS_HOLD_WITHIN: "1" });
      assertEquals(late.code, 206, late.output);
      assertMatch(late.output, /--hold-within 1: not everything was held in time/);
      assertEquals(await isFrozen(mount.mountPoint), false, "nothing left frozen");
      assertEquals(state.holderPid(), undefined, "no holder left");
      const after = await agent("post-script");
      assertEquals(after.code, 205, after.output);
    } finally {
      await state.remove();
      Deno.removeSync(dir, { recursive: true });
    }
  });
});
