/** The command: argv -> exit code. Wires the plan, the real side effects and the report. */
import { trapStopSignals } from "./cleanup.ts";
import { createFreezer } from "./freeze.ts";
import { createHooks } from "./hooks.ts";
import { createMysqlDatabase } from "./mysql.ts";
import { createWatchdog } from "./watchdog.ts";
import { AppError, ExitCode, exitCodeOf } from "./errors.ts";
import { createLogger, type Logger } from "./log.ts";
import { helpText, parseCommandLine } from "./options.ts";
import { buildPlan } from "./plan.ts";
import { jsonReport, planReport, textReport } from "./report.ts";
import { runSequence } from "./run.ts";
import { sdkCredentials } from "./credentials.ts";
import { VERSION } from "./version.ts";

function writeStdout(text: string): void {
  const bytes = new TextEncoder().encode(text);
  let written = 0;
  while (written < bytes.length) written += Deno.stdout.writeSync(bytes.subarray(written));
}

/**
 * Runs the program; returns its exit code. The AWS SDK (ec2.ts) is imported only on the path
 * that calls EC2: `--help`, `--version` and `--noaction` start without it.
 */
export async function main(argv: readonly string[]): Promise<number> {
  let log: Logger = createLogger();
  try {
    const args = parseCommandLine(argv);
    const { options } = args;
    if (options.help) {
      writeStdout(helpText(VERSION));
      return ExitCode.ok;
    }
    if (options.version) {
      writeStdout(`ec2-consistent-snapshot ${VERSION}\n`);
      return ExitCode.ok;
    }
    log = createLogger({ debug: options.debug, quiet: options.quiet });
    log.debug(`ec2-consistent-snapshot ${VERSION}, Deno ${Deno.version.deno}`);
    const plan = await buildPlan({
      args,
      env: Deno.env.toObject(),
      home: Deno.env.get("HOME"),
      log,
    });
    if (options.noaction) {
      writeStdout(planReport(plan));
      return ExitCode.ok;
    }

    const { createEc2, createEc2Client } = await import("./ec2.ts");
    const client = createEc2Client({
      region: plan.region.value!,
      endpoint: plan.endpoint,
      credentials: await sdkCredentials(plan.credentials),
    });
    const trap = trapStopSignals((name) => log.warn(`${name} received again; still releasing`));
    try {
      const result = await runSequence(
        {
          volumes: plan.volumes,
          freezeMounts: plan.freezeMounts.map((m) => m.mountPoint),
          snapshotTimeoutMs: plan.snapshotTimeoutMs,
          preFreezeCommand: options.preFreezeCommand,
          postThawCommand: options.postThawCommand,
        },
        {
          ec2: createEc2(client, log),
          freezer: createFreezer({ log }),
          hooks: createHooks({ log }),
          watchdog: createWatchdog({ log }),
          database: plan.database ? createMysqlDatabase(options, { log }) : undefined,
          log,
          signal: trap.signal,
        },
      );
      writeStdout(
        plan.output === "json" ? jsonReport(plan, result) : textReport(result, options.quiet),
      );
      for (const problem of result.problems) log.error(problem.message);
      return result.problems[0]?.exitCode ?? ExitCode.ok;
    } finally {
      trap.dispose();
      client.destroy();
    }
  } catch (error) {
    if (error instanceof AppError) log.error(error.message);
    else log.error(`internal error: ${error instanceof Error ? error.stack : String(error)}`);
    return exitCodeOf(error);
  }
}
