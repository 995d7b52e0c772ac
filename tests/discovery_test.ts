/** Tests of volume discovery on realistic sysfs trees, and on a real loop mount of this machine. */
import { assertEquals, assertRejects } from "./support/assert.ts";
import {
  type BlockDeviceMapping,
  discoverVolumes,
  findLeafDisks,
  volumeIdFromSerial,
  xenCandidateNames,
} from "../src/host/discovery.ts";
import { PreflightError } from "../src/util/errors.ts";
import { resolveMountPoints } from "../src/host/mounts.ts";
import { ignoreUnless, requireAvailable, rootRequirement } from "./support/real.ts";
import { INSTANCE_STORE_MODEL, SysfsFixture } from "./support/sysfs_fixture.ts";

const LOOP = rootRequirement("mounting a loop device");

const VOL1 = "vol-0123456789abcdef0";
const VOL2 = "vol-0fedcba9876543210";
const VOL3 = "vol-00000000000000003";
const VOL4 = "vol-00000000000000004";

/** The NVMe serial EBS reports for a volume id. */
function serial(volumeId: string): string {
  return volumeId.replace("-", "");
}

function withSysfs(build: (sys: SysfsFixture) => void) {
  return async (body: (sysRoot: string) => Promise<void>) => {
    const sys = SysfsFixture.create();
    try {
      build(sys);
      await body(sys.root);
    } finally {
      sys.remove();
    }
  };
}

Deno.test("volumeIdFromSerial: EBS serials with and without the dash, old short ids", () => {
  assertEquals(volumeIdFromSerial("vol0123456789abcdef0"), VOL1);
  assertEquals(volumeIdFromSerial("vol-0123456789abcdef0 "), VOL1);
  assertEquals(volumeIdFromSerial("vol1234abcd"), "vol-1234abcd");
  assertEquals(volumeIdFromSerial("AWS1234567890"), undefined);
  assertEquals(volumeIdFromSerial("vol0123"), undefined);
});

Deno.test("xenCandidateNames: partition names first, then the disk, sd before xvd", () => {
  assertEquals(xenCandidateNames("xvdf"), ["sdf", "xvdf"]);
  assertEquals(xenCandidateNames("xvda", "xvda1"), ["sda1", "xvda1", "sda", "xvda"]);
});

Deno.test("one Nitro NVMe volume", async () => {
  await withSysfs((sys) => {
    sys.nvme("nvme0n1", "259:0", {
      serial: serial(VOL2),
      partitions: [{ name: "nvme0n1p1", majorMinor: "259:1" }],
    });
    sys.nvme("nvme1n1", "259:2", { serial: serial(VOL1) });
  })(async (sysRoot) => {
    const volumes = await discoverVolumes([{ mountPoint: "/data", majorMinor: "259:2" }], {
      sysRoot,
      blockDeviceMappings: () => {
        throw new Error("DescribeInstances must not be called on Nitro");
      },
    });
    assertEquals(volumes, [{ volumeId: VOL1, mountPoint: "/data", device: "/dev/nvme1n1" }]);
  });
});

Deno.test("an NVMe partition leads to its disk's volume", async () => {
  await withSysfs((sys) => {
    sys.nvme("nvme1n1", "259:0", {
      serial: serial(VOL1),
      partitions: [{ name: "nvme1n1p1", majorMinor: "259:1" }, {
        name: "nvme1n1p2",
        majorMinor: "259:2",
      }],
    });
  })(async (sysRoot) => {
    const leaves = await findLeafDisks("259:2", "/data", { sysRoot });
    assertEquals(leaves.map((l) => [l.name, l.partition, l.chain]), [
      ["nvme1n1", "nvme1n1p2", ["nvme1n1p2", "nvme1n1"]],
    ]);
    // Two mounts on two partitions of one volume: the volume once, with the first mount.
    const volumes = await discoverVolumes([
      { mountPoint: "/data", majorMinor: "259:2" },
      { mountPoint: "/boot", majorMinor: "259:1" },
    ], { sysRoot });
    assertEquals(volumes, [{ volumeId: VOL1, mountPoint: "/data", device: "/dev/nvme1n1" }]);
  });
});

Deno.test("LVM over two NVMe volumes", async () => {
  await withSysfs((sys) => {
    sys.nvme("nvme1n1", "259:0", { serial: serial(VOL1) });
    sys.nvme("nvme2n1", "259:1", { serial: serial(VOL2) });
    sys.stacked("dm-0", "253:0", ["nvme1n1", "nvme2n1"], { dmName: "data-lv" });
  })(async (sysRoot) => {
    const volumes = await discoverVolumes([{ mountPoint: "/data", majorMinor: "253:0" }], {
      sysRoot,
    });
    assertEquals(volumes, [
      { volumeId: VOL1, mountPoint: "/data", device: "/dev/nvme1n1" },
      { volumeId: VOL2, mountPoint: "/data", device: "/dev/nvme2n1" },
    ]);
  });
});

Deno.test("MD RAID0 over four NVMe volumes, in numeric device order", async () => {
  const ids = [VOL1, VOL2, VOL3, VOL4];
  const names = ["nvme2n1", "nvme3n1", "nvme10n1", "nvme11n1"];
  await withSysfs((sys) => {
    // Created in another order than the kernel names sort, to prove the order is by name.
    for (const i of [3, 1, 0, 2]) sys.nvme(names[i], `259:${i}`, { serial: serial(ids[i]) });
    sys.stacked("md0", "9:0", [...names].reverse());
  })(async (sysRoot) => {
    const volumes = await discoverVolumes([{ mountPoint: "/raid", majorMinor: "9:0" }], {
      sysRoot,
    });
    assertEquals(volumes.map((v) => [v.volumeId, v.device]), [
      [VOL1, "/dev/nvme2n1"],
      [VOL2, "/dev/nvme3n1"],
      [VOL3, "/dev/nvme10n1"],
      [VOL4, "/dev/nvme11n1"],
    ]);
  });
});

Deno.test("LVM thin pool: thin volume over pool over tmeta and tdata over NVMe partitions", async () => {
  await withSysfs((sys) => {
    sys.nvme("nvme1n1", "259:0", {
      serial: serial(VOL1),
      partitions: [{ name: "nvme1n1p1", majorMinor: "259:1" }],
    });
    sys.nvme("nvme2n1", "259:2", { serial: serial(VOL2) });
    sys.stacked("dm-0", "253:0", ["nvme1n1p1"], { dmName: "vg-pool_tmeta" });
    sys.stacked("dm-1", "253:1", ["nvme1n1p1", "nvme2n1"], { dmName: "vg-pool_tdata" });
    sys.stacked("dm-2", "253:2", ["dm-0", "dm-1"], { dmName: "vg-pool-tpool" });
    sys.stacked("dm-3", "253:3", ["dm-2"], { dmName: "vg-pool" });
    sys.stacked("dm-4", "253:4", ["dm-2"], { dmName: "vg-thin1" });
  })(async (sysRoot) => {
    const leaves = await findLeafDisks("253:4", "/thin", { sysRoot });
    assertEquals(leaves.map((l) => l.chain), [
      ["mapper/vg-thin1", "mapper/vg-pool-tpool", "mapper/vg-pool_tmeta", "nvme1n1p1", "nvme1n1"],
      ["mapper/vg-thin1", "mapper/vg-pool-tpool", "mapper/vg-pool_tdata", "nvme2n1"],
    ]);
    const volumes = await discoverVolumes([{ mountPoint: "/thin", majorMinor: "253:4" }], {
      sysRoot,
    });
    assertEquals(volumes, [
      { volumeId: VOL1, mountPoint: "/thin", device: "/dev/nvme1n1" },
      { volumeId: VOL2, mountPoint: "/thin", device: "/dev/nvme2n1" },
    ]);
  });
});

Deno.test("dm-crypt over an NVMe partition", async () => {
  await withSysfs((sys) => {
    sys.nvme("nvme1n1", "259:0", {
      serial: serial(VOL1),
      partitions: [{ name: "nvme1n1p1", majorMinor: "259:1" }, {
        name: "nvme1n1p2",
        majorMinor: "259:2",
      }],
    });
    sys.stacked("dm-0", "253:0", ["nvme1n1p2"], { dmName: "luks-secret" });
  })(async (sysRoot) => {
    const volumes = await discoverVolumes([{ mountPoint: "/secret", majorMinor: "253:0" }], {
      sysRoot,
    });
    assertEquals(volumes, [{ volumeId: VOL1, mountPoint: "/secret", device: "/dev/nvme1n1" }]);
  });
});

function xenTree(sys: SysfsFixture) {
  sys.xen("xvda", "202:0", { partitions: [{ name: "xvda1", majorMinor: "202:1" }] });
  sys.xen("xvdf", "202:80");
  sys.xen("xvdg", "202:96");
}

Deno.test("Xen xvdf and xvda1 through the block device mappings, fetched once", async () => {
  let calls = 0;
  const mappings: BlockDeviceMapping[] = [
    { deviceName: "/dev/sda1", volumeId: VOL1 },
    { deviceName: "/dev/sdf", volumeId: VOL2 },
  ];
  await withSysfs(xenTree)(async (sysRoot) => {
    const volumes = await discoverVolumes([
      { mountPoint: "/data", majorMinor: "202:80" },
      { mountPoint: "/", majorMinor: "202:1" },
    ], {
      sysRoot,
      blockDeviceMappings: () => {
        calls++;
        return Promise.resolve(mappings);
      },
    });
    assertEquals(volumes, [
      { volumeId: VOL2, mountPoint: "/data", device: "/dev/xvdf" },
      { volumeId: VOL1, mountPoint: "/", device: "/dev/xvda" },
    ]);
    assertEquals(calls, 1);
  });
});

Deno.test("Xen: mappings named /dev/xvda (newer AMIs) match the whole disk", async () => {
  await withSysfs(xenTree)(async (sysRoot) => {
    const volumes = await discoverVolumes([{ mountPoint: "/", majorMinor: "202:1" }], {
      sysRoot,
      blockDeviceMappings: () => Promise.resolve([{ deviceName: "/dev/xvda", volumeId: VOL3 }]),
    });
    assertEquals(volumes, [{ volumeId: VOL3, mountPoint: "/", device: "/dev/xvda" }]);
  });
});

Deno.test("Xen: a disk with no mapping is refused, naming mount, device and candidates", async () => {
  await withSysfs(xenTree)(async (sysRoot) => {
    const error = await assertRejects(
      () =>
        discoverVolumes([{ mountPoint: "/logs", majorMinor: "202:96" }], {
          sysRoot,
          blockDeviceMappings: () => Promise.resolve([{ deviceName: "/dev/sdf", volumeId: VOL2 }]),
        }),
      PreflightError,
    );
    assertEquals(
      error.message,
      "/logs is on /dev/xvdg, which matches no block device mapping of this instance " +
        "(looked for /dev/sdg, /dev/xvdg; the instance has /dev/sdf)",
    );
  });
});

Deno.test("Xen: without a way to get the mappings the error says what is needed", async () => {
  await withSysfs(xenTree)(async (sysRoot) => {
    await assertRejects(
      () => discoverVolumes([{ mountPoint: "/data", majorMinor: "202:80" }], { sysRoot }),
      PreflightError,
      "/data is on /dev/xvdf, a Xen disk; finding its volume needs the instance's block device",
    );
  });
});

Deno.test("a mix of EBS and instance store under one LVM volume is refused", async () => {
  await withSysfs((sys) => {
    sys.nvme("nvme1n1", "259:0", { serial: serial(VOL1) });
    sys.nvme("nvme2n1", "259:1", { serial: "AWS22C2EBBFBB1C1EC6F", model: INSTANCE_STORE_MODEL });
    sys.stacked("dm-0", "253:0", ["nvme1n1", "nvme2n1"], { dmName: "mixed-lv" });
  })(async (sysRoot) => {
    const error = await assertRejects(
      () => discoverVolumes([{ mountPoint: "/mixed", majorMinor: "253:0" }], { sysRoot }),
      PreflightError,
    );
    assertEquals(
      error.message,
      "/mixed is on /dev/nvme2n1 (through /dev/mapper/mixed-lv), which is an instance-store NVMe disk " +
        "(Amazon EC2 NVMe Instance Storage), not an EBS volume; instance store cannot be " +
        "snapshotted",
    );
    // The EBS-only mount next to it is fine.
    const ok = await discoverVolumes([{ mountPoint: "/ebs", majorMinor: "259:0" }], { sysRoot });
    assertEquals(ok.map((v) => v.volumeId), [VOL1]);
  });
});

Deno.test("an instance-store disk mounted directly is refused", async () => {
  await withSysfs((sys) => {
    sys.nvme("nvme1n1", "259:0", { serial: "AWS1", model: INSTANCE_STORE_MODEL });
  })(async (sysRoot) => {
    await assertRejects(
      () => discoverVolumes([{ mountPoint: "/scratch", majorMinor: "259:0" }], { sysRoot }),
      PreflightError,
      "/scratch is on /dev/nvme1n1, which is an instance-store NVMe disk",
    );
  });
});

Deno.test("an NVMe disk of another model, and an EBS disk with a bad serial", async () => {
  await withSysfs((sys) => {
    sys.nvme("nvme1n1", "259:0", { serial: "S5GXNX0T", model: "Samsung SSD 980 PRO 1TB" });
    sys.nvme("nvme2n1", "259:1", { serial: "garbage" });
  })(async (sysRoot) => {
    await assertRejects(
      () => discoverVolumes([{ mountPoint: "/a", majorMinor: "259:0" }], { sysRoot }),
      PreflightError,
      '/a is on /dev/nvme1n1, which is not an EBS volume (NVMe model "Samsung SSD 980 PRO 1TB")',
    );
    await assertRejects(
      () => discoverVolumes([{ mountPoint: "/b", majorMinor: "259:1" }], { sysRoot }),
      PreflightError,
      '/b is on /dev/nvme2n1, an EBS volume whose NVMe serial "garbage" is not a volume id',
    );
  });
});

Deno.test("a loop device, a virtio disk, a tmpfs and an unknown device are refused", async () => {
  await withSysfs((sys) => {
    sys.loop("loop3", "7:3", "/var/tmp/disk.img");
    sys.disk("vda", "254:0", { partitions: [{ name: "vda1", majorMinor: "254:1" }] });
  })(async (sysRoot) => {
    await assertRejects(
      () => discoverVolumes([{ mountPoint: "/mnt/x", majorMinor: "7:3" }], { sysRoot }),
      PreflightError,
      "/mnt/x is on /dev/loop3, which is not an EBS volume (a loop device backed by " +
        "/var/tmp/disk.img)",
    );
    await assertRejects(
      () => discoverVolumes([{ mountPoint: "/srv", majorMinor: "254:1" }], { sysRoot }),
      PreflightError,
      "/srv is on /dev/vda1, which is not an EBS volume",
    );
    await assertRejects(
      () =>
        discoverVolumes([{
          mountPoint: "/run/x",
          majorMinor: "0:45",
          fsType: "tmpfs",
          source: "tmpfs",
        }], { sysRoot }),
      PreflightError,
      "/run/x (tmpfs on tmpfs) is not on a block device (device 0:45)",
    );
    await assertRejects(
      () => discoverVolumes([{ mountPoint: "/gone", majorMinor: "8:16" }], { sysRoot }),
      PreflightError,
      "/gone is on device 8:16, which is not a block device in",
    );
  });
});

Deno.test("a cycle in slaves/ does not loop forever", async () => {
  await withSysfs((sys) => {
    sys.nvme("nvme1n1", "259:0", { serial: serial(VOL1) });
    sys.stacked("dm-0", "253:0", ["nvme1n1"]);
    sys.stacked("dm-1", "253:1", ["dm-0"]);
    Deno.symlinkSync("../../dm-1", `${sys.path("dm-0")}/slaves/dm-1`);
  })(async (sysRoot) => {
    const volumes = await discoverVolumes([{ mountPoint: "/c", majorMinor: "253:1" }], {
      sysRoot,
    });
    assertEquals(volumes.map((v) => v.volumeId), [VOL1]);
  });
});

async function run(command: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(command, { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${command} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
}

Deno.test("real: a loop-device mount on this machine is refused, naming mount and device", {
  ignore: ignoreUnless(LOOP),
}, async () => {
  requireAvailable(LOOP);
  const dir = await Deno.makeTempDir({ prefix: "ecs-loop-" });
  const image = `${dir}/disk.img`;
  const mountPoint = `${dir}/mnt`;
  let mounted = false;
  try {
    await Deno.mkdir(mountPoint);
    await run("truncate", ["-s", "64M", image]);
    await run("mkfs.ext4", ["-q", "-F", image]);
    await run("mount", ["-o", "loop", image, mountPoint]);
    mounted = true;
    // The real /proc and /sys: resolve the mount point, then discover.
    const mounts = await resolveMountPoints([mountPoint], { cwd: "/", outputPaths: [] });
    assertEquals(mounts.length, 1);
    assertEquals(mounts[0].mountPoint, await Deno.realPath(mountPoint));
    const error = await assertRejects(() => discoverVolumes(mounts), PreflightError);
    const pattern = new RegExp(
      `^${mounts[0].mountPoint} is on (/dev/loop\\d+), which is not an EBS volume ` +
        `\\(a loop device backed by ${await Deno.realPath(image)}\\)$`,
    );
    const match = pattern.exec(error.message);
    if (!match) throw new Error(`unexpected message: ${error.message}`);
    assertEquals(match[1], mounts[0].source);
  } finally {
    if (mounted) await run("umount", [mountPoint]);
    await Deno.remove(dir, { recursive: true });
  }
});
