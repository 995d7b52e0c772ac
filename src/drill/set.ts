/** A run's snapshots read as a restorable set: the whole set, each volume's mount point and file system, the database and its position; or why not. */
import type { RunSnapshot } from "../aws/drill_snapshots.ts";
import {
  type DatabaseTag,
  parseDatabaseTag,
  parseVolumesTag,
  type VolumeLayout,
} from "../types/restore_tags.ts";
import { DATABASE_TAG, VOLUMES_TAG } from "../types/tags.ts";

/** One snapshot of the set with where its file system goes. */
export interface SetMember {
  /** The snapshot. */
  snapshot: RunSnapshot;
  /** Its file system's type and mount point. */
  layout: VolumeLayout;
}

/** A set the drill can restore. */
export interface DrillSet {
  /** The run. */
  runId: string;
  /** One member per volume, parents' mount points first. */
  members: SetMember[];
  /** The database and its recorded position. */
  database: DatabaseTag;
}

const under = (path: string, mount: string) =>
  mount === "/" || path === mount || path.startsWith(`${mount}/`);

/** File systems the drill mounts (a tag naming another type is refused, not passed to mount). */
const FS_TYPES = new Set(["xfs", "ext4", "ext3", "ext2", "btrfs"]);

/** Directories of the running system: a restored volume is never mounted at one or above one. */
const SYSTEM_DIRS = [
  "/bin",
  "/boot",
  "/dev",
  "/etc",
  "/lib",
  "/lib32",
  "/lib64",
  "/proc",
  "/root",
  "/run",
  "/sbin",
  "/sys",
  "/tmp",
  "/usr",
  "/usr/bin",
  "/usr/lib",
  "/usr/libexec",
  "/usr/sbin",
];

/**
 * Why a path from a tag is not one the drill uses (tags are anyone's with ec2:CreateTags), or
 * undefined: it must be absolute and plain (no `.`, `..`, `//`, trailing `/` or control
 * character), so that what is checked is what is mounted and where the server writes.
 */
export function unsafeTagPath(path: string): string | undefined {
  if ([...path].some((c) => c < " " || c === "\x7f")) return "has a control character";
  if (!path.startsWith("/")) return "is not absolute";
  if (path !== "/" && path.split("/").slice(1).some((c) => c === "" || c === "." || c === "..")) {
    return "is not a plain path (., .., // or a trailing /)";
  }
  return undefined;
}

/** Why a mount point from a tag is refused, or undefined. */
function unsafeMountPoint(mountPoint: string): string | undefined {
  const plain = unsafeTagPath(mountPoint);
  if (plain) return plain;
  const system = SYSTEM_DIRS.find((d) => d === mountPoint || under(d, mountPoint));
  return system ? `would hide ${system} of the running system` : undefined;
}

/**
 * Reads the set from the snapshots' tags; returns the reasons to refuse (checked before anything
 * is created) when it is not restorable. Pending snapshots are not a reason here (waited for).
 *
 * @example
 * ```ts
 * import type { RunSnapshot } from "../aws/drill_snapshots.ts";
 * const snapshots = [] as RunSnapshot[];
 * const { set, problems } = readSet("1b4e28ba-2fa1-11d2-883f-0016d3cca427", snapshots);
 * ```
 */
export function readSet(
  runId: string,
  snapshots: readonly RunSnapshot[],
): { set?: DrillSet; problems: string[] } {
  const problems: string[] = [];
  if (snapshots.length === 0) return { problems: [`no snapshot carries the run id ${runId}`] };
  const volumesTags = snapshots.map((s) => s.tags[VOLUMES_TAG]);
  const first = snapshots[0];
  if (volumesTags.some((v) => v === undefined)) {
    return {
      problems: [
        `the snapshots of run ${runId} have no ${VOLUMES_TAG} tag: made by a version that did ` +
        "not describe its snapshots",
      ],
    };
  }
  const parsed = volumesTags.map((v) => parseVolumesTag(v!));
  const count = parsed[0]?.count ?? 0;
  if (count !== snapshots.length) {
    problems.push(
      `the run had ${count} volume(s) and ${snapshots.length} snapshot(s) of it exist ` +
        `(${snapshots.map((s) => s.snapshotId).join(", ")}): not the whole set`,
    );
  }
  for (const s of snapshots) {
    if (s.state === "error") problems.push(`${s.snapshotId} is in state error`);
    if (s.consistencyUnknown) {
      problems.push(
        `${s.snapshotId} is of unknown consistency (EC2 started it after the run had thawed)`,
      );
    }
  }
  const members: SetMember[] = [];
  snapshots.forEach((snapshot, i) => {
    const layouts = parsed[i]?.layouts ?? [];
    const layout = layouts.find((l) => l.volumeId === snapshot.volumeId) ??
      layouts.find((l) => l.volumeId === undefined);
    if (!layout) {
      problems.push(
        `${snapshot.snapshotId} (of ${snapshot.volumeId}) does not say where it was mounted: ` +
          "the run named its volumes by id; snapshot by mount point (--freeze-filesystem) to drill",
      );
      return;
    }
    const unsafe = unsafeMountPoint(layout.mountPoint);
    if (unsafe) {
      problems.push(
        `${snapshot.snapshotId} names the mount point ${
          JSON.stringify(layout.mountPoint)
        }, which ${unsafe}: refused`,
      );
      return;
    }
    if (!FS_TYPES.has(layout.fsType)) {
      problems.push(
        `${snapshot.snapshotId} names the file system ${
          JSON.stringify(layout.fsType)
        }: the drill mounts ${[...FS_TYPES].join(", ")}`,
      );
      return;
    }
    members.push({ snapshot, layout });
  });
  const mounts = members.map((m) => m.layout.mountPoint);
  const shared = mounts.find((m, i) => mounts.indexOf(m) !== i);
  if (shared) {
    problems.push(
      `${shared} spans several volumes (RAID or LVM): the drill does not assemble those yet`,
    );
  }
  const databaseValue = first.tags[DATABASE_TAG];
  const database = databaseValue === undefined ? undefined : parseDatabaseTag(databaseValue);
  if (!database) {
    problems.push(
      `the snapshots have no ${DATABASE_TAG} tag: the run locked no database (--mysql, ` +
        "--postgresql), so there is no position to check",
    );
  } else {
    for (
      const [what, path] of [["data directory", database.dataDir], [
        "binary log",
        database.logBin,
      ]] as const
    ) {
      if (path === undefined) {
        if (what === "data directory") problems.push(`the database tag names no data directory`);
        continue;
      }
      const unsafe = unsafeTagPath(path);
      if (unsafe) {
        problems.push(`the ${what} ${JSON.stringify(path)} of the database tag ${unsafe}: refused`);
        continue;
      }
      if (!mounts.some((m) => under(path, m))) {
        problems.push(
          `the ${what} ${path} is on none of the set's volumes (${mounts.join(", ")}): its ` +
            "volume was not in the snapshot set",
        );
      }
    }
  }
  if (problems.length > 0 || !database) return { problems };
  members.sort((a, b) => a.layout.mountPoint.length - b.layout.mountPoint.length);
  return { set: { runId, members, database }, problems };
}
