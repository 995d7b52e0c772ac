/**
 * The AWS SDK as the rest of the program sees it: the SDK's types, and its credential providers
 * and shared-config reader, each loaded on first use. Outside src/aws/ nothing imports the SDK.
 */
import type { EC2Client } from "@aws-sdk/client-ec2";
import type { FromIniInit } from "@aws-sdk/credential-provider-ini";
import type { RemoteProviderInit } from "@smithy/credential-provider-imds";
import type {
  AwsCredentialIdentity,
  AwsCredentialIdentityProvider,
  SharedConfigFiles,
} from "@smithy/types";

export type { AwsCredentialIdentity, AwsCredentialIdentityProvider, EC2Client, SharedConfigFiles };

/** The SDK's `fromIni`: credentials of a profile of the shared config and credentials files. */
export async function fromIni(init: FromIniInit): Promise<AwsCredentialIdentityProvider> {
  const sdk = await import("@aws-sdk/credential-provider-ini");
  return sdk.fromIni(init);
}

/** The SDK's `fromInstanceMetadata`: the instance role's credentials (IMDSv2). */
export async function fromInstanceMetadata(
  init: RemoteProviderInit,
): Promise<AwsCredentialIdentityProvider> {
  const sdk = await import("@smithy/credential-provider-imds");
  return sdk.fromInstanceMetadata(init);
}

/** The SDK's `loadSharedConfigFiles`: ~/.aws/config and ~/.aws/credentials, parsed. */
export async function loadSharedConfigFiles(): Promise<SharedConfigFiles> {
  const sdk = await import("@smithy/shared-ini-file-loader");
  return await sdk.loadSharedConfigFiles();
}
