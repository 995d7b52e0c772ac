/** The restore drill's fault table: bad targets, odd answers from EC2, a failing or hanging check, another drill, slow EC2, stop signals at each step; each leaves nothing behind. */
import { CreateSnapshotCommand } from "@aws-sdk/client-ec2";
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import {
  drill,
  drillServers,
  drillVolumes,
  exists,
  type Lab,
  MARIADB,
  snapshotRun,
  spawnDrill,
  withLab,
  XFS,
} from "./support/drill_lab.ts";
import { MOTO } from "./support/moto.ts";
import { ignoreUnless } from "./support/real.ts";
import { ExitCode } from "../src/util/errors.ts";

/** Nothing of a drill is left: no volume in EC2, no loop device, no server, the lock free. */
async function nothingLeft(lab: Lab, what: string): Promise<void> {
  assertEquals(await drillVolumes(lab), [], `volumes after ${what}`);
  assertEquals(lab.ebs.attachedLoops(), [], `loop devices after ${what}`);
  assertEquals(await drillServers(), "", `servers after ${what}`);
  const lock = await Deno.open(`${lab.env.ECS_RUN_DIR}/drill.lock`, { read: true, write: true });
  try {
    assert(await lock.tryLock(true), `the drill lock is free after ${what}`);
  } finally {
    lock.close();
  }
  assertEquals(
    Deno.readTextFileSync(`${lab.env.ECS_RUN_DIR}/drill.lock`),
    "",
    `no work directory left after ${what}`,
  );
}

/** The EC2 actions the drill sent (through the proxy) since `from`. */
const actionsSince = (lab: Lab, from: number) =>
  lab.proxy.seen.slice(from).filter((r) => !r.dryRun).map((r) => r.action);

/** Rewrites every snapshot of DescribeSnapshots answers to `state` (and `progress`). */
function snapshotsAre(lab: Lab, state: string, progress: string): void {
  lab.proxy.rewrite = (request, _headers, body) =>
    request.action !== "DescribeSnapshots" ? body : body
      .replace(/<status>completed<\/status>/g, `<status>${state}</status>`)
      .replace(/<progress>[^<]*<\/progress>/g, `<progress>${progress}</progress>`);
}

Deno.test({
  name: "drill faults: bad targets and odd snapshot states are refused; data unlike its tag fails",
  ignore: ignoreUnless(MARIADB, XFS, MOTO),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withLab("mariadb", async (lab) => {
      // The data says it was last upgraded by a server other than the one the tag names.
      Deno.writeTextFileSync(`${lab.data.mountPoint}/mysql/mysql_upgrade_info`, "10.1.0-MariaDB");
      const runId = await snapshotRun(lab, [lab.data, lab.binlog]);
      const cases: [string, string[], () => void, number, RegExp][] = [
        [
          "a run id that does not exist",
          ["--restore-drill", "00000000-0000-4000-8000-000000000000"],
          () => {},
          ExitCode.drillRefused,
          /no snapshot carries the run id 00000000-0000-4000-8000-000000000000/,
        ],
        [
          "a snapshot id that does not exist",
          ["--restore-drill", "snap-0123456789abcdef0"],
          () => {},
          ExitCode.drillRefused,
          /DescribeSnapshots .*failed: InvalidSnapshot\.NotFound/,
        ],
        [
          "a snapshot in error",
          ["--restore-drill", runId],
          () => snapshotsAre(lab, "error", "40%"),
          ExitCode.drillRefused,
          /snap-\w+ is in state error/,
        ],
        [
          "a snapshot pending past --drill-timeout",
          ["--restore-drill", runId, "--drill-timeout", "1"],
          () => snapshotsAre(lab, "pending", "12%"),
          ExitCode.drillRefused,
          /snap-\w+ 12%.* not completed within --drill-timeout 1s/,
        ],
        [
          "--noaction",
          ["--restore-drill", runId, "--noaction"],
          () => {},
          ExitCode.ok,
          /--noaction: would restore 2 volume\(s\) in us-east-1\w/,
        ],
      ];
      for (const [what, argv, inject, code, expected] of cases) {
        inject();
        const from = lab.proxy.seen.length;
        const out = await drill(lab, argv);
        lab.proxy.rewrite = (_request, _headers, body) => body;
        assertEquals(out.code, code, `${what}: ${out.stderr}`);
        assertMatch(out.stderr, expected, what);
        for (const made of ["CreateVolume", "AttachVolume"]) {
          assert(!actionsSince(lab, from).includes(made), `${what}: no ${made}`);
        }
        await nothingLeft(lab, what);
      }
      // A snapshot of another tool (no run id tag): refused, naming why.
      const foreign = await lab.moto.client().send(
        new CreateSnapshotCommand({ VolumeId: lab.volumes.data }),
      );
      const out = await drill(lab, ["--restore-drill", foreign.SnapshotId!]);
      assertEquals(out.code, ExitCode.drillRefused, out.stderr);
      assertMatch(out.stderr, /has no ec2-consistent-snapshot:run-id tag: not made by this tool/);
      await nothingLeft(lab, "a snapshot of another tool");

      const lying = await drill(lab, ["--restore-drill", runId]);
      assertEquals(lying.code, ExitCode.drillFailed, lying.stderr);
      assertMatch(
        lying.stderr,
        /FAIL data version: mysql_upgrade_info says 10\.1\.0 and the tag mariadb \S+: the tag does not describe these files/,
      );
      await nothingLeft(lab, "a tag that does not describe the data");
    });
  },
});

Deno.test({
  name:
    "drill faults: a failing or hanging check fails the drill; slow or unseen attachments; two drills at once",
  ignore: ignoreUnless(MARIADB, XFS, MOTO),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withLab("mariadb", async (lab) => {
      const runId = await snapshotRun(lab, [lab.data, lab.binlog]);
      const failing = await drill(lab, [
        "--restore-drill",
        runId,
        "--drill-check-command",
        "exit 3",
      ]);
      assertEquals(failing.code, ExitCode.drillFailed, failing.stderr);
      assertMatch(failing.stderr, /FAIL your check: exit 3: exit 3/);
      assertMatch(failing.stdout, /: FAILED \(/);
      await nothingLeft(lab, "a check that exits 3");

      // A check that never ends (and its children): killed at --drill-timeout.
      const hanging = await drill(lab, [
        "--restore-drill",
        runId,
        "--drill-check-command",
        "sleep 600 & sleep 600",
        "--drill-timeout",
        "20",
      ]);
      assertEquals(hanging.code, ExitCode.drillFailed, hanging.stderr);
      assertMatch(
        hanging.stderr,
        /--drill-check-command did not finish within --drill-timeout 20s/,
      );
      const sleeps = await new Deno.Command("pgrep", { args: ["-fx", "sleep 600"] }).output();
      assertEquals(new TextDecoder().decode(sleeps.stdout), "", "the check's children are killed");
      await nothingLeft(lab, "a check that hangs");

      // A mount point this machine does not have (a scratch instance): made for the drill in
      // the live file system, and removed after.
      const moved = `${lab.data.mountPoint}-elsewhere`;
      lab.proxy.rewrite = (request, _headers, body) =>
        request.action !== "DescribeSnapshots"
          ? body
          : body.replaceAll(`${lab.data.mountPoint}`, `${moved}/data`);
      const elsewhere = await drill(lab, ["--restore-drill", runId]);
      lab.proxy.rewrite = (_request, _headers, body) => body;
      assertEquals(elsewhere.code, ExitCode.ok, elsewhere.stderr);
      assertMatch(elsewhere.stderr, new RegExp(`xfs:${moved}/data`));
      assertEquals(await exists(moved), false, "the mount point made is removed");
      await nothingLeft(lab, "a mount point made for the drill");

      // EC2 slow to attach: each AttachVolume answered after 3 s; the drill waits and passes.
      const decide = lab.proxy.decide;
      lab.proxy.decide = (request) =>
        request.action === "AttachVolume" && !request.dryRun
          ? new Promise((resolve) => setTimeout(resolve, 3_000))
            .then(() => decide(request) as Promise<boolean>)
          : decide(request);
      const slow = await drill(lab, ["--restore-drill", runId]);
      lab.proxy.decide = decide;
      assertEquals(slow.code, ExitCode.ok, slow.stderr);
      await nothingLeft(lab, "slow attachments");

      // EC2 attaches, and the device never shows on this machine: bounded, failed, cleaned.
      lab.proxy.decide = (request) =>
        request.action === "AttachVolume" && !request.dryRun ? "forward" : decide(request);
      const unseen = await drill(lab, ["--restore-drill", runId, "--drill-timeout", "10"]);
      lab.proxy.decide = decide;
      assertEquals(unseen.code, ExitCode.drillFailed, unseen.stderr);
      assertMatch(unseen.stderr, /vol-\w+ is attached at \/dev\/sd\w but no device shows it in /);
      await nothingLeft(lab, "a device that never shows");

      // Two drills at once: the second is refused and touches nothing of the first's.
      const first = await spawnDrill(
        lab,
        ["--restore-drill", runId, "--drill-check-command", "sleep 60"],
        /ok {3}start/,
      );
      const second = await drill(lab, ["--restore-drill", runId]);
      assertEquals(second.code, ExitCode.drillRefused, second.stderr);
      assertMatch(second.stderr, /another restore drill runs on this instance/);
      assertEquals((await drillVolumes(lab)).length, 2, "the first drill's volumes stay");
      first.child.kill("SIGTERM");
      assertEquals((await first.child.status).code, 143);
      await first.stderr();
      await first.output.cancel();
      await nothingLeft(lab, "two drills at once");
    });
  },
});
