/** The sequence with recording fakes: the exact order of steps, and a fault at every step. */
import { snapshotHoldMs, WATCHDOG_MARGIN_MS } from "../src/plan/window.ts";
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { recorder } from "./support/recording.ts";
import { runSequence, type RunSpec } from "../src/run/sequence.ts";
import { independent } from "../src/run/freeze_mounts.ts";
import { SignalError } from "../src/run/cleanup.ts";
import {
  AlreadyFrozenError,
  BusyError,
  DatabaseError,
  ExitCode,
  FreezeError,
  HookError,
  PreflightError,
} from "../src/util/errors.ts";
import { createLogger, silentLogger } from "../src/util/log.ts";

const spec: RunSpec = {
  volumes: [
    { volumeId: "vol-1111aaaa", description: "d", tags: {} },
    { volumeId: "vol-2222bbbb", description: "d", tags: {} },
  ],
  freezeMounts: ["/a", "/b"],
  snapshotTimeoutMs: 1000,
  preFreezeCommand: "true",
  postThawCommand: "true",
  // As the plan's window says (plan/window.ts).
  watchdogDeadlineMs: snapshotHoldMs(1000) + WATCHDOG_MARGIN_MS,
};

// The watchdog is armed (with nothing to thaw) before the database lock is requested, given
// the mounts at the freeze, none after the thaws, and disarmed once the database is released.
const FULL = [
  "preflight vol-1111aaaa,vol-2222bbbb",
  "db prepare",
  "sync",
  "arm ",
  "db lock",
  "pre-freeze",
  "sync",
  "update /a,/b",
  "freeze /a",
  "freeze /b",
  "create",
  "thaw /b",
  "thaw /a",
  "update ",
  "post-thaw",
  "db release",
  "disarm",
];

/** FULL up to (not including) `step`. */
const upTo = (step: string) => FULL.slice(0, FULL.indexOf(step));

function deps(r: ReturnType<typeof recorder>, signal = new AbortController().signal) {
  return { ...r, log: silentLogger, signal, lookupRetryMs: 0, lookupWindowMs: 0 };
}

/** After an aborted or unanswered call: the run-id lookup after everything is released. */
const LOOKUP = ["lookup"];

Deno.test("the sequence runs in the order of the product spec", async () => {
  const r = recorder({ file: "bin.000001", position: 4, from: "source" });
  const result = await runSequence(spec, deps(r));
  assertEquals(r.log, FULL);
  assertEquals(result.problems, []);
  assertEquals(result.outcomes.map((o) => o.ok && o.snapshotId), ["snap-0", "snap-1"]);
  assertEquals(result.binlog?.file, "bin.000001");
  assert(result.timings.freezeWindowMs !== null && result.timings.lockWindowMs !== null);
  assert(result.timings.lockWindowMs >= result.timings.freezeWindowMs);
});

/** What must have happened after a fault at `step`: everything taken released, in order. */
const FAULTS: [string, string[], number][] = [
  [
    "preflight vol-1111aaaa,vol-2222bbbb",
    FULL.slice(0, 2).concat("db release"),
    ExitCode.preflight,
  ],
  ["db prepare", FULL.slice(0, 2).concat("db release"), ExitCode.database],
  ["sync", upTo("arm ").concat("db release"), ExitCode.freeze],
  ["arm ", upTo("db lock").concat("db release"), ExitCode.freeze],
  ["db lock", upTo("pre-freeze").concat("db release", "disarm"), ExitCode.database],
  ["pre-freeze", upTo("update /a,/b").slice(0, -1).concat("db release", "disarm"), ExitCode.hook],
  ["update /a,/b", upTo("freeze /a").concat("post-thaw", "db release", "disarm"), ExitCode.freeze],
  // Independent mounts freeze at once: both freezes were started, both thaws are attempted.
  ["freeze /a", upTo("create").concat(FULL.slice(FULL.indexOf("create") + 1)), ExitCode.freeze],
  ["freeze /b", upTo("create").concat(FULL.slice(FULL.indexOf("create") + 1)), ExitCode.freeze],
  ["thaw /b", FULL, ExitCode.freeze],
  ["thaw /a", FULL, ExitCode.freeze],
  ["update ", FULL, ExitCode.freeze],
  ["disarm", FULL, ExitCode.freeze],
  ["post-thaw", FULL, ExitCode.hook],
  ["db release", FULL, ExitCode.database],
];

for (const [step, expected, exitCode] of FAULTS) {
  Deno.test(`a fault at "${step}" releases everything taken, and nothing else`, async () => {
    const r = recorder();
    const error = step.startsWith("db")
      ? new DatabaseError(`${step} broke`)
      : step.endsWith("freeze") || step === "post-thaw"
      ? new HookError(`${step} broke`)
      : step.startsWith("preflight")
      ? new PreflightError(`${step} broke`)
      : new FreezeError(`${step} broke`);
    r.faults.set(step, error);
    const result = await runSequence(spec, deps(r));
    assertEquals(r.log, expected);
    assertEquals(result.problems[0]?.exitCode, exitCode);
    const created = r.log.includes("create");
    const faultAfterCreate = FULL.indexOf(step) > FULL.indexOf("create");
    assertEquals(created, faultAfterCreate, "snapshots are made only when everything was frozen");
  });
}

Deno.test("one failed snapshot: the others are reported, the exit is non-zero", async () => {
  const r = recorder();
  const fault = new Error("rate exceeded");
  fault.name = "SnapshotCreationPerVolumeRateExceeded";
  r.faults.set("create vol-2222bbbb", fault);
  const result = await runSequence(spec, deps(r));
  assertEquals(r.log, FULL);
  assertEquals(result.outcomes[0], { volumeId: "vol-1111aaaa", ok: true, snapshotId: "snap-0" });
  assertEquals(result.problems[0].exitCode, ExitCode.snapshot);
  assert(result.problems[0].message.includes("SnapshotCreationPerVolumeRateExceeded"));
});

Deno.test("--snapshot-timeout aborts a hanging create, then releases", async () => {
  const r = recorder();
  r.holds.set("create", new Promise(() => {}));
  const result = await runSequence({ ...spec, snapshotTimeoutMs: 100 }, deps(r));
  assertEquals(r.log, [...FULL, ...LOOKUP]);
  assertEquals(result.problems[0].exitCode, ExitCode.timeout);
  assert(result.outcomes.every((o) => !o.ok));
});

Deno.test("a stop signal while frozen aborts the create and releases everything", async () => {
  const r = recorder();
  const controller = new AbortController();
  r.holds.set("create", new Promise(() => {}));
  const running = runSequence({ ...spec, snapshotTimeoutMs: 60_000 }, deps(r, controller.signal));
  await new Promise((resolve) => setTimeout(resolve, 50));
  controller.abort(new SignalError("SIGTERM"));
  const result = await running;
  assertEquals(r.log, [...FULL, ...LOOKUP]);
  assertEquals(result.problems[0].exitCode, 128 + 15);
});

Deno.test("a stop signal during the freeze of the second mount still thaws both", async () => {
  const r = recorder();
  const controller = new AbortController();
  let release!: () => void;
  r.holds.set("freeze /b", new Promise<void>((resolve) => release = resolve));
  const running = runSequence(spec, deps(r, controller.signal));
  await new Promise((resolve) => setTimeout(resolve, 20));
  controller.abort(new SignalError("SIGINT"));
  release();
  const result = await running;
  assertEquals(r.log, upTo("create").concat(FULL.slice(FULL.indexOf("create") + 1)));
  assertEquals(result.problems[0].exitCode, 128 + 2);
});

Deno.test("nested mounts freeze one after another, in the order given", async () => {
  const r = recorder();
  let release!: () => void;
  r.holds.set("freeze /a", new Promise<void>((resolve) => release = resolve));
  const running = runSequence({ ...spec, freezeMounts: ["/a", "/a/b"] }, deps(r));
  await new Promise((resolve) => setTimeout(resolve, 20));
  assertEquals(r.log.at(-1), "freeze /a", "/a/b waits until /a is frozen");
  release();
  await running;
  assertEquals(r.log.slice(8, 13), ["freeze /a", "freeze /a/b", "create", "thaw /a/b", "thaw /a"]);
});

Deno.test("independent() tells nested mount points apart from siblings", () => {
  assertEquals(independent(["/data", "/logs", "/data2"]), true);
  assertEquals(independent(["/data", "/data/sub"]), false);
  assertEquals(independent(["/srv/a", "/srv"]), false);
});

Deno.test("without mounts to freeze, sync still runs before the snapshots, as in the old tool", async () => {
  const r = recorder();
  const result = await runSequence(
    { ...spec, freezeMounts: [], preFreezeCommand: undefined, postThawCommand: undefined },
    { ...deps(r), database: undefined },
  );
  assertEquals(r.log, ["preflight vol-1111aaaa,vol-2222bbbb", "sync", "create"]);
  assertEquals(result.timings.freezeWindowMs, null);
  assertEquals(result.timings.lockWindowMs, null);
});

/** A create fault of a kind: "unknown" is a call without an answer (reset, closed, ...). */
function createFault(code: string, kind: "error" | "unknown"): Error {
  return Object.assign(new Error(`${code} broke`), { name: code, kind });
}

/** How the create round ends -> the steps after it, the exit code, and what is reported. */
const CREATE_FAULTS: {
  name: string;
  fault: Error;
  found?: { snapshotId: string; volumeId: string }[];
  lookupFault?: Error;
  log: string[];
  exitCode: number;
}[] = [
  {
    name: "an AWS error (EC2 answered): no lookup",
    fault: createFault("SnapshotCreationPerVolumeRateExceeded", "error"),
    log: FULL,
    exitCode: ExitCode.snapshot,
  },
  {
    name: "no answer (reset), nothing made",
    fault: createFault("ECONNRESET", "unknown"),
    log: [...FULL, ...LOOKUP],
    exitCode: ExitCode.snapshot,
  },
  {
    name: "no answer (closed after EC2 got it), a snapshot made anyway",
    fault: createFault("ECONNRESET", "unknown"),
    found: [{ snapshotId: "snap-late", volumeId: "vol-2222bbbb" }],
    log: [...FULL, "lookup"],
    exitCode: ExitCode.consistencyUnknown,
  },
  {
    name: "no answer, and the lookup is not permitted",
    fault: createFault("ECONNRESET", "unknown"),
    lookupFault: Object.assign(new Error("not allowed"), { name: "UnauthorizedOperation" }),
    log: [...FULL, "lookup"],
    exitCode: ExitCode.snapshot,
  },
];

for (const c of CREATE_FAULTS) {
  Deno.test(`create round: ${c.name} -> exit ${c.exitCode}, released first`, async () => {
    const r = recorder();
    r.faults.set("create vol-2222bbbb", c.fault);
    r.found.push(...c.found ?? []);
    if (c.lookupFault) r.faults.set("lookup", c.lookupFault);
    const result = await runSequence(spec, deps(r));
    assertEquals(r.log, c.log);
    assertEquals(result.problems[0].exitCode, c.exitCode);
    assertEquals(result.outcomes[0], { volumeId: "vol-1111aaaa", ok: true, snapshotId: "snap-0" });
    const failed = result.outcomes[1];
    assert(!failed.ok && failed.kind === (c.fault as Error & { kind: string }).kind);
    const all = result.problems.map((p) => p.message).join("\n");
    assert(all.includes(`snapshot of vol-2222bbbb`), all);
    if (c.found) {
      assertEquals(result.lookup?.consistencyUnknown, c.found);
      assert(all.includes("created, consistency unknown: snap-late of vol-2222bbbb"), all);
      assert(all.includes("aws ec2 delete-snapshot --snapshot-id snap-late"), all);
    }
    if (c.lookupFault) assertMatch(result.lookup?.error ?? "", /ec2:DescribeSnapshots/);
  });
}

Deno.test("a logger that throws (stderr closed) never stops the unwinding", async () => {
  const r = recorder();
  r.faults.set("thaw /b", new FreezeError("thaw /b broke"));
  const throwing = createLogger({
    debug: true,
    write: () => {
      throw new Deno.errors.BrokenPipe("Broken pipe (os error 32)");
    },
  });
  const result = await runSequence(spec, { ...deps(r), log: throwing });
  assertEquals(r.log, FULL, "every release attempted, in order");
  assertEquals(result.problems[0].exitCode, ExitCode.freeze);
});

Deno.test("the freeze lock is taken first and released last; a busy one stops the run before anything", async () => {
  const r = recorder();
  const exclusion = () => {
    r.log.push("freeze lock");
    return Promise.resolve({
      release: () => Promise.resolve(void r.log.push("freeze lock release")),
      guard: (pid: number) => Promise.resolve(void r.log.push(`guard ${pid}`)),
    });
  };
  await runSequence(spec, { ...deps(r), exclusion });
  assertEquals(r.log, ["freeze lock", ...FULL, "freeze lock release"]);

  const busy = recorder();
  const result = await runSequence(spec, {
    ...deps(busy),
    exclusion: () => Promise.reject(new BusyError("/a is frozen by another run (pid 1)")),
  });
  assertEquals(busy.log, []);
  assertEquals(result.problems.map((p) => p.exitCode), [ExitCode.busy]);
});

Deno.test("a freeze that finds the mount frozen already (someone else's) never thaws it", async () => {
  const r = recorder();
  r.faults.set("freeze /b", new AlreadyFrozenError("cannot freeze /b: Device or resource busy"));
  const result = await runSequence(spec, deps(r));
  assert(!r.log.includes("thaw /b"), r.log.join(", "));
  assert(r.log.includes("thaw /a"));
  assert(!r.log.includes("create"));
  assertEquals(result.problems[0].exitCode, ExitCode.freeze);
});

Deno.test("a stop signal during the thaw still ends the run as stopped, never 0", async () => {
  const r = recorder();
  const controller = new AbortController();
  let release!: () => void;
  r.holds.set("thaw /b", new Promise<void>((resolve) => release = resolve));
  const running = runSequence(spec, deps(r, controller.signal));
  while (r.log.at(-1) !== "thaw /b") await new Promise((resolve) => setTimeout(resolve, 5));
  controller.abort(new SignalError("SIGTERM"));
  release();
  const result = await running;
  assertEquals(r.log, FULL);
  assertEquals(result.outcomes.filter((o) => o.ok).length, 2, "the snapshots were made");
  assertEquals(result.problems[0].exitCode, 128 + 15);
});

Deno.test("--mysql-stop: the watchdog is armed before the stop with the start command, given the mounts at the freeze, disarmed after the database runs again", async () => {
  const r = recorder();
  const calls: string[] = [];
  const watchdog = {
    arm(mounts: readonly string[], _deadline: number, extras?: { startCommand?: string }) {
      r.log.push(`arm ${mounts.join(",")} start=${extras?.startCommand}`);
      return Promise.resolve({
        pid: 4242,
        disarm: () => Promise.resolve(void r.log.push("disarm")),
        update: (change: { mountPoints?: readonly string[]; holdMs?: number }) =>
          Promise.resolve(
            void (change.holdMs !== undefined
              ? r.log.push(`update hold ${change.holdMs}`)
              : change.mountPoints && r.log.push(`update ${change.mountPoints.join(",")}`)),
          ),
      });
    },
  };
  const exclusion = () =>
    Promise.resolve({
      release: () => Promise.resolve(void calls.push("release")),
      guard: (pid: number) => Promise.resolve(void calls.push(`guard ${pid}`)),
    });
  const result = await runSequence(
    { ...spec, databaseStartCommand: "systemctl start mariadb" },
    { ...deps(r), watchdog, exclusion },
  );
  assertEquals(result.problems, []);
  assertEquals(r.log, [
    "preflight vol-1111aaaa,vol-2222bbbb",
    "db prepare",
    "sync",
    "arm  start=systemctl start mariadb",
    "db lock",
    "pre-freeze",
    "sync",
    "update /a,/b",
    "freeze /a",
    "freeze /b",
    // The minimum hold, told before the create calls are sent (the held-until tag's promise).
    "update hold 3000",
    "create",
    "thaw /b",
    "thaw /a",
    "update ",
    "post-thaw",
    "db release",
    "disarm",
  ]);
  assertEquals(calls, ["guard 4242", "release"]);
});

Deno.test("a mount found frozen already is taken from the watchdog too: it never thaws someone else's freeze", async () => {
  const r = recorder();
  r.faults.set("freeze /b", new AlreadyFrozenError("cannot freeze /b: frozen already"));
  const updates: string[] = [];
  const watchdog = {
    arm(mounts: readonly string[]) {
      r.log.push(`arm ${mounts.join(",")}`);
      return Promise.resolve({
        disarm: () => Promise.resolve(void r.log.push("disarm")),
        update: (change: { mountPoints?: readonly string[] }) =>
          Promise.resolve(
            void (change.mountPoints && updates.push(change.mountPoints.join(","))),
          ),
      });
    },
  };
  const result = await runSequence(spec, { ...deps(r), watchdog });
  assertEquals(updates, ["/a,/b", "/a", ""], "at the freeze, then only /a, then nothing");
  assert(!r.log.includes("thaw /b"));
  assertEquals(result.problems[0].exitCode, ExitCode.freeze);
});

Deno.test("a second stop signal ends the lookup after the release at once, with what it found", async () => {
  const r = recorder();
  r.faults.set("create vol-2222bbbb", createFault("ECONNRESET", "unknown"));
  const lookupSignal = AbortSignal.abort(); // the user insisted
  const result = await runSequence(spec, { ...deps(r), lookupWindowMs: 60_000, lookupSignal });
  assertEquals(r.log, [...FULL, "lookup"], "looked once, then ended");
  assertEquals(result.lookup, { consistencyUnknown: [], error: null });
});
