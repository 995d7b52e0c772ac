/**
 * EBS's point-in-time meaning for tests, on top of moto and the fault proxy: a snapshot is a
 * copy of a loop mount's image taken the instant its CreateSnapshot reaches the proxy; a volume
 * created from it is, once attached, that copy on a new loop device, shown in a sysfs fixture
 * (an NVMe disk whose serial is the volume id) and a device directory, as on a Nitro instance.
 */
import { DescribeSnapshotsCommand, DescribeVolumesCommand } from "@aws-sdk/client-ec2";
import type { MotoEndpoint } from "./moto.ts";
import type { Proxy, SeenRequest } from "./proxy.ts";
import { SysfsFixture } from "./sysfs_fixture.ts";

async function must(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdin: "null" }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
  return text;
}

/** The `MAJ:MIN` of a block device node. */
export async function majorMinorOf(device: string): Promise<string> {
  return (await must("lsblk", ["-dno", "MAJ:MIN", device])).trim();
}

/** A parameter of the request's query body. */
function param(request: SeenRequest, name: string): string | undefined {
  return new URLSearchParams(request.body).get(name) ?? undefined;
}

/** The emulated EBS: register live volumes' images, let the proxy call `decide`. */
export class EbsEmulator {
  /** The sysfs fixture the program is pointed at. */
  readonly sys: SysfsFixture = SysfsFixture.create();
  /** The device directory the program is pointed at. */
  readonly devRoot: string = Deno.makeTempDirSync({ prefix: "ecs-dev-" });
  readonly #dir: string = Deno.makeTempDirSync({ prefix: "ecs-ebs-" });
  readonly #live = new Map<string, string>();
  /** Copies made at CreateSnapshot, by volume id, in order. */
  readonly #copies = new Map<string, string[]>();
  readonly #attached = new Map<string, { loop: string; name: string; majorMinor: string }>();
  #next = 10;

  constructor(private moto: MotoEndpoint) {}

  /** Says which image file backs a live volume. */
  live(volumeId: string, image: string): void {
    this.#live.set(volumeId, image);
  }

  /** Loop devices of volumes attached now. */
  attachedLoops(): string[] {
    return [...this.#attached.values()].map((a) => a.loop);
  }

  /** For the proxy: acts on CreateSnapshot, AttachVolume and DetachVolume, forwards all. */
  decide = (request: SeenRequest): ReturnType<Proxy["decide"]> => {
    if (request.dryRun) return "forward";
    if (request.action === "CreateSnapshot" && request.volumeId) {
      return this.#snapshot(request.volumeId);
    }
    if (request.action === "AttachVolume" && request.volumeId) {
      return this.#attach(request.volumeId, param(request, "Device") ?? "");
    }
    if (request.action === "DetachVolume" && request.volumeId) {
      return this.#detach(request.volumeId);
    }
    return "forward";
  };

  async #snapshot(volumeId: string): Promise<boolean> {
    const image = this.#live.get(volumeId);
    if (!image) return true;
    const copy = `${this.#dir}/${volumeId}-${(this.#copies.get(volumeId) ?? []).length}.img`;
    await must("cp", ["--sparse=always", image, copy]);
    this.#copies.set(volumeId, [...this.#copies.get(volumeId) ?? [], copy]);
    return true;
  }

  /**
   * Takes a volume's snapshot image again, now (after `sync`, without a freeze): as if EC2 had
   * read the volume later than the instant the run recorded, with writes going on meanwhile.
   */
  async retake(volumeId: string): Promise<void> {
    const copies = this.#copies.get(volumeId);
    const image = this.#live.get(volumeId);
    if (!copies?.length || !image) throw new Error(`ebs: no snapshot of ${volumeId} to retake`);
    await must("sync", []);
    await must("cp", ["--sparse=always", image, copies[copies.length - 1]]);
  }

  /** The copy a snapshot stands for (its volume's copies in the order of their StartTime). */
  async #imageOfSnapshot(snapshotId: string): Promise<string | undefined> {
    const client = this.moto.client();
    const [snapshot] = (await client.send(
      new DescribeSnapshotsCommand({ SnapshotIds: [snapshotId] }),
    )).Snapshots ?? [];
    if (!snapshot?.VolumeId) return undefined;
    const all = ((await client.send(
      new DescribeSnapshotsCommand({
        Filters: [{ Name: "volume-id", Values: [snapshot.VolumeId] }],
      }),
    )).Snapshots ?? []).sort((a, b) =>
      (a.StartTime?.getTime() ?? 0) - (b.StartTime?.getTime() ?? 0) ||
      (a.SnapshotId ?? "").localeCompare(b.SnapshotId ?? "")
    );
    const index = all.findIndex((s) => s.SnapshotId === snapshotId);
    return this.#copies.get(snapshot.VolumeId)?.[index];
  }

  async #attach(volumeId: string, _device: string): Promise<boolean> {
    const [volume] = (await this.moto.client().send(
      new DescribeVolumesCommand({ VolumeIds: [volumeId] }),
    )).Volumes ?? [];
    const source = volume?.SnapshotId && await this.#imageOfSnapshot(volume.SnapshotId);
    if (!source) return true; // a volume of no emulated snapshot: EC2 attaches, nothing shows
    const image = `${this.#dir}/${volumeId}.img`;
    await must("cp", ["--sparse=always", source, image]);
    const loop = await must("losetup", ["--find", "--show", image]);
    const majorMinor = await majorMinorOf(loop);
    const name = `nvme${this.#next++}n1`;
    this.sys.nvme(name, majorMinor, { serial: volumeId.replace("vol-", "vol") });
    Deno.symlinkSync(loop, `${this.devRoot}/${name}`);
    this.#attached.set(volumeId, { loop, name, majorMinor });
    return true;
  }

  async #detach(volumeId: string): Promise<boolean> {
    const attached = this.#attached.get(volumeId);
    if (!attached) return true;
    this.#attached.delete(volumeId);
    this.sys.unplug(attached.name, attached.majorMinor);
    Deno.removeSync(`${this.devRoot}/${attached.name}`);
    // Still mounted somewhere: detached when the last user lets go (autoclear).
    await must("losetup", ["-d", attached.loop]).catch(() => {});
    return true;
  }

  /** Detaches every loop device it made and removes its files. */
  async remove(): Promise<void> {
    for (const volumeId of [...this.#attached.keys()]) await this.#detach(volumeId);
    this.sys.remove();
    Deno.removeSync(this.devRoot, { recursive: true });
    Deno.removeSync(this.#dir, { recursive: true });
  }
}
