/** The command: argv -> options -> plan -> exit code; the part that calls EC2 is execute.ts, loaded only when needed. */
import { withConfigFile } from "./config_file.ts";
import {
  AppError,
  errorMessage,
  ExitCode,
  exitCodeOf,
  OutputError,
  UsageError,
} from "../util/errors.ts";
import { createLogger, type Logger } from "../util/log.ts";
import { helpText } from "./help.ts";
import { writeAllSync } from "../util/lines.ts";
import { absentOrRegularFile } from "../util/files.ts";
import { parseCommandLine } from "./parse.ts";
import { buildPlan, type Plan } from "../plan/plan.ts";
import type { RunFacts } from "./run_metrics.ts";
import { planReport } from "./report.ts";
import { VERSION } from "./version.ts";

/** Writes all of `text`; throws OutputError (exit 13) when the stream is closed. */
function writeTo(
  stream: { writeSync(p: Uint8Array): number },
  name: "stdout" | "stderr",
  text: string,
): void {
  try {
    writeAllSync(stream, text);
  } catch (error) {
    throw new OutputError(`cannot write to ${name}: ${errorMessage(error)}`, { cause: error });
  }
}

function writeStdout(text: string): void {
  writeTo(Deno.stdout, "stdout", text);
}

/**
 * Where --noaction's plan goes: stderr, as the old tool printed nothing on stdout (scripts that
 * read snapshot ids from it read none); a JSON plan, asked for, on stdout.
 */
function planWriter(plan: Plan): (text: string) => void {
  return plan.output === "json" ? writeStdout : (text) => writeTo(Deno.stderr, "stderr", text);
}

/**
 * Runs the program; returns its exit code. The AWS SDK (with execute.ts) is imported only on the
 * paths that call EC2: `--help`, `--version` and `--noaction` (without retention) start without it.
 *
 * @example
 * ```ts
 * Deno.exit(await main(Deno.args));
 * ```
 */
export async function main(argv: readonly string[]): Promise<number> {
  const start = new Date();
  let log: Logger = createLogger();
  // Known once the options are read; written after every run that got that far.
  let metricsFile: string | undefined;
  const facts: RunFacts = {};
  let code: number;
  try {
    code = await command(argv, {
      log: (created) => log = created,
      metricsFile: (path) => metricsFile = path,
      facts,
    });
  } catch (error) {
    if (error instanceof AppError) log.error(error.message);
    else log.error(`internal error: ${error instanceof Error ? error.stack : String(error)}`);
    code = exitCodeOf(error);
  }
  // A command line too broken to parse still names its metrics file: the failure is reported.
  metricsFile ??= code === ExitCode.usage ? metricsFileInArgv(argv) : undefined;
  if (metricsFile === undefined || metricsFile === "") return code;
  // After a failure, a metrics path that is not a regular file (a FIFO, a link, a directory) is
  // left alone without a second line: the plan names it when the run got that far.
  if (code !== ExitCode.ok && !absentOrRegularFile(metricsFile)) return code;
  const { writeRunMetrics } = await import("./run_metrics.ts");
  return writeRunMetrics(metricsFile, { code, start, facts, log });
}

/**
 * `--metrics-file PATH` or `--metrics-file=PATH` as written in `argv`, for a command line the
 * parser refused; none for a dry run, which leaves the monitoring's file alone.
 */
function metricsFileInArgv(argv: readonly string[]): string | undefined {
  if (argv.some((arg) => arg === "-n" || arg === "--noaction")) return undefined;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--") return undefined;
    if (argv[i].startsWith("--metrics-file=")) return argv[i].slice("--metrics-file=".length);
    if (argv[i] === "--metrics-file" && argv[i + 1] && !argv[i + 1].startsWith("-")) {
      return argv[i + 1];
    }
  }
  return undefined;
}

/** The command itself; `hooks` hand the logger, the metrics file and the run's facts out. */
async function command(
  argv: readonly string[],
  hooks: {
    log: (log: Logger) => void;
    metricsFile: (path: string) => void;
    facts: RunFacts;
  },
): Promise<number> {
  const parsed = parseCommandLine(argv);
  if (parsed.options.help) {
    writeStdout(helpText(VERSION));
    return ExitCode.ok;
  }
  if (parsed.options.version) {
    writeStdout(`ec2-consistent-snapshot ${VERSION}\n`);
    return ExitCode.ok;
  }
  const { args, warnings } = withConfigFile(parsed);
  const { options } = args;
  const log = createLogger({ debug: options.debug, quiet: options.quiet });
  hooks.log(log);
  if (options.holdWithin !== undefined && options.hold === undefined) {
    throw new UsageError("--hold-within: only with --hold");
  }
  if (options.restoreDrill !== undefined) {
    // The drill writes metrics of its own (last_drill_*), not those of a run.
    for (const warning of warnings) log.warn(warning);
    const { drillCommand } = await import("./drill_command.ts");
    return await drillCommand({
      args,
      env: Deno.env.toObject(),
      home: Deno.env.get("HOME"),
      log,
      write: writeStdout,
      say: (line) => {
        if (!options.quiet) writeTo(Deno.stderr, "stderr", `${line}\n`);
      },
    });
  }
  if (options.hold !== undefined || options.release) {
    // Hold mode makes no snapshot: no metrics of a run are written for it.
    for (const warning of warnings) log.warn(warning);
    const { holdCommand } = await import("./hold_command.ts");
    return await holdCommand({
      commandLine: parsed,
      args,
      log,
      write: writeStdout,
      writePlan: (text) => writeTo(Deno.stderr, "stderr", text),
      env: Deno.env.toObject(),
      cwd: Deno.cwd(),
      home: Deno.env.get("HOME"),
    });
  }
  // A dry run is not a run: it leaves the monitoring's file alone.
  if (options.metricsFile !== undefined && !options.noaction) {
    hooks.metricsFile(options.metricsFile);
  }
  for (const warning of warnings) log.warn(warning);
  log.debug(`ec2-consistent-snapshot ${VERSION}, Deno ${Deno.version.deno}`);
  const plan = await buildPlan({
    args,
    env: Deno.env.toObject(),
    home: Deno.env.get("HOME"),
    cwd: Deno.cwd(),
    log,
  });
  hooks.facts.volumeIds = plan.volumes.map((v) => v.volumeId);
  if (plan.noaction && !plan.afterRun.retention) {
    planWriter(plan)(planReport(plan));
    return ExitCode.ok;
  }
  // The AWS SDK loads here, with the part that calls EC2.
  const { execute } = await import("./execute.ts");
  return await execute(plan, {
    log,
    write: writeStdout,
    writePlan: planWriter(plan),
    facts: hooks.facts,
  });
}
