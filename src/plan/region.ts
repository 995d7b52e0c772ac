/** Where the region comes from: the options, the environment, the profile, else the instance metadata. */
import { PreflightError, UsageError } from "../util/errors.ts";
import type { InstanceIdentity } from "../aws/imds.ts";
import type { Options } from "../types/options.ts";

/** The region of the volumes, and where it came from. */
export interface Region {
  /** E.g. "eu-west-1"; undefined when nothing named one (the instance metadata is asked later). */
  value: string | undefined;
  /** Where it came from, for --debug and the dry-run plan. */
  source: string;
}

/**
 * The region from the instance metadata, when nothing else names one; off EC2 the failure says
 * what is missing rather than only what the metadata service answered.
 */
export async function regionFromMetadata(
  identity: () => Promise<InstanceIdentity>,
): Promise<string> {
  try {
    return (await identity()).region;
  } catch (error) {
    if (!(error instanceof PreflightError)) throw error;
    throw new PreflightError(
      "no region given (--region, $AWS_REGION, $AWS_DEFAULT_REGION or the profile's), and " +
        "none from the instance metadata: this is not an EC2 instance, or its metadata " +
        `service refused (${error.message.replace(/; off EC2.*$/, "")}); give --region`,
      { cause: error },
    );
  }
}

/**
 * What any region's name is made of, AWS's or another cloud's behind --ec2-endpoint
 * ("eucalyptus"): letters, digits and hyphens; never a space, a newline or a control character.
 */
export const REGION_NAME: RegExp = /^[a-z0-9][a-z0-9-]*$/i;

/** The region from the options, the environment or the profile, checked; no network. */
export async function regionWithoutNetwork(
  options: Options,
  env: Record<string, string | undefined>,
): Promise<Region> {
  const region = await regionNamed(options, env);
  // A name that is not one (a newline, a typo) is said here, not by the SDK after the plan.
  if (region.value !== undefined && !REGION_NAME.test(region.value)) {
    throw new UsageError(
      `${region.source}: '${region.value}' is not a region name (letters, digits and hyphens, like eu-west-1)`,
    );
  }
  return region;
}

async function regionNamed(
  options: Options,
  env: Record<string, string | undefined>,
): Promise<Region> {
  if (options.region) return { value: options.region, source: "--region" };
  if (env.AWS_REGION) return { value: env.AWS_REGION, source: "$AWS_REGION" };
  if (env.AWS_DEFAULT_REGION) {
    return { value: env.AWS_DEFAULT_REGION, source: "$AWS_DEFAULT_REGION" };
  }
  const profile = options.profile ?? env.AWS_PROFILE ?? "default";
  // The SDK's loader of the shared files, loaded only when no option or variable names it.
  const { profileRegion } = await import("../aws/shared_config.ts");
  const region = await profileRegion(profile);
  if (region) return { value: region, source: `the profile ${profile}` };
  return { value: undefined, source: "none" };
}
