/** The command: argv -> exit code. Wires the plan, the real side effects and the report. */
import type { EC2Client } from "@aws-sdk/client-ec2";
import { afterRun, nothingAfterRun, previewRetention } from "../run/after_run.ts";
import { trapStopSignals } from "../run/cleanup.ts";
import { withConfigFile } from "./config_file.ts";
import { createFreezer } from "../host/freeze.ts";
import { createHooks } from "../run/hooks.ts";
import { createMysqlDatabase } from "../db/mysql/database.ts";
import { createWatchdog } from "../watchdog/client.ts";
import { acquireFreezeLocks } from "../host/freeze_lock.ts";
import { AppError, ExitCode, exitCodeOf } from "../util/errors.ts";
import { createLogger, type Logger } from "../util/log.ts";
import { helpText, parseCommandLine } from "./options.ts";
import { buildPlan, type Plan } from "../plan/plan.ts";
import { createMultiVolumeEc2 } from "../aws/multi_volume.ts";
import { stderrProgress } from "./progress.ts";
import { jsonReport, planReport, textReport } from "./report.ts";
import { runSequence } from "../run/sequence.ts";
import { sdkCredentials } from "../plan/credentials.ts";
import { VERSION } from "./version.ts";

function writeStdout(text: string): void {
  const bytes = new TextEncoder().encode(text);
  let written = 0;
  while (written < bytes.length) written += Deno.stdout.writeSync(bytes.subarray(written));
}

/**
 * Runs the program; returns its exit code. The AWS SDK (ec2.ts) is imported only on the paths
 * that call EC2: `--help`, `--version` and `--noaction` (without retention) start without it.
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
    if (options.noaction && !plan.afterRun.retention) {
      writeStdout(planReport(plan));
      return ExitCode.ok;
    }
    const { createEc2Client } = await import("../aws/ec2.ts");
    const credentials = await sdkCredentials(plan.credentials);
    const clients = new Map<string, EC2Client>();
    const clientFor = (region: string) => {
      if (!clients.has(region)) {
        clients.set(region, createEc2Client({ region, endpoint: plan.endpoint, credentials }));
      }
      return clients.get(region)!;
    };
    const region = plan.region.value!;
    try {
      if (options.noaction) {
        // Retention lists what it would delete: a read-only DescribeSnapshots, nothing else.
        const retention = plan.afterRun.retention
          ? await previewRetention(plan.afterRun.retention, plan.volumes, clientFor(region), log)
          : undefined;
        writeStdout(planReport(plan, retention));
        return ExitCode.ok;
      }
      return await snapshotAndFollowUp(plan, clientFor, log);
    } finally {
      for (const client of clients.values()) client.destroy();
    }
  } catch (error) {
    if (error instanceof AppError) log.error(error.message);
    else log.error(`internal error: ${error instanceof Error ? error.stack : String(error)}`);
    return exitCodeOf(error);
  }
}

/** The sequence, then (after everything is released, and only on success) the follow-up steps. */
async function snapshotAndFollowUp(
  plan: Plan,
  clientFor: (region: string) => EC2Client,
  log: Logger,
): Promise<number> {
  const { options } = plan;
  const region = plan.region.value!;
  const { createEc2 } = await import("../aws/ec2.ts");
  const multiVolume = options.multiVolume
    ? createMultiVolumeEc2(clientFor(region), { instanceId: plan.instanceId!, log })
    : undefined;
  // One run or hold at a time per file system: a hold's freeze must not be thawed by our unwind.
  const locks = await acquireFreezeLocks(
    plan.freezeMounts.map((m) => ({ mountPoint: m.mountPoint, device: m.majorMinor })),
    { purpose: "run" },
  );
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
        ec2: multiVolume ?? createEc2(clientFor(region), log),
        freezer: createFreezer({ log }),
        hooks: createHooks({ log }),
        watchdog: createWatchdog({ log }),
        database: plan.database ? createMysqlDatabase(options, { log }) : undefined,
        log,
        signal: trap.signal,
      },
    );
    const after = result.problems.length === 0 && !nothingAfterRun(plan.afterRun)
      ? await afterRun(
        plan.afterRun,
        { region, volumes: plan.volumes, outcomes: result.outcomes },
        {
          clientFor,
          log,
          signal: trap.signal,
          progress: options.quiet ? undefined : stderrProgress,
        },
      )
      : undefined;
    const final = { ...result, problems: [...result.problems, ...after?.problems ?? []] };
    writeStdout(
      plan.output === "json"
        ? jsonReport(plan, final, after)
        : textReport(final, options.quiet, after),
    );
    for (const problem of final.problems) log.error(problem.message);
    return final.problems[0]?.exitCode ?? ExitCode.ok;
  } finally {
    trap.dispose();
    await locks.release();
  }
}
