/** The command of the restore drill (`--restore-drill`): plan, EC2 client, the drill, its report and metrics. */
import { buildDrillPlan, type DrillPlanInputs } from "../plan/drill_plan.ts";
import { createEc2Client } from "../aws/ec2.ts";
import { sdkCredentials } from "../aws/credentials.ts";
import { runDrill } from "../drill/sequence.ts";
import { drillJsonReport, drillTextReport, writeDrillMetrics } from "./drill_report.ts";
import { trapStopSignals } from "../run/cleanup.ts";
import { AppError, ExitCode } from "../util/errors.ts";
import { PROGRAM } from "../types/tags.ts";

/** What the drill command needs besides the plan's inputs. */
export interface DrillCommandIo extends DrillPlanInputs {
  /** stdout. */
  write: (text: string) => void;
  /** One line on stderr. */
  say: (line: string) => void;
}

/**
 * Runs `--restore-drill`; returns the exit code.
 *
 * @example
 * ```ts
 * import { parseCommandLine } from "./parse.ts";
 * import { createLogger } from "../util/log.ts";
 * const code = await drillCommand({
 *   args: parseCommandLine(["--restore-drill", "latest", "vol-0123456789abcdef0"]),
 *   env: Deno.env.toObject(),
 *   home: Deno.env.get("HOME"),
 *   log: createLogger(),
 *   write: (text) => console.log(text),
 *   say: (line) => console.error(line),
 * });
 * ```
 */
export async function drillCommand(io: DrillCommandIo): Promise<number> {
  const { log } = io;
  const plan = await buildDrillPlan(io);
  const client = createEc2Client({
    region: plan.region.value!,
    endpoint: plan.endpoint,
    credentials: await sdkCredentials(plan.credentials),
  });
  const trap = trapStopSignals((name) => log.warn(`${name} received again; still cleaning up`));
  try {
    const result = await runDrill(plan, {
      ec2: { client, instanceId: plan.instanceId, timeoutMs: plan.timeoutMs },
      log,
      say: (line) => io.say(`${PROGRAM}: drill: ${line}`),
      signal: trap.signal,
    });
    const problems: AppError[] = [...result.problems];
    io.write(plan.output === "json" ? drillJsonReport(result) : drillTextReport(result));
    for (const problem of problems) log.error(problem.message);
    if (plan.metricsFile && !plan.noaction) {
      try {
        writeDrillMetrics(plan.metricsFile, problems.length === 0, result.timings.totalMs);
      } catch (error) {
        log.error((error as Error).message);
        if (problems.length === 0) return ExitCode.metrics;
      }
    }
    return problems[0]?.exitCode ?? ExitCode.ok;
  } finally {
    trap.dispose();
    client.destroy();
  }
}
