/** The local demo (scripts/demo.sh) as a person runs it: it reports a real snapshot and its windows, and leaves nothing behind, also after Ctrl-C. */
import { DescribeSnapshotsCommand } from "@aws-sdk/client-ec2";
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { MOTO, startMoto, TEST_CREDENTIALS } from "./support/moto.ts";
import { ROOT } from "./support/program.ts";
import { ignoreUnless, isRoot, requireAvailable, rootRequirement } from "./support/real.ts";
import { RUN_FLAGS } from "../src/host/permissions.ts";

/** Ctrl-C is tested on the whole demo: the loop mount, the freeze and MariaDB. */
const DEMO_AS_ROOT = rootRequirement("the whole demo (loop mount, freeze, MariaDB)");

const decoder = new TextDecoder();

/** What could outlive the demo: processes of the kinds it starts, mounts and loop devices. */
async function systemState(): Promise<Set<string>> {
  const ps = await new Deno.Command("ps", { args: ["-eo", "pid=,args="], stdout: "piped" })
    .output();
  const processes = decoder.decode(ps.stdout).split("\n")
    .filter((line) => /moto_server|mariadbd|__watchdog/.test(line))
    .map((line) => `process ${line.trim()}`);
  const mounts = Deno.readTextFileSync("/proc/self/mountinfo").split("\n")
    .filter(Boolean).map((line) => `mount ${line}`);
  const losetup = await new Deno.Command("losetup", { args: ["-a"], stdout: "piped" }).output()
    .catch(() => undefined);
  const loops = decoder.decode(losetup?.stdout ?? new Uint8Array()).split("\n")
    .filter(Boolean).map((line) => `loop ${line}`);
  return new Set([...processes, ...mounts, ...loops]);
}

/** The demo's own port and directories, as it printed them. */
function demoMarks(output: string): string[] {
  const marks = [...output.matchAll(/\/[^\s'"]*\/ecs-(?:demo|xfs|mariadb-run)-[0-9a-f]+/g)]
    .map((m) => m[0]);
  const moto = output.match(/moto, a local EC2 API, at http:\/\/127\.0\.0\.1:(\d+)/);
  if (moto) marks.push(`-p ${moto[1]}`);
  return [...new Set(marks)];
}

/** Fails when anything new since `before` belongs to the demo, or one of its paths exists. */
async function assertNothingLeft(before: Set<string>, output: string): Promise<void> {
  const marks = demoMarks(output);
  assert(marks.some((m) => m.startsWith("/tmp/ecs-demo-")), `no work directory in:\n${output}`);
  const after = await systemState();
  const left = [...after].filter((entry) =>
    !before.has(entry) && marks.some((mark) => entry.includes(mark))
  );
  assertEquals(left, [], "the demo left these behind");
  for (const mark of marks.filter((m) => m.startsWith("/"))) {
    let exists = true;
    try {
      Deno.statSync(mark);
    } catch {
      exists = false;
    }
    assertEquals(exists, false, `${mark} is still there`);
  }
}

function demo(args: string[] = []) {
  return new Deno.Command("bash", {
    args: ["scripts/demo.sh", ...args],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** The snapshot ids in the program's report and in the DescribeSnapshots proof. */
function snapshotIds(output: string): { reported: string[]; described: string[] } {
  return {
    reported: [...output.matchAll(/^ {2}snapshot +(snap-[0-9a-f]+) of vol-[0-9a-f]+$/gm)]
      .map((m) => m[1]),
    described: [...output.matchAll(/^ {2}SnapshotId +(snap-[0-9a-f]+)$/gm)].map((m) => m[1]),
  };
}

Deno.test({
  name: "the demo runs the whole job, reports the snapshot and the windows, and removes everything",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const before = await systemState();
    const out = await demo().output();
    const stdout = decoder.decode(out.stdout);
    assertEquals(out.code, 0, `${stdout}\n${decoder.decode(out.stderr)}`);

    const { reported, described } = snapshotIds(stdout);
    assertEquals(reported.length, 1, stdout);
    assertEquals(described, reported, "the EC2 API lists the snapshot the program reported");
    assertMatch(stdout, /^ {2}Description +ec2-consistent-snapshot demo$/m);
    assertMatch(stdout, /^ {2}Tags +Name=demo; made-by=scripts\/demo\.sh/m);

    const commandLine = stdout.split("\n").find((line) => line.startsWith("  $ "));
    assert(commandLine, `no command line in:\n${stdout}`);
    // The program as it ships: the bundle, with the flags the binary is compiled with.
    assert(
      commandLine.includes(` run ${RUN_FLAGS.join(" ")} --no-config dist/bundle/`) &&
        commandLine.includes("/main.js --output json "),
      commandLine,
    );
    assertEquals(commandLine.includes(TEST_CREDENTIALS.secretAccessKey), false);
    assertEquals(/password/i.test(commandLine), false, "no password on the command line");
    assertEquals(stdout.includes(TEST_CREDENTIALS.secretAccessKey), false);

    if (isRoot()) {
      assertMatch(commandLine, / --mysql --mysql-defaults-file \S+ --freeze-filesystem /);
      assertMatch(stdout, /^ {2}freeze window +\d+ ms$/m);
      assertMatch(stdout, /^ {2}lock window +\d+ ms$/m);
      assertMatch(stdout, /^ {2}database lock +\d+ ms$/m);
      assertMatch(stdout, /^ {2}binary log +binlog\.\d+ at position \d+ /m);
      assertMatch(
        stdout,
        /the writer +\d+ rows, [1-9]\d* since the program started;.* none failed/,
      );
    } else {
      assertMatch(stdout, /skipped, because this is not root/);
      assertMatch(stdout, /^ {2}freeze window +- \(nothing frozen\)$/m);
    }
    await assertNothingLeft(before, stdout);
  },
});

Deno.test({
  name: "--moto-only: the snapshot the demo names exists in moto, with its description and tags",
  ignore: ignoreUnless(MOTO),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const moto = await startMoto();
    try {
      const out = await demo(["--moto-only", "--moto-url", moto.url]).output();
      const stdout = decoder.decode(out.stdout);
      assertEquals(out.code, 0, `${stdout}\n${decoder.decode(out.stderr)}`);
      assertMatch(stdout, /skipped.*the XFS loop mount, the freeze and MariaDB/);
      assertMatch(stdout, /^ {2}freeze window +- \(nothing frozen\)$/m);
      assertMatch(stdout, /^ {2}lock window +- \(nothing locked\)$/m);
      const { reported } = snapshotIds(stdout);
      assertEquals(reported.length, 1, stdout);
      const found = await moto.client().send(
        new DescribeSnapshotsCommand({ SnapshotIds: reported }),
      );
      const snapshot = found.Snapshots?.[0];
      assertEquals(snapshot?.SnapshotId, reported[0]);
      assertEquals(snapshot?.Description, "ec2-consistent-snapshot demo");
      const tags = Object.fromEntries((snapshot?.Tags ?? []).map((t) => [t.Key, t.Value]));
      assertEquals(tags["Name"], "demo");
      assertEquals(tags["made-by"], "scripts/demo.sh");
    } finally {
      await moto.stop();
    }
  },
});

Deno.test({
  name: "Ctrl-C in the middle of the demo: the program releases, the demo removes everything",
  ignore: ignoreUnless(DEMO_AS_ROOT),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    requireAvailable(DEMO_AS_ROOT);
    const before = await systemState();
    const child = demo();
    const stderr = new Response(child.stderr).text();
    let stdout = "";
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    const readAll = (async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        stdout += value;
      }
    })();
    const deadline = Date.now() + 120_000;
    while (!stdout.includes("\n  $ ") && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert(stdout.includes("\n  $ "), `the demo never started the program:\n${stdout}`);
    // Into the program's run: preflight, lock or freeze, depending on the machine's speed.
    await new Promise((resolve) => setTimeout(resolve, 600));
    child.kill("SIGINT");
    const [status] = await Promise.all([child.status, readAll]);
    assertEquals(status.code, 130, `${stdout}\n${await stderr}`);
    assertMatch(stdout, /SIGINT: stopping/);
    assertMatch(stdout, /thawed, unmounted and removed/);
    assertEquals(/FAILED/.test(stdout), false, stdout);
    await assertNothingLeft(before, stdout);
  },
});
