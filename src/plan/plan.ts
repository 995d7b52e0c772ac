/**
 * Builds the Plan: every input checked and every decision made (volumes, descriptions, tags,
 * credentials, region, endpoint, the database, the run directory) before anything is locked.
 * Nothing is locked, frozen or written: it reads files (the ones the user named, mountinfo,
 * sysfs) and looks things up (the instance metadata for the region or the instance id, EC2's
 * DescribeInstances when a mount point's volume must be found).
 */
import { type AfterRunPlan, planAfterRun } from "./after_run.ts";
import {
  checkAwsSharedFiles,
  checkEndpoint,
  checkMetricsFile,
  checkOutput,
  checkSupported,
  checkVolumeIds,
  parseTags,
  perVolume,
} from "./checks.ts";
import { type Region, regionFromMetadata, regionWithoutNetwork } from "./region.ts";
import { UsageError } from "../util/errors.ts";
import type { SnapshotRequest } from "../types/tags.ts";
import { chooseCredentials, defaultChain } from "./credentials.ts";
import type { CredentialSource } from "../types/credentials.ts";
import { type DiscoveredVolume, discoverVolumes } from "../host/discovery.ts";
import { type InstanceIdentity, readInstanceIdentity } from "../aws/imds.ts";
import { resolveMountPoints } from "../host/mounts.ts";
import { checkMultiVolumeRequests } from "../types/multi_volume.ts";
import {
  MARKER_TAG,
  MULTI_VOLUME_MARKER,
  PROGRAM,
  RUN_ID_TAG,
  VOLUMES_TAG,
} from "../types/tags.ts";
import { volumeTags } from "./volume_tags.ts";
import type { MysqlPlanDeps } from "./mysql.ts";
import { planDatabase, planWindow, snapshotHoldMs, type WindowPlan } from "./window.ts";
import { type Logger, registerSecret } from "../util/log.ts";
import { checkCanFreeze, programSearchPath, runDirectory } from "./machine.ts";
import { optionKey, type ParsedArgs } from "../types/options.ts";

/** Everything decided, nothing done. */
export interface Plan {
  /** --noaction: report the plan, do nothing. */
  noaction: boolean;
  /** --quiet: no progress display, only the ids. */
  quiet: boolean;
  /** --multi-volume: one CreateSnapshots call for the instance ({@linkcode Plan.instanceId}). */
  multiVolume: boolean;
  /** One request per volume, in the order of the volume arguments (or of discovery). */
  volumes: SnapshotRequest[];
  /** How each volume was found beneath a mount point, when discovered. */
  discovered: DiscoveredVolume[];
  /** What is held while the snapshots are made: the mounts, the database, the commands, the bounds. */
  window: WindowPlan;
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
  /** This run's id, the value of the RUN_ID_TAG on every snapshot request. */
  runId: string;
  /** --metrics-file: where the run's metrics go, checked (its directory exists). */
  metricsFile?: string;
  /** Where the freeze locks live ($ECS_RUN_DIR, else /run/ec2-consistent-snapshot). */
  runDir: string;
  /** Where sync and fsfreeze are looked for before the system directories ($PATH). */
  searchPath: string;
}

/** What {@linkcode buildPlan} plans from. */
export interface PlanInputs {
  /** The command line, merged with the --config file. */
  args: ParsedArgs;
  /** The environment. */
  env: Record<string, string | undefined>;
  /** The home directory, for ~/.awssecret and ~/.my.cnf; undefined when unknown. */
  home: string | undefined;
  /** The working directory: relative mount points resolve here. */
  cwd: string;
  /** Where --debug steps and warnings go. */
  log: Logger;
  /** Root of procfs ("/proc"); tests point it at a fixture tree. */
  procRoot?: string;
  /** Root of sysfs ("/sys"); tests point it at a fixture tree. */
  sysRoot?: string;
  /** The MySQL plan's lookups (socket search, systemd units); tests replace them. */
  mysql?: MysqlPlanDeps;
  /** Whether this process may freeze (root, CAP_SYS_ADMIN); host/proc.ts canFreeze by default. */
  canFreeze?: () => boolean;
}

/** Runs `fn` once, on first use. */
function once<T>(fn: () => Promise<T>): () => Promise<T> {
  let result: Promise<T> | undefined;
  return () => result ??= fn();
}

/**
 * Checks all input and decides everything; `noaction` plans never touch the network.
 *
 * @example
 * ```ts
 * import { parseCommandLine } from "../cli/parse.ts";
 * import { createLogger } from "../util/log.ts";
 * const plan = await buildPlan({ args: parseCommandLine(Deno.args), env: Deno.env.toObject(),
 *   home: Deno.env.get("HOME"), cwd: Deno.cwd(), log: createLogger({}) });
 * ```
 */
export async function buildPlan(inputs: PlanInputs): Promise<Plan> {
  const { args, env, log } = inputs;
  const { options, given } = args;

  checkSupported(args);
  const runDir = runDirectory(env); // refuses a relative $ECS_RUN_DIR, before anything is locked
  checkAwsSharedFiles(env, inputs.home);
  const output = checkOutput(options.output);
  checkVolumeIds(args.volumeIds);
  if (given.has("mysql-password") && !args.fromConfigFile?.has("mysql-password")) {
    log.warn("--mysql-password on the command line is visible to other users; use a defaults file");
  }
  registerSecret(options.mysqlPassword);
  registerSecret(options.mongoPassword);
  const tagsGiven = options.tag.map(parseTags);
  const database = await planDatabase(options, {
    env,
    home: inputs.home,
    log,
    mysql: inputs.mysql,
  });

  const endpoint = checkEndpoint(options.ec2Endpoint, "--ec2-endpoint") ??
    checkEndpoint(env.AWS_ENDPOINT_URL_EC2, "$AWS_ENDPOINT_URL_EC2");
  if (options.signatureVersion !== undefined) {
    log.debug(
      `--signature-version ${options.signatureVersion}: accepted; the SDK signs with SigV4`,
    );
  }
  let credentials = chooseCredentials({
    options,
    given,
    fromConfigFile: args.fromConfigFile,
    env,
    home: inputs.home,
    log,
  });
  if (credentials.kind === "sdk-default-chain") {
    // Said in a dry run too: whether this machine has anything for the SDK's chain.
    const { profileExists } = await import("../aws/shared_config.ts");
    credentials = defaultChain(env, await profileExists("default"));
  }
  log.debug(`credentials from ${credentials.describe}`);

  const freezeMounts = await resolveMountPoints(options.freezeFilesystem, {
    option: "--freeze-filesystem",
    freeze: true,
    procRoot: inputs.procRoot,
    cwd: inputs.cwd,
  });
  const discoveryMounts = await resolveMountPoints(options.noFreezeFilesystem, {
    option: "--no-freeze-filesystem",
    freeze: false,
    procRoot: inputs.procRoot,
    cwd: inputs.cwd,
  });
  // Before anything is locked: without the right to freeze, the freeze would fail under the lock.
  checkCanFreeze(freezeMounts.map((m) => m.mountPoint), inputs.canFreeze);
  for (const mount of discoveryMounts) {
    if (freezeMounts.some((m) => m.mountPoint === mount.mountPoint)) {
      throw new UsageError(
        `${mount.mountPoint} is given to both --freeze-filesystem and --no-freeze-filesystem`,
      );
    }
  }

  if (args.volumeIds.length === 0 && freezeMounts.length + discoveryMounts.length === 0) {
    const swallowed = swallowedVolumeId(args);
    throw new UsageError(
      "no volume ids or mount points were given: " +
        (swallowed
          ? `${swallowed.option} took ${swallowed.value} as its value; give the ${swallowed.option} ` +
            `value before the volume id (${swallowed.option} TEXT ${swallowed.value})`
          : "name the EBS volumes (vol-0123456789abcdef0 ...), or the mount points to find them " +
            "from with --freeze-filesystem MOUNT or --no-freeze-filesystem MOUNT (see --help)"),
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
  const runId = crypto.randomUUID();
  const tags = perVolume("tag", tagsGiven, count, {});
  const names = perVolume<string | undefined>("name", options.name, count, undefined);
  const descriptions = perVolume("description", options.description, count, PROGRAM);
  const layoutTags = volumeTags(volumeIds, discovered, [...freezeMounts, ...discoveryMounts], {
    multiVolume: options.multiVolume,
    warn: (message) => log.warn(message),
  });
  const volumes = volumeIds.map((volumeId, i): SnapshotRequest => {
    if (names[i] !== undefined && "Name" in tags[i]) {
      throw new UsageError("the Name tag is given both by --name and by --tag");
    }
    const name: Record<string, string> = names[i] !== undefined ? { Name: names[i]! } : {};
    return {
      volumeId,
      description: descriptions[i],
      tags: {
        ...tags[i],
        ...name,
        [MARKER_TAG]: volumeId,
        [RUN_ID_TAG]: runId,
        [VOLUMES_TAG]: layoutTags[i],
      },
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
    volumes,
    discovered,
    window: planWindow(options, {
      freezeMounts,
      database,
      heldMs: snapshotHoldMs(options.snapshotTimeout * 1000),
    }),
    instanceId,
    credentials,
    region,
    endpoint,
    snapshotTimeoutMs: options.snapshotTimeout * 1000,
    output,
    afterRun,
    runId,
    metricsFile,
    runDir,
    searchPath: programSearchPath(env),
  };
}

/**
 * An option whose value is a volume id (`--description vol-0123...` with the description
 * forgotten): the id the user meant as a volume, and the option that took it.
 */
function swallowedVolumeId(args: ParsedArgs): { option: string; value: string } | undefined {
  for (const name of args.given) {
    const value = (args.options as unknown as Record<string, unknown>)[optionKey(name)];
    const found = [value].flat().find((v) =>
      typeof v === "string" && /^vol-[0-9a-f]{8}([0-9a-f]{9})?$/.test(v)
    );
    if (typeof found === "string") return { option: `--${name}`, value: found };
  }
  return undefined;
}
