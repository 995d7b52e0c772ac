/** The drill's volumes in EC2: the DryRun checks, create from a snapshot (gp3, tagged), attach, detach, delete, and the leftovers of a killed drill. */
import {
  AttachVolumeCommand,
  CreateVolumeCommand,
  DeleteVolumeCommand,
  DescribeVolumesCommand,
  DetachVolumeCommand,
  type Volume,
} from "@aws-sdk/client-ec2";
import type { EC2Client } from "./ec2.ts";
import { DRILL_TAG, PROGRAM, RUN_ID_TAG } from "../types/tags.ts";
import { DrillError, errorCode, errorMessage, ExitCode } from "../util/errors.ts";
import { delay } from "../util/deadline.ts";

/** What the drill's volume calls need. */
export interface DrillEc2 {
  /** The SDK client. */
  client: EC2Client;
  /** The instance the volumes are attached to (the value of their drill tag). */
  instanceId: string;
  /** Bound of each wait. */
  timeoutMs: number;
  /** Pause between two looks while waiting; 1 s by default. */
  pollMs?: number;
}

function tags(ec2: DrillEc2, runId: string, snapshotId: string) {
  return [{
    ResourceType: "volume" as const,
    Tags: [
      { Key: DRILL_TAG, Value: ec2.instanceId },
      { Key: RUN_ID_TAG, Value: runId },
      { Key: "Name", Value: `${PROGRAM} restore drill of ${snapshotId}` },
    ],
  }];
}

/**
 * Proves by DryRun that CreateVolume (with the drill's tag) and AttachVolume are allowed;
 * throws DrillError (exit 18) naming the call and the missing permission.
 */
export async function checkPermissions(
  ec2: DrillEc2,
  request: { snapshotId: string; zone: string; runId: string },
  signal: AbortSignal,
): Promise<void> {
  const calls = [
    new CreateVolumeCommand({
      SnapshotId: request.snapshotId,
      AvailabilityZone: request.zone,
      VolumeType: "gp3",
      TagSpecifications: tags(ec2, request.runId, request.snapshotId),
      DryRun: true,
    }),
    new AttachVolumeCommand({
      VolumeId: "vol-00000000000000000",
      InstanceId: ec2.instanceId,
      Device: "/dev/sdz",
      DryRun: true,
    }),
  ];
  for (const command of calls) {
    try {
      // deno-lint-ignore no-explicit-any
      await ec2.client.send(command as any, { abortSignal: signal });
    } catch (error) {
      const code = errorCode(error);
      // AttachVolume of a made-up volume: allowed, else EC2 would say UnauthorizedOperation.
      if (code === "DryRunOperation" || code.startsWith("InvalidVolume")) continue;
      const name = command.constructor.name.replace(/Command$/, "");
      throw new DrillError(
        `${name} (DryRun) failed: ${code}: ${
          code === "UnauthorizedOperation"
            ? "not permitted (see packaging/iam-policy-drill.json)"
            : errorMessage(error)
        }`,
        ExitCode.drillRefused,
        { cause: error },
      );
    }
  }
}

async function describeVolume(ec2: DrillEc2, volumeId: string, signal: AbortSignal) {
  const out = await ec2.client.send(
    new DescribeVolumesCommand({ VolumeIds: [volumeId] }),
    { abortSignal: signal },
  );
  return out.Volumes?.[0];
}

async function waitFor(
  ec2: DrillEc2,
  volumeId: string,
  what: string,
  done: (volume: Volume | undefined) => boolean,
  signal: AbortSignal,
): Promise<void> {
  const until = Date.now() + ec2.timeoutMs;
  while (!done(await describeVolume(ec2, volumeId, signal))) {
    if (Date.now() > until) {
      throw new DrillError(
        `${volumeId} was not ${what} within --drill-timeout ${ec2.timeoutMs / 1000}s`,
        ExitCode.drillFailed,
      );
    }
    await delay(ec2.pollMs ?? 1_000, { signal });
  }
}

/** Creates a gp3 volume from a snapshot in `zone`, tagged as the drill's; waits until available. */
export async function createDrillVolume(
  ec2: DrillEc2,
  request: { snapshotId: string; zone: string; runId: string },
  signal: AbortSignal,
): Promise<string> {
  const out = await ec2.client.send(
    new CreateVolumeCommand({
      SnapshotId: request.snapshotId,
      AvailabilityZone: request.zone,
      VolumeType: "gp3",
      TagSpecifications: tags(ec2, request.runId, request.snapshotId),
    }),
    { abortSignal: signal },
  ).catch((error) => {
    throw new DrillError(
      `CreateVolume from ${request.snapshotId} failed: ${errorCode(error)}: ${errorMessage(error)}`,
      ExitCode.drillFailed,
      { cause: error },
    );
  });
  return out.VolumeId!;
}

/** Waits until a new volume is available. */
export function waitAvailable(
  ec2: DrillEc2,
  volumeId: string,
  signal: AbortSignal,
): Promise<void> {
  return waitFor(ec2, volumeId, "available", (v) => v?.State === "available", signal);
}

/** Attaches a volume at `device` and waits until EC2 says it is attached. */
export async function attachDrillVolume(
  ec2: DrillEc2,
  volumeId: string,
  device: string,
  signal: AbortSignal,
): Promise<void> {
  await ec2.client.send(
    new AttachVolumeCommand({ VolumeId: volumeId, InstanceId: ec2.instanceId, Device: device }),
    { abortSignal: signal },
  ).catch((error) => {
    throw new DrillError(
      `AttachVolume ${volumeId} at ${device} failed: ${errorCode(error)}: ${errorMessage(error)}`,
      ExitCode.drillFailed,
      { cause: error },
    );
  });
  await waitFor(
    ec2,
    volumeId,
    "attached",
    (v) => v?.Attachments?.some((a) => a.State === "attached") ?? false,
    signal,
  );
}

/**
 * Detaches (when attached) and deletes a drill volume, waiting for each; a volume already gone
 * is fine. Throws DrillError (exit 20) naming the volume.
 */
export async function removeDrillVolume(
  ec2: DrillEc2,
  volumeId: string,
  signal: AbortSignal,
): Promise<void> {
  try {
    const volume = await describeVolume(ec2, volumeId, signal);
    if (!volume) return;
    const attachment = (volume.Attachments ?? []).find((a) => a.State !== "detached");
    if (attachment) {
      await ec2.client.send(
        new DetachVolumeCommand({
          VolumeId: volumeId,
          InstanceId: attachment.InstanceId,
          Device: attachment.Device,
          Force: true,
        }),
        { abortSignal: signal },
      );
      await waitFor(ec2, volumeId, "detached", (v) => v?.State === "available", signal);
    }
    await ec2.client.send(new DeleteVolumeCommand({ VolumeId: volumeId }), {
      abortSignal: signal,
    });
  } catch (error) {
    if (errorCode(error) === "InvalidVolume.NotFound") return;
    throw new DrillError(
      `${volumeId} (a drill volume) could not be detached and deleted: ${errorCode(error)}: ${
        errorMessage(error)
      }; the next drill on this instance removes it, or: aws ec2 delete-volume --volume-id ${volumeId}`,
      ExitCode.drillLeftover,
      { cause: error },
    );
  }
}

/** The volumes a drill on this instance created and did not remove (it was killed). */
export async function drillLeftovers(ec2: DrillEc2, signal: AbortSignal): Promise<string[]> {
  const out = await ec2.client.send(
    new DescribeVolumesCommand({
      Filters: [{ Name: `tag:${DRILL_TAG}`, Values: [ec2.instanceId] }],
    }),
    { abortSignal: signal },
  );
  return (out.Volumes ?? [])
    .filter((v) => v.State !== "deleting" && v.State !== "deleted")
    .map((v) => v.VolumeId!)
    .filter(Boolean);
}
