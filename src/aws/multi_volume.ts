/**
 * `--multi-volume`: one CreateSnapshots call for the instance, selecting exactly the requested
 * volumes, so all of them are snapshotted at one instant (crash-consistent across volumes).
 */
import {
  CreateSnapshotsCommand,
  type CreateSnapshotsCommandInput,
  DescribeInstancesCommand,
} from "@aws-sdk/client-ec2";
import { type EC2Client, findRunSnapshots, warnIfLate } from "./ec2.ts";
import { ec2Clock, heldUntilValue } from "./ec2_clock.ts";
import { errorCode, errorMessage, PreflightError } from "../util/errors.ts";
import type { Ec2, SnapshotOutcome, SnapshotRequest } from "../types/side_effects.ts";
import type { Logger } from "../util/log.ts";
import { checkMultiVolumeRequests } from "../types/multi_volume.ts";
import { HELD_UNTIL_TAG, MARKER_TAG, MULTI_VOLUME_MARKER, withoutMarker } from "../types/tags.ts";
import { classifyFailure, guardCreateCall } from "./create_guard.ts";

/** Which of the instance's volumes CreateSnapshots must leave out. */
export interface Selection {
  /** The instance whose volumes CreateSnapshots snapshots. */
  instanceId: string;
  /** True when the boot volume is not among the requested volumes. */
  excludeBootVolume: boolean;
  /** The attached data volumes that were not requested. */
  excludeDataVolumeIds: string[];
}

/** Works out the selection from the instance's block device mappings; throws PreflightError. */
export async function selectVolumes(
  client: EC2Client,
  instanceId: string,
  volumeIds: readonly string[],
  signal?: AbortSignal,
): Promise<Selection> {
  let instance;
  try {
    const out = await client.send(
      new DescribeInstancesCommand({ InstanceIds: [instanceId] }),
      { abortSignal: signal },
    );
    instance = out.Reservations?.[0]?.Instances?.[0];
  } catch (error) {
    throw new PreflightError(
      `--multi-volume: DescribeInstances ${instanceId} failed: ${errorCode(error)}: ${
        errorMessage(error)
      }`,
      { cause: error },
    );
  }
  if (!instance) throw new PreflightError(`--multi-volume: no instance ${instanceId}`);
  const attached = (instance.BlockDeviceMappings ?? [])
    .filter((m) => m.Ebs?.VolumeId)
    .map((m) => ({ volumeId: m.Ebs!.VolumeId!, boot: m.DeviceName === instance.RootDeviceName }));
  const missing = volumeIds.filter((id) => !attached.some((a) => a.volumeId === id));
  if (missing.length > 0) {
    throw new PreflightError(
      `--multi-volume: ${missing.join(", ")} not attached to ${instanceId} (attached: ${
        attached.map((a) => a.volumeId).join(", ") || "none"
      })`,
    );
  }
  const boot = attached.find((a) => a.boot);
  return {
    instanceId,
    excludeBootVolume: boot === undefined || !volumeIds.includes(boot.volumeId),
    excludeDataVolumeIds: attached
      .filter((a) => !a.boot && !volumeIds.includes(a.volumeId))
      .map((a) => a.volumeId),
  };
}

function createInput(
  selection: Selection,
  requests: readonly SnapshotRequest[],
  dryRun: boolean,
): CreateSnapshotsCommandInput {
  const tags = Object.entries({
    ...withoutMarker(requests[0].tags),
    [MARKER_TAG]: MULTI_VOLUME_MARKER,
  }).map(([Key, Value]) => ({ Key, Value }));
  return {
    InstanceSpecification: {
      InstanceId: selection.instanceId,
      ExcludeBootVolume: selection.excludeBootVolume,
      ...(selection.excludeDataVolumeIds.length > 0
        ? { ExcludeDataVolumeIds: selection.excludeDataVolumeIds }
        : {}),
    },
    Description: requests[0].description,
    TagSpecifications: tags.length > 0 ? [{ ResourceType: "snapshot", Tags: tags }] : undefined,
    DryRun: dryRun,
  };
}

/**
 * The Ec2 of `--multi-volume`, backed by an SDK client.
 *
 * @example
 * ```ts
 * import type { Logger } from "../util/log.ts";
 * import type { EC2Client } from "./ec2.ts";
 * const client = {} as EC2Client, log = {} as Logger;
 * const ec2 = createMultiVolumeEc2(client, { instanceId: "i-0123456789abcdef0", log });
 * ```
 */
export function createMultiVolumeEc2(
  client: EC2Client,
  settings: { instanceId: string; log: Logger },
): Ec2 {
  const { instanceId, log } = settings;
  let selection: Selection | undefined;
  return {
    async preflight(requests, signal) {
      checkMultiVolumeRequests(requests);
      selection = await selectVolumes(client, instanceId, requests.map((r) => r.volumeId), signal);
      log.debug(
        `multi-volume: ${instanceId}, ExcludeBootVolume ${selection.excludeBootVolume}, ` +
          `ExcludeDataVolumeIds [${selection.excludeDataVolumeIds.join(", ")}]`,
      );
      try {
        await client.send(new CreateSnapshotsCommand(createInput(selection, requests, true)), {
          abortSignal: signal,
        });
      } catch (error) {
        const code = errorCode(error);
        if (code === "DryRunOperation") return;
        const hint = code === "UnauthorizedOperation"
          ? "not permitted (the IAM policy needs ec2:CreateSnapshots and ec2:CreateTags)"
          : errorMessage(error);
        throw new PreflightError(
          `preflight CreateSnapshots (DryRun) for ${instanceId} failed: ${code}: ${hint}`,
          { cause: error },
        );
      }
      log.debug("preflight: the endpoint did not answer DryRunOperation for CreateSnapshots");
    },

    async createSnapshots(requests, signal) {
      if (!selection) throw new Error("multi-volume: createSnapshots before preflight");
      let made;
      try {
        const command = new CreateSnapshotsCommand(createInput(selection, requests, false));
        const out = await client.send(guardCreateCall(command, signal), { abortSignal: signal });
        made = out.Snapshots ?? [];
      } catch (error) {
        const { kind, code, message } = classifyFailure(error, signal);
        log.debug(`CreateSnapshots ${instanceId} failed (${kind}): ${code}`);
        return requests.map((r) => ({
          volumeId: r.volumeId,
          ok: false,
          kind,
          errorCode: code,
          message,
        }));
      }
      log.debug(
        `CreateSnapshots ${instanceId}: ${made.map((s) => `${s.VolumeId}=${s.SnapshotId}`)}`,
      );
      for (const s of made) {
        warnIfLate(s.SnapshotId ?? "", s.StartTime, requests[0]?.tags[HELD_UNTIL_TAG], log);
      }
      const requested = new Set(requests.map((r) => r.volumeId));
      for (const extra of made.filter((s) => !requested.has(s.VolumeId!))) {
        // Not asked for, so not reported, but it carries our marker: retention may count it.
        log.warn(
          `CreateSnapshots also made ${extra.SnapshotId} of ${extra.VolumeId}, which was not ` +
            `requested (attached after the preflight, or ExcludeDataVolumeIds ignored)`,
          { evenWhenQuiet: true },
        );
      }
      return requests.map((r): SnapshotOutcome => {
        const snapshot = made.find((s) => s.VolumeId === r.volumeId);
        return snapshot?.SnapshotId
          ? { volumeId: r.volumeId, ok: true, snapshotId: snapshot.SnapshotId }
          : {
            volumeId: r.volumeId,
            ok: false,
            kind: "error",
            errorCode: "NotCreated",
            message: "CreateSnapshots returned no snapshot of this volume",
          };
      });
    },

    findRunSnapshots: (requests, signal) => findRunSnapshots(client, requests, signal),

    heldUntil: (monotonicMs) => heldUntilValue(ec2Clock(client), monotonicMs),
  };
}
