/** The region of a profile in the shared AWS config files (~/.aws/config, ~/.aws/credentials); no network. */
import { loadSharedConfigFiles } from "@smithy/shared-ini-file-loader";

/**
 * The region the profile names in the shared config or credentials file; undefined when none
 * does or there are no such files.
 *
 * @example
 * ```ts
 * const { profileRegion } = await import("./shared_config.ts");
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

/**
 * True when the shared config or credentials file has a section for the profile (the SDK's
 * reader: `[profile NAME]` in the config file, `[NAME]` in the credentials file; also
 * `$AWS_CONFIG_FILE` and `$AWS_SHARED_CREDENTIALS_FILE`).
 *
 * @example
 * ```ts
 * const { profileExists } = await import("./shared_config.ts");
 * await profileExists("nosuch"); // false
 * ```
 */
export async function profileExists(profile: string): Promise<boolean> {
  try {
    const files = await loadSharedConfigFiles();
    return files.configFile?.[profile] !== undefined ||
      files.credentialsFile?.[profile] !== undefined;
  } catch {
    return false;
  }
}
