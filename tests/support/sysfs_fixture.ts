/** Builds realistic /sys and /proc trees in a temp directory for discovery and mount tests. */
import { dirname, join, relative } from "node:path";

/** The NVMe model strings of EC2 (trailing spaces as the kernel shows them). */
export const EBS_MODEL = "Amazon Elastic Block Store              ";
export const INSTANCE_STORE_MODEL = "Amazon EC2 NVMe Instance Storage        ";

/** A partition of a disk: kernel name and MAJ:MIN. */
export interface PartitionSpec {
  name: string;
  majorMinor: string;
}

function symlink(target: string, linkPath: string): void {
  Deno.mkdirSync(dirname(linkPath), { recursive: true });
  Deno.symlinkSync(relative(dirname(linkPath), target), linkPath);
}

function write(path: string, text: string): void {
  Deno.mkdirSync(dirname(path), { recursive: true });
  Deno.writeTextFileSync(path, text);
}

/**
 * A fake sysfs laid out as the kernel does: devices under `devices/...`, reached through
 * relative symlinks `dev/block/MAJ:MIN`, partitions as subdirectories of their disk with a
 * `partition` file, `slaves/` entries as symlinks, an NVMe disk's `device` a symlink to its
 * controller (which holds `model` and `serial`).
 */
export class SysfsFixture {
  /** Where devices are, by kernel name. */
  readonly #devices = new Map<string, string>();
  #nextController = 1;

  private constructor(readonly root: string) {}

  /** Makes an empty tree in a new temp directory; call `remove()` in `finally`. */
  static create(): SysfsFixture {
    const root = Deno.makeTempDirSync({ prefix: "ecs-sysfs-" });
    Deno.mkdirSync(join(root, "dev", "block"), { recursive: true });
    Deno.mkdirSync(join(root, "block"), { recursive: true });
    return new SysfsFixture(root);
  }

  /** The sysfs directory of a device added before. */
  path(name: string): string {
    const path = this.#devices.get(name);
    if (!path) throw new Error(`fixture: no device ${name}`);
    return path;
  }

  #addBlock(name: string, dir: string, majorMinor: string, partitions: readonly PartitionSpec[]) {
    Deno.mkdirSync(join(dir, "slaves"), { recursive: true });
    Deno.mkdirSync(join(dir, "holders"), { recursive: true });
    write(join(dir, "dev"), `${majorMinor}\n`);
    write(join(dir, "uevent"), `MAJOR=${majorMinor.split(":")[0]}\nDEVNAME=${name}\n`);
    symlink(dir, join(this.root, "dev", "block", majorMinor));
    symlink(dir, join(this.root, "block", name));
    this.#devices.set(name, dir);
    partitions.forEach((partition, index) => {
      const pdir = join(dir, partition.name);
      write(join(pdir, "partition"), `${index + 1}\n`);
      write(join(pdir, "dev"), `${partition.majorMinor}\n`);
      write(join(pdir, "uevent"), `DEVTYPE=partition\nDEVNAME=${partition.name}\n`);
      Deno.mkdirSync(join(pdir, "holders"), { recursive: true });
      symlink(pdir, join(this.root, "dev", "block", partition.majorMinor));
      this.#devices.set(partition.name, pdir);
    });
  }

  /**
   * An NVMe namespace on its own controller. `serial` is what EBS puts there
   * ("vol0123..."); `model` defaults to the EBS model.
   */
  nvme(
    name: string,
    majorMinor: string,
    options: { serial: string; model?: string; partitions?: PartitionSpec[] },
  ): this {
    // EBS gives each volume its own controller: nvme2n1 is namespace 1 of controller nvme2.
    const controller = name.replace(/n\d+$/, "");
    const slot = (0x10 + this.#nextController).toString(16);
    const pci = join(this.root, "devices", "pci0000:00", `0000:00:${slot}.0`);
    this.#nextController++;
    const controllerDir = join(pci, "nvme", controller);
    write(join(controllerDir, "model"), `${options.model ?? EBS_MODEL}\n`);
    write(join(controllerDir, "serial"), `${options.serial}\n`);
    const dir = join(controllerDir, name);
    this.#addBlock(name, dir, majorMinor, options.partitions ?? []);
    symlink(controllerDir, join(dir, "device"));
    return this;
  }

  /** A Xen paravirtual disk, e.g. xvdf on 202:80. */
  xen(name: string, majorMinor: string, options: { partitions?: PartitionSpec[] } = {}): this {
    const minor = Number(majorMinor.split(":")[1]);
    const dir = join(this.root, "devices", `vbd-${51712 + minor}`, "block", name);
    this.#addBlock(name, dir, majorMinor, options.partitions ?? []);
    return this;
  }

  /** A loop device backed by a file. */
  loop(name: string, majorMinor: string, backingFile: string): this {
    const dir = join(this.root, "devices", "virtual", "block", name);
    this.#addBlock(name, dir, majorMinor, []);
    write(join(dir, "loop", "backing_file"), `${backingFile}\n`);
    return this;
  }

  /** A plain disk of another kind (virtio, zram ...). */
  disk(name: string, majorMinor: string, options: { partitions?: PartitionSpec[] } = {}): this {
    const dir = join(this.root, "devices", "pci0000:00", "virtio9", "block", name);
    this.#addBlock(name, dir, majorMinor, options.partitions ?? []);
    return this;
  }

  /**
   * A virtual block device stacked on others (device-mapper "dm-N" with a `dm/name`, or MD
   * "mdN"): `slaves/` links to each lower device, and their `holders/` link back.
   */
  stacked(
    name: string,
    majorMinor: string,
    slaves: readonly string[],
    options: { dmName?: string; partitions?: PartitionSpec[] } = {},
  ): this {
    const dir = join(this.root, "devices", "virtual", "block", name);
    this.#addBlock(name, dir, majorMinor, options.partitions ?? []);
    if (options.dmName) write(join(dir, "dm", "name"), `${options.dmName}\n`);
    if (name.startsWith("md")) write(join(dir, "md", "level"), "raid0\n");
    for (const slave of slaves) {
      const lower = this.path(slave);
      symlink(lower, join(dir, "slaves", slave));
      symlink(dir, join(lower, "holders", name));
    }
    return this;
  }

  remove(): void {
    Deno.removeSync(this.root, { recursive: true });
  }

  /** Unplugs a device added before (a detached volume): its `block/` and `dev/block/` links. */
  unplug(name: string, majorMinor: string): void {
    for (
      const link of [join(this.root, "block", name), join(this.root, "dev", "block", majorMinor)]
    ) {
      try {
        Deno.removeSync(link);
      } catch { /* not there */ }
    }
    this.#devices.delete(name);
  }
}

/** One mount of a fake mountinfo. */
export interface MountSpec {
  mountPoint: string;
  majorMinor: string;
  fsType?: string;
  source?: string;
  /** The directory of the file system mounted here (bind mounts); "/" by default. */
  root?: string;
}

function escapeMount(field: string): string {
  return field.replace(/[\\ \t\n]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, "0")}`);
}

/** The text of a mountinfo file for the given mounts, ids and escapes as the kernel writes them. */
export function mountInfoText(mounts: readonly MountSpec[]): string {
  return mounts.map((m, i) => {
    const id = 30 + i;
    const parent = i === 0 ? 1 : 30;
    const optional = i === 0 ? "shared:1" : `shared:${i + 1} master:1`;
    return [
      id,
      parent,
      m.majorMinor,
      escapeMount(m.root ?? "/"),
      escapeMount(m.mountPoint),
      "rw,relatime",
      optional,
      "-",
      m.fsType ?? "xfs",
      escapeMount(m.source ?? "none"),
      "rw,attr2,inode64,noquota",
    ].join(" ");
  }).join("\n") + "\n";
}

/**
 * A fake /proc with `self/mountinfo` and, optionally, `self/fd/1` and `self/fd/2` links.
 * Returns the procRoot; remove it in `finally`.
 */
export function makeProc(
  mounts: readonly MountSpec[],
  options: { stdout?: string; stderr?: string } = {},
): string {
  const root = Deno.makeTempDirSync({ prefix: "ecs-proc-" });
  write(join(root, "self", "mountinfo"), mountInfoText(mounts));
  Deno.mkdirSync(join(root, "self", "fd"), { recursive: true });
  // Absolute links, as the kernel shows them; the targets need not exist.
  if (options.stdout) Deno.symlinkSync(options.stdout, join(root, "self", "fd", "1"));
  if (options.stderr) Deno.symlinkSync(options.stderr, join(root, "self", "fd", "2"));
  return root;
}
