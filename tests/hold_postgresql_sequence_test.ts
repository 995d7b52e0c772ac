/**
 * The holder's sequence with PostgreSQL, with recording fakes: a CHECKPOINT instead of a lock
 * (nothing held on the server, so the watchdog is armed at the freeze), the WAL position read
 * after the last sync, and the same fault table as MySQL's hold: a fault at every step releases
 * everything taken, and tells the caller or records the release.
 */
import { assertEquals, assertMatch } from "./support/assert.ts";
import { recorder } from "./support/recording.ts";
import { hold, type HolderDeps } from "../src/hold/holder.ts";
import type { HoldRequest } from "../src/hold/protocol.ts";
import { readHold, readRelease, statePaths } from "../src/hold/state.ts";
import { DatabaseError, ExitCode, FreezeError, HookError } from "../src/util/errors.ts";
import { silentLogger } from "../src/util/log.ts";
import { defaultOptions } from "../src/types/options.ts";
import type { PostgresqlPlan } from "../src/types/database_plans.ts";
import type { Database, WalPosition } from "../src/types/side_effects.ts";
import { planWindow } from "../src/plan/window.ts";

const WAL: WalPosition = { lsn: "0/3000060", timeline: 1, from: "primary" } as WalPosition;

const mount = (mountPoint: string, minor: number) => ({
  mountPoint,
  majorMinor: `7:${minor}`,
  fsType: "xfs",
  source: `/dev/loop${minor}`,
});

function request(dir: string): HoldRequest {
  return {
    plan: {
      holdMs: 30,
      window: planWindow(
        { ...defaultOptions(), preFreezeCommand: "true", postThawCommand: "true", hookTimeout: 30 },
        {
          freezeMounts: [mount("/a", 1), mount("/b", 2)],
          database: { kind: "postgresql" } as PostgresqlPlan,
          heldMs: 30,
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

// A checkpoint holds no writes: the watchdog is armed with the mounts, at the freeze.
const FULL = [
  "locks",
  "db prepare",
  "sync",
  "db lock",
  "pre-freeze",
  "sync",
  "db position",
  "arm /a,/b",
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
const upTo = (step: string) => FULL.slice(0, FULL.indexOf(step));

function fixture() {
  const r = recorder(undefined);
  const told: string[] = [];
  // deno-lint-ignore require-await
  const step = async (name: string) => {
    r.log.push(name);
    const fault = r.faults.get(name);
    if (fault) throw fault;
  };
  const database: Database = {
    holdsWrites: false,
    prepare: () => step("db prepare"),
    lock: async () => (await step("db lock"), undefined),
    positionAtFreeze: async () => (await step("db position"), WAL),
    release: () => step("db release"),
  } as Database;
  const deps: HolderDeps = {
    ...r,
    database,
    acquireFreezeLocks: () => {
      r.log.push("locks");
      return Promise.resolve({
        release: () => Promise.resolve(void r.log.push("unlock")),
        guard: () => Promise.resolve(),
      });
    },
    log: silentLogger,
    tell: (line) => (told.push(line), true),
    confirmation: Promise.resolve(true),
    signal: new AbortController().signal,
  };
  return { r, told, deps };
}

async function inStateDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const parent = Deno.makeTempDirSync({ prefix: "ecs-hold-pg-" });
  try {
    await fn(`${parent}/run`);
  } finally {
    Deno.removeSync(parent, { recursive: true });
  }
}

Deno.test("PostgreSQL held: checkpoint, WAL position at the freeze, told and recorded", async () => {
  await inStateDir(async (dir) => {
    const { r, told, deps } = fixture();
    assertEquals(await hold(request(dir), deps), ExitCode.ok);
    assertEquals(r.log, FULL);
    assertEquals(JSON.parse(told[0].replace(/^held /, "")).wal.lsn, WAL.lsn);
    const record = readRelease(statePaths(dir))!;
    assertEquals([record.by, record.wal?.lsn], ["deadline", WAL.lsn]);
  });
});

/** What must have happened after a fault at `step`, and the exit code. */
const FAULTS: [string, string[], number][] = [
  ["db prepare", FULL.slice(0, 2).concat("db release", "unlock"), ExitCode.database],
  ["sync", FULL.slice(0, 3).concat("db release", "unlock"), ExitCode.freeze],
  ["db lock", upTo("pre-freeze").concat("db release", "unlock"), ExitCode.database],
  ["pre-freeze", upTo("pre-freeze").concat("pre-freeze", "db release", "unlock"), ExitCode.hook],
  ["db position", upTo("arm /a,/b").concat("post-thaw", "db release", "unlock"), ExitCode.database],
  [
    "arm /a,/b",
    upTo("freeze /a").concat("post-thaw", "db release", "unlock"),
    ExitCode.freeze,
  ],
  ["freeze /a", FULL, ExitCode.freeze],
  ["freeze /b", FULL, ExitCode.freeze],
  ["thaw /b", FULL, ExitCode.freeze],
  ["thaw /a", FULL, ExitCode.freeze],
  ["update ", FULL, ExitCode.freeze],
  ["post-thaw", FULL, ExitCode.hook],
  ["db release", FULL, ExitCode.database],
  ["disarm", FULL, ExitCode.freeze],
];

for (const [step, expected, exitCode] of FAULTS) {
  Deno.test(`PostgreSQL hold: a fault at "${step}" releases everything taken`, async () => {
    await inStateDir(async (dir) => {
      const { r, told, deps } = fixture();
      r.faults.set(
        step,
        step.startsWith("db")
          ? new DatabaseError(`${step} broke`)
          : step === "pre-freeze" || step === "post-thaw"
          ? new HookError(`${step} broke`)
          : new FreezeError(`${step} broke`),
      );
      const code = await hold(request(dir), deps);
      assertEquals(r.log, expected);
      assertEquals(code, exitCode);
      if (FULL.indexOf(step) >= FULL.indexOf("thaw /b")) {
        assertMatch(told[0], /^held /);
        assertEquals(readRelease(statePaths(dir))!.problems[0].exitCode, exitCode);
      } else {
        assertEquals(told, [`failed ${exitCode} ${step} broke`]);
        assertEquals(readRelease(statePaths(dir)), undefined, "nothing was held");
      }
      assertEquals(readHold(statePaths(dir)).kind, "none");
    });
  });
}
