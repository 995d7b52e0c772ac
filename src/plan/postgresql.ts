/** The PostgreSQL plan: the connection as libpq would make it, and the checkpoint's bound. Decided here; no connection. */
import { registerSecret } from "../util/log.ts";
import { trustedLoopbackPort, trustedPostgresqlSocketDir } from "../host/socket_trust.ts";
import type { Options } from "../types/options.ts";
import type { PostgresqlPlan } from "../types/database_plans.ts";
import {
  describePostgresqlSettings,
  type PostgresqlSettingsInputs,
  resolvePostgresqlSettings,
} from "./postgresql_settings.ts";

/** How long the CHECKPOINT may take before it is cancelled (a warning, not a failure). */
export const CHECKPOINT_TIMEOUT_MS = 60_000;

/**
 * Decides the PostgreSQL part: the connection settings in libpq's order (options, $PGSERVICE,
 * PG* variables, defaults; the password from the service, $PGPASSWORD or ~/.pgpass). Throws
 * UsageError on bad input; reads files, never connects.
 *
 * @example
 * ```ts
 * import { defaultOptions } from "../types/options.ts";
 * const options = { ...defaultOptions(), postgresql: true };
 * const pg = await planPostgresql(options, { env: Deno.env.toObject(), home: "/root" });
 * console.log(describePostgresqlPlan(pg).join("\n"));
 * ```
 */
export async function planPostgresql(
  options: Options,
  inputs: Omit<PostgresqlSettingsInputs, "options">,
): Promise<PostgresqlPlan> {
  const settings = await resolvePostgresqlSettings({ ...inputs, options });
  registerSecret(settings.password);
  if (settings.host.startsWith("/")) {
    // Refused here, before anything is locked; checked again when connecting.
    trustedPostgresqlSocketDir(settings.host, settings.port, settings.serverUsers ?? ["postgres"]);
  } else {
    trustedLoopbackPort({
      host: settings.host,
      port: settings.port,
      serverUsers: settings.serverUsers ?? ["postgres"],
      what: "PostgreSQL",
      fix: "--postgresql-host",
    });
  }
  return { kind: "postgresql", settings, checkpointTimeoutMs: CHECKPOINT_TIMEOUT_MS };
}

/**
 * What the dry run says it would do with PostgreSQL, in lines; never the password.
 *
 * @example
 * ```ts
 * import type { PostgresqlPlan } from "../types/database_plans.ts";
 * const plan = {} as PostgresqlPlan;
 * describePostgresqlPlan(plan); // ["would CHECKPOINT PostgreSQL ...", "PostgreSQL: socket ..."]
 * ```
 */
export function describePostgresqlPlan(plan: PostgresqlPlan): string[] {
  return [
    `would CHECKPOINT PostgreSQL (at most ${plan.checkpointTimeoutMs / 1000} s) and record ` +
    "its WAL position (no connection in a dry run)",
    describePostgresqlSettings(plan.settings),
  ];
}

/**
 * The database part of the JSON dry-run plan; never the password.
 *
 * @example
 * ```ts
 * import type { PostgresqlPlan } from "../types/database_plans.ts";
 * const plan = {} as PostgresqlPlan;
 * JSON.stringify(postgresqlPlanJson(plan));
 * ```
 */
export function postgresqlPlanJson(plan: PostgresqlPlan): Record<string, unknown> {
  const s = plan.settings;
  return {
    kind: plan.kind,
    host: s.host,
    port: s.port,
    user: s.user,
    database: s.database,
    password: s.password === undefined ? "none" : "set",
    sources: s.sources,
    checkpointTimeoutSeconds: plan.checkpointTimeoutMs / 1000,
  };
}
