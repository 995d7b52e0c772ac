/** The restore drill stopped at the steps drill_e2e_test does not reach: waiting for snapshots, a CreateVolume in flight, during its own cleanup, and a PostgreSQL drill; nothing is left, or the next drill removes it. */
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import {
  drill,
  drillServers,
  drillVolumes,
  eventually,
  type Lab,
  MARIADB,
  POSTGRES,
  snapshotRun,
  spawnDrill,
  withLab,
  XFS,
} from "./support/drill_lab.ts";
import { MOTO } from "./support/moto.ts";
import { ignoreUnless } from "./support/real.ts";
import { ExitCode } from "../src/util/errors.ts";

/** Nothing of a drill is left in EC2 or on the machine. */
async function nothingLeft(lab: Lab, what: string): Promise<void> {
  assertEquals(await drillVolumes(lab), [], `volumes after ${what}`);
  assertEquals(lab.ebs.attachedLoops(), [], `loop devices after ${what}`);
  assert(await eventually(async () => await drillServers() === ""), `servers after ${what}`);
  assertEquals(
    Deno.readTextFileSync(`${lab.env.ECS_RUN_DIR}/drill.lock`),
    "",
    `no work directory left after ${what}`,
  );
}

/** Whether the proxy saw `action` (not a DryRun) since request number `from`. */
const sent = (lab: Lab, action: string, from: number) => () =>
  Promise.resolve(lab.proxy.seen.slice(from).some((r) => r.action === action && !r.dryRun));

/** Holds the requests of `action` until the returned release is called. */
function holdAction(lab: Lab, action: string): { release: () => void } {
  const decide = lab.proxy.decide;
  let release = () => {};
  const held = new Promise<void>((resolve) => release = resolve);
  lab.proxy.decide = (request) => {
    if (request.action !== action || request.dryRun) return decide(request);
    return held.then(() => decide(request) as Promise<boolean>);
  };
  return {
    release: () => {
      release();
      lab.proxy.decide = decide;
    },
  };
}

/** Stops a spawned drill with `signal` (none: waits for its end); its exit code and stderr. */
async function stop(child: Awaited<ReturnType<typeof spawnDrill>>, signal?: Deno.Signal) {
  if (signal) child.child.kill(signal);
  const status = await child.child.status;
  const stderr = await child.stderr();
  await child.output.cancel();
  return { code: status.code, stderr };
}

Deno.test({
  name: "drill signals: waiting for snapshots, CreateVolume in flight, during cleanup",
  ignore: ignoreUnless(MARIADB, XFS, MOTO),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withLab("mariadb", async (lab) => {
      const runId = await snapshotRun(lab, [lab.data, lab.binlog]);

      // SIGTERM while it waits for pending snapshots: nothing was made.
      lab.proxy.rewrite = (request, _headers, body) =>
        request.action !== "DescribeSnapshots"
          ? body
          : body.replace(/<status>completed<\/status>/g, "<status>pending</status>");
      const waiting = await spawnDrill(lab, ["--restore-drill", runId], /waiting for snap-/);
      const waited = await stop(waiting, "SIGTERM");
      lab.proxy.rewrite = (_request, _headers, body) => body;
      assertEquals(waited.code, 143, waited.stderr);
      await nothingLeft(lab, "SIGTERM while waiting for snapshots");

      // SIGTERM while a CreateVolume is on its way: the volume it makes is still removed.
      let hold = holdAction(lab, "CreateVolume");
      let from = lab.proxy.seen.length;
      const creating = await spawnDrill(lab, ["--restore-drill", runId], /ok {3}server/);
      assert(await eventually(sent(lab, "CreateVolume", from)));
      creating.child.kill("SIGTERM");
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      hold.release();
      const created = await stop(creating);
      assertEquals(created.code, 143, created.stderr);
      assertMatch(created.stderr, /stopped by SIGTERM/);
      await nothingLeft(lab, "SIGTERM during CreateVolume");

      // SIGKILL while a CreateVolume is on its way: the next drill removes what it made.
      hold = holdAction(lab, "CreateVolume");
      from = lab.proxy.seen.length;
      const killed = await spawnDrill(lab, ["--restore-drill", runId], /ok {3}server/);
      assert(await eventually(sent(lab, "CreateVolume", from)));
      await stop(killed, "SIGKILL");
      hold.release();
      assert(await eventually(async () => (await drillVolumes(lab)).length === 1));
      const next = await drill(lab, ["--restore-drill", runId]);
      assertEquals(next.code, ExitCode.ok, next.stderr);
      assertMatch(next.stderr, /removing vol-\S+, left by a drill that was killed/);
      await nothingLeft(lab, "SIGKILL during CreateVolume, then a drill");

      // A second SIGTERM while the first one's cleanup detaches: the cleanup goes on to the end.
      const running = await spawnDrill(
        lab,
        ["--restore-drill", runId, "--drill-check-command", "sleep 60"],
        /ok {3}start/,
      );
      hold = holdAction(lab, "DetachVolume");
      from = lab.proxy.seen.length;
      running.child.kill("SIGTERM");
      assert(await eventually(sent(lab, "DetachVolume", from)));
      running.child.kill("SIGTERM");
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      hold.release();
      const twice = await stop(running);
      assertEquals(twice.code, 143, twice.stderr);
      assertMatch(twice.stderr, /SIGTERM received again; still cleaning up/);
      await nothingLeft(lab, "a second SIGTERM during cleanup");
    });
  },
});

Deno.test({
  name: "drill signals: a PostgreSQL drill stopped by SIGTERM or SIGKILL leaves nothing",
  ignore: ignoreUnless(POSTGRES, XFS, MOTO),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withLab("postgresql", async (lab) => {
      const runId = await snapshotRun(lab, [lab.data, lab.binlog]);
      const term = await spawnDrill(
        lab,
        ["--restore-drill", runId, "--drill-check-command", "sleep 60"],
        /ok {3}start/,
      );
      const stopped = await stop(term, "SIGTERM");
      assertEquals(stopped.code, 143, stopped.stderr);
      await nothingLeft(lab, "SIGTERM of a PostgreSQL drill");

      const killed = await spawnDrill(lab, ["--restore-drill", runId], /ok {3}start/);
      await stop(killed, "SIGKILL");
      assert(await eventually(async () => await drillServers() === ""), "the server died");
      const next = await drill(lab, ["--restore-drill", runId]);
      assertEquals(next.code, ExitCode.ok, next.stderr);
      assertMatch(next.stderr, /removing vol-\S+, left by a drill that was killed/);
      await nothingLeft(lab, "SIGKILL of a PostgreSQL drill, then a drill");
      assertEquals((await lab.sql("SELECT count(*) FROM app.t")).trim(), "1");
    });
  },
});
