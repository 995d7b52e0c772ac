/** The drill's packaging: its SSM document passes parameters as options, its unit runs a drill the parser accepts, its IAM policy is limited to the drill's volumes. */
import { assert, assertEquals } from "./support/assert.ts";
import { parseCommandLine } from "../src/cli/parse.ts";
import { DRILL_TAG, MARKER_TAG } from "../src/types/tags.ts";

const PACKAGING = new URL("../packaging/", import.meta.url).pathname;
// deno-lint-ignore no-explicit-any
const readJson = (name: string): any => JSON.parse(Deno.readTextFileSync(`${PACKAGING}${name}`));

async function runDrillScript(parameters: Record<string, string>): Promise<string[]> {
  const doc = readJson("ssm-document-drill.json");
  const dir = await Deno.makeTempDir({ prefix: "ecs-ssm-drill-" });
  try {
    const fake = `${dir}/fake-tool`;
    await Deno.writeTextFile(fake, `#!/bin/sh\nprintf '%s\\0' "$@" > "${dir}/argv"\n`);
    await Deno.chmod(fake, 0o755);
    const env: Record<string, string> = { PATH: "/usr/bin:/bin", SSM_BinaryPath: fake };
    for (const [name, p] of Object.entries(doc.parameters) as [string, { default: string }][]) {
      if (name !== "BinaryPath") env[`SSM_${name}`] = parameters[name] ?? p.default;
    }
    const script = doc.mainSteps[0].inputs.runCommand.join("\n");
    const out = await new Deno.Command("sh", { args: ["-c", script], env, clearEnv: true })
      .output();
    assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
    return (await Deno.readTextFile(`${dir}/argv`)).split("\0").slice(0, -1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("the drill's SSM document runs a drill the parser accepts, parameters as options", async () => {
  const argv = await runDrillScript({
    VolumeIds: "vol-0123456789abcdef0 vol-0123456789abcdef1",
    CheckCommand: "mysqlcheck --all-databases; echo $HOME",
  });
  const { options, volumeIds } = parseCommandLine(argv);
  assertEquals(options.restoreDrill, "latest");
  assertEquals(options.drillCheckCommand, "mysqlcheck --all-databases; echo $HOME");
  assertEquals(options.drillTimeout, 1800);
  assertEquals(volumeIds, ["vol-0123456789abcdef0", "vol-0123456789abcdef1"]);
  assert(!/\{\{/.test(readJson("ssm-document-drill.json").mainSteps[0].inputs.runCommand.join("")));
});

Deno.test("the drill's policy: volumes only from the tool's snapshots, only the drill's volumes touched", () => {
  const statements = readJson("iam-policy-drill.json").Statement;
  for (const s of statements) {
    const actions = [s.Action].flat();
    const volumeOnly = [s.Resource].flat().every((r: string) => r.includes(":volume/"));
    if (actions.some((a: string) => /^ec2:(DeleteVolume)$/.test(a))) {
      assertEquals(s.Condition, { Null: { [`aws:ResourceTag/${DRILL_TAG}`]: "false" } });
      assert(volumeOnly);
    }
    if (actions.includes("ec2:CreateVolume") && [s.Resource].flat()[0].includes(":snapshot/")) {
      assertEquals(s.Condition, { Null: { [`aws:ResourceTag/${MARKER_TAG}`]: "false" } });
    }
  }
});

Deno.test("the drill's systemd unit runs a drill the parser accepts", () => {
  const unit = Deno.readTextFileSync(`${PACKAGING}ec2-consistent-snapshot-drill.service`);
  const execStart = /^ExecStart=(.*)$/m.exec(unit)![1];
  const words = execStart.match(/"[^"]*"|\S+/g)!.map((w) => w.replace(/^"|"$/g, ""));
  const { options, volumeIds } = parseCommandLine(words.slice(1));
  assertEquals(options.restoreDrill, "latest");
  assertEquals(volumeIds.length, 2);
  const timer = Deno.readTextFileSync(`${PACKAGING}ec2-consistent-snapshot-drill.timer`);
  assert(/^OnCalendar=Sun /m.test(timer), "weekly");
});
