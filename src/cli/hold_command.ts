/** The commands of hold mode: `--hold` (and its dry run with --noaction) and `--release`. */
import { ExitCode, HoldInPlaceError, UsageError } from "../util/errors.ts";
import { type Logger, printable } from "../util/log.ts";
import type { ParsedArgs } from "../types/options.ts";
import { buildHoldPlan, buildReleasePlan, type HoldPlan } from "../plan/hold_plan.ts";
import { startHold } from "../hold/client.ts";
import { releaseHold } from "../hold/release.ts";
import { describeHold, readHold, type ReleaseRecord, statePaths } from "../hold/state.ts";
import { findFreezeProgram } from "../host/freeze.ts";
import { binlogLine, walLine } from "./report.ts";
import { describeMysqlPlan } from "../plan/mysql.ts";
import { describePostgresqlPlan } from "../plan/postgresql.ts";
import type { DatabasePlan } from "../plan/window.ts";
import { windowDatabase } from "../run/window_parts.ts";
import { PROGRAM } from "../types/tags.ts";

/** What the hold commands need from `main`. */
export interface HoldCommandInputs {
  /** The command line alone (its volume ids are refused; a configuration file's are ignored). */
  commandLine: ParsedArgs;
  /** The command line merged with the configuration file. */
  args: ParsedArgs;
  /** Where warnings, errors and --debug steps go. */
  log: Logger;
  /** Writes to stdout. */
  write: (text: string) => void;
  /** Where the dry run's plan goes (stderr in the program); default `write`. */
  writePlan?: (text: string) => void;
  /** The environment ($ECS_RUN_DIR, $PATH, $USER). */
  env: Record<string, string | undefined>;
  /** The working directory (relative paths in the options). */
  cwd: string;
  /** The home directory (~/.my.cnf); undefined when unknown. */
  home: string | undefined;
}

const ms = (value: number | null) => value === null ? "none" : `${value} ms`;

/**
 * What `--release` prints: the old tool's binary-log line (when a position was taken while
 * locked), then the measured windows.
 *
 * @example
 * ```ts
 * import type { ReleaseRecord } from "../hold/state.ts";
 * const record = {} as ReleaseRecord;
 * releaseReport(record);
 * // 'ec2-consistent-snapshot: released; held 12.0 s, freeze window 12034 ms, ...\n'
 * ```
 */
export function releaseReport(record: ReleaseRecord): string {
  const { timings } = record;
  const lines = [
    ...(record.binlog ? [binlogLine(record.binlog)] : []),
    ...(record.wal ? [walLine(record.wal)] : []),
    `${PROGRAM}: released; held ${((record.releasedAt - record.heldAt) / 1000).toFixed(1)} s, ` +
    `freeze window ${ms(timings.freezeWindowMs)}, lock window ${ms(timings.lockWindowMs)}, ` +
    `database lock ${ms(timings.databaseLockMs)}`,
  ];
  return lines.map((line) => line + "\n").join("");
}

/** What `--noaction --hold` says of the database it connected to and checked. */
function checkedDatabaseLines(database: DatabasePlan): string[] {
  switch (database.kind) {
    case "mysql":
      return [
        database.stop
          ? "would stop MySQL/MariaDB and start it again (server found running)"
          : `would flush and lock MySQL/MariaDB, lock mode ${database.lockMode} ` +
            "(connected; lock mode and privileges checked)",
        ...describeMysqlPlan(database).slice(1),
      ];
    case "postgresql":
      return [
        "would CHECKPOINT PostgreSQL and record its WAL position (connected)",
        ...describePostgresqlPlan(database).slice(1),
      ];
  }
}

/**
 * `--noaction --hold`: every check a hold makes before it locks (mount points, the freeze
 * program, a hold already in place, the database connection, privileges and lock mode), and
 * nothing held: no locking statement, no freeze.
 */
async function holdDryRun(plan: HoldPlan, log: Logger): Promise<string> {
  const { window } = plan;
  if (window.freezeMounts.length > 0) findFreezeProgram({ path: plan.searchPath });
  const status = readHold(statePaths(plan.runDir));
  if (status.kind === "live") {
    throw new HoldInPlaceError(
      `--hold would be refused: ${describeHold(status.record)} is in place`,
    );
  }
  const lines = [`${PROGRAM}: --noaction --hold: nothing will be locked or frozen`];
  // The database as the holder would make it: connected, its lock mode and privileges checked.
  const database = await windowDatabase(window.database, log);
  if (database) {
    try {
      await database.prepare();
    } finally {
      await database.release();
    }
    lines.push(...checkedDatabaseLines(window.database!));
  }
  if (window.hooks.preFreeze) lines.push(`would run the pre-freeze command`);
  lines.push(
    ...window.freezeMounts.map((m) => `would freeze ${m.mountPoint} (${m.fsType} on ${m.source})`),
    `would hold for at most ${plan.holdMs / 1000} s, until --release`,
  );
  if (window.hooks.postThaw) lines.push(`would run the post-thaw command after the thaw`);
  return lines.map((line) => printable(line) + "\n").join("");
}

/**
 * Runs `--hold` or `--release`; returns the exit code (throws AppErrors for `main` to print).
 *
 * @example
 * ```ts
 * const inputs = {} as HoldCommandInputs;
 * const { options } = inputs.args;
 * if (options.hold !== undefined || options.release) Deno.exit(await holdCommand(inputs));
 * ```
 */
export async function holdCommand(inputs: HoldCommandInputs): Promise<number> {
  const { args, log, write } = inputs;
  const { options } = args;
  if (options.release) {
    if (options.hold !== undefined) throw new UsageError("--hold and --release: give one of them");
    const release = buildReleasePlan(args, inputs.commandLine.volumeIds, log, inputs.env);
    const record = await releaseHold(statePaths(release.runDir), log);
    if (!options.quiet) {
      write(options.output === "json" ? JSON.stringify(record) + "\n" : releaseReport(record));
    }
    for (const problem of record.problems) log.error(problem.message);
    return record.problems[0]?.exitCode ?? ExitCode.ok;
  }
  const plan = await buildHoldPlan({
    args,
    commandLineVolumes: inputs.commandLine.volumeIds,
    log,
    env: inputs.env,
    cwd: inputs.cwd,
    home: inputs.home,
  });
  if (options.noaction) {
    // As --noaction's plan: on stderr, so that nothing on stdout looks like a result.
    (inputs.writePlan ?? write)(await holdDryRun(plan, log));
    return ExitCode.ok;
  }
  const held = await startHold(plan, { log, paths: statePaths(plan.runDir) });
  log.debug(
    `held by process ${held.pid} until ${new Date(held.deadlineAt).toISOString()}; ` +
      "release with --release",
  );
  if (!options.quiet && held.binlog) write(binlogLine(held.binlog) + "\n");
  if (!options.quiet && held.wal) write(walLine(held.wal) + "\n");
  return ExitCode.ok;
}
