/**
 * End to end against a real EC2 endpoint (moto): snapshots made, described and tagged as asked,
 * checked through the AWS SDK (a client this project did not write).
 */
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { MOTO, startMoto, tagsOf } from "./support/moto.ts";
import { ignoreUnless } from "./support/real.ts";
import { baseEnv, runProgram } from "./support/program.ts";
import { startProxy } from "./support/proxy.ts";
import { startStubEndpoint } from "./support/stub_endpoint.ts";
import { ExitCode } from "../src/util/errors.ts";

Deno.test("snapshots of several volumes, with descriptions per volume and tags for all", {
  ignore: ignoreUnless(MOTO),
}, async () => {
  const moto = await startMoto();
  try {
    const volumes = await moto.createVolumes(3);
    const result = await runProgram(
      [
        "--description",
        "root",
        "--description",
        "data",
        "--description",
        "logs",
        "--tag",
        "team=db;purpose=backup",
        ...volumes,
      ],
      { env: baseEnv(moto.env) },
    );
    assertEquals(result.code, 0, result.stderr);
    assertEquals(result.stderr, "");
    const ids = result.stdout.trimEnd().split("\n");
    assertEquals(ids.length, 3);
    const made = await moto.snapshotsOf(volumes);
    assertEquals(made.length, 3);
    const runIds = new Set<string>();
    for (const [i, volumeId] of volumes.entries()) {
      const snapshot = made.find((s) => s.SnapshotId === ids[i])!;
      assert(snapshot, `line ${i + 1} of stdout is the snapshot of ${volumeId}`);
      assertEquals(snapshot.VolumeId, volumeId);
      assertEquals(snapshot.Description, ["root", "data", "logs"][i]);
      const {
        "ec2-consistent-snapshot:run-id": runId,
        "ec2-consistent-snapshot:held-until": heldUntil,
        ...tags
      } = tagsOf(snapshot);
      // The instant the run held everything until, in EC2's time: after EC2 started it.
      assert(Date.parse(heldUntil) >= snapshot.StartTime!.getTime(), heldUntil);
      assertEquals(tags, {
        team: "db",
        purpose: "backup",
        "ec2-consistent-snapshot:volume": volumeId,
        "ec2-consistent-snapshot:volumes": "3",
      });
      assertMatch(runId, /^[0-9a-f-]{36}$/, "every snapshot of a run carries the run's id");
      runIds.add(runId);
    }
    assertEquals(runIds.size, 1, "one run, one id");
  } finally {
    await moto.stop();
  }
});

Deno.test("tags are set in the CreateSnapshot call itself, after one DryRun per volume", {
  ignore: ignoreUnless(MOTO),
}, async () => {
  const moto = await startMoto();
  const proxy = startProxy(moto.url);
  try {
    const volumes = await moto.createVolumes(2);
    const result = await runProgram(["--name", "nightly", ...volumes], {
      env: baseEnv({ ...moto.env, AWS_ENDPOINT_URL_EC2: proxy.url }),
    });
    assertEquals(result.code, 0, result.stderr);
    const actions = proxy.seen.map((r) => `${r.action}${r.dryRun ? " (DryRun)" : ""}`);
    assertEquals(actions.sort(), [
      "CreateSnapshot",
      "CreateSnapshot",
      "CreateSnapshot (DryRun)",
      "CreateSnapshot (DryRun)",
    ]);
    for (const request of proxy.seen) assertMatch(request.body, /TagSpecification\.1\.Tag/);
    const made = await moto.snapshotsOf(volumes);
    for (const snapshot of made) {
      assertEquals(tagsOf(snapshot).Name, "nightly");
      assertEquals(snapshot.Description, "ec2-consistent-snapshot");
    }
  } finally {
    await proxy.stop();
    await moto.stop();
  }
});

Deno.test("--output json describes snapshots and timings; --quiet prints nothing", {
  ignore: ignoreUnless(MOTO),
}, async () => {
  const moto = await startMoto();
  try {
    const volumes = await moto.createVolumes(2);
    const env = baseEnv(moto.env);
    const json = await runProgram(["--output", "json", "--tag", "a=1", ...volumes], { env });
    assertEquals(json.code, 0, json.stderr);
    const doc = JSON.parse(json.stdout);
    assertEquals(doc.ok, true);
    assertEquals(doc.snapshots.map((s: { volumeId: string }) => s.volumeId), volumes);
    const made = await moto.snapshotsOf(volumes);
    for (const s of doc.snapshots) {
      assert(made.some((m) => m.SnapshotId === s.snapshotId && m.VolumeId === s.volumeId));
      assertEquals(s.tags.a, "1");
    }
    assert(typeof doc.timings.preflightMs === "number" && typeof doc.timings.createMs === "number");

    const quiet = await runProgram(["-q", ...volumes], { env });
    assertEquals([quiet.code, quiet.stdout, quiet.stderr], [0, "", ""]);
  } finally {
    await moto.stop();
  }
});

Deno.test("--noaction creates nothing", { ignore: ignoreUnless(MOTO) }, async () => {
  const moto = await startMoto();
  try {
    const volumes = await moto.createVolumes(2);
    const result = await runProgram(["--noaction", ...volumes], { env: baseEnv(moto.env) });
    assertEquals(result.code, 0, result.stderr);
    assertEquals((await moto.snapshotsOf(volumes)).length, 0);
  } finally {
    await moto.stop();
  }
});

Deno.test("a failing volume is named with its AWS error; the others' ids are printed", {
  ignore: ignoreUnless(MOTO),
}, async () => {
  const moto = await startMoto();
  try {
    const [good] = await moto.createVolumes(1);
    const missing = "vol-0000000000000000f";
    const result = await runProgram([good, missing], { env: baseEnv(moto.env) });
    assertEquals(result.code, ExitCode.snapshot);
    const made = await moto.snapshotsOf([good]);
    assertEquals(result.stdout, `${made[0].SnapshotId}\n`);
    assertMatch(result.stderr, /snapshot of vol-0000000000000000f failed: InvalidVolume\.NotFound/);
  } finally {
    await moto.stop();
  }
});

Deno.test("a hanging CreateSnapshot is aborted within --snapshot-timeout", {
  ignore: ignoreUnless(MOTO),
}, async () => {
  const moto = await startMoto();
  const proxy = startProxy(moto.url);
  proxy.decide = (r) => r.action === "CreateSnapshot" && !r.dryRun ? "hang" : "forward";
  try {
    const volumes = await moto.createVolumes(1);
    const started = performance.now();
    const result = await runProgram(["--output", "json", "--snapshot-timeout", "1", ...volumes], {
      env: baseEnv({ ...moto.env, AWS_ENDPOINT_URL_EC2: proxy.url }),
    });
    const seconds = (performance.now() - started) / 1000;
    assertEquals(result.code, ExitCode.timeout, result.stderr);
    assertMatch(result.stderr, /--snapshot-timeout 1s passed; aborted the snapshot calls/);
    const report = JSON.parse(result.stdout);
    assertEquals(report.snapshots[0].outcome, "aborted");
    assertEquals(report.snapshots[0].snapshotId, null);
    // Bounded by what the program measured of its own round (not by the wall clock of a busy
    // machine): the round lasted the timeout, not less, and was then cut; the whole run
    // (start-up, the lookup after the abort) only has to end, generously bounded.
    const createMs = report.timings.createMs;
    assert(createMs >= 1_000 && createMs < 1_000 + 5_000, `the round took ${createMs} ms`);
    assert(seconds < 60, `ended after ${seconds.toFixed(1)}s`);
  } finally {
    await proxy.stop();
    await moto.stop();
  }
});

Deno.test("a missing permission fails the preflight before anything is created", {
  ignore: ignoreUnless(MOTO),
}, async () => {
  const moto = await startMoto();
  // Answers every call as AWS does for a role without ec2:CreateSnapshot.
  const denied = startDenyingEndpoint();
  try {
    const volumes = await moto.createVolumes(1);
    const result = await runProgram(volumes, {
      env: baseEnv({ ...moto.env, AWS_ENDPOINT_URL_EC2: denied.url }),
    });
    assertEquals(result.code, ExitCode.preflight, result.stderr);
    assertMatch(
      result.stderr,
      /preflight CreateSnapshot \(DryRun\) for vol-\w+ failed: UnauthorizedOperation/,
    );
    assertEquals(denied.creates(), 0);
  } finally {
    await denied.stop();
    await moto.stop();
  }
});

/** An endpoint that answers every call with EC2's UnauthorizedOperation error. */
function startDenyingEndpoint() {
  let creates = 0;
  const endpoint = startStubEndpoint(async (req) => {
    const params = new URLSearchParams(await req.text());
    if (params.get("DryRun") !== "true") creates++;
    return new Response(
      `<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>You are not authorized to perform this operation.</Message></Error></Errors><RequestID>1</RequestID></Response>`,
      { status: 403, headers: { "content-type": "text/xml" } },
    );
  });
  return { ...endpoint, creates: () => creates };
}
