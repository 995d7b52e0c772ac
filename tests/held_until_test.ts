/**
 * A create call still on its way when the run is stopped or killed (issue 22, 2b), through the
 * real program, moto behind the fault proxy and a real XFS mount: everything stays held until the
 * instant the held-until tag names, the snapshot EC2 makes later is found and reported by id,
 * and EC2 alone tells it apart afterwards (StartTime after held-until; retention leaves it be).
 */
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { runProgram, spawnProgram } from "./support/program.ts";
import { ignoreUnless } from "./support/real.ts";
import { isCreate, STACK, type Stack, withStack } from "./support/stack.ts";
import { isFrozen, startWriteProbe } from "./support/xfs.ts";
import { MOTO, startMoto, tagsOf } from "./support/moto.ts";
import { baseEnv } from "./support/program.ts";
import { clockMoved, LIBFAKETIME } from "./support/faketime.ts";
import { ExitCode } from "../src/util/errors.ts";

const HELD_UNTIL = "ec2-consistent-snapshot:held-until";
/** The program's minimum hold (MIN_HOLD_MS), less what a send takes before the proxy sees it. */
const HOLD_AT_LEAST_MS = 2_500;
/** How long the proxy keeps the create call before passing it on: past the hold and thaw. */
const ON_ITS_WAY_MS = 5_000;

/**
 * Lets the create call reach moto only ON_ITS_WAY_MS after the program sent it; resolves when
 * the proxy has it, with the moment, and starts a write probe that tells when the mount thaws.
 */
function delayCreate(s: Stack) {
  let thawedAt = Infinity;
  const seen = Promise.withResolvers<number>();
  s.proxy.decide = (r) => {
    if (!isCreate(r)) return "forward";
    startWriteProbe(s.mount.mountPoint).done.then(() => thawedAt = performance.now());
    seen.resolve(r.at);
    return { delayMs: ON_ITS_WAY_MS };
  };
  return { seen: seen.promise, thawedAt: () => thawedAt };
}

/** The one snapshot moto holds of the stack's volume, with its held-until tag. */
async function theSnapshot(s: Stack) {
  const made = await s.moto.snapshotsOf([s.volume]);
  assertEquals(made.length, 1, "EC2 made the snapshot of the call that was on its way");
  const heldUntil = tagsOf(made[0])[HELD_UNTIL];
  assert(heldUntil !== undefined, "the create call carried the held-until tag");
  return { snapshot: made[0], heldUntil: Date.parse(heldUntil) };
}

Deno.test(
  "SIGTERM with the create call on its way: held until held-until, the late snapshot reported by id, exit 12",
  {
    ignore: ignoreUnless(...STACK),
  },
  async () => {
    await withStack(async (s) => {
      const create = delayCreate(s);
      const child = spawnProgram(
        ["--freeze-filesystem", s.mount.mountPoint, "--output", "json", s.volume],
        { env: s.env },
      );
      const seenAt = await create.seen;
      child.kill("SIGTERM");
      const stoppedAt = performance.now();
      const out = await child.output();
      const endedAt = performance.now();
      const stderr = new TextDecoder().decode(out.stderr);
      assertEquals(out.code, ExitCode.consistencyUnknown, stderr);
      assert(create.thawedAt() - seenAt >= HOLD_AT_LEAST_MS, "held for the minimum hold");
      // A stop signal still ends the run within seconds (hold, release, a bounded lookup).
      assert(endedAt - stoppedAt < 20_000, `ended ${Math.round(endedAt - stoppedAt)} ms after`);
      assertEquals(await isFrozen(s.mount.mountPoint), false);
      assertEquals(s.proxy.seen.filter(isCreate).length, 1, "sent once, never again");

      const { snapshot, heldUntil } = await theSnapshot(s);
      const id = snapshot.SnapshotId!;
      // EC2 alone says it may not be consistent: it started after the instant held until.
      assert(snapshot.StartTime!.getTime() > heldUntil, `${snapshot.StartTime} after held-until`);
      const report = JSON.parse(new TextDecoder().decode(out.stdout));
      assertEquals(report.snapshots[0].consistencyUnknown, [id]);
      assertMatch(stderr, new RegExp(`created, consistency unknown: ${id} of ${s.volume}`));
    });
  },
);

Deno.test(
  "SIGKILL with the create call on its way: the watchdog holds until held-until; retention leaves the late snapshot be",
  {
    ignore: ignoreUnless(...STACK),
  },
  async () => {
    await withStack(async (s) => {
      const create = delayCreate(s);
      const child = spawnProgram(["--freeze-filesystem", s.mount.mountPoint, s.volume], {
        env: s.env,
      });
      const seenAt = await create.seen;
      child.kill("SIGKILL");
      await child.output();
      // The watchdog thaws, but not before the instant the create call promised.
      for (let i = 0; i < 300 && create.thawedAt() === Infinity; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert(create.thawedAt() < Infinity, "the watchdog thawed");
      assert(create.thawedAt() - seenAt >= HOLD_AT_LEAST_MS, "the watchdog kept the minimum hold");
      // The late snapshot lands after the thaw.
      await new Promise((resolve) => setTimeout(resolve, ON_ITS_WAY_MS + 1_000));
      const { snapshot: late, heldUntil } = await theSnapshot(s);
      assert(late.StartTime!.getTime() > heldUntil);

      // The next run keeps 1: its own snapshot is the kept backup; the late one is neither
      // counted nor deleted.
      s.proxy.decide = () => "forward";
      const next = await runProgram(
        ["--freeze-filesystem", s.mount.mountPoint, "--output", "json", "--keep", "1", s.volume],
        { env: s.env },
      );
      assertEquals(next.code, 0, next.stderr);
      const doc = JSON.parse(next.stdout);
      assertEquals(doc.retention.deleted, []);
      const decision = doc.retention.decisions.find(
        (d: { snapshotId: string }) => d.snapshotId === late.SnapshotId,
      );
      assertEquals(decision?.keptBy, ["consistency unknown: not a backup"]);
      assertEquals((await s.moto.snapshotsOf([s.volume])).length, 2);
    });
  },
);

Deno.test(
  "held-until is in EC2's time, not the local clock's (the machine 400 days ahead, libfaketime)",
  {
    ignore: ignoreUnless(MOTO, LIBFAKETIME),
  },
  async () => {
    const moto = await startMoto();
    try {
      const [volume] = await moto.createVolumes(1);
      const env = baseEnv({ ...moto.env, ...clockMoved("+400d") });
      const out = await runProgram([volume], { env });
      assertEquals(out.code, 0, out.stderr);
      const [snapshot] = await moto.snapshotsOf([volume]);
      const heldUntil = Date.parse(tagsOf(snapshot)[HELD_UNTIL]);
      const started = snapshot.StartTime!.getTime();
      // Measured from the Date of EC2's answers: a little after the snapshot started, by EC2's
      // clock (the minimum hold), never 400 days later.
      assert(heldUntil >= started, `${new Date(heldUntil).toISOString()} before the start`);
      assert(heldUntil - started < 60_000, `${new Date(heldUntil).toISOString()} far off`);
    } finally {
      await moto.stop();
    }
  },
);
