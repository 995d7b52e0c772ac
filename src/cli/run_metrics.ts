/** What the command hands to --metrics-file: the facts of the run, gathered as it goes. */
import type { SnapshotOutcome } from "../types/side_effects.ts";
import type { Timings } from "../run/sequence.ts";
import type { RetentionResult } from "../aws/retention.ts";
import { AppError, ExitCode } from "../util/errors.ts";
import type { Logger } from "../util/log.ts";
import { writeMetricsFile } from "../run/metrics.ts";

/** Filled in by the command as far as the run got. */
export interface RunFacts {
  /** The run's volumes, once planned. */
  volumeIds?: string[];
  /** The sequence's outcomes and timings, once it ran. */
  outcomes?: readonly SnapshotOutcome[];
  /** The measured windows of the sequence, once it ran. */
  timings?: Timings;
  /** What retention did, when it ran. */
  retention?: RetentionResult | null;
}

/**
 * Writes the metrics of a finished run; returns the exit code: the run's own, or 15 (metrics)
 * when the file could not be written after a run that otherwise succeeded.
 *
 * @example
 * ```ts
 * import { createLogger } from "../util/log.ts";
 * const code = writeRunMetrics("/var/lib/node_exporter/textfile/ecs.prom", {
 *   code: 0, start: new Date(), facts: {}, log: createLogger({}) });
 * ```
 */
export function writeRunMetrics(
  path: string,
  run: { code: number; start: Date; facts: RunFacts; log: Logger },
): number {
  const { facts } = run;
  const volumeIds = facts.volumeIds ?? [];
  const made = new Set((facts.outcomes ?? []).flatMap((o) => o.ok ? [o.volumeId] : []));
  const deleted = facts.retention
    ? volumeIds.map((volumeId) => ({
      volumeId,
      count: facts.retention!.deleted.filter((d) => d.volumeId === volumeId).length,
    }))
    : undefined;
  try {
    writeMetricsFile(path, {
      exitCode: run.code,
      start: run.start,
      end: new Date(),
      freezeWindowMs: facts.timings?.freezeWindowMs,
      lockWindowMs: facts.timings?.lockWindowMs,
      created: volumeIds.map((volumeId) => ({ volumeId, count: made.has(volumeId) ? 1 : 0 })),
      deleted,
    });
    run.log.debug(`metrics written to ${path}`);
    return run.code;
  } catch (error) {
    run.log.error(error instanceof Error ? error.message : String(error));
    if (run.code !== ExitCode.ok) return run.code;
    return error instanceof AppError ? error.exitCode : ExitCode.metrics;
  }
}
