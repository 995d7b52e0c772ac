/**
 * Retention when EC2 answers oddly or the local clock is wrong, through the real program, moto
 * and the fault proxy; what still exists is asserted through boto3.
 */
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { MOTO, type MotoEndpoint, startMoto } from "./support/moto.ts";
import { ignoreUnless } from "./support/real.ts";
import { clockMoved, LIBFAKETIME } from "./support/faketime.ts";
import { baseEnv, runProgram, spawnProgram } from "./support/program.ts";
import { startProxy } from "./support/proxy.ts";
import { createSnapshotsAt, listSnapshots } from "./support/boto3.ts";

const MARKER = "ec2-consistent-snapshot:volume";
const HELD_UNTIL = "ec2-consistent-snapshot:held-until";
const DAY = 86_400_000;

/** ISO time `days` before now, as moto_clock.py reads it. */
function ago(days: number): string {
  return new Date(Date.now() - days * DAY).toISOString().replace(/\.\d+Z$/, "");
}

async function withMoto(test: (moto: MotoEndpoint, clockFile: string) => Promise<void>) {
  const clockFile = await Deno.makeTempFile({ prefix: "ecs-moto-clock-" });
  const moto = await startMoto({ clockFile });
  try {
    await test(moto, clockFile);
  } finally {
    await moto.stop();
    await Deno.remove(clockFile);
  }
}

async function existing(moto: MotoEndpoint, volumes: string[]): Promise<Set<string>> {
  return new Set((await listSnapshots(moto, volumes)).map((s) => s.id));
}

Deno.test(
  "retention counts only completed snapshots of known consistency whose VolumeId is the volume",
  {
    ignore: ignoreUnless(MOTO),
  },
  async () => {
    await withMoto(async (moto, clockFile) => {
      const [a, b] = await moto.createVolumes(2);
      const ours = { [MARKER]: a };
      const [good0, good1, good2, failed1, failed2] = await createSnapshotsAt(moto, {
        clockFile,
        volumeId: a,
        tags: ours,
        times: [ago(4), ago(3), ago(2), ago(1), ago(0.5)],
      });
      // Of volume b, but its marker names a: a tag is anyone's to set, VolumeId is EC2's.
      const [foreign] = await createSnapshotsAt(moto, {
        clockFile,
        volumeId: b,
        tags: ours,
        times: [ago(5)],
      });
      // Started after the instant its run guaranteed to hold everything until.
      const [late] = await createSnapshotsAt(moto, {
        clockFile,
        volumeId: a,
        tags: { ...ours, [HELD_UNTIL]: `${ago(0.3)}.000Z` },
        times: [ago(0.25)],
      });
      const proxy = startProxy(moto.url);
      // EC2 lists the two newest as failed.
      proxy.rewrite = (request, _headers, body) =>
        request.action !== "DescribeSnapshots" ? body : [failed1, failed2].reduce(
          (text, id) =>
            text.replace(
              new RegExp(
                `(<snapshotId>${id}</snapshotId><volumeId>[^<]*</volumeId><status>)completed<`,
              ),
              "$1error<",
            ),
          body,
        );
      try {
        const env = baseEnv({ ...moto.env, AWS_ENDPOINT_URL_EC2: proxy.url });
        const result = await runProgram(["--output", "json", "--keep", "3", a], { env });
        assertEquals(result.code, 0, result.stderr);
        const doc = JSON.parse(result.stdout);
        const made = doc.snapshots[0].snapshotId;
        assertEquals(doc.retention.deleted.map((d: { snapshotId: string }) => d.snapshotId), [
          good0,
        ]);
        const decisions = new Map<string, { keep: boolean; keptBy: string[] }>(
          doc.retention.decisions.map((d: { snapshotId: string }) => [d.snapshotId, d]),
        );
        assertEquals(decisions.get(failed1)?.keptBy, ["error: not a backup"]);
        assertEquals(decisions.get(late)?.keptBy, ["consistency unknown: not a backup"]);
        assert(!decisions.has(foreign), "a snapshot of another volume is not decided on");
        const left = await existing(moto, [a, b]);
        for (const id of [made, good1, good2, failed1, failed2, foreign, late]) {
          assert(left.has(id), `${id} still exists`);
        }
        assert(!left.has(good0), "the oldest completed one was deleted");
      } finally {
        await proxy.stop();
      }
    });
  },
);

/** Three snapshots of `volume` made by the tool 1, 2 and 40 days ago. */
async function history(moto: MotoEndpoint, clockFile: string, volume: string) {
  return await createSnapshotsAt(moto, {
    clockFile,
    volumeId: volume,
    tags: { [MARKER]: volume },
    times: [ago(40), ago(2), ago(1)],
  });
}

Deno.test("retention deletes nothing when EC2's Date disagrees with the local clock by days", {
  ignore: ignoreUnless(MOTO),
}, async () => {
  await withMoto(async (moto, clockFile) => {
    const [a] = await moto.createVolumes(1);
    const [old, ...recent] = await history(moto, clockFile, a);
    const proxy = startProxy(moto.url);
    // EC2's answers say it is 400 days earlier than the local clock says.
    proxy.rewrite = (_request, headers, body) => {
      const date = Date.parse(headers.get("date") ?? "");
      if (!Number.isNaN(date)) headers.set("date", new Date(date - 400 * DAY).toUTCString());
      return body;
    };
    try {
      const env = baseEnv({ ...moto.env, AWS_ENDPOINT_URL_EC2: proxy.url });
      const result = await runProgram(["--keep-days", "30", a], { env });
      assertEquals(result.code, 0, result.stderr);
      assertMatch(
        result.stderr,
        /^ec2-consistent-snapshot: warning: retention: the local clock is 400 days ahead of EC2's \(the Date of its answers\); nothing is deleted in this run$/m,
      );
      // --quiet keeps it: a retention that deletes nothing is about the backups, not chatter.
      const quiet = await runProgram(["--quiet", "--keep-days", "30", a], { env });
      assertEquals(quiet.code, 0, quiet.stderr);
      assertMatch(
        quiet.stderr,
        /retention: the local clock is 400 days ahead .*nothing is deleted/,
      );
      const left = await existing(moto, [a]);
      for (const id of [old, ...recent]) assert(left.has(id), `${id} still exists`);
      // The dry run says the same: nothing would be deleted.
      const plan = await runProgram(["--noaction", "--keep-days", "30", a], { env });
      assertEquals(plan.code, 0, plan.stderr);
      assert(!plan.stderr.includes("would delete"), plan.stderr);
    } finally {
      await proxy.stop();
    }
    // The same run with the clocks agreeing deletes the 40-day-old one only.
    const result = await runProgram(["--keep-days", "30", a], { env: baseEnv(moto.env) });
    assertEquals(result.code, 0, result.stderr);
    const left = await existing(moto, [a]);
    assert(!left.has(old), "the 40-day-old snapshot was deleted");
    for (const id of recent) assert(left.has(id), `${id} still exists`);
  });
});

Deno.test("retention with the machine's clock 400 days ahead (libfaketime) deletes nothing", {
  ignore: ignoreUnless(MOTO, LIBFAKETIME),
}, async () => {
  await withMoto(async (moto, clockFile) => {
    const [a] = await moto.createVolumes(1);
    const made = await history(moto, clockFile, a);
    const env = baseEnv({ ...moto.env, ...clockMoved("+400d") });
    const result = await runProgram(["--output", "json", "--keep-days", "30", a], { env });
    assertEquals(result.code, 0, result.stderr);
    assertMatch(result.stderr, /the local clock is 400 days ahead of EC2's/);
    const doc = JSON.parse(result.stdout);
    assertEquals(doc.retention.deleted, []);
    assertMatch(doc.retention.refused, /400 days ahead/);
    // Ages were measured with EC2's clock: only the 40-day-old one would have gone.
    const wouldGo = doc.retention.decisions.filter((d: { keep: boolean }) => !d.keep);
    assertEquals(wouldGo.map((d: { snapshotId: string }) => d.snapshotId), [made[0]]);
    const left = await existing(moto, [a]);
    for (const id of made) assert(left.has(id), `${id} still exists`);
    // The dry run says what the rules alone would do, and that this run would not.
    const plan = await runProgram(["--noaction", "--keep-days", "30", a], { env });
    assertEquals(plan.code, 0, plan.stderr);
    assert(!plan.stderr.includes("would delete"), plan.stderr);
    assertMatch(
      plan.stderr,
      new RegExp(`^would keep ${made[0]} .*400 days ahead.*older than 30 days\\)$`, "m"),
    );
  });
});

Deno.test(
  "one EC2 answer with an absurd Date among good ones: retention deletes nothing, held-until stays EC2's",
  {
    ignore: ignoreUnless(MOTO),
  },
  async () => {
    await withMoto(async (moto, clockFile) => {
      const [a] = await moto.createVolumes(1);
      const made = await history(moto, clockFile, a);
      const proxy = startProxy(moto.url);
      // The create call's answer (one EC2 host with a wrong clock) says it is 400 days later;
      // every other answer tells the right time.
      proxy.rewrite = (request, headers, body) => {
        const date = Date.parse(headers.get("date") ?? "");
        if (request.action === "CreateSnapshot" && !Number.isNaN(date)) {
          headers.set("date", new Date(date + 400 * DAY).toUTCString());
        }
        return body;
      };
      try {
        const env = baseEnv({ ...moto.env, AWS_ENDPOINT_URL_EC2: proxy.url });
        const result = await runProgram(["--output", "json", "--keep-days", "30", a], { env });
        assertEquals(result.code, 0, result.stderr);
        assertMatch(result.stderr, /EC2.s answers disagree about the time by 400 days/);
        const doc = JSON.parse(result.stdout);
        assertEquals(doc.retention.deleted, []);
        const left = await existing(moto, [a]);
        for (const id of made) assert(left.has(id), `${id} still exists`);
        const [mine] = (await listSnapshots(moto, [a])).filter((s) => !made.includes(s.id));
        assert(mine !== undefined, "the run's snapshot exists");
        const own = (await moto.snapshotsOf([a])).find((s) => s.SnapshotId === mine.id)!;
        const heldUntil = Date.parse(
          own.Tags!.find((t) => t.Key === HELD_UNTIL)!.Value!,
        );
        assert(heldUntil - Date.now() < 60_000, `held-until ${new Date(heldUntil).toISOString()}`);
      } finally {
        await proxy.stop();
      }
    });
  },
);

Deno.test(
  "stdout closed with retention: one line on stderr names the snapshot made and those deleted, exit 13",
  {
    ignore: ignoreUnless(MOTO),
  },
  async () => {
    await withMoto(async (moto, clockFile) => {
      const [a] = await moto.createVolumes(1);
      const made = await history(moto, clockFile, a);
      const child = spawnProgram(["--output", "json", "--keep", "1", a], {
        env: baseEnv(moto.env),
      });
      await child.stdout.cancel();
      const out = await child.output();
      const stderr = new TextDecoder().decode(out.stderr);
      assertEquals(out.code, 13, stderr);
      const lines = stderr.split("\n").filter((line) => line !== "");
      assertEquals(lines.length, 1, stderr);
      const left = await existing(moto, [a]);
      assertEquals(left.size, 1);
      const [mine] = [...left];
      assertMatch(
        lines[0],
        new RegExp(`cannot write to stdout: .*snapshots made: ${mine} \\(${a}\\)`),
      );
      for (const id of made) assert(lines[0].includes(`${id} (${a})`), `${id} named as deleted`);
    });
  },
);
