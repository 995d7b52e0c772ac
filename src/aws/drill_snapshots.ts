/** The drill's lookups in EC2: a run's snapshots (by run id, by one snapshot, or the newest run of volumes) and this instance's zone and devices. */
import {
  DescribeInstancesCommand,
  DescribeSnapshotsCommand,
  type DescribeSnapshotsCommandInput,
  type Snapshot,
} from "@aws-sdk/client-ec2";
import type { EC2Client } from "./ec2.ts";
import { consistencyUnknown } from "./retention.ts";
import { RUN_ID_TAG } from "../types/tags.ts";
import { DrillError, errorCode, errorMessage, ExitCode } from "../util/errors.ts";
import type { DrillTarget } from "../types/drill.ts";

/** One snapshot of a run, as the drill needs it. */
export interface RunSnapshot {
  /** snap-... */
  snapshotId: string;
  /** The volume EC2 says it is of. */
  volumeId: string;
  /** pending, completed, error ... */
  state: string;
  /** e.g. "80%". */
  progress: string;
  /** Its size in GiB. */
  sizeGiB: number;
  /** Its tags. */
  tags: Record<string, string>;
  /** Started after its run's held-until instant: of unknown consistency. */
  consistencyUnknown: boolean;
  /** When EC2 started it. */
  startTime?: Date;
}

function refused(what: string, error: unknown): DrillError {
  return new DrillError(
    `${what} failed: ${errorCode(error)}: ${errorMessage(error)}`,
    ExitCode.drillRefused,
    { cause: error },
  );
}

async function describe(
  client: EC2Client,
  input: DescribeSnapshotsCommandInput,
  signal: AbortSignal,
): Promise<Snapshot[]> {
  const found: Snapshot[] = [];
  let token: string | undefined;
  do {
    const out = await client.send(
      new DescribeSnapshotsCommand({ ...input, NextToken: token }),
      { abortSignal: signal },
    ).catch((error) => {
      throw refused("DescribeSnapshots (ec2:DescribeSnapshots)", error);
    });
    found.push(...out.Snapshots ?? []);
    token = out.NextToken;
  } while (token);
  return found;
}

function asRunSnapshot(s: Snapshot): RunSnapshot {
  return {
    snapshotId: s.SnapshotId ?? "",
    volumeId: s.VolumeId ?? "",
    state: s.State ?? "unknown",
    progress: s.Progress ?? "",
    sizeGiB: s.VolumeSize ?? 1,
    tags: Object.fromEntries((s.Tags ?? []).map((t) => [t.Key ?? "", t.Value ?? ""])),
    consistencyUnknown: consistencyUnknown(s),
    startTime: s.StartTime,
  };
}

const runIdOf = (s: Snapshot) => s.Tags?.find((t) => t.Key === RUN_ID_TAG)?.Value;

/**
 * The run id the target names: itself, the run of a snapshot, or the newest run that has a
 * snapshot of every volume given. Throws DrillError (exit 18) when there is none.
 */
export async function resolveRunId(
  client: EC2Client,
  target: DrillTarget,
  signal: AbortSignal,
): Promise<string> {
  if (target.kind === "run") return target.runId;
  if (target.kind === "snapshot") {
    const [snapshot] = await describe(client, { SnapshotIds: [target.snapshotId] }, signal);
    const runId = snapshot && runIdOf(snapshot);
    if (!runId) {
      throw new DrillError(
        `${target.snapshotId} has no ${RUN_ID_TAG} tag: not made by this tool (or by a version ` +
          "without run ids), so its set cannot be found",
        ExitCode.drillRefused,
      );
    }
    return runId;
  }
  const snapshots = await describe(client, {
    OwnerIds: ["self"],
    Filters: [
      { Name: "volume-id", Values: target.volumeIds },
      { Name: "tag-key", Values: [RUN_ID_TAG] },
    ],
  }, signal);
  const runs = new Map<string, { volumes: Set<string>; newest: number }>();
  for (const s of snapshots) {
    const runId = runIdOf(s)!;
    const run = runs.get(runId) ?? { volumes: new Set(), newest: 0 };
    run.volumes.add(s.VolumeId ?? "");
    run.newest = Math.max(run.newest, s.StartTime?.getTime() ?? 0);
    runs.set(runId, run);
  }
  const complete = [...runs.entries()]
    .filter(([, run]) => target.volumeIds.every((v) => run.volumes.has(v)))
    .sort((a, b) => b[1].newest - a[1].newest);
  if (complete.length === 0) {
    throw new DrillError(
      `no run of this tool has snapshots of all of ${target.volumeIds.join(", ")}`,
      ExitCode.drillRefused,
    );
  }
  return complete[0][0];
}

/** Every snapshot carrying the run id, ordered by volume id. */
export async function runSnapshots(
  client: EC2Client,
  runId: string,
  signal: AbortSignal,
): Promise<RunSnapshot[]> {
  const found = await describe(client, {
    OwnerIds: ["self"],
    Filters: [{ Name: `tag:${RUN_ID_TAG}`, Values: [runId] }],
  }, signal);
  return found.map(asRunSnapshot).sort((a, b) => a.volumeId.localeCompare(b.volumeId));
}

/** The instance's Availability Zone and the device names in use on it. */
export async function instancePlacement(
  client: EC2Client,
  instanceId: string,
  signal: AbortSignal,
): Promise<{ zone: string; devices: string[] }> {
  const out = await client.send(
    new DescribeInstancesCommand({ InstanceIds: [instanceId] }),
    { abortSignal: signal },
  ).catch((error) => {
    throw refused(`DescribeInstances ${instanceId}`, error);
  });
  const instance = out.Reservations?.flatMap((r) => r.Instances ?? [])[0];
  const zone = instance?.Placement?.AvailabilityZone;
  if (!zone) {
    throw new DrillError(`DescribeInstances: no zone for ${instanceId}`, ExitCode.drillRefused);
  }
  return {
    zone,
    devices: (instance.BlockDeviceMappings ?? []).map((m) => m.DeviceName ?? ""),
  };
}
