/** The drill's reading of a run's snapshots as a set, and its words for a server that did not start. */
import { assertEquals, assertMatch } from "./support/assert.ts";
import { readSet } from "../src/drill/set.ts";
import type { RunSnapshot } from "../src/aws/drill_snapshots.ts";
import { mysqlStartFailure } from "../src/db/mysql/drill.ts";
import { postgresStartFailure } from "../src/db/postgresql/drill.ts";
import { buildDrillPlan, drillTarget } from "../src/plan/drill_plan.ts";
import { parseCommandLine } from "../src/cli/parse.ts";
import { silentLogger } from "../src/util/log.ts";
import { checkDataVersion } from "../src/drill/data_version.ts";
import { removeCreatedMountPoints } from "../src/host/namespace.ts";
import { DrillError, ExitCode, UsageError } from "../src/util/errors.ts";
import { assertRejects, assertThrows } from "./support/assert.ts";

const RUN = "1b4e28ba-2fa1-11d2-883f-0016d3cca427";
const DB = "mariadb 10.11.6 datadir=/data/mysql log-bin=/logs/binlog binlog=binlog.000003:1234";

function snapshot(id: string, volumes: string, extra: Partial<RunSnapshot> = {}): RunSnapshot {
  return {
    snapshotId: `snap-${id}`,
    volumeId: `vol-${id}`,
    state: "completed",
    progress: "100%",
    sizeGiB: 8,
    tags: {
      "ec2-consistent-snapshot:volumes": volumes,
      "ec2-consistent-snapshot:database": DB,
    },
    consistencyUnknown: false,
    ...extra,
  };
}

Deno.test("a whole set with its mount points and database is restorable", () => {
  const { set, problems } = readSet(RUN, [
    snapshot("0b", "2 xfs:/logs"),
    snapshot("0a", "2 xfs:/data"),
  ]);
  assertEquals(problems, []);
  assertEquals(set!.members.map((m) => m.layout.mountPoint).sort(), ["/data", "/logs"]);
  assertEquals(set!.database.binlog, { file: "binlog.000003", position: 1234 });
});

Deno.test("what makes a set not restorable is named", () => {
  const cases: [RunSnapshot[], RegExp][] = [
    [
      [snapshot("0a", "2 xfs:/data")],
      /the run had 2 volume\(s\) and 1 snapshot\(s\).*not the whole set/,
    ],
    [
      [snapshot("0a", "1 xfs:/data")],
      /the binary log \/logs\/binlog is on none of the set's volumes/,
    ],
    [[snapshot("0a", "1")], /does not say where it was mounted/],
    [
      [snapshot("0a", "2 xfs:/data"), snapshot("0b", "2 xfs:/data")],
      /\/data spans several volumes/,
    ],
    [
      [snapshot("0a", "2 xfs:/data"), snapshot("0b", "2 xfs:/logs", { consistencyUnknown: true })],
      /snap-0b is of unknown consistency/,
    ],
    [
      [{
        ...snapshot("0a", "1 xfs:/data"),
        tags: { "ec2-consistent-snapshot:volumes": "1 xfs:/data" },
      }],
      /no ec2-consistent-snapshot:database tag/,
    ],
    [[], /no snapshot carries the run id/],
  ];
  for (const [snapshots, expected] of cases) {
    const { set, problems } = readSet(RUN, snapshots);
    assertEquals(set, undefined);
    assertMatch(problems.join("\n"), expected);
  }
});

Deno.test("a hostile tag names no path outside the restored volumes, and no other mount", () => {
  const escaped = (path: string) =>
    path.replace(/[\\ \t\n]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, "0")}`);
  const cases: [string, string, RegExp][] = [
    ["1 xfs:/", DB, /mount point "\/", which would hide \/bin of the running system: refused/],
    ["1 xfs:/data/../..", DB, /"\/data\/..\/..", which is not a plain path/],
    ["1 xfs:/etc", DB, /"\/etc", which would hide \/etc of the running system/],
    ["1 xfs:/usr", DB, /"\/usr", which would hide \/usr of the running system/],
    ["1 xfs:/proc", DB, /would hide \/proc/],
    [`1 xfs:${escaped("/data\n/etc")}`, DB, /"\/data\\n\/etc", which has a control character/],
    ["1 xfs:/data/", DB, /not a plain path/],
    ["1 bind:/data", DB, /names the file system "bind": the drill mounts xfs, ext4/],
    [
      "1 xfs:/data",
      "mariadb 10.11.6 datadir=/data/../etc binlog=binlog.000003:1234",
      /the data directory "\/data\/..\/etc" of the database tag is not a plain path/,
    ],
    [
      "1 xfs:/data",
      `mariadb 10.11.6 datadir=/data/mysql log-bin=${escaped("/data/b\nx")} binlog=b.1:4`,
      /the binary log "\/data\/b\\nx" of the database tag has a control character/,
    ],
  ];
  for (const [volumes, database, expected] of cases) {
    const { set, problems } = readSet(RUN, [{
      ...snapshot("0a", volumes),
      tags: {
        "ec2-consistent-snapshot:volumes": volumes,
        "ec2-consistent-snapshot:database": database,
      },
    }]);
    assertEquals(set, undefined, volumes);
    assertMatch(problems.join("\n"), expected);
  }
  // A database under /usr/local or /srv is fine.
  const ok = readSet(RUN, [{
    ...snapshot("0a", "1 ext4:/usr/local/mysql"),
    tags: {
      "ec2-consistent-snapshot:volumes": "1 ext4:/usr/local/mysql",
      "ec2-consistent-snapshot:database": "mariadb 10.11.6 datadir=/usr/local/mysql/data",
    },
  }]);
  assertEquals(ok.problems, []);
});

Deno.test("a server that did not start: the likely cause from its log", () => {
  const tag = { engine: "mariadb" as const, version: "10.11.6", logBin: "/logs/binlog" };
  assertMatch(
    mysqlStartFailure(
      "2026-12-07  1:00:00 0 [Note] InnoDB: 1 transaction(s) which must be rolled back\n" +
        "2026-12-07  1:00:00 0 [ERROR] Found 1 prepared transactions! It means that server was " +
        "not shut down properly last time and critical recovery information (last binlog or tc.log " +
        "file) was manually deleted after a crash.",
      tag,
    ),
    /prepared transactions it cannot resolve without the binary log \(was the binary-log volume in the snapshot set\?\)/,
  );
  assertMatch(
    postgresStartFailure(
      "2026-12-07 01:00:00 UTC [1] PANIC:  could not locate a valid checkpoint record",
    ),
    /WAL is missing or damaged on the restored files: was the pg_wal volume in the snapshot set\?/,
  );
});

Deno.test("--restore-drill takes a run id, a snapshot id, or latest with volume ids", () => {
  assertEquals(drillTarget(RUN, []), { kind: "run", runId: RUN });
  assertEquals(drillTarget("snap-0123456789abcdef0", []), {
    kind: "snapshot",
    snapshotId: "snap-0123456789abcdef0",
  });
  assertEquals(drillTarget("latest", ["vol-0123456789abcdef0"]).kind, "latest");
  assertThrows(() => drillTarget("latest", []), UsageError, "name the volumes");
  assertThrows(() => drillTarget("yesterday", []), UsageError, "not a run id");
  assertThrows(() => drillTarget(RUN, ["vol-0123456789abcdef0"]), UsageError, "only with latest");
});

Deno.test("the data version: the files' own record against the tag, never through a link", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ecs-data-version-" });
  try {
    const pg = (version: string) =>
      checkDataVersion({ engine: "postgresql", version, dataDir: dir }, Deno.pid);
    Deno.writeTextFileSync(`${dir}/PG_VERSION`, "16\n");
    assertEquals((await pg("16.4")).ok, true);
    const other = await pg("15.8");
    assertEquals(other.ok, false);
    assertMatch(other.detail, /PG_VERSION says 16 and the tag postgresql 15\.8/);
    Deno.removeSync(`${dir}/PG_VERSION`);
    Deno.symlinkSync("/etc/hostname", `${dir}/PG_VERSION`);
    assertMatch((await pg("16.4")).detail, /records no version/);
    Deno.writeTextFileSync(`${dir}/mysql_upgrade_info`, "10.11.6-MariaDB");
    const maria = (version: string) =>
      checkDataVersion({ engine: "mariadb", version, dataDir: dir }, Deno.pid);
    assertEquals((await maria("10.11.8")).ok, true);
    assertEquals((await maria("10.6.16")).ok, false);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("mount points made for a drill are removed; a line of the server's is not obeyed", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ecs-made-" });
  try {
    Deno.mkdirSync(`${dir}/made/data`, { recursive: true });
    Deno.mkdirSync(`${dir}/kept/empty`, { recursive: true });
    Deno.mkdirSync(`${dir}/full`);
    Deno.writeTextFileSync(`${dir}/full/file`, "x");
    Deno.writeTextFileSync(
      `${dir}/namespace.log`,
      `created ${dir}/made\nmounted /dev/x at ${dir}/made/data (xfs, rw)\ncreated ${dir}/full\n` +
        `2026-12-07 server says:\ncreated ${dir}/kept\n`,
    );
    await removeCreatedMountPoints(`${dir}/namespace.log`);
    assertEquals(
      [...Deno.readDirSync(dir)].map((e) => e.name).sort(),
      ["full", "kept", "namespace.log"],
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("a drill without the right to mount is refused before anything is made (exit 18)", async () => {
  const inputs = { env: {}, home: undefined, log: silentLogger, canMount: () => false };
  const error = await assertRejects(
    () =>
      buildDrillPlan({
        ...inputs,
        args: parseCommandLine(["--restore-drill", "latest", "vol-0123456789abcdef0"]),
      }),
    DrillError,
    "needs root (CAP_SYS_ADMIN)",
  );
  assertEquals(error.exitCode, ExitCode.drillRefused);
});
