/**
 * The retention decision as a pure function: period labels across week, year and DST
 * boundaries (UTC, Europe/Berlin, America/New_York), and restic's "newest of each of the last N
 * periods that have snapshots", combined with --keep and --keep-days.
 */
import { assert, assertEquals } from "./support/assert.ts";
import {
  checkTimeZone,
  decideRetention,
  type Period,
  periodOf,
  type PolicySnapshot,
  type RetentionRules,
} from "../src/retention/policy.ts";
import { UsageError } from "../src/util/errors.ts";

const PERIOD_TABLE: [string, Period, string, string][] = [
  // ISO weeks: 2020 has 53; 1 to 3 January 2021 belong to 2020-W53, Monday 4 January is W01.
  ["2020-12-31T12:00:00Z", "weekly", "UTC", "2020-W53"],
  ["2021-01-01T00:00:00Z", "weekly", "UTC", "2020-W53"],
  ["2021-01-03T23:59:59Z", "weekly", "UTC", "2020-W53"],
  ["2021-01-04T00:00:00Z", "weekly", "UTC", "2021-W01"],
  ["2019-12-30T08:00:00Z", "weekly", "UTC", "2020-W01"], // a Monday: week 1 of 2020 already
  ["2018-12-31T08:00:00Z", "weekly", "UTC", "2019-W01"],
  ["2016-01-03T08:00:00Z", "weekly", "UTC", "2015-W53"],
  ["2021-01-01T00:00:00Z", "yearly", "UTC", "2021"],
  ["2020-12-31T23:59:59Z", "yearly", "UTC", "2020"],
  ["2020-02-29T10:00:00Z", "monthly", "UTC", "2020-02"],
  ["2020-12-31T23:59:59Z", "daily", "UTC", "2020-12-31"],
  ["2020-12-31T23:59:59Z", "hourly", "UTC", "2020-12-31T23+00:00"],
  // New York's New Year comes five hours after UTC's: still 2020, W53, December.
  ["2021-01-01T03:00:00Z", "yearly", "America/New_York", "2020"],
  ["2021-01-01T03:00:00Z", "monthly", "America/New_York", "2020-12"],
  ["2021-01-01T03:00:00Z", "daily", "America/New_York", "2020-12-31"],
  ["2021-01-04T04:59:00Z", "weekly", "America/New_York", "2020-W53"], // Sunday 23:59 EST
  ["2021-01-04T05:00:00Z", "weekly", "America/New_York", "2021-W01"],
  // Berlin, clocks back on 25 October 2020 (03:00 CEST -> 02:00 CET): 02:xx happens twice,
  // two real hours, one day of 25 hours.
  ["2020-10-25T00:30:00Z", "hourly", "Europe/Berlin", "2020-10-25T02+02:00"],
  ["2020-10-25T01:30:00Z", "hourly", "Europe/Berlin", "2020-10-25T02+01:00"],
  ["2020-10-24T22:00:00Z", "daily", "Europe/Berlin", "2020-10-25"], // 00:00 CEST
  ["2020-10-25T22:59:59Z", "daily", "Europe/Berlin", "2020-10-25"], // 23:59:59 CET
  ["2020-10-25T23:00:00Z", "daily", "Europe/Berlin", "2020-10-26"],
  // Berlin, clocks forward on 28 March 2021 (02:00 CET -> 03:00 CEST): no 02:xx.
  ["2021-03-28T00:59:59Z", "hourly", "Europe/Berlin", "2021-03-28T01+01:00"],
  ["2021-03-28T01:00:00Z", "hourly", "Europe/Berlin", "2021-03-28T03+02:00"],
  ["2021-03-27T23:00:00Z", "daily", "Europe/Berlin", "2021-03-28"],
  ["2021-03-28T21:59:59Z", "daily", "Europe/Berlin", "2021-03-28"], // a day of 23 hours
  ["2021-03-28T22:00:00Z", "daily", "Europe/Berlin", "2021-03-29"],
  // New York, clocks back on 1 November 2020 (02:00 EDT -> 01:00 EST).
  ["2020-11-01T05:30:00Z", "hourly", "America/New_York", "2020-11-01T01-04:00"],
  ["2020-11-01T06:30:00Z", "hourly", "America/New_York", "2020-11-01T01-05:00"],
  ["2020-11-01T03:59:59Z", "daily", "America/New_York", "2020-10-31"],
  ["2020-11-02T04:59:59Z", "daily", "America/New_York", "2020-11-01"],
  // New York, clocks forward on 14 March 2021 (02:00 EST -> 03:00 EDT).
  ["2021-03-14T06:59:59Z", "hourly", "America/New_York", "2021-03-14T01-05:00"],
  ["2021-03-14T07:00:00Z", "hourly", "America/New_York", "2021-03-14T03-04:00"],
];

Deno.test("periods: ISO weeks, years, months, days and hours in UTC and in zones with DST", () => {
  for (const [time, period, zone, label] of PERIOD_TABLE) {
    assertEquals(periodOf(new Date(time), period, zone), label, `${time} ${period} ${zone}`);
  }
});

Deno.test("--retention-tz: Intl's zones are accepted, an unknown one is a usage error", () => {
  assertEquals(checkTimeZone("Europe/Berlin"), "Europe/Berlin");
  assertEquals(checkTimeZone("UTC"), "UTC");
  for (const bad of ["Mars/Olympus", "Europe/Berln", ""]) {
    try {
      checkTimeZone(bad);
      throw new Error(`accepted '${bad}'`);
    } catch (error) {
      assert(error instanceof UsageError, String(error));
      assert(error.message.startsWith("--retention-tz:"), error.message);
    }
  }
});

function snap(time: string, more: Partial<PolicySnapshot> = {}): PolicySnapshot {
  return {
    snapshotId: `snap-${time}`,
    volumeId: "vol-0123abcd",
    startTime: new Date(time),
    ...more,
  };
}

function rules(more: Partial<RetentionRules>): RetentionRules {
  return { calendar: {}, timeZone: "UTC", ...more };
}

/** The kept ids (by start time) and the ids that go, each list newest first. */
function split(list: PolicySnapshot[], r: RetentionRules, now = "2021-02-01T00:00:00Z") {
  const decisions = decideRetention(list, r, new Date(now));
  assertEquals(decisions.length, list.length, "one decision per snapshot");
  const id = (d: { snapshot: PolicySnapshot }) => d.snapshot.snapshotId.replace(/^snap-/, "");
  return {
    kept: decisions.filter((d) => d.keep).map(id),
    gone: decisions.filter((d) => !d.keep).map(id),
    decisions,
  };
}

Deno.test("daily: the newest of each of the last N days that have snapshots, gaps skipped", () => {
  const list = [
    "2021-01-01T01:00:00Z",
    "2021-01-05T01:00:00Z",
    "2021-01-05T13:00:00Z",
    "2021-01-10T01:00:00Z",
    "2021-01-20T09:00:00Z",
    "2021-01-20T01:00:00Z",
  ].map((t) => snap(t));
  const { kept, gone, decisions } = split(list, rules({ calendar: { daily: 3 } }));
  assertEquals(kept, ["2021-01-20T09:00:00Z", "2021-01-10T01:00:00Z", "2021-01-05T13:00:00Z"]);
  assertEquals(gone, ["2021-01-20T01:00:00Z", "2021-01-05T01:00:00Z", "2021-01-01T01:00:00Z"]);
  assertEquals(decisions[0].keptBy, ["daily 2021-01-20"]);
  assertEquals(decisions[1].reason, "daily: a newer one keeps 2021-01-20");
  assertEquals(
    decisions[5].reason,
    "daily: 2021-01-01 is not among the last 3 days with snapshots",
  );
});

Deno.test("weekly across the year boundary: 2020-12-28 to 2021-01-03 is one week (2020-W53)", () => {
  const list = [
    "2020-12-21T10:00:00Z", // W52
    "2020-12-28T10:00:00Z", // W53
    "2020-12-31T10:00:00Z", // W53
    "2021-01-01T10:00:00Z", // W53
    "2021-01-04T10:00:00Z", // W01
    "2021-01-10T10:00:00Z", // W01 (Sunday)
    "2021-01-11T10:00:00Z", // W02
  ].map((t) => snap(t));
  const weekly3 = split(list, rules({ calendar: { weekly: 3 } }));
  assertEquals(weekly3.kept, [
    "2021-01-11T10:00:00Z",
    "2021-01-10T10:00:00Z",
    "2021-01-01T10:00:00Z",
  ]);
  // Yearly by calendar year: 2021's newest and 2020's newest (31 December), not by ISO year.
  const yearly = split(list, rules({ calendar: { yearly: 5 } }));
  assertEquals(yearly.kept, ["2021-01-11T10:00:00Z", "2020-12-31T10:00:00Z"]);
  const monthly = split(list, rules({ calendar: { monthly: 1 } }));
  assertEquals(monthly.kept, ["2021-01-11T10:00:00Z"]);
});

Deno.test("the zone moves snapshots between days, years and hours (DST)", () => {
  // 03:00Z on New Year's Day is still 2020 in New York.
  const list = [snap("2021-01-01T03:00:00Z"), snap("2020-12-31T20:00:00Z")];
  assertEquals(split(list, rules({ calendar: { yearly: 2 } })).kept.length, 2);
  assertEquals(
    split(list, rules({ calendar: { yearly: 2 }, timeZone: "America/New_York" })).kept,
    ["2021-01-01T03:00:00Z"],
  );
  // Berlin's repeated hour 02:xx on 25 October 2020: two hours, two hourly snapshots kept.
  const fallBack = [
    snap("2020-10-25T00:10:00Z"),
    snap("2020-10-25T00:50:00Z"),
    snap("2020-10-25T01:10:00Z"),
    snap("2020-10-25T01:50:00Z"),
  ];
  const berlin = split(fallBack, rules({ calendar: { hourly: 24 }, timeZone: "Europe/Berlin" }));
  assertEquals(berlin.kept, ["2020-10-25T01:50:00Z", "2020-10-25T00:50:00Z"]);
  assertEquals(berlin.decisions[0].keptBy, ["hourly 2020-10-25T02+01:00"]);
  assertEquals(berlin.decisions[2].keptBy, ["hourly 2020-10-25T02+02:00"]);
  // Daily in Berlin: 22:30Z on the 24th is already the 25th there (one day, not two).
  const days = [snap("2020-10-25T12:00:00Z"), snap("2020-10-24T22:30:00Z")];
  assertEquals(split(days, rules({ calendar: { daily: 7 } })).kept.length, 2);
  assertEquals(
    split(days, rules({ calendar: { daily: 7 }, timeZone: "Europe/Berlin" })).kept,
    ["2020-10-25T12:00:00Z"],
  );
  // New York's spring-forward day has 23 hours: 05:00Z on the 14th is 00:00 EST and 03:59Z on
  // the 15th is 23:59 EDT, both on 14 March.
  const spring = [snap("2021-03-15T03:59:00Z"), snap("2021-03-14T05:00:00Z")];
  assertEquals(
    split(spring, rules({ calendar: { daily: 7 }, timeZone: "America/New_York" })).kept,
    ["2021-03-15T03:59:00Z"],
  );
});

Deno.test("union with --keep and --keep-days; this run's snapshot is kept and fills its periods", () => {
  const now = "2021-01-20T12:00:00Z";
  const list = [
    snap("2021-01-20T12:00:00Z", { snapshotId: "snap-own", own: true }),
    snap("2021-01-20T06:00:00Z"),
    snap("2021-01-19T06:00:00Z"),
    snap("2021-01-18T06:00:00Z"),
    snap("2021-01-10T06:00:00Z"),
    snap("2020-12-10T06:00:00Z"),
  ];
  // --keep 2: the run's and the newest other; daily 2: today (the run's) and yesterday;
  // monthly 2: January (the run's) and December.
  const r = rules({ keep: 2, calendar: { daily: 2, monthly: 2 } });
  const { kept, gone, decisions } = split(list, r, now);
  assertEquals(kept, [
    "own",
    "2021-01-20T06:00:00Z",
    "2021-01-19T06:00:00Z",
    "2020-12-10T06:00:00Z",
  ]);
  assertEquals(gone, ["2021-01-18T06:00:00Z", "2021-01-10T06:00:00Z"]);
  assertEquals(decisions[0].keptBy, ["this run", "last 2", "daily 2021-01-20", "monthly 2021-01"]);
  assertEquals(decisions[1].keptBy, ["last 2"]);
  assertEquals(
    decisions[3].reason,
    "not among the newest 2; daily: 2021-01-18 is not among the last 2 days with snapshots; " +
      "monthly: a newer one keeps 2021-01",
  );
  // --keep-days 5 adds the one of the 18th (2 days old), not the one of the 10th.
  const withDays = split(list, { ...r, keepDays: 5 }, now);
  assertEquals(withDays.gone, ["2021-01-10T06:00:00Z"]);
  assertEquals(withDays.decisions[4].reason?.includes("older than 5 days"), true);
});

Deno.test("exempt snapshots (pending, unknown consistency) are kept and fill no period", () => {
  const list = [
    snap("2021-01-20T10:00:00Z", { exempt: "pending" }),
    snap("2021-01-20T08:00:00Z"),
    snap("2021-01-20T06:00:00Z", { exempt: "consistency unknown" }),
    snap("2021-01-19T06:00:00Z"),
  ];
  const { kept, gone, decisions } = split(list, rules({ keep: 1, calendar: { daily: 1 } }));
  assertEquals(kept, ["2021-01-20T10:00:00Z", "2021-01-20T08:00:00Z", "2021-01-20T06:00:00Z"]);
  assertEquals(gone, ["2021-01-19T06:00:00Z"]);
  assertEquals(decisions[0].keptBy, ["pending"]);
  assertEquals(decisions[1].keptBy, ["last 1", "daily 2021-01-20"]);
});

Deno.test("volumes are decided apart; equal start times are ordered by id", () => {
  const list = [
    snap("2021-01-20T10:00:00Z", { snapshotId: "snap-a1" }),
    snap("2021-01-20T10:00:00Z", { snapshotId: "snap-a2" }),
    snap("2021-01-20T10:00:00Z", { snapshotId: "snap-b1", volumeId: "vol-0000000b" }),
  ];
  const { kept, gone } = split(list, rules({ keep: 1 }));
  assertEquals(kept, ["a2", "b1"]);
  assertEquals(gone, ["a1"]);
});
