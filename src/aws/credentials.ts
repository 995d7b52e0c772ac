/** The SDK's credentials for the source the plan chose (plan/credentials.ts, types/credentials.ts); loads the providers on use. */
import type {
  AwsCredentialIdentity as SdkAwsCredentialIdentity,
  AwsCredentialIdentityProvider as SdkAwsCredentialIdentityProvider,
} from "@smithy/types";
import type { CredentialSource } from "../types/credentials.ts";
import { errorMessage, PreflightError } from "../util/errors.ts";
import { within } from "../util/deadline.ts";

/** Static AWS credentials, as the SDK takes them. */
export type AwsCredentialIdentity = SdkAwsCredentialIdentity;

/** A function the SDK calls for credentials (and again when they expire). */
export type AwsCredentialIdentityProvider = SdkAwsCredentialIdentityProvider;

/**
 * The SDK credentials for a source (undefined: let the SDK use its default chain).
 *
 * @example
 * ```ts
 * import { createEc2Client } from "./ec2.ts";
 * import type { CredentialSource } from "../types/credentials.ts";
 * const source = {} as CredentialSource;
 * const client = createEc2Client({ region: "us-east-1", credentials: await sdkCredentials(source) });
 * ```
 */
export async function sdkCredentials(
  source: CredentialSource,
): Promise<AwsCredentialIdentity | AwsCredentialIdentityProvider | undefined> {
  switch (source.kind) {
    case "static":
      return source.identity;
    case "profile": {
      const { fromIni } = await import("@aws-sdk/credential-provider-ini");
      return fromIni({ profile: source.profile });
    }
    case "instance-role": {
      const { fromInstanceMetadata } = await import("@smithy/credential-provider-imds");
      return fromInstanceMetadata({ timeout: 1000, maxRetries: 1 });
    }
    case "sdk-default-chain":
      return undefined;
  }
}

/**
 * Asks the client for its credentials before anything is locked, so that none is one line saying
 * where the tool looked and how to give them (not an SDK error blaming a volume). Bounded by
 * `timeoutMs` (the instance role's metadata may be slow or absent).
 *
 * @example
 * ```ts
 * import { createEc2Client } from "./ec2.ts";
 * import type { CredentialSource } from "../types/credentials.ts";
 * const source = {} as CredentialSource;
 * const client = createEc2Client({ region: "us-east-1", credentials: await sdkCredentials(source) });
 * await checkCredentials(() => client.config.credentials(), source, 10_000);
 * ```
 */
export async function checkCredentials(
  resolve: () => Promise<unknown>,
  source: CredentialSource,
  timeoutMs: number,
): Promise<void> {
  let answered: unknown;
  try {
    answered = await within(resolve().then(() => true), timeoutMs);
  } catch (error) {
    const name = (error as Error)?.name ?? "";
    if (source.kind === "sdk-default-chain" && /CredentialsProviderError/.test(name)) {
      throw new PreflightError(source.whenMissing, { cause: error });
    }
    throw new PreflightError(
      `no AWS credentials from ${source.describe}: ${errorMessage(error)}`,
      { cause: error },
    );
  }
  if (answered === undefined) {
    throw new PreflightError(
      `no AWS credentials from ${source.describe} within ${timeoutMs / 1000} s`,
    );
  }
}
