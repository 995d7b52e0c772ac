/**
 * Every shipped file in packaging/ and .github/: valid for the program that reads it, the same
 * options everywhere, and IAM policies with exactly the EC2 actions the code calls.
 */
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import ini from "ini";
import { parse as parseYaml } from "yaml";
import { findOption, type Options } from "../src/types/options.ts";
import { parseCommandLine } from "../src/cli/parse.ts";
import { ignoreUnless, requireAvailable } from "./support/real.ts";
import { commandRequirement, runCommand } from "./support/tools.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const PACKAGING = `${ROOT}packaging`;
const UNIT = "ec2-consistent-snapshot.service";
const TIMER = "ec2-consistent-snapshot.timer";
const BINARY = "/usr/local/bin/ec2-consistent-snapshot";
/** The tag key by which the tool recognises its own snapshots (retention deletes only those). */
const MARKER_TAG = "ec2-consistent-snapshot:volume";

const read = (name: string) => Deno.readTextFileSync(`${PACKAGING}/${name}`);
// deno-lint-ignore no-explicit-any
const readJson = (name: string): any => JSON.parse(read(name));
const policyFiles = () =>
  [...Deno.readDirSync(PACKAGING)].map((e) => e.name).filter((n) => /^iam-policy-.*\.json$/.test(n))
    .sort();

/** Splits a command line into words exactly as the shell does. */
async function shellWords(commandLine: string): Promise<string[]> {
  const result = await runCommand("bash", ["-c", `printf '%s\\0' ${commandLine}`]);
  assertEquals(result.code, 0, result.stderr);
  return result.stdout.split("\0").slice(0, -1);
}

/** The options an invocation of the tool stands for, checked by the program's own parser. */
function optionsOf(argv: string[]): { options: Options; volumeIds: string[] } {
  assertEquals(argv[0], BINARY, `the tool is installed as ${BINARY}`);
  const { options, volumeIds } = parseCommandLine(argv.slice(1));
  return { options, volumeIds };
}

/** systemd unit files: sections of `Key=Value` lines (keys may repeat). */
function parseUnit(text: string): Map<string, [string, string][]> {
  const sections = new Map<string, [string, string][]>();
  let current: [string, string][] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const section = /^\[(.+)\]$/.exec(line);
    if (section) {
      current = [];
      sections.set(section[1], current);
      continue;
    }
    const at = line.indexOf("=");
    assert(at > 0, `not a Key=Value line: ${line}`);
    current.push([line.slice(0, at).trim(), line.slice(at + 1).trim()]);
  }
  return sections;
}

function unitValues(unit: Map<string, [string, string][]>, section: string, key: string) {
  return (unit.get(section) ?? []).filter(([k]) => k === key).map(([, v]) => v);
}

async function execStartOptions() {
  const [execStart] = unitValues(parseUnit(read(UNIT)), "Service", "ExecStart");
  return optionsOf(await shellWords(execStart));
}

Deno.test("every JSON file shipped parses", () => {
  for (const entry of Deno.readDirSync(PACKAGING)) {
    if (entry.name.endsWith(".json")) readJson(entry.name);
  }
});

Deno.test("IAM policies have the policy grammar's shape", () => {
  const files = policyFiles();
  assert(files.length >= 3, `policies: ${files}`);
  for (const file of files) {
    const policy = readJson(file);
    assertEquals(Object.keys(policy).sort(), ["Statement", "Version"], file);
    assertEquals(policy.Version, "2012-10-17", file);
    assert(Array.isArray(policy.Statement) && policy.Statement.length > 0, file);
    const sids = new Set<string>();
    for (const statement of policy.Statement) {
      const where = `${file} ${statement.Sid}`;
      assert(/^[A-Za-z0-9]+$/.test(statement.Sid) && !sids.has(statement.Sid), where);
      sids.add(statement.Sid);
      assert(["Allow", "Deny"].includes(statement.Effect), where);
      const actions = [statement.Action].flat();
      assert(actions.length > 0 && actions.every((a) => /^[a-z0-9-]+:[A-Za-z*]+$/.test(a)), where);
      const resources = [statement.Resource].flat();
      assert(
        resources.length > 0 &&
          resources.every((r) => r === "*" || /^arn:aws:[a-z0-9-]+:[^:]*:[^:]*:.+$/.test(r)),
        where,
      );
      const allowed = ["Sid", "Effect", "Action", "Resource", "Condition"];
      assert(Object.keys(statement).every((k) => allowed.includes(k)), where);
    }
  }
});

Deno.test("tags and deletions are limited to the tool's own snapshots", () => {
  for (const file of policyFiles()) {
    for (const statement of readJson(file).Statement) {
      const actions = [statement.Action].flat();
      if (actions.includes("ec2:CreateTags")) {
        // Only while creating a snapshot (or its copy): never re-tag an existing resource.
        const createAction = [statement.Condition?.StringEquals?.["ec2:CreateAction"]].flat();
        assert(
          createAction.length > 0 &&
            createAction.every((a) => /^((Create|Copy)Snapshots?|CreateVolume)$/.test(a)),
          file,
        );
      }
      if (actions.includes("ec2:DeleteSnapshot")) {
        assertEquals(statement.Condition, {
          Null: { [`aws:ResourceTag/${MARKER_TAG}`]: "false" },
        });
      }
      assert(!actions.some((a) => a.endsWith("*")), `${file}: no wildcard actions`);
    }
  }
  const snapshot = readJson("iam-policy-snapshot.json").Statement.flatMap((s: { Action: string }) =>
    [s.Action].flat()
  );
  assertEquals(snapshot.sort(), [
    "ec2:CreateSnapshot",
    "ec2:CreateSnapshots",
    "ec2:CreateTags",
    // Read-only: the lookup of a snapshot made by a call without an answer (run_lookup.ts).
    "ec2:DescribeSnapshots",
  ]);
});

/** The EC2 actions that src/ calls through @aws-sdk/client-ec2 commands, paginators, waiters. */
function ec2ActionsCalledBySource(): Set<string> {
  const actions = new Set<string>();
  const waiterActions: Record<string, string> = {
    Snapshot: "DescribeSnapshots",
    Volume: "DescribeVolumes",
    Instance: "DescribeInstances",
    Image: "DescribeImages",
  };
  const walk = (dir: string) => {
    for (const entry of Deno.readDirSync(dir)) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory) walk(path);
      if (!entry.isFile || !entry.name.endsWith(".ts")) continue;
      const text = Deno.readTextFileSync(path);
      // Static imports, and `const { ... } = await import(...)` (the SDK loads when used).
      const imports = [
        ...text.matchAll(
          /(?:import\s*(?:type\s*)?\{([^}]*)\}\s*from|const\s*\{([^}]*)\}\s*=\s*await\s+import\()\s*"[^"]*@aws-sdk\/client-ec2[^"]*"/g,
        ),
      ].flatMap((m) =>
        (m[1] ?? m[2]).split(",").map((name) => name.trim().split(/\s*(?:\s+as\s+|:)\s*/))
      );
      for (const [imported, local = imported] of imports) {
        if (!imported || !new RegExp(`\\b${local}\\s*\\(`).test(text)) continue;
        const command = /^(\w+)Command$/.exec(imported);
        const paginator = /^paginate(\w+)$/.exec(imported);
        const waiter = /^waitUntil([A-Z][a-z]+)/.exec(imported);
        if (command && new RegExp(`new\\s+${local}\\s*\\(`).test(text)) actions.add(command[1]);
        if (paginator) actions.add(paginator[1]);
        if (waiter) {
          assert(waiterActions[waiter[1]], `${path}: add the action of ${imported} to this test`);
          actions.add(waiterActions[waiter[1]]);
        }
      }
    }
  };
  walk(`${ROOT}src`);
  return new Set([...actions].map((a) => `ec2:${a}`));
}

const HAVE_EC2 = (() => {
  try {
    return Deno.statSync(`${ROOT}src/aws/ec2.ts`).isFile;
  } catch {
    return false;
  }
})();
if (!HAVE_EC2) {
  console.warn("SKIPPED packaging_test: IAM actions vs code: src/aws/ec2.ts does not exist yet");
}

/**
 * Actions the policies grant for options whose code has not landed yet. When the code starts
 * calling one, the test below fails until it is removed from here: the list only shrinks.
 */
const PENDING: Record<string, string> = {};

Deno.test({
  name: "the IAM policies grant exactly the EC2 actions the code calls",
  ignore: !HAVE_EC2,
  fn() {
    const called = ec2ActionsCalledBySource();
    const granted = new Set(
      policyFiles().flatMap((file) =>
        readJson(file).Statement.flatMap((s: { Action: string }) => [s.Action].flat())
      ).filter((a: string) => a.startsWith("ec2:") && a !== "ec2:CreateTags"),
    );
    const nowCalled = Object.keys(PENDING).filter((a) => called.has(a));
    assertEquals(nowCalled, [], "the code calls these now: remove them from PENDING");
    const notCalled = [...granted].filter((a) => !called.has(a) && !(a in PENDING));
    const notGranted = [...called].filter((a) => !granted.has(a));
    assertEquals(
      { notCalled, notGranted },
      { notCalled: [], notGranted: [] },
      "packaging/iam-policy-*.json must grant exactly the EC2 actions that src/ calls",
    );
    if (called.has("ec2:DeleteSnapshot")) {
      // The policy's delete condition names the marker tag; retention must select by the same
      // tag (src/ builds the name from the program's name, as MARKER_TAG in src/plan/plan.ts).
      const retention = Deno.readTextFileSync(`${ROOT}src/aws/retention.ts`);
      assert(
        /Name: `tag:\$\{MARKER_TAG\}`/.test(retention),
        `retention selects by the marker tag ${MARKER_TAG}`,
      );
    }
  },
});

Deno.test("the SSM document is a Command document that runs the tool", () => {
  const doc = readJson("ssm-document.json");
  assertEquals(doc.schemaVersion, "2.2");
  assert(typeof doc.description === "string" && doc.description.length <= 1024);
  assert(Array.isArray(doc.mainSteps) && doc.mainSteps.length === 1);
  const [step] = doc.mainSteps;
  assertEquals(step.action, "aws:runShellScript");
  assert(/^[A-Za-z0-9_.-]+$/.test(step.name));
  assert(Array.isArray(step.inputs.runCommand));
  assert(step.inputs.runCommand.every((line: unknown) => typeof line === "string"));
  assertEquals(step.inputs.timeoutSeconds, "{{ executionTimeout }}");
  const script = step.inputs.runCommand.join("\n");
  const used = new Set([...script.matchAll(/SSM_(\w+)/g)].map((m) => m[1]));
  for (
    const [name, parameter] of Object.entries(doc.parameters) as [string, Record<string, unknown>][]
  ) {
    assertEquals(parameter.type, "String", name);
    assert(typeof parameter.description === "string", name);
    const values = parameter.allowedValues as string[] | undefined;
    const pattern = parameter.allowedPattern as string | undefined;
    assert(values || pattern, `${name} is constrained`);
    const fits = (value: string) =>
      values ? values.includes(value) : new RegExp(pattern!).test(value);
    assert(fits(parameter.default as string), `${name}'s default fits`);
    if (name === "executionTimeout") continue;
    assertEquals(parameter.interpolationType, "ENV_VAR", `${name} is passed in the environment`);
    assert(used.has(name), `${name} is used by the script`);
    used.delete(name);
  }
  assertEquals([...used], [], "the script uses only declared parameters");
  assert(!/\{\{/.test(script), "no parameter is interpolated into the script's text");
});

async function runSsmScript(parameters: Record<string, string>) {
  const doc = readJson("ssm-document.json");
  const dir = await Deno.makeTempDir();
  try {
    const fake = `${dir}/fake-tool`;
    await Deno.writeTextFile(fake, `#!/bin/sh\nprintf '%s\\0' "$0" "$@" > "${dir}/argv"\n`);
    await Deno.chmod(fake, 0o755);
    const env: Record<string, string> = { PATH: "/usr/bin:/bin" };
    for (
      const [name, parameter] of Object.entries(doc.parameters) as [string, { default: string }][]
    ) {
      env[`SSM_${name}`] = parameters[name] ?? parameter.default;
    }
    env.SSM_BinaryPath = fake;
    const script = doc.mainSteps[0].inputs.runCommand.join("\n");
    const result = await runCommand("sh", ["-c", script], { env, clearEnv: true, cwd: dir });
    assertEquals(result.code, 0, result.stderr);
    const argv = (await Deno.readTextFile(`${dir}/argv`)).split("\0").slice(0, -1);
    return { argv: argv.slice(1), touched: [...Deno.readDirSync(dir)].map((e) => e.name).sort() };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("the SSM document's script passes its parameters as options, never as code", async () => {
  const defaults = await runSsmScript({});
  assertEquals(defaults.argv, []);

  const { argv, touched } = await runSsmScript({
    FreezeFilesystems: "/var/lib/mysql /srv/data",
    NoFreezeFilesystems: "/var/log",
    VolumeIds: "vol-0123456789abcdef0 vol-0fedcba9876543210",
    Mysql: "true",
    Description: "nightly * $(touch pwned) `touch pwned`",
    Tags: "Backup=daily;Team=db",
    Keep: "7",
    Wait: "600",
    Output: "json",
    DryRun: "true",
  });
  assertEquals(touched, ["argv", "fake-tool"], "nothing in a value was executed or globbed");
  const { options, volumeIds } = parseCommandLine(argv);
  assertEquals(options.freezeFilesystem, ["/var/lib/mysql", "/srv/data"]);
  assertEquals(options.noFreezeFilesystem, ["/var/log"]);
  assertEquals(volumeIds, ["vol-0123456789abcdef0", "vol-0fedcba9876543210"]);
  assertEquals(options.mysql, true);
  assertEquals(options.mysqlDefaultsFile, "/root/.my.cnf");
  assertEquals(options.description, ["nightly * $(touch pwned) `touch pwned`"]);
  assertEquals(options.tag, ["Backup=daily;Team=db"]);
  assertEquals(options.keep, 7);
  assertEquals(options.wait, 600);
  assertEquals(options.output, "json");
  assertEquals(options.noaction, true);
});

// Without systemd-analyze only the structure can be checked (the next test does that).
const ANALYZE = await commandRequirement("systemd-analyze", "systemd");

Deno.test("the systemd unit and timer pass systemd-analyze verify", {
  ignore: ignoreUnless(ANALYZE),
}, async () => {
  requireAvailable(ANALYZE);
  const analyze = ANALYZE.path!;
  const root = await Deno.makeTempDir();
  try {
    // A root with the system's units (for the targets we order against) and a stand-in binary.
    await Deno.mkdir(`${root}/usr/local/bin`, { recursive: true });
    await Deno.mkdir(`${root}/etc/systemd/system`, { recursive: true });
    await Deno.mkdir(`${root}/usr/lib/systemd`, { recursive: true });
    await Deno.writeTextFile(`${root}${BINARY}`, "#!/bin/sh\n");
    await Deno.chmod(`${root}${BINARY}`, 0o755);
    for (const system of ["/usr/lib/systemd/system", "/lib/systemd/system"]) {
      const copied = await runCommand("cp", ["-a", system, `${root}/usr/lib/systemd/`]);
      if (copied.code === 0) break;
    }
    const verify = async (...units: string[]) =>
      await runCommand(analyze, [
        "verify",
        "--man=no",
        `--root=${root}`,
        ...units.map((u) => `${root}/etc/systemd/system/${u}`),
      ]);
    for (const name of [UNIT, TIMER]) {
      await Deno.writeTextFile(`${root}/etc/systemd/system/${name}`, read(name));
    }
    const result = await verify(UNIT, TIMER);
    assertEquals(result.code, 0, result.stderr);
    assertEquals(result.stderr.trim(), "", "systemd-analyze verify is silent");

    // It does find faults: a misspelt directive is reported.
    await Deno.writeTextFile(
      `${root}/etc/systemd/system/broken.service`,
      read(UNIT).replace("KillMode=process", "KillMode=bogus"),
    );
    const broken = await verify("broken.service");
    assert(broken.stderr.includes("bogus"), broken.stderr);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("the unit's hardening still allows freezing and the watchdog", () => {
  const unit = parseUnit(read(UNIT));
  const one = (key: string) => {
    const values = unitValues(unit, "Service", key);
    assert(values.length <= 1, `${key} once`);
    return values[0];
  };
  assertEquals(one("Type"), "oneshot");
  assertEquals(one("KillMode"), "process", "the watchdog survives a kill of the main process");
  assertEquals(one("ProtectSystem"), "full", "not strict: the status file is written under /var");
  assertEquals(one("ProtectHome"), "read-only", "~/.my.cnf and ~/.awssecret stay readable");
  assertEquals(one("NoNewPrivileges"), "yes");
  assertEquals(one("PrivateTmp"), "yes");
  assert(one("CapabilityBoundingSet").split(/\s+/).includes("CAP_SYS_ADMIN"), "FIFREEZE");
  assertEquals(one("MemoryDenyWriteExecute"), undefined, "the JIT needs it off");
  assertEquals(one("SystemCallFilter"), undefined, "no SIGSYS while frozen");
  assertEquals(one("PrivateDevices"), undefined);
  assert(unitValues(unit, "Unit", "After").join(" ").includes("network-online.target"));
  assert(one("TimeoutStartSec"), "a bounded run");

  const timer = parseUnit(read(TIMER));
  assert(unitValues(timer, "Timer", "OnCalendar").length === 1);
  assertEquals(unitValues(timer, "Install", "WantedBy"), ["timers.target"]);
});

Deno.test("the unit, cron, cloud-init and the config file run the same options", async () => {
  const unit = await execStartOptions();
  assert(unit.options.freezeFilesystem.length > 0, "the example freezes something");

  // cron: the command after the five time fields and the user, output to syslog.
  const command = cronCommand();
  const start = "set -o pipefail; ";
  const pipe = " 2>&1 | logger -t ec2-consistent-snapshot || ";
  assert(command.startsWith(start) && command.includes(pipe), command);
  assert(!/%/.test(command), "cron turns % into newlines");
  const tool = command.slice(start.length, command.indexOf(pipe));
  assertEquals(optionsOf(await shellWords(tool)), unit);

  // cloud-init installs exactly the shipped unit and timer.
  const cloud = parseYaml(read("cloud-init.yaml"));
  const files = Object.fromEntries(
    cloud.write_files.map((f: { path: string; content: string }) => [f.path, f.content]),
  );
  assertEquals(files[`/etc/systemd/system/${UNIT}`], read(UNIT));
  assertEquals(files[`/etc/systemd/system/${TIMER}`], read(TIMER));

  // The configuration file: keys are long option names; repeated keys for repeatable options.
  const config = ini.parse(read("ec2-consistent-snapshot.conf.example"), {
    bracketedArray: false,
  }) as Record<string, string | boolean | string[]>;
  const argv = [BINARY];
  for (const [key, value] of Object.entries(config)) {
    const spec = findOption(key);
    assert(spec && spec.name === key && !spec.commandLineOnly, `config key ${key}`);
    for (const one of [value].flat()) {
      if (spec.kind === "flag") {
        if (one === true) argv.push(`--${key}`);
      } else argv.push(`--${key}`, String(one));
    }
  }
  assertEquals(optionsOf(argv), unit);
});

/** The cron line's command: after the five time fields and the user. */
function cronCommand(): string {
  const cronLines = read("cron.example").split("\n").filter((l) =>
    l.trim() !== "" && !l.startsWith("#") && !/^[A-Z_]+=/.test(l)
  );
  assertEquals(cronLines.length, 1);
  const fields = cronLines[0].split(/\s+/);
  assertEquals(fields[5], "root");
  return fields.slice(6).join(" ");
}

Deno.test("the cron line is quiet on success and loud on failure, in mail and journal", async () => {
  const settings = read("cron.example").split("\n").filter((l) => /^[A-Z_]+=/.test(l));
  assert(settings.includes("SHELL=/bin/bash"), "pipefail needs bash");
  assert(settings.some((l) => l.startsWith("MAILTO=")), "cron mails what the job prints");
  const dir = Deno.makeTempDirSync({ prefix: "ecs-cron-" });
  try {
    // The tool and logger replaced by stand-ins that record what they get.
    Deno.writeTextFileSync(
      `${dir}/logger`,
      `#!/bin/sh\necho "logger $*" >> "${dir}/journal"; cat >> "${dir}/journal"\n`,
      { mode: 0o755 },
    );
    Deno.writeTextFileSync(
      `${dir}/tool`,
      `#!/bin/sh\necho snap-0123; echo "a warning" >&2; exit "$TOOL_EXIT"\n`,
      { mode: 0o755 },
    );
    const line = cronCommand().replace(BINARY, `${dir}/tool`);
    const cron = async (exit: number) => {
      try {
        Deno.removeSync(`${dir}/journal`);
      } catch { /* first run */ }
      const out = await new Deno.Command("bash", {
        args: ["-c", line],
        env: { PATH: `${dir}:/usr/bin:/bin`, TOOL_EXIT: String(exit) },
        clearEnv: true,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const decode = (b: Uint8Array) => new TextDecoder().decode(b);
      return {
        mail: decode(out.stdout) + decode(out.stderr),
        journal: Deno.readTextFileSync(`${dir}/journal`),
      };
    };
    const good = await cron(0);
    assertEquals(good.mail, "", "nothing for cron to mail");
    assertMatch(good.journal, /snap-0123\na warning/);
    const bad = await cron(4);
    assertMatch(bad.mail, /failed with exit 4/);
    assertMatch(bad.journal, /snap-0123\na warning/);
    assertMatch(bad.journal, /logger -p user\.err -t ec2-consistent-snapshot failed with exit 4/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("cloud-init user data is valid and installs the binary the unit runs", async () => {
  const text = read("cloud-init.yaml");
  assert(text.startsWith("#cloud-config\n"), "cloud-init needs the #cloud-config header");
  const cloud = parseYaml(text);
  assertEquals(Object.keys(cloud).sort(), ["runcmd", "write_files"]);
  for (const file of cloud.write_files) {
    assertEquals(Object.keys(file).sort(), ["content", "owner", "path", "permissions"]);
    assert(/^0[0-7]{3}$/.test(file.permissions));
  }
  const script = cloud.runcmd.join("\n");
  const syntax = await runCommand("sh", ["-n", "-c", script]);
  assertEquals(syntax.code, 0, syntax.stderr);
  assert(script.includes(`install -m 0755 "$asset" ${BINARY}`));
  assert(script.includes("sha256sum -c"), "the download is checked against SHA256SUMS");
  assert(script.includes(`systemctl enable --now ${TIMER}`));
  assert(script.includes("-$(uname -m)-unknown-linux-gnu"), "the asset of the instance's arch");
});

Deno.test("the release workflow tests, builds both targets and attaches every asset", () => {
  const workflow = parseYaml(Deno.readTextFileSync(`${ROOT}.github/workflows/release.yml`));
  assertEquals(workflow.on.push.tags, ["v*"]);
  assertEquals(workflow.permissions.contents, "write");
  const steps = workflow.jobs.release.steps as { run?: string; uses?: string }[];
  const run = steps.map((s) => s.run ?? "").join("\n");
  assert(steps.some((s) => s.uses?.startsWith("actions/checkout@")));
  const order = ["scripts/test.sh", "scripts/build.sh", "gh release"].map((s) => run.indexOf(s));
  assert(order.every((i, n) => i >= 0 && (n === 0 || i > order[n - 1])), "test, build, publish");
  for (const asset of ["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"]) {
    assert(run.includes(`dist/ec2-consistent-snapshot-${asset}`), asset);
  }
  assert(run.includes("dist/ec2-consistent-snapshot.1") && run.includes("dist/SHA256SUMS"));
});
