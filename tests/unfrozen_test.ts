/** Tests of the check that a database's files lie on frozen file systems, and of the MySQL location variables. */
import { assertEquals, assertMatch } from "./support/assert.ts";
import { unfrozenLocations, unfrozenWarning } from "../src/host/unfrozen.ts";
import { LOCATIONS_SQL, mysqlLocations } from "../src/db/mysql/locations.ts";

/** A fake procfs whose mountinfo has / and two mounts, a (frozen) and b, on real directories. */
async function withFixture(fn: (dir: string, procRoot: string) => Promise<void>): Promise<void> {
  const dir = Deno.realPathSync(Deno.makeTempDirSync({ prefix: "ecs-unfrozen-" }));
  try {
    for (const path of ["proc/self", "a/data", "b/wal", "b/binlog"]) {
      Deno.mkdirSync(`${dir}/${path}`, { recursive: true });
    }
    Deno.symlinkSync(`${dir}/b/wal`, `${dir}/a/data/pg_wal`);
    Deno.writeTextFileSync(
      `${dir}/proc/self/mountinfo`,
      [
        "1 0 8:1 / / rw - ext4 /dev/root rw",
        `2 1 7:1 / ${dir}/a rw - xfs /dev/loop1 rw`,
        `3 1 7:2 / ${dir}/b rw - xfs /dev/loop2 rw`,
        `4 1 7:1 /data ${dir}/b/binlog rw - xfs /dev/loop1 rw`,
      ].join("\n") + "\n",
    );
    await fn(dir, `${dir}/proc`);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

Deno.test("unfrozen: a symlinked pg_wal on another file system is found, once, with its mount", async () => {
  await withFixture(async (dir, procRoot) => {
    const debug: string[] = [];
    const outside = await unfrozenLocations(
      [
        { what: "PostgreSQL data_directory", path: `${dir}/a/data` },
        { what: "PostgreSQL pg_wal", path: `${dir}/a/data/pg_wal` },
        { what: "PostgreSQL tablespace x", path: `${dir}/b/wal` },
        { what: "PostgreSQL tablespace gone", path: `${dir}/nowhere` },
      ],
      [`${dir}/a`],
      { procRoot, debug: (m) => debug.push(m) },
    );
    assertEquals(outside, [{
      what: ["PostgreSQL pg_wal", "PostgreSQL tablespace x"],
      path: `${dir}/a/data/pg_wal`,
      realPath: `${dir}/b/wal`,
      mountPoint: `${dir}/b`,
    }]);
    assertMatch(debug.join("\n"), /tablespace gone .*not found on this machine/);
    assertEquals(
      unfrozenWarning(outside[0]),
      `PostgreSQL pg_wal, PostgreSQL tablespace x ${dir}/a/data/pg_wal (-> ${dir}/b/wal) lies ` +
        `on ${dir}/b, which is not frozen: the snapshots may not hold these files as of the ` +
        "freeze (freeze that file system too, or move the files)",
    );
  });
});

Deno.test("unfrozen: nothing when every location is on a frozen file system (compared by device)", async () => {
  await withFixture(async (dir, procRoot) => {
    // b/binlog is a bind mount of a's file system: frozen with a.
    const outside = await unfrozenLocations(
      [
        { what: "MySQL datadir", path: `${dir}/a/data` },
        { what: "MySQL log_bin_basename", path: `${dir}/b/binlog` },
      ],
      [`${dir}/a`],
      { procRoot },
    );
    assertEquals(outside, []);
    assertEquals(await unfrozenLocations([{ what: "x", path: "/" }], [], { procRoot }), []);
  });
});

Deno.test("mysql locations: relative to datadir, log base names to their directory, empty left out", () => {
  assertMatch(LOCATIONS_SQL, /^SHOW GLOBAL VARIABLES WHERE Variable_name IN \('datadir', /);
  assertEquals(
    mysqlLocations([
      { Variable_name: "datadir", Value: "/var/lib/mysql/" },
      { Variable_name: "innodb_data_home_dir", Value: "" },
      { Variable_name: "innodb_log_group_home_dir", Value: "./" },
      { Variable_name: "log_bin_basename", Value: "/logs/bin/mysql-bin" },
      { Variable_name: "relay_log_basename", Value: "/var/lib/mysql/relay-bin" },
    ]),
    [
      { what: "MySQL datadir", path: "/var/lib/mysql" },
      { what: "MySQL innodb_log_group_home_dir", path: "/var/lib/mysql" },
      { what: "MySQL log_bin_basename", path: "/logs/bin" },
      { what: "MySQL relay_log_basename", path: "/var/lib/mysql" },
    ],
  );
});
