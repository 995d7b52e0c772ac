/** The plan of `--hold` and `--release`: what to hold, for how long; every input checked, nothing done. */
import { UsageError } from "../util/errors.ts";
import { resolveMountPoints } from "../host/mounts.ts";
import { type Logger, registerSecret } from "../util/log.ts";
import { OPTION_TABLE, type Options, type OptionSpec, type ParsedArgs } from "../types/options.ts";
import type { MysqlPlanDeps } from "./mysql.ts";
import { planDatabase, planWindow, type WindowPlan } from "./window.ts";
import { checkCanFreeze, programSearchPath, runDirectory } from "./machine.ts";

/** What a hold holds: decided from the options of a normal run, without the snapshot ones. */
export interface HoldPlan {
  /** How long everything may stay held, in milliseconds, counted from the moment it is held. */
  holdMs: number;
  /** --hold-within in milliseconds: the holder gives up (releasing) unless held by then. */
  holdWithinMs?: number;
  /** What is held: the mounts, the database, the commands around the freeze, the bounds. */
  window: WindowPlan;
  /** --debug: the holder logs every step. */
  debug: boolean;
  /** --quiet: only errors. */
  quiet: boolean;
  /** The state directory and the freeze locks' ($ECS_RUN_DIR, else /run/ec2-consistent-snapshot). */
  runDir: string;
  /** Where sync and fsfreeze are looked for before the system directories ($PATH). */
  searchPath: string;
}

/** The plan of `--release`: where the hold's state is. */
export interface ReleasePlan {
  /** The state directory ($ECS_RUN_DIR, else /run/ec2-consistent-snapshot). */
  runDir: string;
}

/** Options that only make sense when snapshots are made: the Snapshots and Retention groups. */
function snapshotOptions(): Set<string> {
  return new Set(
    (OPTION_TABLE as readonly OptionSpec[])
      .filter((s) => s.group === "Snapshots" || s.group.startsWith("Retention"))
      .map((s) => s.name).concat("no-freeze-filesystem"),
  );
}

/**
 * Refuses volume ids and snapshot options given on the command line with `--hold` or
 * `--release`; those that come from a `--config` file (shared with normal runs) are ignored.
 */
function refuseSnapshotInput(
  mode: "--hold" | "--release",
  args: ParsedArgs,
  commandLineVolumes: readonly string[],
  log: Logger,
): void {
  if (commandLineVolumes.length > 0) {
    throw new UsageError(
      `${mode} makes no snapshot: volume ids are not accepted (got ${commandLineVolumes[0]}); ` +
        "the orchestrator snapshots the volumes",
    );
  }
  const refused = snapshotOptions();
  for (const name of args.given) {
    if (!refused.has(name)) continue;
    if (args.fromConfigFile?.has(name)) {
      log.debug(`${mode}: --${name} from the configuration file is ignored`);
      continue;
    }
    throw new UsageError(`${mode} makes no snapshot: --${name} is not accepted with it`);
  }
}

/** Absolute paths, so that the holder (working directory /) uses the same files. */
function absolute(options: Options, cwd: string): Options {
  const abs = (p: string | undefined) =>
    p === undefined || p.startsWith("/") ? p : `${cwd.replace(/\/$/, "")}/${p}`;
  return {
    ...options,
    mysqlDefaultsFile: abs(options.mysqlDefaultsFile),
    mysqlMasterStatusFile: abs(options.mysqlMasterStatusFile),
    mysqlSocket: abs(options.mysqlSocket),
  };
}

/** Inputs of {@linkcode buildHoldPlan}. */
export interface HoldPlanInputs {
  /** The command line merged with the configuration file. */
  args: ParsedArgs;
  /** Volume ids given on the command line itself (those of a configuration file are ignored). */
  commandLineVolumes: readonly string[];
  /** Where warnings and --debug steps go. */
  log: Logger;
  /** The environment ($ECS_RUN_DIR, $PATH, $USER). */
  env: Record<string, string | undefined>;
  /** Working directory, for relative paths. */
  cwd: string;
  /** Root of procfs ("/proc"); tests point it at a fixture tree. */
  procRoot?: string;
  /** The home directory (~/.my.cnf); undefined when unknown. */
  home: string | undefined;
  /** Lookups of the MySQL plan; tests replace them. */
  mysql?: MysqlPlanDeps;
  /** Whether this process may freeze (root, CAP_SYS_ADMIN); host/proc.ts canFreeze by default. */
  canFreeze?: () => boolean;
}

/**
 * Checks the input of `--hold` as a normal run would (mount points, the database's option files,
 * settings and lock mode) and refuses what only a snapshot needs. Reads mountinfo and option
 * files; connects to nothing.
 *
 * @example
 * ```ts
 * import { parseCommandLine } from "../cli/parse.ts";
 * import { silentLogger } from "../util/log.ts";
 * const args = parseCommandLine(["--hold", "--freeze-filesystem", "/data"]);
 * const plan = await buildHoldPlan({ args, commandLineVolumes: args.volumeIds, log: silentLogger,
 *   env: Deno.env.toObject(), cwd: Deno.cwd(), home: Deno.env.get("HOME") });
 * plan.holdMs; // 60000 for a bare --hold
 * ```
 */
export async function buildHoldPlan(inputs: HoldPlanInputs): Promise<HoldPlan> {
  const { args, log } = inputs;
  const { options } = args;
  refuseSnapshotInput("--hold", args, inputs.commandLineVolumes, log);
  for (const name of ["mongo", "mongo-stop"]) {
    if (args.given.has(name)) throw new UsageError(`--${name}: not supported with --hold yet`);
  }
  const seconds = options.hold!;
  if (!(seconds > 0)) throw new UsageError(`--hold: must be more than 0 seconds, got ${seconds}`);
  registerSecret(options.mysqlPassword);
  const database = await planDatabase(absolute(options, inputs.cwd), {
    env: inputs.env,
    home: inputs.home,
    log,
    mysql: inputs.mysql,
  });
  const freezeMounts = await resolveMountPoints(options.freezeFilesystem, {
    option: "--freeze-filesystem",
    freeze: true,
    procRoot: inputs.procRoot,
    cwd: inputs.cwd,
  });
  if (freezeMounts.length === 0 && !database) {
    throw new UsageError("--hold: nothing to hold: give --freeze-filesystem, --mysql or both");
  }
  // Before the holder starts, locks or arms anything.
  checkCanFreeze(freezeMounts.map((m) => m.mountPoint), inputs.canFreeze);
  const holdMs = Math.round(seconds * 1000);
  return {
    holdMs,
    ...(options.holdWithin === undefined
      ? {}
      : { holdWithinMs: Math.round(options.holdWithin * 1000) }),
    window: planWindow(options, { freezeMounts, database, heldMs: holdMs }),
    debug: options.debug,
    quiet: options.quiet,
    runDir: runDirectory(inputs.env),
    searchPath: programSearchPath(inputs.env),
  };
}

/**
 * Checks the input of `--release` (nothing but general options; a configuration file's
 * settings are ignored) and says where the hold's state is.
 */
export function buildReleasePlan(
  args: ParsedArgs,
  commandLineVolumes: readonly string[],
  log: Logger,
  env: Record<string, string | undefined>,
): ReleasePlan {
  refuseSnapshotInput("--release", args, commandLineVolumes, log);
  return { runDir: runDirectory(env) };
}
