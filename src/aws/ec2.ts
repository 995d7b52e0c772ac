/**
 * EC2 through the AWS SDK: the DryRun preflight, the one concurrent round of CreateSnapshot, and
 * after the thaw the lookup of this run's snapshots by its id tag.
 */
import {
  CreateSnapshotCommand,
  DescribeSnapshotsCommand,
  EC2Client as SdkEc2Client,
  type EC2ClientConfig as SdkEc2ClientConfig,
} from "@aws-sdk/client-ec2";
import { errorCode, errorMessage, PreflightError } from "../util/errors.ts";
import type {
  Ec2,
  FoundSnapshot,
  SnapshotOutcome,
  SnapshotRequest,
} from "../types/side_effects.ts";
import type { Logger } from "../util/log.ts";
import { classifyFailure, guardCreateCall, noResendRequestHandler } from "./create_guard.ts";
import { HELD_UNTIL_TAG, RUN_ID_TAG } from "../types/tags.ts";
import { ec2Clock, heldUntilValue } from "./ec2_clock.ts";

/** The SDK's EC2 client (an alias, so that the SDK stays inside src/aws/). */
export type EC2Client = SdkEc2Client;

/** The SDK's settings of an EC2 client. */
export type EC2ClientConfig = SdkEc2ClientConfig;

/** How to reach EC2: the region, the endpoint and the credentials the plan chose. */
export interface Ec2Settings {
  /** The region of the volumes. */
  region: string;
  /** --ec2-endpoint or $AWS_ENDPOINT_URL_EC2; AWS's endpoint when unset. */
  endpoint?: string;
  /** The credentials the plan chose; the SDK's default chain when unset. */
  credentials?: EC2ClientConfig["credentials"];
  /** Where --debug steps go. */
  log: Logger;
}

/**
 * Makes the SDK client; retries and credential resolution are the SDK's, except that the HTTP
 * layer never resends a request by itself (create_guard.ts).
 */
export function createEc2Client(settings: Omit<Ec2Settings, "log">): EC2Client {
  const client = new SdkEc2Client({
    region: settings.region,
    requestHandler: noResendRequestHandler(),
    ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
    ...(settings.credentials ? { credentials: settings.credentials } : {}),
  });
  // EC2's clock is read from the first answer on (the preflight's DryRun).
  ec2Clock(client);
  return client;
}

function tagSpecifications(request: SnapshotRequest) {
  const tags = Object.entries(request.tags).map(([Key, Value]) => ({ Key, Value }));
  return tags.length > 0 ? [{ ResourceType: "snapshot" as const, Tags: tags }] : undefined;
}

function createCommand(request: SnapshotRequest, dryRun: boolean): CreateSnapshotCommand {
  return new CreateSnapshotCommand({
    VolumeId: request.volumeId,
    Description: request.description,
    TagSpecifications: tagSpecifications(request),
    DryRun: dryRun,
  });
}

/**
 * The Ec2 of the sequence, backed by an SDK client.
 *
 * @example
 * ```ts
 * import type { SnapshotRequest } from "../types/tags.ts";
 * import type { Logger } from "../util/log.ts";
 * const requests = {} as SnapshotRequest[], log = {} as Logger;
 * const ec2 = createEc2(createEc2Client({ region: "eu-west-1" }), log);
 * await ec2.preflight(requests, AbortSignal.timeout(10_000));
 * ```
 */
export function createEc2(client: EC2Client, log: Logger): Ec2 {
  return {
    async preflight(requests, signal) {
      await Promise.all(requests.map(async (request) => {
        try {
          await client.send(createCommand(request, true), { abortSignal: signal });
        } catch (error) {
          const code = signal.aborted ? "Aborted" : errorCode(error);
          if (code === "DryRunOperation") return;
          const hint = code === "UnauthorizedOperation"
            ? "not permitted (the IAM policy needs ec2:CreateSnapshot and ec2:CreateTags)"
            : code === "Aborted"
            ? "no answer within the time limit (--snapshot-timeout), or stopped"
            : errorMessage(error);
          throw new PreflightError(
            `preflight CreateSnapshot (DryRun) for ${request.volumeId} failed: ${code}: ${hint}`,
            { cause: error },
          );
        }
        // A DryRun that succeeds is an endpoint that ignores DryRun: nothing was created.
        log.debug(`preflight: the endpoint did not answer DryRunOperation for ${request.volumeId}`);
      }));
    },

    createSnapshots(requests, signal) {
      return Promise.all(requests.map(async (request): Promise<SnapshotOutcome> => {
        const { volumeId } = request;
        try {
          const command = guardCreateCall(createCommand(request, false), signal);
          const out = await client.send(command, { abortSignal: signal });
          if (!out.SnapshotId) {
            const message = "EC2 answered without a snapshot id";
            return { volumeId, ok: false, kind: "unknown", errorCode: "NoSnapshotId", message };
          }
          log.debug(`CreateSnapshot ${volumeId}: ${out.SnapshotId}`);
          warnIfLate(out.SnapshotId, out.StartTime, request.tags[HELD_UNTIL_TAG], log);
          return { volumeId, ok: true, snapshotId: out.SnapshotId };
        } catch (error) {
          const failure = classifyFailure(error, signal);
          log.debug(`CreateSnapshot ${volumeId} failed (${failure.kind}): ${failure.code}`);
          const { kind, code: errorCode, message } = failure;
          return { volumeId, ok: false, kind, errorCode, message };
        }
      }));
    },

    findRunSnapshots: (requests, signal) => findRunSnapshots(client, requests, signal),

    heldUntil: (monotonicMs) => heldUntilValue(ec2Clock(client), monotonicMs),
  };
}

/**
 * Warns when a snapshot made while everything was held still started after its held-until tag
 * (its answer came late): it is consistent, but EC2 alone will say it may not be, and
 * retention and the restore drill will treat it so.
 */
export function warnIfLate(
  snapshotId: string,
  startTime: Date | undefined,
  heldUntil: string | undefined,
  log: Logger,
): void {
  if (!startTime || heldUntil === undefined || startTime.getTime() <= Date.parse(heldUntil)) {
    return;
  }
  log.warn(
    `${snapshotId} was taken while everything was held, but its answer came late: its ` +
      `StartTime ${startTime.toISOString()} is after its ${HELD_UNTIL_TAG} tag (${heldUntil}), ` +
      `so retention and the restore drill will count it as of unknown consistency`,
    { evenWhenQuiet: true },
  );
}

/**
 * Lists the snapshots tagged with the run id that `requests` carry (every page). Throws the
 * SDK's error when it cannot look (UnauthorizedOperation without ec2:DescribeSnapshots).
 *
 * @example
 * ```ts
 * import type { SnapshotRequest } from "../types/tags.ts";
 * const client = {} as EC2Client, requests = {} as SnapshotRequest[];
 * const found = await findRunSnapshots(client, requests, AbortSignal.timeout(15_000));
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
