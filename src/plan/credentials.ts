/**
 * Chooses where AWS credentials come from, in the old tool's order, and reads the old tool's
 * credential files. Everything here runs before anything is locked; secrets are registered
 * with the logger so no line can print them.
 */
import { UsageError } from "../util/errors.ts";
import { exists, readableByOthers, readUserFile } from "../util/files.ts";
import { type Logger, registerSecret } from "../util/log.ts";
import type { Options } from "../types/options.ts";
import type { CredentialSource, StaticCredentials } from "../types/credentials.ts";

/** What {@linkcode chooseCredentials} chooses from. */
export interface CredentialInputs {
  /** The options (the --aws-* options and --profile, --use-iam-role). */
  options: Options;
  /** Long names given explicitly on the command line or in the config file. */
  given: ReadonlySet<string>;
  /** Those of `given` that came from the --config file (no command-line warning for them). */
  fromConfigFile?: ReadonlySet<string>;
  /** The environment ($AWS_ACCESS_KEY_ID, $AWS_PROFILE, $AWS_CREDENTIALS ...). */
  env: Record<string, string | undefined>;
  /** The home directory, for ~/.awssecret; undefined when unknown. */
  home: string | undefined;
  /** Where warnings go. Every secret read is registered (registerSecret): no line prints it. */
  log: Logger;
}

function readSecretFile(path: string, option: string, log: Logger): string[] {
  const text = readUserFile(path, option);
  if (readableByOthers(path)) {
    log.warn(`${option} ${path} is readable by group or others; chmod 600 it`);
  }
  const lines = text.split(/\r?\n/).map((line) => line.trim()).filter((line) => line !== "");
  refuseIniCredentials(text.split(/\r?\n/).map((line) => line.trim()), path, option);
  return lines;
}

function fromKeyFiles(idFile: string, secretFile: string, log: Logger): StaticCredentials {
  const [accessKeyId] = readSecretFile(idFile, "--aws-access-key-id-file", log);
  const [secretAccessKey] = readSecretFile(secretFile, "--aws-secret-access-key-file", log);
  if (!accessKeyId) throw new UsageError(`--aws-access-key-id-file ${idFile}: file is empty`);
  if (!secretAccessKey) {
    throw new UsageError(`--aws-secret-access-key-file ${secretFile}: file is empty`);
  }
  return { accessKeyId, secretAccessKey };
}

/**
 * Refuses an AWS shared credentials file (INI) given where bare keys are expected (the legacy
 * two-line file, the key files): its `[section]` line would be taken as a key. Names the file
 * and the line (counted from 1, blank lines too), never the line's content: it could be a
 * secret.
 */
export function refuseIniCredentials(lines: readonly string[], path: string, option: string): void {
  const index = lines.findIndex((line) =>
    /^\[[^\]]*\]$/.test(line) || /^[A-Za-z_][A-Za-z0-9_.-]*\s*=/.test(line)
  );
  if (index < 0) return;
  throw new UsageError(
    `${option} ${path}: line ${index + 1} is INI ([section] or key = value): an AWS shared ` +
      "credentials file, which this option does not read (it takes the bare keys, one per " +
      `line); use --profile NAME instead, with AWS_SHARED_CREDENTIALS_FILE=${path} when the ` +
      "file is not ~/.aws/credentials",
  );
}

/** The legacy two-line file: access key id, then secret access key. */
function fromLegacyFile(path: string, option: string, log: Logger): StaticCredentials {
  const [accessKeyId, secretAccessKey] = readSecretFile(path, option, log);
  if (!accessKeyId || !secretAccessKey) {
    throw new UsageError(
      `${option} ${path}: expected two lines, the access key id and the secret access key`,
    );
  }
  return { accessKeyId, secretAccessKey };
}

/**
 * Picks the credential source. Explicit options first (two at once are a usage error), then
 * the defaults: the AWS_* key variables, $AWS_CREDENTIALS, $AWS_PROFILE, ~/.awssecret, and last
 * the SDK's default chain.
 *
 * @example
 * ```ts
 * import { parseCommandLine } from "../cli/parse.ts";
 * import { silentLogger } from "../util/log.ts";
 * const { options, given } = parseCommandLine(["--profile", "backup", "vol-0123abcd"]);
 * const source = chooseCredentials({ options, given, env: {}, home: "/root", log: silentLogger });
 * source.describe; // "the profile backup"
 * ```
 */
export function chooseCredentials(input: CredentialInputs): CredentialSource {
  const { options, given, log } = input;
  const explicit = [
    given.has("aws-access-key-id") || given.has("aws-secret-access-key")
      ? "--aws-access-key-id"
      : "",
    given.has("aws-access-key-id-file") || given.has("aws-secret-access-key-file")
      ? "--aws-access-key-id-file"
      : "",
    given.has("aws-credentials-file") ? "--aws-credentials-file" : "",
    given.has("profile") ? "--profile" : "",
    options.useIamRole ? "--use-iam-role" : "",
  ].filter((x) => x !== "");
  if (explicit.length > 1) {
    throw new UsageError(
      `conflicting credential options: ${explicit.join(" and ")}; give only one source`,
    );
  }
  if (given.has("aws-secret-access-key") && !input.fromConfigFile?.has("aws-secret-access-key")) {
    log.warn("--aws-secret-access-key on the command line is visible to other users; use a file");
  }

  const source = resolve(explicit[0], input);
  if (source.kind === "static") {
    registerSecret(source.identity.secretAccessKey);
    registerSecret(source.identity.sessionToken);
  }
  return source;
}

function resolve(explicit: string | undefined, input: CredentialInputs): CredentialSource {
  const { options, env, home, log } = input;
  switch (explicit) {
    case "--aws-access-key-id": {
      const accessKeyId = options.awsAccessKeyId ?? env.AWS_ACCESS_KEY_ID;
      const secretAccessKey = options.awsSecretAccessKey ?? env.AWS_SECRET_ACCESS_KEY;
      if (!accessKeyId) {
        throw new UsageError(
          "--aws-secret-access-key needs --aws-access-key-id (or $AWS_ACCESS_KEY_ID)",
        );
      }
      if (!secretAccessKey) {
        throw new UsageError(
          "--aws-access-key-id needs --aws-secret-access-key (or $AWS_SECRET_ACCESS_KEY)",
        );
      }
      return {
        kind: "static",
        describe: "the --aws-access-key-id and --aws-secret-access-key options",
        identity: { accessKeyId, secretAccessKey },
      };
    }
    case "--aws-access-key-id-file": {
      const idFile = options.awsAccessKeyIdFile;
      const secretFile = options.awsSecretAccessKeyFile;
      if (!idFile || !secretFile) {
        throw new UsageError(
          "--aws-access-key-id-file and --aws-secret-access-key-file must be given together",
        );
      }
      return {
        kind: "static",
        describe: `the files ${idFile} and ${secretFile}`,
        identity: fromKeyFiles(idFile, secretFile, log),
      };
    }
    case "--aws-credentials-file": {
      const path = options.awsCredentialsFile!;
      return {
        kind: "static",
        describe: `the credentials file ${path}`,
        identity: fromLegacyFile(path, "--aws-credentials-file", log),
      };
    }
    case "--profile":
      return {
        kind: "profile",
        describe: `the profile ${options.profile}`,
        profile: options.profile!,
      };
    case "--use-iam-role":
      return { kind: "instance-role", describe: "the instance's IAM role (IMDSv2)" };
  }
  if (env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY) {
    return {
      kind: "static",
      describe: "the environment ($AWS_ACCESS_KEY_ID, $AWS_SECRET_ACCESS_KEY)",
      identity: {
        accessKeyId: env.AWS_ACCESS_KEY_ID,
        secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
        ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
      },
    };
  }
  if (env.AWS_CREDENTIALS) {
    return {
      kind: "static",
      describe: `the credentials file ${env.AWS_CREDENTIALS} ($AWS_CREDENTIALS)`,
      identity: fromLegacyFile(env.AWS_CREDENTIALS, "$AWS_CREDENTIALS", log),
    };
  }
  if (env.AWS_PROFILE) {
    return {
      kind: "profile",
      describe: `the profile ${env.AWS_PROFILE} ($AWS_PROFILE)`,
      profile: env.AWS_PROFILE,
    };
  }
  const awssecret = home ? `${home}/.awssecret` : undefined;
  if (awssecret && exists(awssecret)) {
    return {
      kind: "static",
      describe: `the credentials file ${awssecret}`,
      identity: fromLegacyFile(awssecret, "~/.awssecret", log),
    };
  }
  return defaultChain(env, false);
}

/**
 * The SDK's default chain, described by what this machine has for it (`defaultProfile`: the
 * shared files have a `default` profile), so that a dry run says whether credentials were
 * found; and the line a run ends with when there are none.
 *
 * @example
 * ```ts
 * defaultChain({}, false).describe;
 * // "the AWS SDK's default credential chain: nothing in the environment or ~/.aws; ..."
 * ```
 */
export function defaultChain(
  env: Record<string, string | undefined>,
  defaultProfile: boolean,
): CredentialSource & { kind: "sdk-default-chain" } {
  const found = env.AWS_WEB_IDENTITY_TOKEN_FILE
    ? "found: web identity ($AWS_WEB_IDENTITY_TOKEN_FILE)"
    : env.AWS_CONTAINER_CREDENTIALS_RELATIVE_URI || env.AWS_CONTAINER_CREDENTIALS_FULL_URI
    ? "found: container credentials ($AWS_CONTAINER_CREDENTIALS_*)"
    : defaultProfile
    ? "found: the default profile of ~/.aws/credentials or ~/.aws/config"
    : env.AWS_EC2_METADATA_DISABLED?.toLowerCase() === "true"
    ? "nothing in the environment or ~/.aws, and instance metadata is disabled " +
      "($AWS_EC2_METADATA_DISABLED): a run would find none"
    : "nothing in the environment or ~/.aws; only the instance's IAM role (IMDSv2) is left, " +
      "asked at run time";
  return {
    kind: "sdk-default-chain",
    describe: `the AWS SDK's default credential chain: ${found}`,
    whenMissing: "no AWS credentials found: looked at the --aws-* options, " +
      "$AWS_ACCESS_KEY_ID and $AWS_SECRET_ACCESS_KEY, $AWS_CREDENTIALS, $AWS_PROFILE, " +
      "~/.awssecret, ~/.aws/credentials and ~/.aws/config, web identity, container credentials " +
      "and the instance's IAM role; give them with --profile NAME, --aws-credentials-file FILE, " +
      "the two environment variables, or an IAM role attached to the instance",
  };
}
