/** Volume discovery: from a mount's device, through sysfs, to the EBS volume ids beneath it. */
import { basename, dirname, join } from "node:path";
import { PreflightError } from "../util/errors.ts";

/** One entry of the instance's block device mappings (DescribeInstances). */
export interface BlockDeviceMapping {
  /** As EC2 reports it, e.g. "/dev/sdf" or "/dev/xvda". */
  deviceName: string;
  /** The EBS volume attached there. */
  volumeId: string;
}

/** A volume found beneath a mount point. */
export interface DiscoveredVolume {
  /** The EBS volume id, e.g. "vol-0123456789abcdef0". */
  volumeId: string;
  /** The first mount point (in the order given) that lives on this volume. */
  mountPoint: string;
  /** The leaf disk, e.g. "/dev/nvme1n1" or "/dev/xvdf". */
  device: string;
}

/** What discovery needs to know about a mount (a subset of mounts.ts's MountPoint). */
export interface MountDevice {
  /** The mount point, as resolved (absolute, no symbolic links). */
  mountPoint: string;
  /** "MAJ:MIN" from mountinfo. */
  majorMinor: string;
  /** The file system type, e.g. "xfs"; named in error messages. */
  fsType?: string;
  /** The mount source, e.g. "/dev/nvme1n1p1"; named in error messages. */
  source?: string;
}

/** A disk at the bottom of a device stack. */
export interface LeafDisk {
  /** Kernel name of the disk, e.g. "nvme1n1", "xvda", "loop3". */
  name: string;
  /** The partition the stack reached the disk through, e.g. "xvda1"; undefined for a whole disk. */
  partition?: string;
  /** The sysfs directory of the disk. */
  sysPath: string;
  /**
   * Device names under /dev from the mount's device down to this disk, device-mapper devices
   * by their mapper name: e.g. ["mapper/vg-data", "nvme1n1"].
   */
  chain: string[];
}

/** Options of {@linkcode discoverVolumes}. */
export interface DiscoverOptions {
  /** Root of sysfs; "/sys" by default. */
  sysRoot?: string;
  /**
   * The instance's block device mappings, needed only for Xen (`xvd*`) disks. Called at most
   * once, and only when such a disk is found, so DescribeInstances is not called on Nitro.
   */
  blockDeviceMappings?: () => Promise<readonly BlockDeviceMapping[]>;
}

const EBS_MODEL = "Amazon Elastic Block Store";
const INSTANCE_STORE_MODEL = "Amazon EC2 NVMe Instance Storage";

async function readTrimmed(path: string): Promise<string | undefined> {
  try {
    return (await Deno.readTextFile(path)).trim();
  } catch {
    return undefined;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Walks sysfs from the block device `majorMinor` down to its leaf disks: through `slaves/`
 * (device-mapper, LVM, thin pools, dm-crypt, MD RAID), and from a partition to its disk.
 * Returns the disks in a stable order (depth first, `slaves/` entries sorted by name), each
 * once. Throws PreflightError naming `mountPoint` when the device is not in sysfs.
 */
export async function findLeafDisks(
  majorMinor: string,
  mountPoint: string,
  options: { sysRoot?: string } = {},
): Promise<LeafDisk[]> {
  const sysRoot = options.sysRoot ?? "/sys";
  const link = join(sysRoot, "dev", "block", majorMinor);
  let start: string;
  try {
    start = await Deno.realPath(link);
  } catch (error) {
    throw new PreflightError(
      `${mountPoint} is on device ${majorMinor}, which is not a block device in ${
        join(sysRoot, "dev", "block")
      }; give the volume ids on the command line`,
      { cause: error },
    );
  }
  const leaves: LeafDisk[] = [];
  const seen = new Set<string>();
  await walk(start, [], leaves, seen);
  return leaves;
}

async function walk(
  sysPath: string,
  chain: readonly string[],
  leaves: LeafDisk[],
  seen: Set<string>,
  partition?: string,
): Promise<void> {
  if (seen.has(sysPath)) return;
  seen.add(sysPath);
  const name = basename(sysPath);
  const dmName = await readTrimmed(join(sysPath, "dm", "name"));
  const here = [...chain, dmName ? `mapper/${dmName}` : name];
  // A partition is a subdirectory of its disk, marked by a `partition` file.
  if (await exists(join(sysPath, "partition"))) {
    await walk(dirname(sysPath), here, leaves, seen, name);
    return;
  }
  const slaves = await listSlaves(sysPath);
  if (slaves.length === 0) {
    leaves.push({ name, partition, sysPath, chain: here });
    return;
  }
  for (const slave of slaves) await walk(slave, here, leaves, seen);
}

/** The resolved sysfs directories of a device's `slaves/` entries, sorted by name. */
async function listSlaves(sysPath: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(join(sysPath, "slaves"))) names.push(entry.name);
  } catch {
    return [];
  }
  names.sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
  return await Promise.all(names.map((n) => Deno.realPath(join(sysPath, "slaves", n))));
}

/** "vol0123abcd..." (the NVMe serial of an EBS volume) as "vol-0123abcd...". */
export function volumeIdFromSerial(serial: string): string | undefined {
  const match = /^vol-?([0-9a-f]{8}|[0-9a-f]{17})$/.exec(serial.trim());
  return match ? `vol-${match[1]}` : undefined;
}

/**
 * The block device mapping names a Xen disk may be listed under: for `xvda1`, "sda1",
 * "xvda1", then the disk "sda", "xvda". Without "/dev/".
 */
export function xenCandidateNames(disk: string, partition?: string): string[] {
  const names: string[] = [];
  for (const name of partition ? [partition, disk] : [disk]) {
    const letters = name.replace(/^(xvd|sd)/, "");
    names.push(`sd${letters}`, `xvd${letters}`);
  }
  return names;
}

function stripDev(name: string): string {
  return name.replace(/^\/dev\//, "");
}

function describePath(mount: MountDevice, leaf: LeafDisk): string {
  const shown = leaf.partition ?? leaf.name;
  const via = leaf.chain.filter((n) => n !== leaf.name && n !== shown);
  const through = via.length > 0 ? ` (through ${via.map((n) => `/dev/${n}`).join(", ")})` : "";
  return `${mount.mountPoint} is on /dev/${shown}${through}`;
}

/**
 * Finds the EBS volumes beneath each mount: NVMe EBS disks by their serial, Xen `xvd*` disks
 * through the instance's block device mappings. Volumes are returned once each, in the order
 * of the mounts and then of the disks. Throws PreflightError naming the mount and the device
 * for anything that is not an EBS volume (loop devices, instance store, unmapped disks): a
 * snapshot of only some of a file system's disks would not be a backup.
 *
 * @example
 * ```ts
 * const volumes = await discoverVolumes([{ mountPoint: "/data", majorMinor: "259:1" }]);
 * // [{ volumeId: "vol-0123456789abcdef0", mountPoint: "/data", device: "/dev/nvme1n1" }]
 * ```
 */
export async function discoverVolumes(
  mounts: readonly MountDevice[],
  options: DiscoverOptions = {},
): Promise<DiscoveredVolume[]> {
  const sysRoot = options.sysRoot ?? "/sys";
  let mappings: Promise<readonly BlockDeviceMapping[]> | undefined;
  const loadMappings = () => {
    if (!options.blockDeviceMappings) return undefined;
    mappings ??= options.blockDeviceMappings();
    return mappings;
  };

  const result: DiscoveredVolume[] = [];
  const seen = new Set<string>();
  for (const mount of mounts) {
    if (mount.majorMinor.startsWith("0:")) {
      const what = [mount.fsType, mount.source && `on ${mount.source}`].filter(Boolean).join(" ");
      throw new PreflightError(
        `${mount.mountPoint}${what ? ` (${what})` : ""} is not on a block device ` +
          `(device ${mount.majorMinor}), so its EBS volumes cannot be discovered; ` +
          `give the volume ids on the command line`,
      );
    }
    const leaves = await findLeafDisks(mount.majorMinor, mount.mountPoint, { sysRoot });
    for (const leaf of leaves) {
      const volumeId = await volumeOf(mount, leaf, loadMappings);
      if (seen.has(volumeId)) continue;
      seen.add(volumeId);
      result.push({ volumeId, mountPoint: mount.mountPoint, device: `/dev/${leaf.name}` });
    }
  }
  return result;
}

async function volumeOf(
  mount: MountDevice,
  leaf: LeafDisk,
  loadMappings: () => Promise<readonly BlockDeviceMapping[]> | undefined,
): Promise<string> {
  const where = describePath(mount, leaf);
  if (/^nvme\d+n\d+$/.test(leaf.name)) {
    const model = await readTrimmed(join(leaf.sysPath, "device", "model"));
    if (model === INSTANCE_STORE_MODEL) {
      throw new PreflightError(
        `${where}, which is an instance-store NVMe disk (${model}), not an EBS volume; ` +
          `instance store cannot be snapshotted`,
      );
    }
    if (model !== EBS_MODEL) {
      throw new PreflightError(
        `${where}, which is not an EBS volume (NVMe model ${JSON.stringify(model ?? "unknown")})`,
      );
    }
    const serial = await readTrimmed(join(leaf.sysPath, "device", "serial")) ?? "";
    const volumeId = volumeIdFromSerial(serial);
    if (!volumeId) {
      throw new PreflightError(
        `${where}, an EBS volume whose NVMe serial ${JSON.stringify(serial)} is not a volume id`,
      );
    }
    return volumeId;
  }

  if (/^xvd[a-z]+$/.test(leaf.name)) {
    const pending = loadMappings();
    if (!pending) {
      throw new PreflightError(
        `${where}, a Xen disk; finding its volume needs the instance's block device mappings`,
      );
    }
    const byName = new Map((await pending).map((m) => [stripDev(m.deviceName), m.volumeId]));
    const candidates = xenCandidateNames(leaf.name, leaf.partition);
    for (const candidate of candidates) {
      const volumeId = byName.get(candidate);
      if (volumeId) return volumeId;
    }
    throw new PreflightError(
      `${where}, which matches no block device mapping of this instance (looked for ${
        candidates.map((c) => `/dev/${c}`).join(", ")
      }; the instance has ${[...byName.keys()].map((c) => `/dev/${c}`).join(", ") || "none"})`,
    );
  }

  if (/^loop\d+$/.test(leaf.name)) {
    const backing = await readTrimmed(join(leaf.sysPath, "loop", "backing_file"));
    throw new PreflightError(
      `${where}, which is not an EBS volume (a loop device${
        backing ? ` backed by ${backing}` : ""
      })`,
    );
  }
  throw new PreflightError(`${where}, which is not an EBS volume`);
}
