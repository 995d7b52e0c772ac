/** The planner's part of the follow-up steps: --wait, --copy-to-region, --keep, --keep-days and the calendar rules checked into an AfterRunPlan. */
import { UsageError } from "../util/errors.ts";
import {
  checkTimeZone,
  hasRules,
  type Period,
  PERIODS,
  type RetentionRules,
} from "../retention/policy.ts";
import { DEFAULT_WAIT_SECONDS, type Options } from "../types/options.ts";

/** What to keep: --keep, --keep-days and the calendar rules, in a zone (a union of rules). */
export type RetentionPolicy = RetentionRules;

/** The follow-up steps asked for, checked. */
export interface AfterRunPlan {
  /** --wait as given: seconds to wait for the snapshots (and the copies); undefined: no --wait. */
  waitSeconds?: number;
  /**
   * How long to wait for the snapshots: --wait, else the default of --wait when there are
   * copies to make (copies need completed sources); undefined: no wait.
   */
  snapshotWaitSeconds?: number;
  /** How long to wait for the copies: only with --wait; undefined: no wait. */
  copyWaitSeconds?: number;
  /** --copy-to-region, in order. */
  copyRegions: string[];
  /** --copy-kms-key-id. */
  kmsKeyId?: string;
  /** --keep / --keep-days. */
  retention?: RetentionPolicy;
}

const REGION = /^[a-z]{2}(-[a-z]+)+-\d+$/;

/** The retention options as the planner reads them. */
export type RetentionOptions = Pick<
  Options,
  | "keep"
  | "keepDays"
  | "keepHourly"
  | "keepDaily"
  | "keepWeekly"
  | "keepMonthly"
  | "keepYearly"
  | "retentionTz"
>;

const CALENDAR_OPTION: Record<Period, keyof RetentionOptions> = {
  hourly: "keepHourly",
  daily: "keepDaily",
  weekly: "keepWeekly",
  monthly: "keepMonthly",
  yearly: "keepYearly",
};

/**
 * Checks the retention options; undefined when retention was not asked for.
 *
 * @example
 * ```ts
 * import { defaultOptions } from "../types/options.ts";
 * const options = defaultOptions();
 * retentionPolicy({ ...options, keep: 7 }); // { keep: 7, calendar: {}, timeZone: "UTC" }
 * retentionPolicy({ ...options, keepDaily: 0 }); // throws UsageError
 * ```
 */
export function retentionPolicy(options: RetentionOptions): RetentionPolicy | undefined {
  const { keep, keepDays } = options;
  if (keep !== undefined && keep < 1) {
    throw new UsageError("--keep: must be at least 1 (this run's snapshot is always kept)");
  }
  if (keepDays !== undefined && keepDays <= 0) {
    throw new UsageError("--keep-days: must be more than 0");
  }
  const calendar: Partial<Record<Period, number>> = {};
  for (const period of PERIODS) {
    const value = options[CALENDAR_OPTION[period]] as number | undefined;
    if (value === undefined) continue;
    if (value < 1) throw new UsageError(`--keep-${period}: must be at least 1`);
    calendar[period] = value;
  }
  const rules: RetentionRules = {
    keep,
    keepDays,
    calendar,
    timeZone: options.retentionTz === undefined ? "UTC" : checkTimeZone(options.retentionTz),
  };
  if (!hasRules(rules)) {
    if (options.retentionTz !== undefined) {
      throw new UsageError("--retention-tz: needs a retention rule (--keep-daily and the like)");
    }
    return undefined;
  }
  return rules;
}

/**
 * Checks the options of the follow-up steps.
 *
 * @example
 * ```ts
 * import { defaultOptions } from "../types/options.ts";
 * const after = planAfterRun({ ...defaultOptions(), wait: 600 }, "us-east-1");
 * after.snapshotWaitSeconds; // 600
 * ```
 */
export function planAfterRun(options: Options, sourceRegion: string | undefined): AfterRunPlan {
  if (options.wait !== undefined && options.wait <= 0) {
    throw new UsageError("--wait: must be more than 0 seconds");
  }
  const seen = new Set<string>();
  for (const region of options.copyToRegion) {
    if (!REGION.test(region)) {
      throw new UsageError(`--copy-to-region: '${region}' is not a region name (like eu-west-1)`);
    }
    if (region === sourceRegion) {
      throw new UsageError(`--copy-to-region ${region}: that is the snapshots' own region`);
    }
    if (seen.has(region)) throw new UsageError(`--copy-to-region ${region}: given twice`);
    seen.add(region);
  }
  if (options.copyKmsKeyId !== undefined && options.copyToRegion.length === 0) {
    throw new UsageError("--copy-kms-key-id: needs --copy-to-region");
  }
  return {
    waitSeconds: options.wait,
    snapshotWaitSeconds: options.wait ??
      (options.copyToRegion.length > 0 ? DEFAULT_WAIT_SECONDS : undefined),
    copyWaitSeconds: options.wait,
    copyRegions: [...options.copyToRegion],
    kmsKeyId: options.copyKmsKeyId,
    retention: retentionPolicy(options),
  };
}

/**
 * True when nothing follows the run.
 *
 * @example
 * ```ts
 * import type { Plan } from "./plan.ts";
 * const plan = {} as Plan;
 * if (!nothingAfterRun(plan.afterRun)) console.log("then: wait, copy, retention");
 * ```
 */
export function nothingAfterRun(plan: AfterRunPlan): boolean {
  return plan.waitSeconds === undefined && plan.copyRegions.length === 0 && !plan.retention;
}
