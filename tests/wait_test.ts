/**
 * --wait: the SDK waiter against moto (which completes snapshots at once), and the `error`
 * state, the time limit and the progress display with recording fakes.
 */
import { CreateSnapshotCommand, type EC2Client } from "@aws-sdk/client-ec2";
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { MOTO, startMoto } from "./support/moto.ts";
import { ignoreUnless } from "./support/real.ts";
import { lineProgress, terminalProgress } from "../src/cli/progress.ts";
import type { ProgressSink } from "../src/types/progress.ts";
import { waitForSnapshots } from "../src/aws/wait.ts";

Deno.test("waiting for snapshots that moto completes", { ignore: ignoreUnless(MOTO) }, async () => {
  const moto = await startMoto();
  try {
    const client = moto.client();
    const [volume] = await moto.createVolumes(1);
    const { SnapshotId } = await client.send(new CreateSnapshotCommand({ VolumeId: volume }));
    const outcomes = await waitForSnapshots([{ snapshotId: SnapshotId!, region: "us-east-1" }], {
      clientFor: () => client,
      timeoutSeconds: 60,
    });
    assertEquals(outcomes.map((o) => [o.snapshotId, o.state]), [[SnapshotId, "completed"]]);
  } finally {
    await moto.stop();
  }
});

/** A fake EC2 that answers DescribeSnapshots with the states given, in turn (the last repeats). */
function fakeEc2(states: string[], calls: string[] = []): EC2Client {
  let call = 0;
  return {
    send(command: { constructor: { name: string } }) {
      calls.push(command.constructor.name);
      const state = states[Math.min(call++, states.length - 1)];
      return Promise.resolve({
        Snapshots: [{
          SnapshotId: "snap-0123",
          State: state,
          Progress: state === "pending" ? "40%" : "100%",
          StateMessage: state === "error" ? "internal error copying data" : undefined,
        }],
      });
    },
  } as unknown as EC2Client;
}

function recordingSink(): ProgressSink & { events: string[] } {
  const events: string[] = [];
  return {
    events,
    update: (id, percent) => events.push(`${id} ${percent}%`),
    done: (id, state, detail) => events.push(`${id} ${state}${detail ? ` ${detail}` : ""}`),
    close: () => events.push("close"),
  };
}

// moto has no way to make a snapshot end in `error` (its snapshots are `completed` when made,
// and the moto API offers no state change for EBS), so this path uses a fake.
Deno.test("a snapshot that ends in error is reported with EC2's message (fake)", async () => {
  const sink = recordingSink();
  const [outcome] = await waitForSnapshots([{ snapshotId: "snap-0123", region: "us-east-1" }], {
    clientFor: () => fakeEc2(["pending", "error"]),
    timeoutSeconds: 10,
    minDelaySeconds: 0.05,
    progress: sink,
    displayEverySeconds: 0,
  });
  assertEquals(outcome.state, "error");
  assertEquals(outcome.message, "internal error copying data");
  assertEquals(sink.events, ["snap-0123 error internal error copying data", "close"]);
});

Deno.test("the time limit ends the wait with state timeout (fake)", async () => {
  const calls: string[] = [];
  const sink = recordingSink();
  const started = performance.now();
  const [outcome] = await waitForSnapshots([{ snapshotId: "snap-0123", region: "us-east-1" }], {
    clientFor: () => fakeEc2(["pending"], calls),
    timeoutSeconds: 1,
    minDelaySeconds: 0.1,
    progress: sink,
    displayEverySeconds: 0.2,
  });
  assertEquals(outcome.state, "timeout");
  assertMatch(outcome.message!, /--wait 1s/);
  assert(performance.now() - started < 20_000, "the fake stays pending forever");
  assert(sink.events.includes("snap-0123 40%"), "progress shown from the display poll");
  assertEquals(sink.events.at(-1), "close");
});

Deno.test("a stop signal ends the wait as stopped (fake)", async () => {
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 200);
  const [outcome] = await waitForSnapshots([{ snapshotId: "snap-0123", region: "us-east-1" }], {
    clientFor: () => fakeEc2(["pending"]),
    timeoutSeconds: 30,
    minDelaySeconds: 0.1,
    signal: controller.signal,
  });
  assertEquals(outcome.state, "stopped");
});

Deno.test("progress: plain lines without a terminal, bars redrawn in place on one", () => {
  const items = [
    { snapshotId: "snap-a", label: "vol-a in us-east-1" },
    { snapshotId: "snap-b", label: "vol-b in us-east-1" },
  ];
  let text = "";
  const lines = lineProgress(items, (t) => text += t);
  lines.update("snap-a", 10);
  lines.update("snap-a", 10);
  lines.done("snap-a", "completed");
  assertEquals(
    text,
    "ec2-consistent-snapshot: waiting: snap-a (vol-a in us-east-1) 10%\n" +
      "ec2-consistent-snapshot: waiting: snap-a (vol-a in us-east-1) completed\n",
  );

  let screen = "";
  const bars = terminalProgress(items, (t) => screen += t);
  bars.update("snap-a", 50);
  bars.done("snap-b", "completed");
  assert(!screen.startsWith("\x1b[2A"), "the first drawing does not move up");
  assert(screen.includes("\x1b[2A"), "later drawings overwrite the bars");
  assertMatch(screen, /snap-a \[#{15}-{15}\] {2}50% vol-a/);
  assertMatch(screen, /snap-b \[#{30}\] 100% vol-b in us-east-1 completed/);
});
