/** After the thaw: the snapshots EC2 holds with this run's id tag (DescribeSnapshots, owner self). */
import { DescribeSnapshotsCommand } from "@aws-sdk/client-ec2";
import type { EC2Client } from "./ec2.ts";
import type { FoundSnapshot, SnapshotRequest } from "../run/interfaces.ts";
import { RUN_ID_TAG } from "../plan/tags.ts";

/**
 * Lists the snapshots tagged with the run id that `requests` carry (every page). Throws the
 * SDK's error when it cannot look (UnauthorizedOperation without ec2:DescribeSnapshots).
 *
 * @example
 * ```ts
 * const found = await findRunSnapshots(client, plan.volumes, AbortSignal.timeout(15_000));
 * ```
 */
export async function findRunSnapshots(
  client: EC2Client,
  requests: readonly SnapshotRequest[],
  signal: AbortSignal,
): Promise<FoundSnapshot[]> {
  const runId = requests[0]?.tags[RUN_ID_TAG];
  if (!runId) return [];
  const found: FoundSnapshot[] = [];
  let token: string | undefined;
  do {
    const out = await client.send(
      new DescribeSnapshotsCommand({
        OwnerIds: ["self"],
        Filters: [{ Name: `tag:${RUN_ID_TAG}`, Values: [runId] }],
        NextToken: token,
      }),
      { abortSignal: signal },
    );
    for (const s of out.Snapshots ?? []) {
      if (s.SnapshotId) found.push({ snapshotId: s.SnapshotId, volumeId: s.VolumeId ?? "" });
    }
    token = out.NextToken;
  } while (token);
  return found;
}
