/**
 * The holder's sequence with recording fakes: the exact order of steps, a fault at every step
 * (everything taken released, the caller told, the release recorded), the deadline, a caller
 * that went away, a stop signal while held; and the hold record's exclusion and stale cleanup.
 */
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { recorder } from "./support/recording.ts";
import { hold, type HolderDeps } from "../src/hold/holder.ts";
import type { HoldRequest } from "../src/hold/protocol.ts";
import { claimHold, readHold, readRelease, statePaths } from "../src/hold/state.ts";
import { SignalError } from "../src/run/cleanup.ts";
import {
  BusyError,
  DatabaseError,
  ExitCode,
  FreezeError,
  HoldInPlaceError,
  HookError,
} from "../src/util/errors.ts";
import { silentLogger } from "../src/util/log.ts";
import { defaultOptions } from "../src/types/options.ts";
import { planMysql } from "../src/plan/mysql.ts";
import { planWindow } from "../src/plan/window.ts";

const mount = (mountPoint: string, minor: number) => ({
  mountPoint,
  majorMinor: `7:${minor}`,
  fsType: "xfs",
  source: `/dev/loop${minor}`,
});

function request(dir: string, holdMs = 30): HoldRequest {
  return {
    plan: {
      holdMs,
      window: planWindow(
        { ...defaultOptions(), preFreezeCommand: "true", postThawCommand: "true", hookTimeout: 30 },
        {
          freezeMounts: [mount("/a", 1), mount("/b", 2)],
          database: planMysql(defaultOptions(), { settings: { home: "/nonexistent" } }),
          heldMs: holdMs,
        },
      ),
      debug: false,
      quiet: false,
      runDir: dir,
      searchPath: "",
    },
    stateDir: dir,
  };
}

// The watchdog guards the database lock from its request: armed with nothing to thaw before
// it, given the mounts at the freeze, none after the thaws, disarmed after the database.
const FULL = [
  "locks",
  "db prepare",
  "sync",
  "arm ",
  "db lock",
  "pre-freeze",
  "sync",
  "update /a,/b",
  "freeze /a",
  "freeze /b",
  "thaw /b",
  "thaw /a",
  "update ",
  "post-thaw",
  "db release",
  "disarm",
  "unlock",
];

/** FULL up to (not including) `step`. */
const upTo = (step: string) => FULL.slice(0, FULL.indexOf(step));

interface Fixture {
  r: ReturnType<typeof recorder>;
  told: string[];
  deps: HolderDeps;
}

function fixture(
  options: { confirmed?: boolean; signal?: AbortSignal; lockFault?: Error } = {},
): Fixture {
  const r = recorder({ file: "bin.000002", position: 99, from: "source" });
  const told: string[] = [];
  const deps: HolderDeps = {
    ...r,
    acquireFreezeLocks: (targets) => {
      r.log.push("locks");
      assertEquals(targets, [{ mountPoint: "/a", device: "7:1" }, {
        mountPoint: "/b",
        device: "7:2",
      }]);
      if (options.lockFault) return Promise.reject(options.lockFault);
      return Promise.resolve({
        release: () => Promise.resolve(void r.log.push("unlock")),
        guard: () => Promise.resolve(),
      });
    },
    log: silentLogger,
    tell: (line) => (told.push(line), true),
    confirmation: Promise.resolve(options.confirmed ?? true),
    signal: options.signal ?? new AbortController().signal,
  };
  return { r, told, deps };
}

async function inStateDir(fn: (dir: string) => Promise<void> | void): Promise<void> {
  const parent = Deno.makeTempDirSync({ prefix: "ecs-hold-seq-" });
  try {
    await fn(`${parent}/run`);
  } finally {
    Deno.removeSync(parent, { recursive: true });
  }
}

Deno.test("the holder runs the first half, holds until the deadline, then releases in order", async () => {
  await inStateDir(async (dir) => {
    Deno.mkdirSync(dir, { mode: 0o700 });
    const { r, told, deps } = fixture();
    const code = await hold(request(dir), deps);
    assertEquals(code, ExitCode.ok);
    assertEquals(r.log, FULL);
    assertEquals(told.length, 1);
    const held = JSON.parse(told[0].replace(/^held /, ""));
    assertEquals(held.binlog.file, "bin.000002");
    assertEquals(held.deadlineAt - held.heldAt, 30);
    const record = readRelease(statePaths(dir))!;
    assertEquals(record.by, "deadline");
    assertEquals(record.problems, []);
    assert(record.timings.freezeWindowMs! >= 25 && record.timings.lockWindowMs! >= 25);
    assertEquals(readHold(statePaths(dir)).kind, "none", "the hold record is gone");
  });
});

/** What must have happened after a fault at `step`, and the exit code. */
const FAULTS: [string, string[], number][] = [
  ["db prepare", FULL.slice(0, 2).concat("db release", "unlock"), ExitCode.database],
  ["sync", upTo("arm ").concat("db release", "unlock"), ExitCode.freeze],
  ["arm ", upTo("db lock").concat("db release", "unlock"), ExitCode.freeze],
  ["db lock", upTo("pre-freeze").concat("db release", "disarm", "unlock"), ExitCode.database],
  [
    "pre-freeze",
    upTo("pre-freeze").concat("pre-freeze", "db release", "disarm", "unlock"),
    ExitCode.hook,
  ],
  [
    "update /a,/b",
    upTo("freeze /a").concat("post-thaw", "db release", "disarm", "unlock"),
    ExitCode.freeze,
  ],
  ["freeze /a", FULL, ExitCode.freeze],
  ["freeze /b", FULL, ExitCode.freeze],
  ["thaw /b", FULL, ExitCode.freeze],
  ["thaw /a", FULL, ExitCode.freeze],
  ["update ", FULL, ExitCode.freeze],
  ["disarm", FULL, ExitCode.freeze],
  ["post-thaw", FULL, ExitCode.hook],
  ["db release", FULL, ExitCode.database],
];

for (const [step, expected, exitCode] of FAULTS) {
  Deno.test(`hold: a fault at "${step}" releases everything taken, and tells or records it`, async () => {
    await inStateDir(async (dir) => {
      const { r, told, deps } = fixture();
      r.faults.set(
        step,
        step.startsWith("db")
          ? new DatabaseError(`${step} broke`)
          : step.endsWith("freeze") && !step.startsWith("freeze") || step === "post-thaw"
          ? new HookError(`${step} broke`)
          : new FreezeError(`${step} broke`),
      );
      const code = await hold(request(dir), deps);
      assertEquals(r.log, expected);
      assertEquals(code, exitCode);
      const heldFirst = FULL.indexOf(step) >= FULL.indexOf("thaw /b");
      if (heldFirst) {
        assertMatch(told[0], /^held /);
        const record = readRelease(statePaths(dir))!;
        assertEquals(record.problems[0].exitCode, exitCode);
      } else {
        assertEquals(told, [`failed ${exitCode} ${step} broke`]);
        assertEquals(readRelease(statePaths(dir)), undefined, "nothing was held");
      }
      assertEquals(readHold(statePaths(dir)).kind, "none");
    });
  });
}

Deno.test("hold: busy freeze locks refuse the hold before anything is locked", async () => {
  await inStateDir(async (dir) => {
    const { r, told, deps } = fixture({ lockFault: new BusyError("/a is frozen by a run") });
    assertEquals(await hold(request(dir), deps), ExitCode.busy);
    assertEquals(r.log, ["locks"]);
    assertEquals(told, [`failed ${ExitCode.busy} /a is frozen by a run`]);
    assertEquals(readHold(statePaths(dir)).kind, "none");
  });
});

Deno.test("hold: not all held within --hold-within: gives up, releases everything, exit 5", async () => {
  await inStateDir(async (dir) => {
    const { r, told, deps } = fixture();
    // The pre-freeze command outlasts the bound: the hold gives up before it freezes anything.
    deps.hooks = {
      run: async (which) => {
        r.log.push(which);
        if (which === "pre-freeze") await new Promise((resolve) => setTimeout(resolve, 200));
      },
    };
    const asked = request(dir, 60_000);
    asked.plan.holdWithinMs = 50;
    assertEquals(await hold(asked, deps), ExitCode.timeout);
    assertEquals(r.log, upTo("pre-freeze").concat("pre-freeze", "db release", "disarm", "unlock"));
    assertEquals(told.length, 1);
    assertMatch(told[0], /^failed 5 --hold-within 0\.05: not everything was held in time/);
    assertEquals(readHold(statePaths(dir)).kind, "none");
    assertEquals(readRelease(statePaths(dir)), undefined, "nothing was held to release");
  });
});

Deno.test("hold: held within --hold-within: the bound ends, the hold lasts its time", async () => {
  await inStateDir(async (dir) => {
    const { r, deps } = fixture();
    const asked = request(dir, 300);
    asked.plan.holdWithinMs = 100;
    assertEquals(await hold(asked, deps), ExitCode.ok);
    assertEquals(r.log, FULL);
    assertEquals(readRelease(statePaths(dir))?.by, "deadline", "not cut short by --hold-within");
  });
});

Deno.test("hold: a caller that went away before confirming: released at once", async () => {
  await inStateDir(async (dir) => {
    const { r, deps } = fixture({ confirmed: false });
    const started = performance.now();
    assertEquals(await hold(request(dir, 60_000), deps), ExitCode.ok);
    assert(performance.now() - started < 30_000, "not held until the deadline (60 s)");
    assertEquals(r.log, FULL);
    assertEquals(readRelease(statePaths(dir))?.by, "caller gone");
  });
});

Deno.test("hold: a stop signal while held releases everything; exit 128+15", async () => {
  await inStateDir(async (dir) => {
    const controller = new AbortController();
    const { r, deps } = fixture({ signal: controller.signal });
    const running = hold(request(dir, 60_000), deps);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assertEquals(readHold(statePaths(dir)).kind, "live");
    controller.abort(new SignalError("SIGTERM"));
    assertEquals(await running, 128 + 15);
    assertEquals(r.log, FULL);
    assertEquals(readRelease(statePaths(dir))?.by, "signal");
  });
});

Deno.test("the hold record: a live one refuses a second claim, a dead holder's is taken over", async () => {
  await inStateDir((dir) => {
    const paths = statePaths(dir);
    Deno.mkdirSync(dir, { mode: 0o700 });
    claimHold(paths, { mounts: ["/a"], database: false });
    let refused: unknown;
    try {
      claimHold(paths, { mounts: ["/b"], database: false });
    } catch (error) {
      refused = error;
    }
    assert(refused instanceof HoldInPlaceError, String(refused));
    assertEquals(refused.exitCode, ExitCode.holdInPlace);
    assertMatch(refused.message, new RegExp(`a hold by process ${Deno.pid} on /a`));
    // A record left by a process that is gone (its start time does not match): never trusted.
    const stale = JSON.parse(Deno.readTextFileSync(paths.hold));
    Deno.writeTextFileSync(paths.hold, JSON.stringify({ ...stale, startTime: 1 }));
    assertEquals(readHold(paths).kind, "stale");
    const record = claimHold(paths, { mounts: ["/b"], database: false });
    assertEquals(record.mounts, ["/b"]);
    assertEquals(readHold(paths).kind, "live");
  });
});
