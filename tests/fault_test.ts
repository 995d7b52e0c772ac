/**
 * Faults injected between the program and EC2 (moto behind a proxy) and around it (closed
 * pipes), through the real program on a real XFS mount that really freezes: every CreateSnapshot
 * ends in a snapshot id, an AWS error or "unknown", never success by default; nothing is sent
 * after the thaw; a snapshot EC2 made anyway is reported (exit 12) and kept; closed output never
 * stops the release. The rest of the table for this step: held_until_test.ts (a stop signal or
 * SIGKILL with the create call on its way) and retention_faults_test.ts (EC2 listing failed
 * snapshots, tags that disagree with VolumeId, a clock off by 400 days).
 */
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { runProgram, spawnProgram } from "./support/program.ts";
import type { Decision } from "./support/proxy.ts";
import { ignoreUnless } from "./support/real.ts";
import { holder, isCreate, STACK, type Stack, withStack } from "./support/stack.ts";
import { isFrozen, startWriteProbe } from "./support/xfs.ts";
import { ExitCode } from "../src/util/errors.ts";

const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/** The one JSON snapshot entry of a run of one volume. */
function snapshotEntry(stdout: string) {
  const report = JSON.parse(stdout);
  assertEquals(report.snapshots.length, 1);
  return { report, entry: report.snapshots[0] };
}

/** Runs the program on the stack's mount and volume with `decision` for the create call. */
async function runWithFault(s: Stack, decision: Decision, extra: string[] = []) {
  s.proxy.decide = (r) => isCreate(r) ? decision : "forward";
  const out = await runProgram(
    ["--freeze-filesystem", s.mount.mountPoint, "--output", "json", ...extra, s.volume],
    { env: s.env },
  );
  assertEquals(await isFrozen(s.mount.mountPoint), false, "thawed");
  assertEquals(s.proxy.seen.filter(isCreate).length, 1, "one CreateSnapshot, never resent");
  return out;
}

Deno.test("a connection closed during CreateSnapshot: exit 4, outcome unknown, thawed", {
  ignore: ignoreUnless(...STACK),
}, async () => {
  await withStack(async (s) => {
    const out = await runWithFault(s, "close");
    assertEquals(out.code, ExitCode.snapshot, out.stderr);
    const { report, entry } = snapshotEntry(out.stdout);
    assertEquals(report.ok, false);
    assertEquals(entry.snapshotId, null);
    assertEquals(entry.outcome, "unknown");
    assertEquals(entry.error.code, "ECONNRESET");
    assertEquals(report.consistencyUnknown, []);
    assertMatch(out.stderr, new RegExp(`snapshot of ${s.volume} got no answer`));
    assertEquals((await s.moto.snapshotsOf([s.volume])).length, 0);
  });
});

for (const [error, status] of [["SnapshotCreationPerVolumeRateExceeded", 400]] as const) {
  Deno.test(`an AWS error (${status} ${error}) is reported with its code: exit 4`, {
    ignore: ignoreUnless(...STACK),
  }, async () => {
    await withStack(async (s) => {
      const out = await runWithFault(s, { error, status });
      assertEquals(out.code, ExitCode.snapshot, out.stderr);
      const { entry } = snapshotEntry(out.stdout);
      assertEquals(entry.outcome, "error");
      assertEquals(entry.error.code, error);
      assertEquals(s.proxy.seen.filter((r) => r.action === "DescribeSnapshots").length, 0);
    });
  });
}

Deno.test("throttling (503 RequestLimitExceeded) is retried while frozen: made, exit 0", {
  ignore: ignoreUnless(...STACK),
}, async () => {
  await withStack(async (s) => {
    let first = true;
    s.proxy.decide = (r) => {
      if (!isCreate(r) || !first) return "forward";
      first = false;
      return { error: "RequestLimitExceeded", status: 503 };
    };
    const out = await runProgram(
      ["--freeze-filesystem", s.mount.mountPoint, "--output", "json", s.volume],
      { env: s.env },
    );
    assertEquals(out.code, 0, out.stderr);
    assertEquals(snapshotEntry(out.stdout).entry.outcome, "created");
    assertEquals(s.proxy.seen.filter(isCreate).length, 2, "EC2 said it made nothing: retried");
    assertEquals(await isFrozen(s.mount.mountPoint), false);
  });
});

for (const decision of ["forward-then-close", "forward-then-hang"] as const) {
  Deno.test(`EC2 made it but the answer was lost (${decision}): exit 12, reported, kept`, {
    ignore: ignoreUnless(...STACK),
  }, async () => {
    await withStack(async (s) => {
      const out = await runWithFault(s, decision, ["--snapshot-timeout", "2"]);
      assertEquals(out.code, ExitCode.consistencyUnknown, out.stderr);
      const made = await s.moto.snapshotsOf([s.volume]);
      assertEquals(made.length, 1, "EC2 holds it, and the tool did not delete it");
      const id = made[0].SnapshotId!;
      const { report, entry } = snapshotEntry(out.stdout);
      assertEquals(entry.snapshotId, null);
      assertEquals(entry.outcome, decision === "forward-then-close" ? "unknown" : "aborted");
      assertEquals(entry.consistencyUnknown, [id]);
      assertEquals(report.consistencyUnknown, [{ snapshotId: id, volumeId: s.volume }]);
      assertMatch(out.stderr, new RegExp(`created, consistency unknown: ${id} of ${s.volume}`));
      assertMatch(out.stderr, new RegExp(`aws ec2 delete-snapshot --snapshot-id ${id}`));
      const lookup = s.proxy.seen.find((r) => r.action === "DescribeSnapshots")!;
      assertMatch(lookup.body, new RegExp(`ec2-consistent-snapshot%3Arun-id`));
      assertEquals(made[0].Tags?.find((t) => t.Key?.endsWith(":run-id"))?.Value, report.runId);
    });
  });
}

Deno.test("a connection the server ended while idle is not reused: made, exit 0", {
  ignore: ignoreUnless(...STACK),
}, async () => {
  await withStack(async (s) => {
    // The DryRun's connection is closed after its answer (a keep-alive timeout): the create
    // call must go on a new connection, not fail on the dead one.
    s.proxy.decide = (r) => r.dryRun ? "forward-and-close" : "forward";
    const out = await runProgram(["--freeze-filesystem", s.mount.mountPoint, s.volume], {
      env: s.env,
    });
    assertEquals(out.code, 0, out.stderr);
    assertEquals(s.proxy.seen.filter(isCreate).length, 1);
  });
});

Deno.test("a connection reset before the create call is read: exit 4, nothing made", {
  ignore: ignoreUnless(...STACK),
}, async () => {
  await withStack(async (s) => {
    s.proxy.decide = (r) => r.dryRun ? "forward-and-close" : "forward";
    s.proxy.closeOnAccept = (n) => n === 2;
    const out = await runProgram(
      ["--freeze-filesystem", s.mount.mountPoint, "--output", "json", s.volume],
      { env: s.env },
    );
    assertEquals(out.code, ExitCode.snapshot, out.stderr);
    const { entry } = snapshotEntry(out.stdout);
    assertEquals(entry.outcome, "unknown");
    assertEquals(s.proxy.seen.filter(isCreate).length, 0, "closed before it was read");
    assertEquals((await s.moto.snapshotsOf([s.volume])).length, 0);
    assertEquals(await isFrozen(s.mount.mountPoint), false);
  });
});

Deno.test("without ec2:DescribeSnapshots: a warning names the tag to look for, exit 4", {
  ignore: ignoreUnless(...STACK),
}, async () => {
  await withStack(async (s) => {
    s.proxy.decide = (r) =>
      isCreate(r)
        ? "forward-then-close"
        : r.action === "DescribeSnapshots"
        ? { error: "UnauthorizedOperation", status: 403, message: "not authorized" }
        : "forward";
    const out = await runProgram(
      ["--freeze-filesystem", s.mount.mountPoint, "--output", "json", s.volume],
      { env: s.env },
    );
    assertEquals(out.code, ExitCode.snapshot, out.stderr);
    const { report, entry } = snapshotEntry(out.stdout);
    assertEquals(entry.outcome, "unknown");
    assertMatch(report.lookupError, /ec2:DescribeSnapshots/);
    assertMatch(
      out.stderr,
      new RegExp(
        `warning: could not look up .* ${s.volume} .*ec2:DescribeSnapshots.*` +
          `tagged ec2-consistent-snapshot:run-id=${report.runId}`,
      ),
    );
    assertEquals((await s.moto.snapshotsOf([s.volume])).length, 1, "made, and kept");
    assertEquals(await isFrozen(s.mount.mountPoint), false);
  });
});

Deno.test("timeout while frozen: no CreateSnapshot after the thaw; the late one is found", {
  ignore: ignoreUnless(...STACK),
}, async () => {
  await withStack(async (s) => {
    let thawedAt = Infinity;
    // The request reaches EC2 only after the abort (and the thaw): the snapshot EC2 then makes
    // is of a thawed file system. Nothing may be sent again; the lookup must report it.
    s.proxy.decide = (r) => {
      if (!isCreate(r)) return "forward";
      const probe = startWriteProbe(s.mount.mountPoint);
      probe.done.then(() => thawedAt = performance.now());
      return { delayMs: 1_800 };
    };
    const out = await runProgram([
      "--freeze-filesystem",
      s.mount.mountPoint,
      "--snapshot-timeout",
      "1",
      "--post-thaw-command",
      "sleep 1.5",
      "--output",
      "json",
      s.volume,
    ], { env: s.env });
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert(thawedAt < Infinity, "the write probe went through: thawed");
    const creates = s.proxy.seen.filter(isCreate);
    assertEquals(creates.length, 1, "one CreateSnapshot per volume");
    assert(creates.every((r) => r.at < thawedAt), "none after the thaw");
    assertEquals(out.code, ExitCode.consistencyUnknown, out.stderr);
    const made = await s.moto.snapshotsOf([s.volume]);
    assertEquals(made.length, 1);
    assertEquals(snapshotEntry(out.stdout).entry.consistencyUnknown, [made[0].SnapshotId]);
  });
});

Deno.test("SIGTERM while frozen: no CreateSnapshot after the thaw, exit 143", {
  ignore: ignoreUnless(...STACK),
}, async () => {
  await withStack(async (s) => {
    const hold = holder(isCreate);
    s.proxy.decide = hold.decide;
    const child = spawnProgram(
      ["--freeze-filesystem", s.mount.mountPoint, "--post-thaw-command", "sleep 1", s.volume],
      { env: s.env },
    );
    let thawedAt = Infinity;
    try {
      await hold.seen;
      startWriteProbe(s.mount.mountPoint).done.then(() => thawedAt = performance.now());
      child.kill("SIGTERM");
      const out = await child.output();
      assertEquals(out.code, 128 + 15, decode(out.stderr));
    } finally {
      hold.drop();
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert(thawedAt < Infinity, "thawed");
    assertEquals(s.proxy.seen.filter(isCreate).length, 1);
    assert(s.proxy.seen.filter(isCreate).every((r) => r.at < thawedAt));
    assertEquals((await s.moto.snapshotsOf([s.volume])).length, 0);
  });
});

Deno.test("stderr closed with --debug: the release goes on, thawed, ids on stdout, exit 13", {
  ignore: ignoreUnless(...STACK),
}, async () => {
  await withStack(async (s) => {
    const hold = holder(isCreate);
    s.proxy.decide = hold.decide;
    const child = spawnProgram(
      ["--freeze-filesystem", s.mount.mountPoint, "--snapshot-timeout", "60", "-d", s.volume],
      { env: s.env },
    );
    try {
      await hold.seen;
      await child.stderr.cancel();
      assertEquals(await isFrozen(s.mount.mountPoint), true);
    } finally {
      hold.release();
    }
    const started = performance.now();
    const out = await child.output();
    // The watchdog's deadline is 65 s away: the thaw was the program's own.
    assert(performance.now() - started < 45_000);
    assertEquals(await isFrozen(s.mount.mountPoint), false);
    assertEquals(out.code, ExitCode.output);
    const made = await s.moto.snapshotsOf([s.volume]);
    assertEquals(decode(out.stdout), `${made[0].SnapshotId}\n`);
  });
});

Deno.test("stdout closed: said on stderr with the ids, exit 13, thawed", {
  ignore: ignoreUnless(...STACK),
}, async () => {
  await withStack(async (s) => {
    const hold = holder(isCreate);
    s.proxy.decide = hold.decide;
    const child = spawnProgram(["--freeze-filesystem", s.mount.mountPoint, s.volume], {
      env: s.env,
    });
    try {
      await hold.seen;
      await child.stdout.cancel();
    } finally {
      hold.release();
    }
    const out = await child.output();
    const stderr = decode(out.stderr);
    assertEquals(out.code, ExitCode.output, stderr);
    const made = await s.moto.snapshotsOf([s.volume]);
    assertMatch(stderr, /cannot write to stdout: .*snapshots made: snap-/);
    assert(stderr.includes(`${made[0].SnapshotId} (${s.volume})`), stderr);
    assert(!/internal error|BrokenPipe.*\n\s+at /.test(stderr), stderr);
    assertEquals(await isFrozen(s.mount.mountPoint), false);
  });
});
