/** The command: argv -> options -> plan -> exit code; the part that calls EC2 is execute.ts, loaded only when needed. */
import { withConfigFile } from "./config_file.ts";
import { AppError, ExitCode, exitCodeOf } from "../util/errors.ts";
import { createLogger, type Logger } from "../util/log.ts";
import { helpText } from "./help.ts";
import { parseCommandLine } from "./parse.ts";
import { buildPlan } from "../plan/plan.ts";
import { planReport } from "./report.ts";
import { VERSION } from "./version.ts";

function writeStdout(text: string): void {
  const bytes = new TextEncoder().encode(text);
  let written = 0;
  while (written < bytes.length) written += Deno.stdout.writeSync(bytes.subarray(written));
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
  let log: Logger = createLogger();
  try {
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
    log = createLogger({ debug: options.debug, quiet: options.quiet });
    for (const warning of warnings) log.warn(warning);
    log.debug(`ec2-consistent-snapshot ${VERSION}, Deno ${Deno.version.deno}`);
    if (options.hold !== undefined || options.release) {
      const { holdCommand } = await import("./hold_command.ts");
      return await holdCommand({ commandLine: parsed, args, log, write: writeStdout });
    }
    const plan = await buildPlan({
      args,
      env: Deno.env.toObject(),
      home: Deno.env.get("HOME"),
      log,
    });
    if (plan.noaction && !plan.afterRun.retention) {
      writeStdout(planReport(plan));
      return ExitCode.ok;
    }
    // The AWS SDK loads here, with the part that calls EC2.
    const { execute } = await import("./execute.ts");
    return await execute(plan, { log, write: writeStdout });
  } catch (error) {
    if (error instanceof AppError) log.error(error.message);
    else log.error(`internal error: ${error instanceof Error ? error.stack : String(error)}`);
    return exitCodeOf(error);
  }
}
