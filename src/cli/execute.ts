/**
 * The command's part that talks to EC2, loaded only after the plan: SDK clients, the real side
 * effects, the sequence, the follow-up steps and the report. Reads the plan, never the options.
 */
import { afterRun, previewRetention } from "../run/after_run.ts";
import { nothingAfterRun } from "../plan/after_run.ts";
import { trapStopSignals } from "../run/cleanup.ts";
import { windowParts, windowSpec } from "../run/window_parts.ts";
import {
  AppError,
  errorCode,
  errorMessage,
  ExitCode,
  OutputError,
  PreflightError,
} from "../util/errors.ts";
import { type Logger, stderrWriteFailure } from "../util/log.ts";
import type { Plan } from "../plan/plan.ts";
import { createEc2, createEc2Client, type EC2Client } from "../aws/ec2.ts";
import { createMultiVolumeEc2 } from "../aws/multi_volume.ts";
import { checkCredentials, sdkCredentials } from "../aws/credentials.ts";
import { stderrProgress } from "./progress.ts";
import { jsonReport, planReport, textReport } from "./report.ts";
import { runSequence } from "../run/sequence.ts";
import type { RunFacts } from "./run_metrics.ts";

/** Where the command writes its report (stdout in the program). */
export type Write = (text: string) => void;

/** What execute needs from the command. */
export interface ExecuteIo {
  /** The run's logger (stderr). */
  log: Logger;
  /** The report of a run: stdout. */
  write: Write;
  /** --noaction's plan: stderr, or stdout for JSON. */
  writePlan: Write;
  /** Filled in as the run goes, for --metrics-file. */
  facts?: RunFacts;
}

/**
 * Carries out a plan that needs EC2: the dry run with retention (a read-only listing), or the
 * snapshot run and its follow-up steps. Returns the exit code.
 *
 * @example
 * ```ts
 * import type { Plan } from "../plan/plan.ts";
 * import { createLogger } from "../util/log.ts";
 * const plan = {} as Plan;
 * const write = (text: string) => console.log(text);
 * const code = await execute(plan, { log: createLogger({}), write, writePlan: write });
 * ```
 */
export async function execute(plan: Plan, io: ExecuteIo): Promise<number> {
  const { log } = io;
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
    if (plan.noaction) {
      // Retention lists what it would delete: a read-only DescribeSnapshots, nothing else.
      const retention = plan.afterRun.retention
        ? await previewRetention(plan.afterRun.retention, plan.volumes, clientFor(region), log)
          .catch((error) => {
            // No credentials, no permission, no endpoint: one line, as for any other preflight.
            throw new PreflightError(
              `retention: cannot list the volumes' snapshots (ec2:DescribeSnapshots): ` +
                `${errorCode(error)}: ${errorMessage(error)}`,
              { cause: error },
            );
          })
        : undefined;
      io.writePlan(planReport(plan, retention));
      return ExitCode.ok;
    }
    // Before anything is locked: no credentials is one line, not an SDK error about a volume.
    await checkCredentials(
      () => clientFor(region).config.credentials(),
      plan.credentials,
      plan.snapshotTimeoutMs,
    );
    return await snapshotAndFollowUp(plan, clientFor, io);
  } finally {
    for (const client of clients.values()) client.destroy();
  }
}

/** The sequence, then (after everything is released, and only on success) the follow-up steps. */
async function snapshotAndFollowUp(
  plan: Plan,
  clientFor: (region: string) => EC2Client,
  io: ExecuteIo,
): Promise<number> {
  const { log, write } = io;
  const region = plan.region.value!;
  const multiVolume = plan.multiVolume
    ? createMultiVolumeEc2(clientFor(region), { instanceId: plan.instanceId!, log })
    : undefined;
  // A second stop signal cannot cut the release short, but it ends the lookup after it.
  const again = new AbortController();
  const trap = trapStopSignals((name) => {
    log.warn(`${name} received again; still releasing`);
    again.abort();
  });
  try {
    const parts = await windowParts(plan.window, {
      log,
      purpose: "run",
      runDir: plan.runDir,
      searchPath: plan.searchPath,
    });
    const result = await runSequence(
      {
        ...windowSpec(plan.window),
        volumes: plan.volumes,
        snapshotTimeoutMs: plan.snapshotTimeoutMs,
      },
      {
        ...parts,
        ec2: multiVolume ?? createEc2(clientFor(region), log),
        log,
        signal: trap.signal,
        lookupSignal: again.signal,
      },
    );
    const after = result.problems.length === 0 && !nothingAfterRun(plan.afterRun)
      ? await afterRun(
        plan.afterRun,
        { region, volumes: result.requests, outcomes: result.outcomes },
        {
          clientFor,
          log,
          signal: trap.signal,
          progress: plan.quiet ? undefined : stderrProgress,
        },
      )
      : undefined;
    if (io.facts) {
      io.facts.outcomes = result.outcomes;
      io.facts.timings = result.timings;
      io.facts.retention = after?.retention ?? null;
    }
    const problems = [...result.problems, ...after?.problems ?? []];
    const stderrFailure = stderrWriteFailure();
    if (stderrFailure) problems.push(new OutputError(`cannot write to stderr: ${stderrFailure}`));
    const final = { ...result, problems };
    let said: AppError | undefined;
    try {
      write(
        plan.output === "json"
          ? jsonReport(plan, final, after)
          : textReport(final, plan.quiet, after),
      );
    } catch (error) {
      // stdout is closed (OutputError): the snapshot ids, and what retention deleted, still go
      // where they can, to stderr, in one line.
      said = error instanceof AppError ? error : new OutputError(errorMessage(error));
      const made = final.outcomes.flatMap((o) => o.ok ? [`${o.snapshotId} (${o.volumeId})`] : []);
      const gone = after?.retention?.noaction === false
        ? after.retention.deleted.map((d) => `${d.snapshotId} (${d.volumeId})`)
        : [];
      log.error(
        `${said.message}; snapshots made: ${made.join(", ") || "none"}` +
          (gone.length > 0 ? `; deleted by retention: ${gone.join(", ")}` : ""),
      );
      problems.push(said);
    }
    for (const problem of problems) if (problem !== said) log.error(problem.message);
    return problems[0]?.exitCode ?? ExitCode.ok;
  } finally {
    trap.dispose();
  }
}
