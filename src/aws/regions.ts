/** Region names checked against the partition data the AWS SDK carries (no network). */
import { partition } from "@aws-sdk/core/client";
import { UsageError } from "../util/errors.ts";

/**
 * The SDK's description of a region it lists ("US East (N. Virginia)"); undefined for a name
 * it does not list (a typo, or a region newer than this build's SDK).
 *
 * @example
 * ```ts
 * regionDescription("eu-west-1"); // "Europe (Ireland)"
 * regionDescription("us-eest-1"); // undefined
 * ```
 */
export function regionDescription(region: string): string | undefined {
  const found = partition(region) as { description?: string };
  return typeof found.description === "string" ? found.description : undefined;
}

/**
 * Throws a UsageError when the SDK does not list the region. `what` names where the region came
 * from ("--region", "$AWS_REGION", "the profile prod").
 *
 * @example
 * ```ts
 * checkRegionName("us-eest-1", "--region"); // throws: --region us-eest-1: not an AWS region ...
 * ```
 */
export function checkRegionName(region: string, what: string): void {
  if (regionDescription(region) !== undefined) return;
  throw new UsageError(
    `${what} ${region}: not an AWS region the AWS SDK of this build knows (like us-east-1 or ` +
      "eu-west-1); for a region newer than this build, give its endpoint with --ec2-endpoint too",
  );
}
