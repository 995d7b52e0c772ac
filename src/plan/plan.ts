/**
 * Builds the Plan: every input checked and every decision made (volumes, descriptions, tags,
 * credentials, region, endpoint) before anything is locked. No side effects but reading files
 * the user named and, when nothing else names the region, asking the instance metadata.
 */
import { type AfterRunPlan, planAfterRun } from "./after_run.ts";
import { PreflightError, UsageError } from "../util/errors.ts";
import type { SnapshotRequest } from "./tags.ts";
import { chooseCredentials, type CredentialSource } from "./credentials.ts";
import { type DiscoveredVolume, discoverVolumes } from "../host/discovery.ts";
import { type InstanceIdentity, readInstanceIdentity } from "../aws/imds.ts";
import { type MountPoint, resolveMountPoints } from "../host/mounts.ts";
import { checkMultiVolumeRequests } from "./multi_volume.ts";
import {
  characters,
  MARKER_TAG,
  MAX_TAG_KEY,
  MAX_TAG_VALUE,
  MAX_TAGS,
  MULTI_VOLUME_MARKER,
  PROGRAM,
} from "./tags.ts";
import { type MysqlPlan, type MysqlPlanDeps, planMysql } from "./mysql.ts";
import { describePostgresqlPlan, planPostgresql, type PostgresqlPlan } from "./postgresql.ts";
import { type Logger, registerSecret } from "../util/log.ts";
import type { Options, ParsedArgs } from "../cli/options.ts";

const VOLUME_ID = /^vol-(?:[0-9a-f]{8}|[0-9a-f]{17})$/;

/** The region of the volumes, and where it came from. */
export interface Region {
  /** E.g. "eu-west-1"; undefined when nothing named one (the instance metadata is asked later). */
  value: string | undefined;
  /** Where it came from, for --debug and the dry-run plan. */
  source: string;
}

/** Everything decided, nothing done. */
export interface Plan {
  /** --noaction: report the plan, do nothing. */
  noaction: boolean;
  /** --quiet: no progress display, only the ids. */
  quiet: boolean;
  /** --multi-volume: one CreateSnapshots call for the instance ({@linkcode Plan.instanceId}). */
  multiVolume: boolean;
  /** The shell commands around the freeze. */
  hooks: { preFreeze?: string; postThaw?: string; timeoutMs: number };
  /** One request per volume, in the order of the volume arguments (or of discovery). */
  volumes: SnapshotRequest[];
  /** How each volume was found beneath a mount point, when discovered. */
  discovered: DiscoveredVolume[];
  /** The mount points to freeze, checked, in order. */
  freezeMounts: MountPoint[];
  /** The database to flush and lock (or stop), if any; checked, not connected. */
  database: MysqlPlan | PostgresqlPlan | undefined;
  /** This instance's id, when it had to be looked up (discovery) or was given. */
  instanceId: string | undefined;
  /** Where the AWS credentials come from. */
  credentials: CredentialSource;
  /** The region of the volumes. */
  region: Region;
  /** The EC2 endpoint (--ec2-endpoint, $AWS_ENDPOINT_URL_EC2); undefined for AWS's. */
  endpoint: string | undefined;
  /** --snapshot-timeout in milliseconds. */
  snapshotTimeoutMs: number;
  /** --output: the report as text (the old tool's lines) or JSON. */
  output: "text" | "json";
  /** After a successful run: --wait, --copy-to-region and retention. */
  afterRun: AfterRunPlan;
  /** --metrics-file: where the run's metrics go, checked (its directory exists). */
  metricsFile?: string;
}

/** What {@linkcode buildPlan} plans from. */
export interface PlanInputs {
  /** The command line, merged with the --config file. */
  args: ParsedArgs;
  /** The environment. */
  env: Record<string, string | undefined>;
  /** The home directory, for ~/.awssecret and ~/.my.cnf; undefined when unknown. */
  home: string | undefined;
  /** Where --debug steps and warnings go. */
  log: Logger;
  /** Root of procfs ("/proc"); tests point it at a fixture tree. */
  procRoot?: string;
  /** Root of sysfs ("/sys"); tests point it at a fixture tree. */
  sysRoot?: string;
  /** The MySQL plan's lookups (socket search, systemd units); tests replace them. */
  mysql?: MysqlPlanDeps;
}

/** Options recognised and checked, whose behaviour is not part of this version yet. */
const NOT_YET: Record<string, string> = {
  "mongo": "MongoDB locking",
  "mongo-stop": "MongoDB locking",
};

/** What to do instead of an option that is not supported. */
const INSTEAD: Record<string, string> = {
  "MongoDB locking": "freeze the file system that holds MongoDB's data and journal instead " +
    "(--freeze-filesystem MOUNT), MongoDB's documented way to snapshot; see the README",
};

/** Parses one --tag value, "K=V;K2=V2", checking what EC2 would reject. */
export function parseTags(text: string): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const item of text.split(";")) {
    if (item.trim() === "") continue;
    const eq = item.indexOf("=");
    if (eq < 0) throw new UsageError(`--tag '${item}': expected KEY=VALUE`);
    const key = item.slice(0, eq).trim();
    const value = item.slice(eq + 1).trim();
    if (key === "") throw new UsageError(`--tag '${item}': empty key`);
    // EC2 counts characters (code points), not UTF-16 units: an emoji is one, not two.
    if (characters(key) > MAX_TAG_KEY) {
      const start = [...key].slice(0, 20).join("");
      throw new UsageError(`--tag '${start}...': key longer than ${MAX_TAG_KEY} characters`);
    }
    if (characters(value) > MAX_TAG_VALUE) {
      throw new UsageError(`--tag '${key}': value longer than ${MAX_TAG_VALUE} characters`);
    }
    if (key.toLowerCase().startsWith("aws:")) {
      throw new UsageError(`--tag '${key}': keys starting with 'aws:' are reserved by AWS`);
    }
    if (key === MARKER_TAG) {
      throw new UsageError(`--tag '${key}': this key is set by the tool itself`);
    }
    if (key in tags) throw new UsageError(`--tag '${key}': key given twice`);
    tags[key] = value;
  }
  if (Object.keys(tags).length > MAX_TAGS - 1) {
    throw new UsageError(
      `--tag: ${Object.keys(tags).length} tags; EC2 allows ${MAX_TAGS} and the tool adds one`,
    );
  }
  return tags;
}

/** Spreads values given once (for all) or once per volume (in order) over the volumes. */
function perVolume<T>(option: string, values: T[], count: number, fallback: T): T[] {
  if (values.length === 0) return Array(count).fill(fallback);
  if (values.length === 1) return Array(count).fill(values[0]);
  if (values.length === count) return values;
  throw new UsageError(
    count === 1
      ? `--${option} given ${values.length} times for 1 volume: give it once`
      : `--${option} given ${values.length} times for ${count} volumes: give it once, or once ` +
        "per volume",
  );
}

function checkVolumeIds(ids: string[]): void {
  const seen = new Set<string>();
  for (const id of ids) {
    if (!VOLUME_ID.test(id)) {
      throw new UsageError(`malformed volume id '${id}': expected vol- and 8 or 17 hex digits`);
    }
    if (seen.has(id)) throw new UsageError(`volume ${id} given twice`);
    seen.add(id);
  }
}

function checkSupported(args: ParsedArgs): void {
  for (const name of args.given) {
    const feature = NOT_YET[name];
    if (feature) {
      throw new UsageError(`--${name}: not supported (${feature}): ${INSTEAD[feature]}`);
    }
  }
}

function checkOutput(value: string): "text" | "json" {
  if (value === "text" || value === "json") return value;
  throw new UsageError(`--output: expected text or json, got '${value}'`);
}

function checkEndpoint(value: string | undefined, option: string): string | undefined {
  if (value === undefined) return undefined;
  try {
    const url = new URL(value);
    if (url.protocol === "http:" || url.protocol === "https:") return value;
  } catch { /* reported below */ }
  throw new UsageError(`${option}: expected an http(s) URL, got '${value}'`);
}

/** Runs `fn` once, on first use. */
function once<T>(fn: () => Promise<T>): () => Promise<T> {
  let result: Promise<T> | undefined;
  return () => result ??= fn();
}

/**
 * The region from the instance metadata, when nothing else names one; off EC2 the failure says
 * what is missing rather than only what the metadata service answered.
 */
async function regionFromMetadata(identity: () => Promise<InstanceIdentity>): Promise<string> {
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
 * Checks --metrics-file before anything is locked: its directory must exist, and it must not
 * be a directory itself. The file is written (atomically) after the run.
 */
function checkMetricsFile(path: string): string {
  const slash = path.lastIndexOf("/");
  const dir = slash < 0 ? "." : slash === 0 ? "/" : path.slice(0, slash);
  let dirInfo: Deno.FileInfo;
  try {
    dirInfo = Deno.statSync(dir);
  } catch {
    throw new UsageError(`--metrics-file ${path}: the directory ${dir} does not exist`);
  }
  if (!dirInfo.isDirectory) {
    throw new UsageError(`--metrics-file ${path}: ${dir} is not a directory`);
  }
  if (path.endsWith("/")) throw new UsageError(`--metrics-file ${path}: names a directory`);
  let existing: Deno.FileInfo | undefined;
  try {
    existing = Deno.lstatSync(path);
  } catch { /* not there yet: written after the run */ }
  if (existing?.isSymlink) {
    throw new UsageError(
      `--metrics-file ${path}: is a symbolic link; it is never written through: give the real path`,
    );
  }
  if (existing && !existing.isFile) {
    throw new UsageError(
      `--metrics-file ${path}: is ${existing.isDirectory ? "a directory" : "not a regular file"}`,
    );
  }
  return path;
}

/** The region from the options, the environment or the profile; no network. */
async function regionWithoutNetwork(
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

/**
 * Checks all input and decides everything; `noaction` plans never touch the network.
 *
 * @example
 * ```ts
 * const plan = await buildPlan({ args: parseCommandLine(Deno.args), env: Deno.env.toObject(),
 *   home: Deno.env.get("HOME"), log });
 * ```
 */
export async function buildPlan(inputs: PlanInputs): Promise<Plan> {
  const { args, env, log } = inputs;
  const { options, given } = args;

  checkSupported(args);
  const output = checkOutput(options.output);
  checkVolumeIds(args.volumeIds);
  if (given.has("mysql-password") && !args.fromConfigFile?.has("mysql-password")) {
    log.warn("--mysql-password on the command line is visible to other users; use a defaults file");
  }
  registerSecret(options.mysqlPassword);
  registerSecret(options.mongoPassword);
  const tagsGiven = options.tag.map(parseTags);
  const database = options.mysql || options.percona || options.mysqlStop
    ? planMysql(options, {
      ...inputs.mysql,
      settings: { home: inputs.home, ...inputs.mysql?.settings },
    })
    : undefined;
  if (database && options.postgresql) {
    throw new UsageError(
      "--postgresql cannot be combined with --mysql, --percona or --mysql-stop: one database per run",
    );
  }
  const postgresql = options.postgresql
    ? await planPostgresql(options, {
      env,
      home: inputs.home,
      debug: (message) => log.debug(message),
    })
    : undefined;
  if (postgresql) log.debug(describePostgresqlPlan(postgresql)[1]);

  const endpoint = checkEndpoint(options.ec2Endpoint, "--ec2-endpoint") ??
    checkEndpoint(env.AWS_ENDPOINT_URL_EC2, "$AWS_ENDPOINT_URL_EC2");
  if (options.signatureVersion !== undefined) {
    log.debug(
      `--signature-version ${options.signatureVersion}: accepted; the SDK signs with SigV4`,
    );
  }
  const credentials = chooseCredentials({
    options,
    given,
    fromConfigFile: args.fromConfigFile,
    env,
    home: inputs.home,
    log,
  });
  log.debug(`credentials from ${credentials.describe}`);

  const freezeMounts = await resolveMountPoints(options.freezeFilesystem, {
    option: "--freeze-filesystem",
    freeze: true,
    procRoot: inputs.procRoot,
  });
  const discoveryMounts = await resolveMountPoints(options.noFreezeFilesystem, {
    option: "--no-freeze-filesystem",
    freeze: false,
    procRoot: inputs.procRoot,
  });
  for (const mount of discoveryMounts) {
    if (freezeMounts.some((m) => m.mountPoint === mount.mountPoint)) {
      throw new UsageError(
        `${mount.mountPoint} is given to both --freeze-filesystem and --no-freeze-filesystem`,
      );
    }
  }

  if (args.volumeIds.length === 0 && freezeMounts.length + discoveryMounts.length === 0) {
    throw new UsageError(
      "no volume ids or mount points were given: name the EBS volumes (vol-0123456789abcdef0 " +
        "...), or the mount points to find them from with --freeze-filesystem MOUNT or " +
        "--no-freeze-filesystem MOUNT (see --help)",
    );
  }
  const metricsFile = options.metricsFile === undefined
    ? undefined
    : checkMetricsFile(options.metricsFile);

  // Instance metadata is asked only when something needs it, and at most once.
  const identity = once<InstanceIdentity>(() => {
    log.debug("asking the instance metadata (IMDSv2)");
    return readInstanceIdentity({ env: { get: (name) => env[name] } });
  });
  let region = await regionWithoutNetwork(options, env);
  if (region.value === undefined) {
    region = { value: await regionFromMetadata(identity), source: "the instance metadata" };
  } else if (endpoint === undefined) {
    // A typo would otherwise surface as a DNS error, or not at all with --noaction.
    const { checkRegionName } = await import("../aws/regions.ts");
    checkRegionName(region.value, region.source);
  }
  if (credentials.kind === "profile") {
    const { profileExists } = await import("../aws/shared_config.ts");
    if (!(await profileExists(credentials.profile))) {
      const what = given.has("profile") ? "--profile" : "$AWS_PROFILE";
      throw new UsageError(
        `${what} ${credentials.profile}: no such profile in the AWS config or credentials file ` +
          "(~/.aws/config, ~/.aws/credentials, or $AWS_CONFIG_FILE, " +
          "$AWS_SHARED_CREDENTIALS_FILE)",
      );
    }
  }
  log.debug(`region ${region.value} from ${region.source}`);

  let instanceId = options.instanceId;
  let discovered: DiscoveredVolume[] = [];
  let volumeIds = args.volumeIds;
  if (volumeIds.length === 0) {
    const mounts = [...freezeMounts, ...discoveryMounts];
    discovered = await discoverVolumes(mounts, {
      sysRoot: inputs.sysRoot,
      blockDeviceMappings: async () => {
        instanceId ??= (await identity()).instanceId;
        // The AWS SDK loads only when discovery needs EC2: start-up of the other paths.
        const { createEc2Client } = await import("../aws/ec2.ts");
        const { describeBlockDeviceMappings } = await import("../aws/instance.ts");
        const { sdkCredentials } = await import("../aws/credentials.ts");
        const client = createEc2Client({
          region: region.value!,
          endpoint,
          credentials: await sdkCredentials(credentials),
        });
        try {
          return await describeBlockDeviceMappings(client, instanceId, {
            signal: AbortSignal.timeout(options.snapshotTimeout * 1000),
          });
        } finally {
          client.destroy();
        }
      },
    });
    for (const volume of discovered) {
      log.debug(`discovered ${volume.volumeId} (${volume.device}) under ${volume.mountPoint}`);
    }
    volumeIds = discovered.map((v) => v.volumeId);
  }

  const count = volumeIds.length;
  const tags = perVolume("tag", tagsGiven, count, {});
  const names = perVolume<string | undefined>("name", options.name, count, undefined);
  const descriptions = perVolume("description", options.description, count, PROGRAM);
  const volumes = volumeIds.map((volumeId, i): SnapshotRequest => {
    if (names[i] !== undefined && "Name" in tags[i]) {
      throw new UsageError("the Name tag is given both by --name and by --tag");
    }
    const name: Record<string, string> = names[i] !== undefined ? { Name: names[i]! } : {};
    return {
      volumeId,
      description: descriptions[i],
      tags: { ...tags[i], ...name, [MARKER_TAG]: volumeId },
    };
  });

  if (options.multiVolume) {
    checkMultiVolumeRequests(volumes);
    for (const volume of volumes) volume.tags[MARKER_TAG] = MULTI_VOLUME_MARKER;
    instanceId ??= (await identity()).instanceId;
    log.debug(`--multi-volume: one CreateSnapshots call for ${instanceId}`);
  }
  const afterRun = planAfterRun(options, region.value);
  if (endpoint === undefined && afterRun.copyRegions.length > 0) {
    const { checkRegionName } = await import("../aws/regions.ts");
    for (const copyRegion of afterRun.copyRegions) {
      checkRegionName(copyRegion, "--copy-to-region");
    }
  }

  return {
    noaction: options.noaction,
    quiet: options.quiet,
    multiVolume: options.multiVolume,
    hooks: {
      preFreeze: options.preFreezeCommand,
      postThaw: options.postThawCommand,
      timeoutMs: options.hookTimeout * 1000,
    },
    volumes,
    discovered,
    freezeMounts,
    database: database ?? postgresql,
    instanceId,
    credentials,
    region,
    endpoint,
    snapshotTimeoutMs: options.snapshotTimeout * 1000,
    output,
    afterRun,
    metricsFile,
  };
}
