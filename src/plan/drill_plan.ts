/** The restore drill's plan: what to restore (a run, a snapshot's run, the latest run of volumes), bounds, and how to reach EC2. */
import { checkEndpoint, checkMetricsFile, checkOutput, checkVolumeIds } from "./checks.ts";
import { chooseCredentials } from "./credentials.ts";
import { type Region, regionFromMetadata, regionWithoutNetwork } from "./region.ts";
import { runDirectory } from "./machine.ts";
import type { CredentialSource } from "../types/credentials.ts";
import type { ParsedArgs } from "../types/options.ts";
import type { DrillTarget } from "../types/drill.ts";
export type { DrillTarget };
import { readInstanceIdentity } from "../aws/imds.ts";
import { DrillError, ExitCode, UsageError } from "../util/errors.ts";
import { canFreeze } from "../host/proc.ts";
import type { Logger } from "../util/log.ts";

/** Everything the drill decided before it asks EC2 anything. */
export interface DrillPlan {
  /** What to restore. */
  target: DrillTarget;
  /** --noaction: say what would be done, create nothing. */
  noaction: boolean;
  /** --drill-check-command. */
  checkCommand?: string;
  /** --drill-timeout in milliseconds: the bound of each wait. */
  timeoutMs: number;
  /** This instance (the volumes are attached to it); from the metadata unless --instance-id. */
  instanceId: string;
  /** The region of the snapshots. */
  region: Region;
  /** The EC2 endpoint; undefined for AWS's. */
  endpoint: string | undefined;
  /** Where the credentials come from. */
  credentials: CredentialSource;
  /** --output. */
  output: "text" | "json";
  /** --metrics-file. */
  metricsFile?: string;
  /** The run directory: the drill's lock (one drill at a time on an instance). */
  runDir: string;
  /** Root of sysfs, where attached volumes are found ("/sys"). */
  sysRoot: string;
  /** Where device nodes are ("/dev"). */
  devRoot: string;
}

/** What {@linkcode buildDrillPlan} plans from. */
export interface DrillPlanInputs {
  /** The command line. */
  args: ParsedArgs;
  /** The environment. */
  env: Record<string, string | undefined>;
  /** The home directory. */
  home: string | undefined;
  /** Where warnings and --debug go. */
  log: Logger;
  /** Root of sysfs; tests point it at a fixture tree. */
  sysRoot?: string;
  /** Where device nodes are; tests point it at a directory of links to loop devices. */
  devRoot?: string;
  /** Whether this process may mount (root, CAP_SYS_ADMIN); host/proc.ts canFreeze by default. */
  canMount?: () => boolean;
}

const RUN_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const SNAPSHOT_ID = /^snap-(?:[0-9a-f]{8}|[0-9a-f]{17})$/;

/**
 * The drill's target from `--restore-drill VALUE` and the volume ids; throws UsageError.
 *
 * @example
 * ```ts
 * drillTarget("latest", ["vol-0123456789abcdef0"]); // { kind: "latest", volumeIds: [...] }
 * ```
 */
export function drillTarget(value: string, volumeIds: readonly string[]): DrillTarget {
  if (value === "latest") {
    if (volumeIds.length === 0) {
      throw new UsageError(
        "--restore-drill latest: name the volumes whose newest run to restore (vol-... ...)",
      );
    }
    checkVolumeIds([...volumeIds]);
    return { kind: "latest", volumeIds: [...volumeIds] };
  }
  if (volumeIds.length > 0) {
    throw new UsageError(`--restore-drill ${value}: volume ids go only with latest`);
  }
  if (RUN_ID.test(value)) return { kind: "run", runId: value };
  if (SNAPSHOT_ID.test(value)) return { kind: "snapshot", snapshotId: value };
  throw new UsageError(
    `--restore-drill '${value}': not a run id (a UUID), a snapshot id (snap-...) or latest`,
  );
}

/**
 * Checks the drill's input and decides; asks the instance metadata for what is not given.
 *
 * @example
 * ```ts
 * import { parseCommandLine } from "../cli/parse.ts";
 * import { createLogger } from "../util/log.ts";
 * const plan = await buildDrillPlan({
 *   args: parseCommandLine(["--restore-drill", "snap-0123456789abcdef0"]),
 *   env: Deno.env.toObject(),
 *   home: Deno.env.get("HOME"),
 *   log: createLogger(),
 * });
 * ```
 */
export async function buildDrillPlan(inputs: DrillPlanInputs): Promise<DrillPlan> {
  const { args, env, log } = inputs;
  const { options, given } = args;
  const target = drillTarget(options.restoreDrill!, args.volumeIds);
  const runDir = runDirectory(env);
  const output = checkOutput(options.output);
  for (const option of ["mysql", "postgresql", "hold", "release", "multi-volume"]) {
    if (given.has(option)) {
      throw new UsageError(
        `--${option} does not go with --restore-drill: the drill reads the database from the ` +
          "snapshots' tags",
      );
    }
  }
  // Before any volume is made: without it the mounts fail after the volumes were created and
  // attached, and the drill would say the restored data failed (exit 19).
  if (!options.noaction && !(inputs.canMount ?? canFreeze)()) {
    throw new DrillError(
      "--restore-drill mounts the restored volumes, which needs root (CAP_SYS_ADMIN), which " +
        "this process lacks; run it as root (sudo), or with --noaction",
      ExitCode.drillRefused,
    );
  }
  const endpoint = checkEndpoint(options.ec2Endpoint, "--ec2-endpoint") ??
    checkEndpoint(env.AWS_ENDPOINT_URL_EC2, "$AWS_ENDPOINT_URL_EC2");
  const credentials = chooseCredentials({
    options,
    given,
    fromConfigFile: args.fromConfigFile,
    env,
    home: inputs.home,
    log,
  });
  const metricsFile = options.metricsFile === undefined
    ? undefined
    : checkMetricsFile(options.metricsFile);
  let identity: ReturnType<typeof readInstanceIdentity> | undefined;
  const metadata = () => identity ??= readInstanceIdentity({ env: { get: (n) => env[n] } });
  let region = await regionWithoutNetwork(options, env);
  if (region.value === undefined) {
    region = { value: await regionFromMetadata(metadata), source: "the instance metadata" };
  }
  const instanceId = options.instanceId ?? (await metadata()).instanceId;
  return {
    target,
    noaction: options.noaction,
    checkCommand: options.drillCheckCommand,
    timeoutMs: options.drillTimeout * 1000,
    instanceId,
    region,
    endpoint,
    credentials,
    output,
    metricsFile,
    runDir,
    sysRoot: inputs.sysRoot ?? "/sys",
    devRoot: inputs.devRoot ?? "/dev",
  };
}
