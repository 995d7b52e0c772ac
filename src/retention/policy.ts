/**
 * The retention decision, pure: snapshots + rules + now -> for each snapshot, the rules that keep
 * it or why it goes. Calendar rules have `restic forget`'s meaning; deleting is aws/retention.ts's.
 */
import { UsageError } from "../util/errors.ts";

/** The calendar periods, shortest first (the order of --help and of the reasons). */
export const PERIODS = ["hourly", "daily", "weekly", "monthly", "yearly"] as const;

/** One calendar period kind. */
export type Period = typeof PERIODS[number];

/** What to keep; a snapshot is kept when any rule keeps it (a union, as in restic). */
export interface RetentionRules {
  /** --keep: the newest N per volume, this run's snapshot included. */
  keep?: number;
  /** --keep-days: those started less than D days before now. */
  keepDays?: number;
  /** --keep-hourly ... --keep-yearly: for each of the last N periods that have snapshots. */
  calendar: Partial<Record<Period, number>>;
  /** --retention-tz: the IANA zone the periods are counted in ("UTC" by default). */
  timeZone: string;
}

/** A snapshot as the policy sees it. */
export interface PolicySnapshot {
  /** The snapshot's id ("" for one this run would make or has not seen listed yet). */
  snapshotId: string;
  /** Snapshots are decided per volume. */
  volumeId: string;
  /** When EC2 started it: the time its periods are counted from. */
  startTime: Date;
  /** Made by this run (or, with --noaction, the one it would make): always kept, and counted. */
  own?: boolean;
  /**
   * Never deleted and never counted by a rule, for this reason (a pending snapshot, one of
   * unknown consistency): it may still fail, so it must not stand in for a good one.
   */
  exempt?: string;
}

/** The decision on one snapshot. */
export interface RetentionDecision {
  /** The snapshot decided on. */
  snapshot: PolicySnapshot;
  /** True when kept. */
  keep: boolean;
  /** When kept: every rule that keeps it, e.g. "this run", "last 3", "daily 2021-01-01". */
  keptBy: string[];
  /** When not kept: why it goes, one clause per rule. */
  reason?: string;
}

const DAY_MS = 24 * 60 * 60 * 1000;
const PERIOD_WORD: Record<Period, string> = {
  hourly: "hours",
  daily: "days",
  weekly: "ISO weeks",
  monthly: "months",
  yearly: "years",
};

/**
 * Checks --retention-tz against the zone data of `Intl`; returns the canonical name.
 *
 * @example
 * ```ts
 * checkTimeZone("Europe/Berlin"); // "Europe/Berlin"
 * checkTimeZone("Mars/Olympus"); // throws UsageError
 * ```
 */
export function checkTimeZone(zone: string): string {
  try {
    return new Intl.DateTimeFormat("en-US", { timeZone: zone }).resolvedOptions().timeZone;
  } catch {
    throw new UsageError(
      `--retention-tz: unknown time zone '${zone}' (an IANA name like Europe/Berlin, or UTC)`,
    );
  }
}

/** True when at least one rule is given. */
export function hasRules(rules: RetentionRules): boolean {
  return rules.keep !== undefined || rules.keepDays !== undefined ||
    PERIODS.some((p) => rules.calendar[p] !== undefined);
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let format = formatters.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat("en-US", {
      timeZone,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      timeZoneName: "longOffset",
    });
    formatters.set(timeZone, format);
  }
  return format;
}

/** ISO 8601 week-numbering year and week of a calendar date. */
export function isoWeek(year: number, month: number, day: number): { year: number; week: number } {
  const date = new Date(Date.UTC(year, month - 1, day));
  const weekday = date.getUTCDay() || 7; // Monday 1 ... Sunday 7
  // The Thursday of the same week decides the year.
  date.setUTCDate(date.getUTCDate() + 4 - weekday);
  const isoYear = date.getUTCFullYear();
  const week = Math.floor((date.getTime() - Date.UTC(isoYear, 0, 1)) / (7 * DAY_MS)) + 1;
  return { year: isoYear, week };
}

/**
 * The label of the period a time falls into, in a zone. Hours carry the UTC offset, so that the
 * hour repeated when the clocks go back is two hours, as it was.
 *
 * @example
 * ```ts
 * periodOf(new Date("2021-01-01T12:00:00Z"), "weekly", "UTC"); // "2020-W53"
 * periodOf(new Date("2020-10-25T00:30:00Z"), "hourly", "Europe/Berlin"); // "2020-10-25T02+02:00"
 * ```
 */
export function periodOf(time: Date, period: Period, timeZone: string): string {
  const parts: Record<string, string> = {};
  for (const part of formatterFor(timeZone).formatToParts(time)) parts[part.type] = part.value;
  const { year, month, day, hour } = parts;
  switch (period) {
    case "hourly": {
      const offset = parts.timeZoneName.replace(/^GMT/, "") || "+00:00";
      return `${year}-${month}-${day}T${hour}${offset}`;
    }
    case "daily":
      return `${year}-${month}-${day}`;
    case "weekly": {
      const iso = isoWeek(Number(year), Number(month), Number(day));
      return `${iso.year}-W${String(iso.week).padStart(2, "0")}`;
    }
    case "monthly":
      return `${year}-${month}`;
    case "yearly":
      return year;
  }
}

function newestFirst(a: PolicySnapshot, b: PolicySnapshot): number {
  // This run's snapshots first: they are the newest even when a clock says otherwise.
  if (a.own !== b.own) return a.own ? -1 : 1;
  const byTime = b.startTime.getTime() - a.startTime.getTime();
  if (byTime !== 0) return byTime;
  return a.snapshotId < b.snapshotId ? 1 : a.snapshotId > b.snapshotId ? -1 : 0;
}

function decideVolume(
  snapshots: readonly PolicySnapshot[],
  rules: RetentionRules,
  now: Date,
): RetentionDecision[] {
  const sorted = [...snapshots].sort(newestFirst);
  const buckets = PERIODS.flatMap((period) => {
    const count = rules.calendar[period];
    return count === undefined
      ? []
      : [{ period, left: count, last: undefined as string | undefined }];
  });
  let lastLeft = rules.keep ?? 0;
  return sorted.map((snapshot) => {
    const keptBy: string[] = [];
    const why: string[] = [];
    if (snapshot.own) keptBy.push("this run");
    if (snapshot.exempt !== undefined) {
      return { snapshot, keep: true, keptBy: [...keptBy, snapshot.exempt] };
    }
    if (rules.keep !== undefined) {
      if (lastLeft > 0) {
        keptBy.push(`last ${rules.keep}`);
        lastLeft--;
      } else why.push(`not among the newest ${rules.keep}`);
    }
    if (rules.keepDays !== undefined) {
      if (now.getTime() - snapshot.startTime.getTime() < rules.keepDays * DAY_MS) {
        keptBy.push(`within ${rules.keepDays} days`);
      } else why.push(`older than ${rules.keepDays} days`);
    }
    for (const bucket of buckets) {
      const label = periodOf(snapshot.startTime, bucket.period, rules.timeZone);
      if (label === bucket.last) {
        why.push(`${bucket.period}: a newer one keeps ${label}`);
      } else if (bucket.left > 0) {
        keptBy.push(`${bucket.period} ${label}`);
        bucket.last = label;
        bucket.left--;
      } else {
        why.push(
          `${bucket.period}: ${label} is not among the last ${rules.calendar[bucket.period]} ${
            PERIOD_WORD[bucket.period]
          } with snapshots`,
        );
      }
    }
    return keptBy.length > 0
      ? { snapshot, keep: true, keptBy }
      : { snapshot, keep: false, keptBy, reason: why.join("; ") };
  });
}

/**
 * Decides, per volume, which snapshots the rules keep. For each calendar rule (as
 * `restic forget --keep-daily N`): walking from the newest, the first snapshot of each period
 * is kept, for the newest N periods that have snapshots. This run's snapshots are kept and
 * fill their periods; exempt snapshots are kept and fill none. Returns the decisions by
 * volume in the order given, newest first within a volume.
 *
 * @example
 * ```ts
 * const snapshots = {} as PolicySnapshot[];
 * const decisions = decideRetention(snapshots, {
 *   keep: 2, calendar: { daily: 7, weekly: 4 }, timeZone: "UTC",
 * }, new Date());
 * const doomed = decisions.filter((d) => !d.keep);
 * ```
 */
export function decideRetention(
  snapshots: readonly PolicySnapshot[],
  rules: RetentionRules,
  now: Date,
): RetentionDecision[] {
  const byVolume = new Map<string, PolicySnapshot[]>();
  for (const snapshot of snapshots) {
    const list = byVolume.get(snapshot.volumeId) ?? [];
    list.push(snapshot);
    byVolume.set(snapshot.volumeId, list);
  }
  return [...byVolume.values()].flatMap((list) => decideVolume(list, rules, now));
}
