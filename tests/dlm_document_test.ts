/**
 * The SSM document for Data Lifecycle Manager (packaging/ssm-document-dlm.json): DLM's format
 * (schema 2.2, the parameters `executionId` and `command`), and its script body run in bash as
 * the SSM Agent runs it (parameters substituted, the process group killed once it returned)
 * against the real program on a real XFS mount: the exit codes DLM reads.
 */
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { programCommand, ROOT } from "./support/program.ts";
import { makeStateDir } from "./support/hold.ts";
import { isFrozen, withXfsMount, xfsRequirement } from "./support/xfs.ts";
import { ignoreUnless } from "./support/real.ts";

const XFS = await xfsRequirement();

interface SsmDocument {
  schemaVersion: string;
  parameters: Record<string, { type: string; default?: string; allowedValues?: string[] }>;
  mainSteps: { action: string; inputs: { runCommand: string[] } }[];
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
  for (const code of [201, 202, 203, 204, 205, 206]) assertMatch(body, new RegExp(`exit ${code}`));
});

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
      const late = await agent("post-script");
      assertEquals(late.code, 205, late.output);

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
    } finally {
      await state.remove();
      Deno.removeSync(dir, { recursive: true });
    }
  });
});
