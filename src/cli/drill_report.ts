/** What the drill prints (a verdict with timings, or JSON) and the metrics it writes. */
import type { DrillResult } from "../drill/sequence.ts";
import { METRIC_PREFIX } from "../run/metrics.ts";
import { PROGRAM } from "../types/tags.ts";
import { VERSION } from "./version.ts";
import { writeFileAtomic } from "../util/files.ts";
import { MetricsError } from "../util/errors.ts";

const ms = (value: number | null) => value === null ? "-" : `${value} ms`;

/**
 * The verdict line with the timings.
 *
 * @example
 * ```ts
 * import type { DrillResult } from "../drill/sequence.ts";
 * const result = {} as DrillResult;
 * drillTextReport(result);
 * // "ec2-consistent-snapshot: restore drill of run 1b4e...: passed (create 2100 ms, ...)\n"
 * ```
 */
export function drillTextReport(result: DrillResult): string {
  const t = result.timings;
  const verdict = result.problems.length === 0 ? "passed" : "FAILED";
  return `${PROGRAM}: restore drill of run ${result.runId ?? "(not found)"}: ${verdict} ` +
    `(create ${ms(t.createMs)}, attach ${ms(t.attachMs)}, recovery ${ms(t.recoveryMs)}, ` +
    `your check ${ms(t.checkMs)}, cleanup ${ms(t.cleanupMs)}, total ${t.totalMs} ms)\n`;
}

/** The JSON document of a drill. */
export function drillJsonReport(result: DrillResult): string {
  return JSON.stringify(
    {
      program: PROGRAM,
      version: VERSION,
      drill: true,
      ok: result.problems.length === 0,
      runId: result.runId ?? null,
      checks: result.checks,
      volumes: result.volumes,
      timings: result.timings,
      problems: result.problems.map((p) => ({ exitCode: p.exitCode, message: p.message })),
    },
    null,
    2,
  ) + "\n";
}

/**
 * The drill's metrics in Prometheus' text format: success, when it ended, how long it took.
 *
 * @example
 * ```ts
 * drillMetricsText(true, new Date(), 93_000);
 * // "# HELP ec2_consistent_snapshot_last_drill_success ..."
 * ```
 */
export function drillMetricsText(ok: boolean, end: Date, totalMs: number): string {
  const families: [string, string, number][] = [
    ["last_drill_success", "1 when the last restore drill passed, else 0.", ok ? 1 : 0],
    ["last_drill_timestamp_seconds", "When the last restore drill ended.", end.getTime() / 1000],
    ["last_drill_duration_seconds", "How long the last restore drill took.", totalMs / 1000],
  ];
  return families.map(([name, help, value]) =>
    `# HELP ${METRIC_PREFIX}${name} ${help}\n# TYPE ${METRIC_PREFIX}${name} gauge\n` +
    `${METRIC_PREFIX}${name} ${value}\n`
  ).join("");
}

/** Writes the drill's metrics atomically (0644); throws MetricsError. */
export function writeDrillMetrics(path: string, ok: boolean, totalMs: number): void {
  try {
    writeFileAtomic(path, drillMetricsText(ok, new Date(), totalMs), { mode: 0o644, sync: true });
  } catch (error) {
    throw new MetricsError(`--metrics-file ${path}: cannot write: ${(error as Error).message}`, {
      cause: error,
    });
  }
}
