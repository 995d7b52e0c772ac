/** The tags that make snapshots describe themselves: values, EC2's limits, reading them back. */
import { assertEquals, assertThrows } from "./support/assert.ts";
import {
  databaseTagValue,
  parseDatabaseTag,
  parseVolumesTag,
  volumesTagValue,
} from "../src/types/restore_tags.ts";
import { volumeTags } from "../src/plan/volume_tags.ts";
import { withDatabaseTag } from "../src/run/database_tag.ts";
import { parseTags } from "../src/plan/checks.ts";
import { MAX_TAGS, OWN_TAGS } from "../src/types/tags.ts";
import { UsageError } from "../src/util/errors.ts";

const mounts = [
  { mountPoint: "/var/lib/my sql", majorMinor: "259:1", fsType: "xfs", source: "/dev/nvme1n1" },
  { mountPoint: "/binlog", majorMinor: "259:2", fsType: "ext4", source: "/dev/nvme2n1" },
];
const discovered = [
  { volumeId: "vol-0aaaaaaaaaaaaaaaa", mountPoint: "/var/lib/my sql", device: "/dev/nvme1n1" },
  { volumeId: "vol-0bbbbbbbbbbbbbbbb", mountPoint: "/binlog", device: "/dev/nvme2n1" },
];
const ids = discovered.map((d) => d.volumeId);

Deno.test("volumes tag: the count and each volume's own file system; multi-volume lists all", () => {
  const warn = () => {};
  const single = volumeTags(ids, discovered, mounts, { multiVolume: false, warn });
  assertEquals(single, ["2 xfs:/var/lib/my\\040sql", "2 ext4:/binlog"]);
  assertEquals(parseVolumesTag(single[0]), {
    count: 2,
    layouts: [{ fsType: "xfs", mountPoint: "/var/lib/my sql" }],
  });
  const multi = volumeTags(ids, discovered, mounts, { multiVolume: true, warn });
  assertEquals(multi[0], multi[1]);
  assertEquals(parseVolumesTag(multi[0])?.layouts.map((l) => l.volumeId), ids);
  // Volumes named by id: the count alone.
  assertEquals(volumeTags(ids, [], [], { multiVolume: false, warn }), ["2", "2"]);
});

Deno.test("volumes tag: a mount point too long for EC2 leaves the count alone, with a warning", () => {
  const long = `/${"x".repeat(300)}`;
  const warnings: string[] = [];
  const values = volumeTags(
    [ids[0]],
    [{ ...discovered[0], mountPoint: long }],
    [{ ...mounts[0], mountPoint: long }],
    { multiVolume: false, warn: (m) => warnings.push(m) },
  );
  assertEquals(values, ["1"]);
  assertEquals(warnings.length, 1);
  assertEquals(volumesTagValue(1, []), "1");
});

Deno.test("database tag: MariaDB and PostgreSQL positions read back as written", () => {
  const mariadb = {
    engine: "mariadb" as const,
    version: "10.11.6",
    dataDir: "/var/lib/mysql",
    logBin: "/binlog/binlog",
    binlog: { file: "binlog.000003", position: 1234 },
    gtid: "0-1-55",
  };
  const { value, dropped } = databaseTagValue(mariadb);
  assertEquals(
    value,
    "mariadb 10.11.6 datadir=/var/lib/mysql log-bin=/binlog/binlog binlog=binlog.000003:1234 " +
      "gtid=0-1-55",
  );
  assertEquals(dropped, []);
  assertEquals(parseDatabaseTag(value), mariadb);
  const pg = {
    engine: "postgresql" as const,
    version: "15.8",
    dataDir: "/pg/data",
    lsn: "0/3000060",
    timeline: 1,
  };
  assertEquals(parseDatabaseTag(databaseTagValue(pg).value), pg);
  assertEquals(parseDatabaseTag("oracle 19 x=y"), undefined);
});

Deno.test("database tag: a long GTID set is left out first, and said so", () => {
  const gtid = Array.from({ length: 8 }, () => `${crypto.randomUUID()}:1-1000`).join(",");
  const requests = [{ volumeId: "vol-1", description: "d", tags: { a: "b" } }];
  const warnings: string[] = [];
  const [tagged] = withDatabaseTag(requests, {
    binlog: { file: "binlog.000001", position: 4, gtidExecuted: gtid, from: "source" },
    facts: { engine: "mysql", version: "8.0.36", dataDir: "/d", logBin: "/d/binlog" },
  }, (m) => warnings.push(m));
  const value = tagged.tags["ec2-consistent-snapshot:database"];
  assertEquals(value, "mysql 8.0.36 datadir=/d log-bin=/d/binlog binlog=binlog.000001:4");
  assertEquals(warnings.length, 1);
  assertEquals(tagged.tags.a, "b");
  // A replica's coordinates are its source's: not written as the local binary log's.
  const [replica] = withDatabaseTag(requests, {
    binlog: { file: "mysql-bin.000009", position: 99, from: "replica" },
    facts: { engine: "mysql", version: "8.0.36" },
  }, () => {});
  assertEquals(replica.tags["ec2-consistent-snapshot:database"], "mysql 8.0.36");
  // No database: the requests as they were.
  assertEquals(withDatabaseTag(requests, { binlog: undefined }, () => {}), requests);
});

Deno.test("--tag: the tool's own keys are refused, and --tag has 50 minus the tool's", () => {
  assertEquals(OWN_TAGS, 5);
  for (const key of ["ec2-consistent-snapshot:volumes", "ec2-consistent-snapshot:database"]) {
    assertThrows(() => parseTags(`${key}=x`), UsageError, "set by the tool itself");
  }
  const many = Array.from({ length: MAX_TAGS - OWN_TAGS + 1 }, (_, i) => `k${i}=v`).join(";");
  assertThrows(() => parseTags(many), UsageError, `the tool adds ${OWN_TAGS}`);
});
