/**
 * --metrics-file: the outcome of a run in Prometheus' text format, for node_exporter's textfile
 * collector, written atomically (a reader sees the old file or the new one, never half of one).
 */
import { MetricsError } from "../util/errors.ts";
import { readUserFile, writeFileAtomic } from "../util/files.ts";

/** The prefix of every metric name. */
export const METRIC_PREFIX = "ec2_consistent_snapshot_";

/** What one run reports. */
export interface RunMetrics {
  /** The exit code of the run (0: success). */
  exitCode: number;
  /** When the run started. */
  start: Date;
  /** When it ended (the metrics are written then). */
  end: Date;
  /** First freeze to last thaw; undefined when nothing was frozen. */
  freezeWindowMs?: number | null;
  /** First lock (database or freeze) to last release; undefined when nothing was locked. */
  lockWindowMs?: number | null;
  /** The run's volumes, each with the number of snapshots made of it (0 or 1). */
  created: readonly { volumeId: string; count: number }[];
  /** Retention's deletions per volume; undefined when retention did not run. */
  deleted?: readonly { volumeId: string; count: number }[];
  /** End of the last successful run before this one (carried over when this one failed). */
  previousSuccess?: Date;
}

interface Family {
  name: string;
  help: string;
  samples: { labels?: Record<string, string>; value: number }[];
}

/** A label value as the text format wants it: backslash, double quote and newline escaped. */
function escapeLabel(value: string): string {
  return value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}

const seconds = (date: Date) => date.getTime() / 1000;

/**
 * The text of the metrics file: HELP and TYPE lines, then the samples; every family a gauge,
 * since each describes the last run. Families that do not apply to the run (no freeze, no
 * retention) are left out rather than given a made-up value.
 *
 * @example
 * ```ts
 * const start = new Date(Date.now() - 2_000), end = new Date();
 * const text = metricsText({ exitCode: 0, start, end, created: [{ volumeId: "vol-1", count: 1 }] });
 * // ec2_consistent_snapshot_last_run_success 1 ...
 * ```
 */
export function metricsText(run: RunMetrics): string {
  const ok = run.exitCode === 0;
  const lastSuccess = ok ? run.end : run.previousSuccess;
  const families: Family[] = [
    {
      name: "last_run_success",
      help: "1 when the last run succeeded, 0 when it failed.",
      samples: [{ value: ok ? 1 : 0 }],
    },
    {
      name: "last_run_exit_code",
      help: "Exit status of the last run (see the man page, EXIT STATUS).",
      samples: [{ value: run.exitCode }],
    },
    {
      name: "last_run_start_timestamp_seconds",
      help: "When the last run started, in seconds since the Unix epoch.",
      samples: [{ value: seconds(run.start) }],
    },
    {
      name: "last_run_end_timestamp_seconds",
      help: "When the last run ended, in seconds since the Unix epoch.",
      samples: [{ value: seconds(run.end) }],
    },
    {
      name: "last_success_timestamp_seconds",
      help: "When the last successful run ended, in seconds since the Unix epoch.",
      samples: lastSuccess ? [{ value: seconds(lastSuccess) }] : [],
    },
    {
      name: "last_run_freeze_window_seconds",
      help: "First freeze to last thaw in the last run, in seconds.",
      samples: run.freezeWindowMs != null ? [{ value: run.freezeWindowMs / 1000 }] : [],
    },
    {
      name: "last_run_lock_window_seconds",
      help: "First lock (database or freeze) to last release in the last run, in seconds.",
      samples: run.lockWindowMs != null ? [{ value: run.lockWindowMs / 1000 }] : [],
    },
    {
      name: "last_run_snapshots_created",
      help: "Snapshots the last run created, by volume.",
      samples: run.created.map((c) => ({ labels: { volume: c.volumeId }, value: c.count })),
    },
    {
      name: "last_run_snapshots_deleted",
      help: "Snapshots retention deleted in the last run, by volume.",
      samples: (run.deleted ?? []).map((d) => ({ labels: { volume: d.volumeId }, value: d.count })),
    },
  ];
  const lines: string[] = [];
  for (const family of families) {
    if (family.samples.length === 0) continue;
    const name = METRIC_PREFIX + family.name;
    lines.push(`# HELP ${name} ${family.help}`, `# TYPE ${name} gauge`);
    for (const sample of family.samples) {
      const labels = Object.entries(sample.labels ?? {})
        .map(([key, value]) => `${key}="${escapeLabel(value)}"`).join(",");
      lines.push(`${name}${labels ? `{${labels}}` : ""} ${sample.value}`);
    }
  }
  return lines.map((line) => line + "\n").join("");
}

/** The last success recorded in an earlier metrics file at `path`, if it can be read. */
export function previousSuccess(path: string): Date | undefined {
  try {
    if (Deno.lstatSync(path).isSymlink) return undefined;
    // Only a regular file of bounded size: a FIFO put there must not hang the run's end.
    const text = readUserFile(path, "--metrics-file");
    const match = new RegExp(`^${METRIC_PREFIX}last_success_timestamp_seconds (\\S+)$`, "m")
      .exec(text);
    const value = match ? Number(match[1]) : NaN;
    return Number.isFinite(value) && value > 0 ? new Date(value * 1000) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Writes the metrics of a run to `path` atomically (a temporary file beside it, then a rename;
 * never through a symbolic link: one at `path` is refused), carrying over the last success from
 * the file there. Throws a MetricsError (exit 15) naming the path and the reason.
 *
 * @example
 * ```ts
 * const run = {} as RunMetrics;
 * writeMetricsFile("/var/lib/node_exporter/textfile/ec2_consistent_snapshot.prom", run);
 * ```
 */
export function writeMetricsFile(path: string, run: RunMetrics): void {
  const text = metricsText({
    ...run,
    previousSuccess: run.previousSuccess ?? previousSuccess(path),
  });
  try {
    // 0644: node_exporter reads it as another user. Synced: a crash leaves the old file whole.
    writeFileAtomic(path, text, { mode: 0o644, sync: true });
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new MetricsError(`--metrics-file ${path}: cannot write: ${reason}`, { cause: error });
  }
}
