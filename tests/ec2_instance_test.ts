/** DescribeInstances block device mappings against moto, and Xen discovery through them. */
import { assert, assertEquals, assertRejects } from "./support/assert.ts";
import { discoverVolumes } from "../src/host/discovery.ts";
import { describeBlockDeviceMappings } from "../src/aws/instance.ts";
import { PreflightError } from "../src/util/errors.ts";
import { instanceWithVolumes, MOTO, startMoto } from "./support/moto.ts";
import { ignoreUnless } from "./support/real.ts";
import { SysfsFixture } from "./support/sysfs_fixture.ts";

Deno.test(
  "DescribeInstances and Xen discovery against moto",
  { ignore: ignoreUnless(MOTO) },
  async (t) => {
    const moto = await startMoto();
    try {
      await t.step("describeBlockDeviceMappings returns the volumes attached in moto", async () => {
        const ec2 = moto.client();
        const { instanceId, rootDevice, volumes } = await instanceWithVolumes(
          moto,
          ["/dev/sdf", "/dev/sdg"],
        );
        const mappings = await describeBlockDeviceMappings(ec2, instanceId);
        const byName = new Map(mappings.map((m) => [m.deviceName, m.volumeId]));
        assertEquals(byName.get("/dev/sdf"), volumes.get("/dev/sdf"));
        assertEquals(byName.get("/dev/sdg"), volumes.get("/dev/sdg"));
        // moto gives the instance a root volume, as EC2 does.
        assert(byName.get(rootDevice)?.startsWith("vol-"), `no root volume at ${rootDevice}`);
      });

      await t.step(
        "describeBlockDeviceMappings: an unknown instance is a preflight error naming it",
        async () => {
          await assertRejects(
            () => describeBlockDeviceMappings(moto.client(), "i-0000000000000dead"),
            PreflightError,
            "DescribeInstances i-0000000000000dead (to find the volumes of Xen disks) failed: " +
              "InvalidInstanceID.NotFound",
          );
        },
      );

      await t.step(
        "Xen discovery end to end: sysfs xvdf, xvdg and xvda1 to the volumes in moto",
        async () => {
          const sys = SysfsFixture.create();
          try {
            const ec2 = moto.client();
            const { instanceId, rootDevice, volumes } = await instanceWithVolumes(
              moto,
              ["/dev/sdf", "/dev/sdg"],
            );
            sys.xen("xvda", "202:0", { partitions: [{ name: "xvda1", majorMinor: "202:1" }] });
            sys.xen("xvdf", "202:80");
            sys.xen("xvdg", "202:96");
            sys.stacked("md0", "9:0", ["xvdf", "xvdg"]);
            let calls = 0;
            const discovered = await discoverVolumes([
              { mountPoint: "/raid", majorMinor: "9:0" },
              { mountPoint: "/", majorMinor: "202:1" },
            ], {
              sysRoot: sys.root,
              blockDeviceMappings: () => {
                calls++;
                return describeBlockDeviceMappings(ec2, instanceId);
              },
            });
            const root = (await describeBlockDeviceMappings(ec2, instanceId)).find((m) =>
              m.deviceName === rootDevice
            )!.volumeId;
            assertEquals(discovered, [
              { volumeId: volumes.get("/dev/sdf")!, mountPoint: "/raid", device: "/dev/xvdf" },
              { volumeId: volumes.get("/dev/sdg")!, mountPoint: "/raid", device: "/dev/xvdg" },
              { volumeId: root, mountPoint: "/", device: "/dev/xvda" },
            ]);
            assertEquals(calls, 1);
          } finally {
            sys.remove();
          }
        },
      );
    } finally {
      await moto.stop();
    }
  },
);
