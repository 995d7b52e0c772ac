/** The volumes tag of each snapshot request: the run's volume count and where each volume was mounted. */
import type { DiscoveredVolume } from "../host/discovery.ts";
import type { MountPoint } from "../host/mounts.ts";
import { type VolumeLayout, volumesTagValue } from "../types/restore_tags.ts";
import { characters, MAX_TAG_VALUE, VOLUMES_TAG } from "../types/tags.ts";

/**
 * The volumes tag's value for each volume, in order. A volume named by id (not discovered)
 * has no layout: its tag holds the count alone. A multi-volume run's snapshots share one tag
 * set, so there every value lists every volume by id. A value too long for EC2 keeps the count
 * alone, with a warning (the restore drill then cannot mount that run).
 *
 * @example
 * ```ts
 * import type { DiscoveredVolume } from "../host/discovery.ts";
 * import type { MountPoint } from "../host/mounts.ts";
 * const discovered = {} as DiscoveredVolume[], mounts = {} as MountPoint[];
 * const warn = (message: string) => console.warn(message);
 * const volumeId = "vol-0123456789abcdef0";
 * volumeTags(
 *   [volumeId],
 *   [{ volumeId, mountPoint: "/var/lib/mysql", device: "/dev/nvme1n1" }],
 *   [{ mountPoint: "/var/lib/mysql", majorMinor: "259:1", fsType: "xfs", source: "/dev/nvme1n1" }],
 *   { multiVolume: false, warn: console.warn },
 * );
 * // ["1 xfs:/var/lib/mysql"]
 * ```
 */
export function volumeTags(
  volumeIds: readonly string[],
  discovered: readonly DiscoveredVolume[],
  mounts: readonly MountPoint[],
  settings: { multiVolume: boolean; warn: (message: string) => void },
): string[] {
  const layoutOf = (volumeId: string): VolumeLayout | undefined => {
    const found = discovered.find((d) => d.volumeId === volumeId);
    const mount = found && mounts.find((m) => m.mountPoint === found.mountPoint);
    return mount && { fsType: mount.fsType, mountPoint: mount.mountPoint };
  };
  const count = volumeIds.length;
  const values = settings.multiVolume
    ? Array(count).fill(volumesTagValue(
      count,
      volumeIds.flatMap((volumeId) => {
        const layout = layoutOf(volumeId);
        return layout ? [{ ...layout, volumeId }] : [];
      }),
    ))
    : volumeIds.map((volumeId) => {
      const layout = layoutOf(volumeId);
      return volumesTagValue(count, layout ? [layout] : []);
    });
  return values.map((value) => {
    if (characters(value) <= MAX_TAG_VALUE) return value;
    settings.warn(
      `${VOLUMES_TAG}: the mount points take more than ${MAX_TAG_VALUE} characters; the tag ` +
        `holds the volume count alone, and a restore drill cannot mount this run`,
    );
    return String(count);
  });
}
