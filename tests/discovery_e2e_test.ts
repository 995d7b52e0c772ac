/**
 * Discovery end to end: mount points -> sysfs -> volume ids (Nitro NVMe and Xen, through the
 * instance's block device mappings in moto, the instance id and region from an IMDSv2 server),
 * then snapshots of exactly the discovered volumes in moto.
 */
import { windowSpec } from "../src/run/window_parts.ts";
import { DescribeSnapshotsCommand } from "@aws-sdk/client-ec2";
import { assertEquals } from "./support/assert.ts";
import { startImdsServer } from "./support/imds_server.ts";
import { instanceWithVolumes, MOTO, startMoto } from "./support/moto.ts";
import { ignoreUnless } from "./support/real.ts";
import { makeProc, SysfsFixture } from "./support/sysfs_fixture.ts";
import { parseCommandLine } from "../src/cli/parse.ts";
import { buildPlan } from "../src/plan/plan.ts";
import { createEc2, createEc2Client } from "../src/aws/ec2.ts";
import { runSequence } from "../src/run/sequence.ts";
import { recorder } from "./support/recording.ts";
import { silentLogger } from "../src/util/log.ts";

Deno.test(
  "discovered volumes, and exactly those, are snapshotted",
  { ignore: ignoreUnless(MOTO) },
  async () => {
    const moto = await startMoto();
    const sys = SysfsFixture.create();
    const dirs = Deno.makeTempDirSync({ prefix: "ecs-mnt-" });
    let proc: string | undefined;
    try {
      const instance = await instanceWithVolumes(moto, ["/dev/sdf", "/dev/sdg"]);
      const [nvmeVolume, unrelated] = await moto.createVolumes(2);
      const imds = startImdsServer({ instanceId: instance.instanceId, region: "us-east-1" });
      try {
        // /data: MD RAID0 over the Xen disks xvdf and xvdg; /logs: a Nitro NVMe volume.
        sys.xen("xvdf", "202:80").xen("xvdg", "202:96").stacked("md0", "9:0", ["xvdf", "xvdg"]);
        sys.nvme("nvme1n1", "259:0", { serial: nvmeVolume.replace("vol-", "vol") });
        Deno.mkdirSync(`${dirs}/data`);
        Deno.mkdirSync(`${dirs}/logs`);
        proc = makeProc([
          { mountPoint: "/", majorMinor: "202:1", source: "/dev/xvda1" },
          { mountPoint: `${dirs}/data`, majorMinor: "9:0", source: "/dev/md0" },
          { mountPoint: `${dirs}/logs`, majorMinor: "259:0", source: "/dev/nvme1n1" },
        ]);
        const args = parseCommandLine([
          "--no-freeze-filesystem",
          `${dirs}/data`,
          "--no-freeze-filesystem",
          `${dirs}/logs`,
          "--description",
          "discovered",
        ]);
        const env = {
          ...moto.env,
          AWS_REGION: undefined,
          AWS_EC2_METADATA_DISABLED: undefined,
          AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.url,
        };
        const plan = await buildPlan({
          args,
          env,
          home: undefined,
          cwd: Deno.cwd(),
          log: silentLogger,
          procRoot: proc,
          sysRoot: sys.root,
        });
        assertEquals(plan.region, { value: "us-east-1", source: "the instance metadata" });
        const expected = [
          instance.volumes.get("/dev/sdf")!,
          instance.volumes.get("/dev/sdg")!,
          nvmeVolume,
        ];
        assertEquals(plan.volumes.map((v) => v.volumeId), expected);
        assertEquals(plan.discovered.map((d) => [d.mountPoint, d.device]), [
          [`${dirs}/data`, "/dev/xvdf"],
          [`${dirs}/data`, "/dev/xvdg"],
          [`${dirs}/logs`, "/dev/nvme1n1"],
        ]);

        const client = createEc2Client({
          region: "us-east-1",
          endpoint: moto.url,
          credentials: {
            accessKeyId: moto.env.AWS_ACCESS_KEY_ID,
            secretAccessKey: moto.env.AWS_SECRET_ACCESS_KEY,
          },
        });
        const fakes = recorder();
        try {
          const result = await runSequence(
            {
              ...windowSpec(plan.window),
              volumes: plan.volumes,
              freezeMounts: [],
              snapshotTimeoutMs: 10_000,
            },
            {
              ...fakes,
              ec2: createEc2(client, silentLogger),
              log: silentLogger,
              signal: new AbortController().signal,
            },
          );
          assertEquals(result.problems, []);
        } finally {
          client.destroy();
        }
        const snapshots = await moto.client().send(
          new DescribeSnapshotsCommand({
            Filters: [{ Name: "description", Values: ["discovered"] }],
          }),
        );
        assertEquals(snapshots.Snapshots!.map((s) => s.VolumeId).sort(), [...expected].sort());
        assertEquals(snapshots.Snapshots!.some((s) => s.VolumeId === unrelated), false);
      } finally {
        await imds.stop();
      }
    } finally {
      sys.remove();
      if (proc) Deno.removeSync(proc, { recursive: true });
      Deno.removeSync(dirs, { recursive: true });
      await moto.stop();
    }
  },
);
