/**
 * The restore drill end to end, on real restored data: MariaDB with its data and its binary log
 * on two XFS loop mounts, snapshotted by the program against moto while EBS's point-in-time
 * meaning is emulated (tests/support/ebs.ts); then the drill restores them through the same
 * sysfs discovery the program uses on EC2, in a private mount namespace, and checks them.
 */
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import {
  drill,
  drillServers,
  drillVolumes,
  eventually,
  exists,
  MARIADB,
  POSTGRES,
  snapshotRun,
  spawnDrill,
  withLab,
  XFS,
} from "./support/drill_lab.ts";
import { MOTO } from "./support/moto.ts";
import { ignoreUnless } from "./support/real.ts";
import { ExitCode } from "../src/util/errors.ts";

Deno.test({
  name: "drill: MariaDB data and binary log on two volumes restore to the recorded position",
  ignore: ignoreUnless(MARIADB, XFS, MOTO),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withLab("mariadb", async (lab) => {
      const runId = await snapshotRun(lab, [lab.data, lab.binlog]);
      // Writes after the snapshot: not in the restored data.
      await lab.sql("INSERT INTO app.t VALUES (2, 'after')");
      const out = await drill(lab, [
        "--restore-drill",
        runId,
        "--drill-check-command",
        `mariadb --no-defaults -uroot -N -e 'SELECT COUNT(*) FROM app.t' | grep -qx 1`,
      ]);
      assertEquals(out.code, ExitCode.ok, out.stderr);
      assertMatch(out.stdout, new RegExp(`restore drill of run ${runId}: passed`));
      assertMatch(out.stderr, /ok {3}binary log: ends at the recorded binlog\.\d+:\d+/);
      assertMatch(out.stderr, /ok {3}your check: exit 0/);
      // Nothing left: no drill volume in EC2, no loop device, the live mounts untouched.
      assertEquals(await drillVolumes(lab), []);
      assertEquals(lab.ebs.attachedLoops(), []);
      assertEquals(await lab.sql("SELECT COUNT(*) FROM app.t"), "2\n");
    });
  },
});

Deno.test({
  name: "drill: a set without the binary-log volume is refused, naming it, and nothing is made",
  ignore: ignoreUnless(MARIADB, XFS, MOTO),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withLab("mariadb", async (lab) => {
      const runId = await snapshotRun(lab, [lab.data]);
      // Another drill runs: refused, nothing touched.
      const held = await Deno.open(`${lab.env.ECS_RUN_DIR}/drill.lock`, {
        create: true,
        write: true,
      });
      try {
        await held.lock(true);
        const busy = await drill(lab, ["--restore-drill", runId]);
        assertEquals(busy.code, ExitCode.drillRefused, busy.stderr);
        assertMatch(busy.stderr, /another restore drill runs on this instance/);
      } finally {
        held.close();
      }
      const out = await drill(lab, ["--restore-drill", runId]);
      assertEquals(out.code, ExitCode.drillRefused, out.stderr);
      assertMatch(
        out.stderr,
        new RegExp(
          `the binary log ${lab.binlog.mountPoint}/binlog is on none of the set's volumes .*` +
            "was not in the snapshot set",
        ),
      );
      assert(out.stdout.includes("FAILED"));
      assertEquals(await drillVolumes(lab), []);
    });
  },
});

Deno.test({
  name: "drill: a binary-log volume read after writes went on fails the drill, naming why",
  ignore: ignoreUnless(MARIADB, XFS, MOTO),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withLab("mariadb", async (lab) => {
      const runId = await snapshotRun(lab, [lab.data, lab.binlog]);
      // Writes after the recorded position reach the binary-log volume's "snapshot".
      await lab.sql("INSERT INTO app.t VALUES (2, 'after'), (3, 'after')");
      await lab.ebs.retake(lab.volumes.binlog);
      const out = await drill(lab, ["--restore-drill", runId]);
      assertEquals(out.code, ExitCode.drillFailed, out.stderr);
      assertMatch(
        out.stderr,
        /FAIL binary log: binlog\.\d+ ends at \d+, past the recorded binlog\.\d+:\d+: written after the lock/,
      );
      assertMatch(out.stdout, /: FAILED \(/);
      assertEquals(await drillVolumes(lab), []);
      assertEquals(lab.ebs.attachedLoops(), []);
    });
  },
});

Deno.test({
  name: "drill: SIGTERM at each step leaves nothing; after a SIGKILL the next drill cleans up",
  ignore: ignoreUnless(MARIADB, XFS, MOTO),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withLab("mariadb", async (lab) => {
      const runId = await snapshotRun(lab, [lab.data, lab.binlog]);
      for (
        const step of [
          /created vol-/,
          /attached vol-\S+ as \S+nvme\d+n1\n[^]*attached/,
          /ok {3}start/,
        ]
      ) {
        // A check that takes its time: the signal comes while it runs.
        const drill = await spawnDrill(
          lab,
          ["--restore-drill", runId, "--drill-check-command", "sleep 60"],
          step,
        );
        drill.child.kill("SIGTERM");
        const status = await drill.child.status;
        const stderr = await drill.stderr();
        await drill.output.cancel();
        assertEquals(status.code, 143, `SIGTERM after ${step}: ${stderr}`);
        assertMatch(stderr, /stopped by SIGTERM/);
        assertEquals(await drillVolumes(lab), [], `after ${step}`);
        assertEquals(lab.ebs.attachedLoops(), [], `after ${step}`);
        assertEquals(await drillServers(), "", `after ${step}`);
      }
      // SIGKILL while the server runs: the server dies with the drill, its mounts with it; the
      // volumes stay, attached, until the next drill removes them.
      const killed = await spawnDrill(lab, ["--restore-drill", runId], /ok {3}start/);
      killed.child.kill("SIGKILL");
      await killed.child.status;
      await killed.output.cancel();
      await killed.stderr();
      assert(await eventually(async () => await drillServers() === ""), "the server died");
      assertEquals((await drillVolumes(lab)).length, 2);
      const leftDir = Deno.readTextFileSync(`${lab.env.ECS_RUN_DIR}/drill.lock`).trim();
      assertMatch(leftDir, /\/ecs-drill-\w+$/);
      const next = await drill(lab, ["--restore-drill", runId]);
      assertEquals(next.code, ExitCode.ok, next.stderr);
      assertMatch(next.stderr, /removing vol-\S+, left by a drill that was killed/);
      assertEquals(await exists(leftDir), false, "the killed drill's work directory is removed");
      assertEquals(await drillVolumes(lab), []);
      assertEquals(lab.ebs.attachedLoops(), []);
    });
  },
});

Deno.test({
  name: "drill: PostgreSQL data and WAL on two volumes restore past the recorded LSN",
  ignore: ignoreUnless(POSTGRES, XFS, MOTO),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withLab("postgresql", async (lab) => {
      const runId = await snapshotRun(lab, [lab.data, lab.binlog]);
      await lab.sql("INSERT INTO app.t VALUES (2, 'after')");
      const metrics = `${lab.env.HOME}/drill.prom`;
      const out = await drill(lab, [
        "--restore-drill",
        runId,
        "--drill-check-command",
        `psql -tAc 'SELECT count(*) FROM app.t' | grep -qx 1`,
        "--output",
        "json",
        "--metrics-file",
        metrics,
      ]);
      assertEquals(out.code, ExitCode.ok, out.stderr);
      const report = JSON.parse(out.stdout);
      assertEquals([report.ok, report.runId, report.volumes.length], [true, runId, 2]);
      assert(report.timings.recoveryMs >= 0 && report.timings.totalMs > 0);
      assertMatch(
        Deno.readTextFileSync(metrics),
        /^ec2_consistent_snapshot_last_drill_success 1$/m,
      );
      assertMatch(out.stderr, /ok {3}WAL: replay reached \S+, at or past the recorded \S+/);
      assertMatch(out.stderr, /ok {3}timeline: timeline 1, as recorded/);
      assertEquals(await drillVolumes(lab), []);
      assertEquals(lab.ebs.attachedLoops(), []);
      assertEquals((await lab.sql("SELECT count(*) FROM app.t")).trim(), "2");
    });
  },
});

Deno.test({
  name:
    "drill: PostgreSQL without its WAL volume fails, naming it, and the live WAL is not touched",
  ignore: ignoreUnless(POSTGRES, XFS, MOTO),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withLab("postgresql", async (lab) => {
      const runId = await snapshotRun(lab, [lab.data]);
      const walBefore = [...Deno.readDirSync(`${lab.binlog.mountPoint}/wal`)].map((e) => e.name)
        .sort();
      const out = await drill(lab, ["--restore-drill", runId]);
      assertEquals(out.code, ExitCode.drillFailed, out.stderr);
      assertMatch(
        out.stderr,
        new RegExp(
          `pg_wal leads to ${lab.binlog.mountPoint}/wal, on none of the restored volumes: its ` +
            "volume was not in the snapshot set",
        ),
      );
      const walAfter = [...Deno.readDirSync(`${lab.binlog.mountPoint}/wal`)].map((e) => e.name)
        .sort();
      assertEquals(walAfter, walBefore);
      assertEquals(await drillVolumes(lab), []);
      assertEquals(lab.ebs.attachedLoops(), []);
    });
  },
});
