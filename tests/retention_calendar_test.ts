/**
 * Calendar retention end to end: snapshots made through boto3 at chosen times around the turn
 * of 2020 (moto's clock set by the test), then the real program with --keep-daily/-weekly/
 * -monthly/-yearly, in UTC and in Europe/Berlin; what is left is listed through boto3.
 */
import { assert, assertEquals } from "./support/assert.ts";
import { MOTO, startMoto } from "./support/moto.ts";
import { ignoreUnless } from "./support/real.ts";
import { createSnapshotsAt, listSnapshots } from "./support/boto3.ts";
import { baseEnv, runProgram } from "./support/program.ts";

const MARKER = "ec2-consistent-snapshot:volume";

// Newest first. Berlin is UTC+1 in winter: #3 is Sunday 3 January there (2020-W53), #4 is
// already Monday 4 January (2021-W01), #5 is already 2021. In UTC, #4 is still Sunday and #5
// still 2020.
const SEEDS = [
  "2021-01-10T10:00:00Z", // #1 Sunday, 2021-W01
  "2021-01-04T10:00:00Z", // #2 Monday, 2021-W01
  "2021-01-03T23:30:00Z", // #4 Berlin: Mon 4 Jan 00:30; UTC: Sun 3 Jan
  "2021-01-03T22:30:00Z", // #3 Berlin: Sun 3 Jan 23:30
  "2020-12-31T23:30:00Z", // #5 Berlin: 1 Jan 2021 00:30; UTC: 2020
  "2020-12-31T10:00:00Z", // #6 2020 in both
  "2020-06-01T10:00:00Z", // #7
];
const RULES = [
  "--keep-daily",
  "4",
  "--keep-weekly",
  "3",
  "--keep-monthly",
  "2",
  "--keep-yearly",
  "3",
];

Deno.test("calendar retention against moto: ISO weeks and years in UTC and Europe/Berlin", {
  ignore: ignoreUnless(MOTO),
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "ecs-calendar-" });
  const clockFile = `${dir}/clock`;
  const moto = await startMoto({ clockFile }).catch(async (error) => {
    await Deno.remove(dir, { recursive: true });
    throw error;
  });
  try {
    const [a, c] = await moto.createVolumes(2);
    const ids = await createSnapshotsAt(moto, {
      clockFile,
      volumeId: a,
      tags: { [MARKER]: a, Backup: "nightly" },
      times: SEEDS,
    });
    const [s1, s2, s4, s3, s5, s6, s7] = ids;
    // Never ours to delete: no marker on a's volume; the marker of a volume not in this run.
    const [unmarked] = await createSnapshotsAt(moto, {
      clockFile,
      volumeId: a,
      tags: { Backup: "by hand" },
      times: ["2019-01-01T00:00:00Z"],
    });
    const [otherVolume] = await createSnapshotsAt(moto, {
      clockFile,
      volumeId: c,
      tags: { [MARKER]: c },
      times: ["2019-01-01T00:00:00Z"],
    });
    const env = baseEnv(moto.env);

    // UTC: daily keeps #1 #2 #4 (3 January's newest), weekly #4 for 2020-W53, yearly #5 for 2020.
    const utc = await runProgram(["--noaction", "--output", "json", ...RULES, a], { env });
    assertEquals(utc.code, 0, utc.stderr);
    const planned = JSON.parse(utc.stdout).retention;
    assertEquals(
      planned.deleted.map((d: { snapshotId: string }) => d.snapshotId).sort(),
      [
        s3,
        s6,
        s7,
      ].sort(),
    );
    const byId = new Map(
      planned.decisions.map((d: { snapshotId: string }) => [d.snapshotId, d]),
    ) as Map<string, { keep: boolean; keptBy: string[]; reason?: string }>;
    assertEquals(byId.get(s4)?.keptBy, ["daily 2021-01-03", "weekly 2020-W53"]);
    assertEquals(byId.get(s5)?.keptBy, ["yearly 2020"]);
    assertEquals(byId.get(s3)?.reason?.startsWith("daily: a newer one keeps 2021-01-03"), true);

    // Berlin, as text: the plan goes to stderr, one line per snapshot; stdout stays empty.
    const berlinArgs = [...RULES, "--retention-tz", "Europe/Berlin", a];
    const text = await runProgram(["--noaction", ...berlinArgs], { env });
    assertEquals(text.code, 0, text.stderr);
    assertEquals(text.stdout, "", "--noaction prints its plan on stderr");
    for (const id of [s1, s2, s3, s6]) {
      assert(new RegExp(`^.*would keep ${id} .*`, "m").test(text.stderr), `${id}\n${text.stderr}`);
    }
    for (const id of [s4, s5, s7]) {
      assert(
        new RegExp(`^.*would delete ${id} .*`, "m").test(text.stderr),
        `${id}\n${text.stderr}`,
      );
    }
    assert(text.stderr.includes("weekly 2020-W53"), text.stderr);
    assertEquals((await listSnapshots(moto, [a, c])).length, 9, "--noaction deleted nothing");

    // The real run in Berlin deletes exactly what its plan said.
    const run = await runProgram(["--output", "json", ...berlinArgs], { env });
    assertEquals(run.code, 0, run.stderr);
    const doc = JSON.parse(run.stdout);
    const own = doc.snapshots[0].snapshotId;
    assertEquals(
      doc.retention.deleted.map((d: { snapshotId: string }) => d.snapshotId).sort(),
      [s4, s5, s7].sort(),
    );
    const left = (await listSnapshots(moto, [a, c])).map((s) => s.id).sort();
    assertEquals(left, [own, s1, s2, s3, s6, unmarked, otherVolume].sort());
  } finally {
    await moto.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
