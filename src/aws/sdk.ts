/**
 * The AWS SDK as the rest of the program sees it: the SDK's types, and its credential providers
 * and shared-config reader, each loaded on first use. Outside src/aws/ nothing imports the SDK.
 */
import type { EC2Client as SdkEc2Client } from "@aws-sdk/client-ec2";
import type { FromIniInit as SdkFromIniInit } from "@aws-sdk/credential-provider-ini";
import type { RemoteProviderInit as SdkRemoteProviderInit } from "@smithy/credential-provider-imds";
import type {
  AwsCredentialIdentity as SdkAwsCredentialIdentity,
  AwsCredentialIdentityProvider as SdkAwsCredentialIdentityProvider,
  SharedConfigFiles as SdkSharedConfigFiles,
} from "@smithy/types";

/** The SDK's EC2 client (`@aws-sdk/client-ec2`). */
export type EC2Client = SdkEc2Client;

/** Static AWS credentials: an access key id, its secret, and maybe a session token. */
export type AwsCredentialIdentity = SdkAwsCredentialIdentity;

/** A function the SDK calls for credentials (and again when they expire). */
export type AwsCredentialIdentityProvider = SdkAwsCredentialIdentityProvider;

/** The options of {@linkcode fromIni}: the SDK's, e.g. `{ profile: "backup" }`. */
export type FromIniInit = SdkFromIniInit;

/** The options of {@linkcode fromInstanceMetadata}: the SDK's, e.g. `{ timeout: 1000 }`. */
export type RemoteProviderInit = SdkRemoteProviderInit;

/** ~/.aws/config and ~/.aws/credentials, parsed: profile name -> key -> value. */
export type SharedConfigFiles = SdkSharedConfigFiles;

/**
 * The SDK's `fromIni`: the credentials of a profile of the shared config and credentials files.
 *
 * @example
 * ```ts
 * const credentials = await fromIni({ profile: "backup" });
 * ```
 */
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

/**
 * The SDK's `loadSharedConfigFiles`: ~/.aws/config and ~/.aws/credentials, parsed.
 *
 * @example
 * ```ts
 * const { configFile } = await loadSharedConfigFiles();
 * const region = configFile.default?.region;
 * ```
 */
export async function loadSharedConfigFiles(): Promise<SharedConfigFiles> {
  const sdk = await import("@smithy/shared-ini-file-loader");
  return await sdk.loadSharedConfigFiles();
}
