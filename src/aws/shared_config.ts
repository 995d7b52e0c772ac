/** The region of a profile in the shared AWS config files (~/.aws/config, ~/.aws/credentials); no network. */
import { loadSharedConfigFiles } from "@smithy/shared-ini-file-loader";

/**
 * The region the profile names in the shared config or credentials file; undefined when none
 * does or there are no such files.
 *
 * @example
 * ```ts
 * const { profileRegion } = await import("../aws/shared_config.ts");
 * await profileRegion("default"); // "eu-west-1"
 * ```
 */
export async function profileRegion(profile: string): Promise<string | undefined> {
  try {
    const files = await loadSharedConfigFiles();
    return files.configFile?.[profile]?.region ?? files.credentialsFile?.[profile]?.region;
  } catch {
    return undefined; // no shared config
  }
}
