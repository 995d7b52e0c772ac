/**
 * What the program prints on stdout: the old tool's lines byte for byte (text), or one JSON
 * document (--output json); and the dry-run plan.
 */
import type { AfterRunResult } from "../run/after_run.ts";
import type { BinlogCoordinates, SnapshotRequest, WalPosition } from "../types/side_effects.ts";
import type { Plan } from "../plan/plan.ts";
import type { RunResult } from "../run/sequence.ts";
import { DATABASE_TAG, PROGRAM } from "../types/tags.ts";

/** What --noaction shows for the database tag, whose value is known only at the lock. */
const DATABASE_TAG_PLANNED = "(engine, version, data directory, binary-log basename, and the " +
  "binary-log file:position and GTID or the WAL LSN and timeline at the lock)";
import { describeMysqlPlan, mysqlPlanJson } from "../plan/mysql.ts";
import type { RetentionResult } from "../aws/retention.ts";
import { describePostgresqlPlan, postgresqlPlanJson } from "../plan/postgresql.ts";
import type { RetentionPolicy } from "../plan/after_run.ts";
import { PERIODS } from "../retention/policy.ts";
import { VERSION } from "./version.ts";
import { printable } from "../util/log.ts";

/**
 * The old tool's binary-log line.
 *
 * @example
 * ```ts
 * binlogLine({ file: "binlog.000001", position: 325, from: "source" });
 * // 'ec2-consistent-snapshot: master_log_file="binlog.000001", master_log_pos=325'
 * ```
 */
export function binlogLine(binlog: BinlogCoordinates): string {
  return `${PROGRAM}: master_log_file="${binlog.file}", master_log_pos=${binlog.position}`;
}

/**
 * PostgreSQL's WAL line, in the style of the binary-log line.
 *
 * @example
 * ```ts
 * walLine({ lsn: "0/3000060", timeline: 1, from: "primary" });
 * // 'ec2-consistent-snapshot: wal_lsn="0/3000060", timeline=1'
 * ```
 */
export function walLine(wal: WalPosition): string {
  return `${PROGRAM}: wal_lsn="${wal.lsn}", timeline=${wal.timeline}`;
}

/**
 * Text output: the binary-log line (when locked) or the WAL line (PostgreSQL), then one snapshot id per line in order; then
 * the ids of the copies (--copy-to-region), one per line, by region in the order given and by
 * volume within a region.
 */
export function textReport(result: RunResult, quiet: boolean, after?: AfterRunResult): string {
  if (quiet) return "";
  const lines: string[] = [];
  if (result.binlog) lines.push(binlogLine(result.binlog));
  if (result.wal) lines.push(walLine(result.wal));
  // A snapshot of unknown consistency is not a result: it is named on stderr (exit 12).
  const unknown = new Set((result.lookup?.consistencyUnknown ?? []).map((s) => s.snapshotId));
  for (const outcome of result.outcomes) {
    if (outcome.ok && !unknown.has(outcome.snapshotId)) lines.push(outcome.snapshotId);
  }
  for (const copy of after?.copies ?? []) if (copy.snapshotId) lines.push(copy.snapshotId);
  return lines.map((line) => line + "\n").join("");
}

/** The JSON document of a run; `after` adds waits, copies and retention. */
export function jsonReport(plan: Plan, result: RunResult, after?: AfterRunResult): string {
  const byVolume = new Map(result.outcomes.map((o) => [o.volumeId, o]));
  const unknown = new Set((result.lookup?.consistencyUnknown ?? []).map((s) => s.snapshotId));
  const sent = new Map(result.requests.map((r) => [r.volumeId, r.tags]));
  const doc = {
    program: PROGRAM,
    version: VERSION,
    ok: result.problems.length === 0,
    region: plan.region.value ?? null,
    runId: plan.runId,
    snapshots: plan.volumes.map((volume: SnapshotRequest) => {
      const outcome = byVolume.get(volume.volumeId);
      return {
        volumeId: volume.volumeId,
        snapshotId: outcome?.ok ? outcome.snapshotId : null,
        // "created"; "consistencyUnknown" when made while not everything was held; or how
        // the call failed: "error", "unknown" (no answer), "aborted".
        outcome: outcome
          ? (outcome.ok
            ? (unknown.has(outcome.snapshotId) ? "consistencyUnknown" : "created")
            : outcome.kind)
          : "notAttempted",
        consistencyUnknown: (result.lookup?.consistencyUnknown ?? [])
          .filter((s) => s.volumeId === volume.volumeId)
          .map((s) => s.snapshotId),
        description: volume.description,
        tags: sent.get(volume.volumeId) ?? volume.tags,
        error: outcome && !outcome.ok
          ? { code: outcome.errorCode, message: outcome.message }
          : outcome
          ? null
          : { code: "NotAttempted", message: "not attempted" },
      };
    }),
    consistencyUnknown: result.lookup?.consistencyUnknown ?? [],
    lookupError: result.lookup?.error ?? null,
    binlog: result.binlog ?? null,
    wal: result.wal ?? null,
    unfrozen: result.unfrozen,
    timings: result.timings,
    waits: after?.waits ?? [],
    copies: after?.copies ?? [],
    retention: after?.retention ?? null,
    problems: result.problems.map((p) => ({ exitCode: p.exitCode, message: p.message })),
  };
  return JSON.stringify(doc, null, 2) + "\n";
}

/** One line saying the retention rules, for the dry run. */
function retentionRulesLine(rules: RetentionPolicy): string {
  const parts = [
    ...(rules.keep !== undefined ? [`the newest ${rules.keep}`] : []),
    ...(rules.keepDays !== undefined ? [`those younger than ${rules.keepDays} days`] : []),
    ...PERIODS.flatMap((p) => rules.calendar[p] !== undefined ? [`${p} ${rules.calendar[p]}`] : []),
  ];
  return `retention per volume (this run's new snapshot counts as the newest): keep ` +
    `${parts.join(", ")}; periods in ${rules.timeZone}. This tool's snapshots of the volumes:`;
}

/** The dry-run plan: what would be done, in order; `retention` lists what would be deleted. */
export function planReport(plan: Plan, retention?: RetentionResult): string {
  const after = plan.afterRun;
  if (plan.output === "json") {
    return JSON.stringify(
      {
        program: PROGRAM,
        version: VERSION,
        noaction: true,
        region: plan.region.value ?? null,
        regionSource: plan.region.source,
        endpoint: plan.endpoint ?? null,
        credentials: plan.credentials.describe,
        snapshotTimeoutSeconds: plan.snapshotTimeoutMs / 1000,
        database: plan.window.database?.kind === "mysql"
          ? mysqlPlanJson(plan.window.database)
          : plan.window.database?.kind === "postgresql"
          ? postgresqlPlanJson(plan.window.database)
          : null,
        freeze: plan.window.freezeMounts.map((m) => m.mountPoint),
        discovered: plan.discovered,
        snapshots: plan.volumes,
        databaseTag: plan.window.database
          ? { key: DATABASE_TAG, value: DATABASE_TAG_PLANNED }
          : null,
        waitSeconds: after.waitSeconds ?? null,
        copyToRegions: after.copyRegions,
        retention: retention ?? null,
      },
      null,
      2,
    ) + "\n";
  }
  const lines = [
    `${PROGRAM}: --noaction: nothing will be locked, frozen, created or deleted`,
    `region: ${
      plan.region.value ?? "(from instance metadata at run time)"
    } (${plan.region.source})`,
    `endpoint: ${plan.endpoint ?? "AWS's default for the region"}`,
    `credentials: ${plan.credentials.describe}`,
    `snapshot timeout: ${plan.snapshotTimeoutMs / 1000}s`,
    ...(plan.window.database?.kind === "mysql" ? describeMysqlPlan(plan.window.database) : []),
    ...(plan.window.database?.kind === "postgresql"
      ? describePostgresqlPlan(plan.window.database)
      : []),
    ...plan.window.freezeMounts.map((m) =>
      `would freeze ${m.mountPoint} (${m.fsType} on ${m.source})`
    ),
    ...plan.discovered.map((d) => `found ${d.volumeId} (${d.device}) under ${d.mountPoint}`),
    ...plan.volumes.map((v) => {
      const tags = Object.entries(v.tags).map(([k, val]) => `${k}=${val}`).join(";");
      return `would snapshot ${v.volumeId} description="${v.description}" tags="${tags}"`;
    }),
    ...(plan.window.database ? [`and tag them ${DATABASE_TAG}=${DATABASE_TAG_PLANNED}`] : []),
    ...(after.waitSeconds !== undefined
      ? [`would wait up to ${after.waitSeconds}s for the snapshots to complete`]
      : []),
    ...after.copyRegions.map((r) => `would copy the snapshots to ${r}`),
    ...(after.retention ? [retentionRulesLine(after.retention)] : []),
    ...(retention?.decisions ?? []).map((d) =>
      d.keep
        ? `would keep ${d.snapshotId} of ${d.volumeId} started ${d.startTime}: ${
          d.keptBy.join(", ")
        }`
        : retention?.refused
        // The rules would delete it, but this run deletes nothing (the clocks disagree).
        ? `would keep ${d.snapshotId} of ${d.volumeId} started ${d.startTime}: ${retention.refused} (the rules alone: ${d.reason})`
        : `would delete ${d.snapshotId} of ${d.volumeId} started ${d.startTime}: ${d.reason}`
    ),
  ];
  // A description or tag with a newline must not fake a line of the plan: escaped, as in errors.
  return lines.map((line) => printable(line) + "\n").join("");
}
