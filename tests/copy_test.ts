/**
 * End to end against moto: --wait, then --copy-to-region into a second region with the same
 * description and tags, the copies' ids printed after the originals and waited for.
 */
import { DescribeSnapshotsCommand } from "@aws-sdk/client-ec2";
import { assert, assertEquals } from "./support/assert.ts";
import { MOTO, startMoto, tagsOf } from "./support/moto.ts";
import { ignoreUnless } from "./support/real.ts";
import { baseEnv, runProgram } from "./support/program.ts";

Deno.test("copies appear in the other region with the description and tags of the originals", {
  ignore: ignoreUnless(MOTO),
}, async () => {
  const moto = await startMoto();
  try {
    const volumes = await moto.createVolumes(2);
    const result = await runProgram(
      [
        "--wait",
        "--copy-to-region",
        "eu-west-1",
        "--description",
        "nightly",
        "--tag",
        "team=db",
        ...volumes,
      ],
      { env: baseEnv(moto.env) },
    );
    assertEquals(result.code, 0, result.stderr);
    const lines = result.stdout.trimEnd().split("\n");
    assertEquals(lines.length, 4, "two originals, then two copies");
    const [originals, copies] = [lines.slice(0, 2), lines.slice(2)];

    const inSource = await moto.client("us-east-1").send(
      new DescribeSnapshotsCommand({ SnapshotIds: originals }),
    );
    assertEquals(inSource.Snapshots?.length, 2);
    const inCopyRegion = await moto.client("eu-west-1").send(
      new DescribeSnapshotsCommand({ SnapshotIds: copies }),
    );
    assertEquals(inCopyRegion.Snapshots?.length, 2);
    for (const [i, copyId] of copies.entries()) {
      const copy = inCopyRegion.Snapshots!.find((s) => s.SnapshotId === copyId)!;
      const original = inSource.Snapshots!.find((s) => s.SnapshotId === originals[i])!;
      assertEquals(copy.Description, "nightly");
      const tags = tagsOf(copy);
      assertEquals(tags.team, "db");
      assertEquals(tags["ec2-consistent-snapshot:volume"], volumes[i]);
      // The copy carries the original's tags, all but the instant its run held until: a copy
      // starts later, and that tag would call it of unknown consistency.
      const { "ec2-consistent-snapshot:held-until": _held, ...originalTags } = tagsOf(original);
      assertEquals(tags, originalTags);
    }
    // Without a terminal, progress is plain lines on stderr, for originals and copies.
    assert(/waiting: .*completed/.test(result.stderr), result.stderr);
    assertEquals(result.stderr.match(/ completed/g)?.length, 4, result.stderr);
  } finally {
    await moto.stop();
  }
});

Deno.test(
  "JSON output lists the waits and the copies",
  { ignore: ignoreUnless(MOTO) },
  async () => {
    const moto = await startMoto();
    try {
      const [volume] = await moto.createVolumes(1);
      const result = await runProgram(
        ["--output", "json", "--quiet", "--wait=600", "--copy-to-region", "us-west-2", volume],
        { env: baseEnv(moto.env) },
      );
      assertEquals(result.code, 0, result.stderr);
      assertEquals(result.stderr, "", "--quiet: no progress lines");
      const doc = JSON.parse(result.stdout);
      assertEquals(doc.ok, true);
      assertEquals(doc.copies.length, 1);
      assertEquals(doc.copies[0].region, "us-west-2");
      assertEquals(doc.copies[0].sourceSnapshotId, doc.snapshots[0].snapshotId);
      assertEquals(doc.copies[0].volumeId, volume);
      assertEquals(doc.copies[0].error, null);
      assertEquals(doc.waits.map((w: { state: string }) => w.state), ["completed", "completed"]);
      assertEquals(doc.waits[1].snapshotId, doc.copies[0].snapshotId);
      assertEquals(doc.retention, null);
    } finally {
      await moto.stop();
    }
  },
);

Deno.test("bad copy options are usage errors before anything is made", async () => {
  for (
    const [args, message] of [
      [["--copy-to-region", "us-east-1"], /own region/],
      [["--copy-to-region", "Europe"], /not a region name/],
      [["--copy-kms-key-id", "alias/x"], /needs --copy-to-region/],
      [["--wait=0"], /--wait: must be more than 0/],
    ] as const
  ) {
    const result = await runProgram(
      ["--region", "us-east-1", "--noaction", ...args, "vol-0123abcd"],
      { env: baseEnv() },
    );
    assertEquals(result.code, 2, result.stderr);
    assert(message.test(result.stderr), result.stderr);
  }
});
