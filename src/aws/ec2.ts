/** EC2 through the AWS SDK: the DryRun preflight and the one concurrent round of CreateSnapshot. */
import {
  CreateSnapshotCommand,
  EC2Client as SdkEc2Client,
  type EC2ClientConfig as SdkEc2ClientConfig,
} from "@aws-sdk/client-ec2";
import { errorCode, errorMessage, PreflightError } from "../util/errors.ts";
import type { Ec2, SnapshotOutcome, SnapshotRequest } from "../run/interfaces.ts";
import type { Logger } from "../util/log.ts";

/** The SDK's EC2 client, for modules outside aws/ that pass one along (they never import the SDK). */
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

/** Makes the SDK client; retries and credential resolution are the SDK's. */
export function createEc2Client(settings: Omit<Ec2Settings, "log">): EC2Client {
  return new SdkEc2Client({
    region: settings.region,
    ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
    ...(settings.credentials ? { credentials: settings.credentials } : {}),
  });
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
 * const ec2 = createEc2(createEc2Client({ region: "eu-west-1" }), log);
 * await ec2.preflight(requests);
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
        try {
          const out = await client.send(createCommand(request, false), { abortSignal: signal });
          log.debug(`CreateSnapshot ${request.volumeId}: ${out.SnapshotId}`);
          return { volumeId: request.volumeId, ok: true, snapshotId: out.SnapshotId! };
        } catch (error) {
          const code = signal.aborted ? "Aborted" : errorCode(error);
          log.debug(`CreateSnapshot ${request.volumeId} failed: ${code}`);
          return {
            volumeId: request.volumeId,
            ok: false,
            errorCode: code,
            message: errorMessage(error),
          };
        }
      }));
    },
  };
}
