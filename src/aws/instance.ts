/** The instance's block device mappings (DescribeInstances), for discovering Xen `xvd*` volumes. */
import { DescribeInstancesCommand } from "@aws-sdk/client-ec2";
import type { EC2Client } from "./ec2.ts";
import { PreflightError } from "../util/errors.ts";
import type { BlockDeviceMapping } from "../host/discovery.ts";

/**
 * Returns the EBS block device mappings of one instance, in the order EC2 lists them.
 * Throws PreflightError naming the instance and the AWS error code on failure.
 *
 * @example
 * ```ts
 * import type { EC2Client } from "./ec2.ts";
 * const client = {} as EC2Client;
 * const mappings = await describeBlockDeviceMappings(client, "i-0123456789abcdef0");
 * // [{ deviceName: "/dev/xvda", volumeId: "vol-..." }, { deviceName: "/dev/sdf", ... }]
 * ```
 */
export async function describeBlockDeviceMappings(
  client: EC2Client,
  instanceId: string,
  options: { signal?: AbortSignal } = {},
): Promise<BlockDeviceMapping[]> {
  let output;
  try {
    output = await client.send(
      new DescribeInstancesCommand({ InstanceIds: [instanceId] }),
      { abortSignal: options.signal },
    );
  } catch (error) {
    const e = error as { name?: string; message?: string };
    throw new PreflightError(
      `DescribeInstances ${instanceId} (to find the volumes of Xen disks) failed: ` +
        `${e.name ?? "Error"}: ${e.message ?? String(error)}`,
      { cause: error },
    );
  }
  const instance = output.Reservations?.flatMap((r) => r.Instances ?? []).find((i) =>
    i.InstanceId === instanceId
  );
  if (!instance) {
    throw new PreflightError(`DescribeInstances: instance ${instanceId} not found`);
  }
  const mappings: BlockDeviceMapping[] = [];
  for (const mapping of instance.BlockDeviceMappings ?? []) {
    if (mapping.DeviceName && mapping.Ebs?.VolumeId) {
      mappings.push({ deviceName: mapping.DeviceName, volumeId: mapping.Ebs.VolumeId });
    }
  }
  return mappings;
}
