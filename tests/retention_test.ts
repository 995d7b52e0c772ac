/**
 * Retention: end to end against moto (only marked, older snapshots of the same volumes are
 * deleted; --noaction lists them), and the selection rules and the in-use path at module level.
 */
import {
  CreateSnapshotCommand,
  DescribeSnapshotsCommand,
  EC2Client,
  type Snapshot,
} from "@aws-sdk/client-ec2";
import { assert, assertEquals } from "./support/assert.ts";
import { MOTO, startMoto } from "./support/moto.ts";
import { ignoreUnless } from "./support/real.ts";
import { baseEnv, runProgram } from "./support/program.ts";
import { applyRetention } from "../src/aws/retention.ts";
import { retentionPolicy } from "../src/plan/after_run.ts";
import { defaultOptions } from "../src/types/options.ts";
import { silentLogger } from "../src/util/log.ts";
import { UsageError } from "../src/util/errors.ts";

const MARKER = "ec2-consistent-snapshot:volume";

async function existing(client: EC2Client, volumeIds: string[]): Promise<Set<string>> {
  const out = await client.send(
    new DescribeSnapshotsCommand({ Filters: [{ Name: "volume-id", Values: volumeIds }] }),
  );
  return new Set((out.Snapshots ?? []).map((s) => s.SnapshotId!));
}

Deno.test("retention deletes only the older marked snapshots of the run's volumes", {
  ignore: ignoreUnless(MOTO),
}, async () => {
  const moto = await startMoto();
  try {
    const client = moto.client();
    const [a, b, other] = await moto.createVolumes(3);
    const env = baseEnv(moto.env);
    const run = async (args: string[]) => {
      const result = await runProgram(args, { env });
      assertEquals(result.code, 0, result.stderr);
      return result.stdout;
    };
    // Three earlier runs of the tool on a and b, more than a second apart so that "older" is
    // decided by StartTime (moto stamps whole seconds in its responses).
    const earlier: string[][] = [];
    for (let i = 0; i < 3; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 1100));
      earlier.push((await run([a, b])).trimEnd().split("\n"));
    }
    const otherVolume = (await run([other])).trim();
    const unmarked = (await client.send(new CreateSnapshotCommand({ VolumeId: a }))).SnapshotId!;
    await new Promise((r) => setTimeout(r, 1100));

    // The two oldest runs go: the new run's snapshot and the newest earlier one are kept.
    const expected = [earlier[0][0], earlier[1][0], earlier[0][1], earlier[1][1]].sort();

    const preview = await runProgram(
      ["--noaction", "--output", "json", "--keep", "2", a, b],
      { env },
    );
    assertEquals(preview.code, 0, preview.stderr);
    const listed = JSON.parse(preview.stdout).retention.deleted.map(
      (d: { snapshotId: string }) => d.snapshotId,
    );
    assertEquals(listed.sort(), expected, "--noaction lists what a run would delete");
    const before = await existing(client, [a, b]);
    assertEquals(before.size, 7, "--noaction deleted nothing");

    const text = await runProgram(["--noaction", "--keep", "2", a, b], { env });
    assertEquals(text.stdout, "", "--noaction's plan goes to stderr");
    assertEquals(text.stderr.match(/^would delete snap-/gm)?.length, 4, text.stderr);
    assertEquals(text.stderr.match(/^would keep snap-/gm)?.length, 2, text.stderr);

    const result = await runProgram(["--output", "json", "--keep", "2", a, b], { env });
    assertEquals(result.code, 0, result.stderr);
    const doc = JSON.parse(result.stdout);
    const made = doc.snapshots.map((s: { snapshotId: string }) => s.snapshotId);
    assertEquals(
      doc.retention.deleted.map((d: { snapshotId: string }) => d.snapshotId).sort(),
      expected,
    );
    assertEquals(doc.retention.skipped, []);
    const left = await existing(client, [a, b, other]);
    for (const id of expected) assert(!left.has(id), `${id} deleted`);
    for (const id of [...made, earlier[2][0], earlier[2][1], unmarked, otherVolume]) {
      assert(left.has(id), `${id} kept`);
    }
    assertEquals(left.size, 6);
  } finally {
    await moto.stop();
  }
});

function snap(id: string, daysAgo: number, state = "completed"): Snapshot {
  return {
    SnapshotId: id,
    VolumeId: "vol-0123abcd",
    State: state as Snapshot["State"],
    StartTime: new Date(Date.UTC(2025, 0, 31) - daysAgo * 86_400_000),
    Tags: [{ Key: MARKER, Value: "vol-0123abcd" }],
  };
}

Deno.test("retention options: --keep 0 and --keep-days 0 are refused", () => {
  for (const [keep, days] of [[0, undefined], [undefined, 0]]) {
    try {
      retentionPolicy({ ...defaultOptions(), keep, keepDays: days });
      throw new Error("accepted");
    } catch (error) {
      assert(error instanceof UsageError, String(error));
    }
  }
  assertEquals(retentionPolicy(defaultOptions()), undefined);
  const bad: [Partial<ReturnType<typeof defaultOptions>>, RegExp][] = [
    [{ keepDaily: 0 }, /^--keep-daily: must be at least 1/],
    [{ retentionTz: "Europe/Berlin" }, /^--retention-tz: needs a retention rule/],
    [{ keepWeekly: 2, retentionTz: "Nowhere/City" }, /^--retention-tz: unknown time zone/],
  ];
  for (const [given, message] of bad) {
    try {
      retentionPolicy({ ...defaultOptions(), ...given });
      throw new Error(`accepted ${JSON.stringify(given)}`);
    } catch (error) {
      assert(error instanceof UsageError && message.test(error.message), String(error));
    }
  }
  assertEquals(
    retentionPolicy({ ...defaultOptions(), keepWeekly: 4, retentionTz: "Europe/Berlin" }),
    {
      keep: undefined,
      keepDays: undefined,
      calendar: { weekly: 4 },
      timeZone: "Europe/Berlin",
    },
  );
});

// moto refuses DeleteSnapshot with InvalidSnapshot.InUse only for the snapshots it makes itself
// for CreateImage, which never carry our marker; so the in-use path is tested with a recording
// fake that answers like EC2.
Deno.test("retention skips and reports a snapshot in use by an image (recording fake)", async () => {
  const calls: string[] = [];
  const inUse = Object.assign(new Error("The snapshot snap-old is in use by ami-1"), {
    name: "InvalidSnapshot.InUse",
  });
  // The SDK's paginator checks the client's class, so the fake is an EC2Client with its own send.
  const fake = Object.assign(Object.create(EC2Client.prototype), {
    send(command: { constructor: { name: string }; input: Record<string, unknown> }) {
      calls.push(command.constructor.name);
      if (command.constructor.name === "DescribeSnapshotsCommand") {
        return Promise.resolve({
          Snapshots: [
            snap("snap-old", 9),
            snap("snap-older", 10),
            // --multi-volume's marker: the volume is the snapshot's own VolumeId.
            {
              ...snap("snap-multi", 12),
              VolumeId: "vol-0123abcd",
              Tags: [{ Key: MARKER, Value: "multi-volume" }],
            },
            {
              ...snap("snap-multi-other", 13),
              VolumeId: "vol-99999999",
              Tags: [{ Key: MARKER, Value: "multi-volume" }],
            },
            { ...snap("snap-foreign", 11), Tags: [] }, // the filter let it through: still kept
            // Tagged as of this volume, but EC2 says another: not this volume's, kept.
            { ...snap("snap-other-volume", 14), VolumeId: "vol-99999999" },
            { ...snap("snap-failed", 1, "error") }, // never counted, never deleted
          ],
        });
      }
      if (command.input.SnapshotId === "snap-old") return Promise.reject(inUse);
      return Promise.resolve({});
    },
  }) as EC2Client;
  const result = await applyRetention({
    client: fake,
    policy: { keep: 1, calendar: {}, timeZone: "UTC" },
    volumeIds: ["vol-0123abcd"],
    ownSnapshots: [{ snapshotId: "snap-new", volumeId: "vol-0123abcd" }],
    noaction: false,
    log: silentLogger,
    now: new Date(Date.UTC(2025, 0, 31)),
  });
  assertEquals(result.deleted.map((d) => d.snapshotId), ["snap-older", "snap-multi"]);
  assertEquals(
    result.decisions.map((d) => [d.snapshotId, d.keep]),
    [["snap-failed", true], ["snap-old", false], ["snap-older", false], ["snap-multi", false]],
    "the new snapshot (not listed yet) takes the one place --keep 1 leaves",
  );
  assertEquals(result.skipped.map((d) => d.snapshotId), ["snap-old"]);
  assert(result.skipped[0].reason?.startsWith("InvalidSnapshot.InUse"));
  assertEquals(result.failed, []);
  assertEquals(calls, [
    "DescribeSnapshotsCommand",
    "DeleteSnapshotCommand",
    "DeleteSnapshotCommand",
    "DeleteSnapshotCommand",
  ]);
});

Deno.test("--noaction with retention and no credentials: one line, exit 3, no stack", async () => {
  const result = await runProgram(
    [
      "-n",
      "--keep-daily",
      "7",
      "--region",
      "us-east-1",
      "--ec2-endpoint",
      "http://127.0.0.1:9",
      "vol-0123abcd",
    ],
    { env: baseEnv() },
  );
  assertEquals(result.code, 3, result.stderr);
  assertEquals(result.stderr.trim().split("\n").length, 1, result.stderr);
  assert(result.stderr.includes("retention: cannot list the volumes' snapshots"), result.stderr);
});
