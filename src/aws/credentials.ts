/** The SDK's credentials for the source the plan chose (plan/credentials.ts, types/credentials.ts); loads the providers on use. */
import type {
  AwsCredentialIdentity as SdkAwsCredentialIdentity,
  AwsCredentialIdentityProvider as SdkAwsCredentialIdentityProvider,
} from "@smithy/types";
import type { CredentialSource } from "../types/credentials.ts";

/** Static AWS credentials, as the SDK takes them. */
export type AwsCredentialIdentity = SdkAwsCredentialIdentity;

/** A function the SDK calls for credentials (and again when they expire). */
export type AwsCredentialIdentityProvider = SdkAwsCredentialIdentityProvider;

/**
 * The SDK credentials for a source (undefined: let the SDK use its default chain).
 *
 * @example
 * ```ts
 * const client = createEc2Client({ region, endpoint, credentials: await sdkCredentials(plan.credentials) });
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
