/**
 * The restore drill end to end, on real restored data: MariaDB with its data and its binary log
 * on two XFS loop mounts, snapshotted by the program against moto while EBS's point-in-time
 * meaning is emulated (tests/support/ebs.ts); then the drill restores them through the same
 * sysfs discovery the program uses on EC2, in a private mount namespace, and checks them.
 */
import { windowSpec } from "../src/run/window_parts.ts";
import { DescribeVolumesCommand } from "@aws-sdk/client-ec2";
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { mariadbRequirement, type MariadbServer, startMariadb } from "./support/mariadb.ts";
import { postgresRequirement, type PostgresServer, startPostgres } from "./support/postgres.ts";
import { createPostgresqlDatabase } from "../src/db/postgresql/database.ts";
import { instanceWithVolumes, MOTO, type MotoEndpoint, startMoto } from "./support/moto.ts";
import { startProxy } from "./support/proxy.ts";
import { ignoreUnless, requireAvailable } from "./support/real.ts";
import { makeProc } from "./support/sysfs_fixture.ts";
import { EbsEmulator, majorMinorOf } from "./support/ebs.ts";
import { mountXfs, type TestMount, xfsRequirement } from "./support/xfs.ts";
import { parseCommandLine } from "../src/cli/parse.ts";
import { buildPlan } from "../src/plan/plan.ts";
import { createEc2, createEc2Client } from "../src/aws/ec2.ts";
import { createFreezer } from "../src/host/freeze.ts";
import { createHooks } from "../src/run/hooks.ts";
import { recorder } from "./support/recording.ts";
import { createMysqlDatabase } from "../src/db/mysql/database.ts";
import { runSequence } from "../src/run/sequence.ts";
import { drillCommand } from "../src/cli/drill_command.ts";
import { createLogger, silentLogger } from "../src/util/log.ts";
import { ExitCode } from "../src/util/errors.ts";
import { DRILL_TAG } from "../src/types/tags.ts";

const MARIADB = await mariadbRequirement();
const XFS = await xfsRequirement();
const POSTGRES = await postgresRequirement();

/** The database of a lab. */
type Engine = "mariadb" | "postgresql";

interface Lab {
  engine: Engine;
  /** Runs SQL on the live server; its output. */
  sql(query: string): Promise<string>;
  /** The options and environment that connect the program to the live server. */
  dbArgs: string[];
  dbEnv: Record<string, string>;
  moto: MotoEndpoint;
  ebs: EbsEmulator;
  env: Record<string, string | undefined>;
  instanceId: string;
  data: TestMount;
  binlog: TestMount;
  /** Live volume id by mount. */
  volumes: { data: string; binlog: string };
  /** The fixture /proc the snapshot run is planned with. */
  proc: string;
}

async function loopOf(mountPoint: string): Promise<string> {
  const out = await new Deno.Command("findmnt", { args: ["-no", "SOURCE", mountPoint] }).output();
  return new TextDecoder().decode(out.stdout).trim();
}

async function withLab(engine: Engine, fn: (lab: Lab) => Promise<void>): Promise<void> {
  requireAvailable(engine === "mariadb" ? MARIADB : POSTGRES, XFS, MOTO);
  const moto = await startMoto();
  const proxy = startProxy(moto.url);
  const ebs = new EbsEmulator(moto);
  proxy.decide = ebs.decide;
  const data = await mountXfs();
  const binlog = await mountXfs();
  let db: MariadbServer | undefined;
  let pg: PostgresServer | undefined;
  let proc: string | undefined;
  const dir = Deno.makeTempDirSync({ prefix: "ecs-drill-e2e-" });
  try {
    const instance = await instanceWithVolumes(moto, ["/dev/sdf", "/dev/sdg"]);
    const volumes = {
      data: instance.volumes.get("/dev/sdf")!,
      binlog: instance.volumes.get("/dev/sdg")!,
    };
    ebs.live(volumes.data, `${data.dir}/fs.img`);
    ebs.live(volumes.binlog, `${binlog.dir}/fs.img`);
    // The live volumes as a Nitro instance shows them: NVMe disks with the volume id as serial.
    const dataMm = await majorMinorOf(await loopOf(data.mountPoint));
    const binlogMm = await majorMinorOf(await loopOf(binlog.mountPoint));
    ebs.sys.nvme("nvme1n1", dataMm, { serial: volumes.data.replace("vol-", "vol") });
    ebs.sys.nvme("nvme2n1", binlogMm, { serial: volumes.binlog.replace("vol-", "vol") });
    proc = makeProc([
      { mountPoint: "/", majorMinor: "259:0", source: "/dev/nvme0n1p1", fsType: "ext4" },
      { mountPoint: data.mountPoint, majorMinor: dataMm, source: "/dev/nvme1n1", fsType: "xfs" },
      {
        mountPoint: binlog.mountPoint,
        majorMinor: binlogMm,
        source: "/dev/nvme2n1",
        fsType: "xfs",
      },
    ]);
    let sql: (query: string) => Promise<string>;
    let dbArgs: string[];
    let dbEnv: Record<string, string> = {};
    if (engine === "mariadb") {
      db = await startMariadb({
        datadir: `${data.mountPoint}/mysql`,
        logBin: false,
        extraArgs: [`--log-bin=${binlog.mountPoint}/binlog`],
      });
      sql = db.sql;
      const defaults = `${dir}/my.cnf`;
      Deno.writeTextFileSync(defaults, `[client]\nuser = root\nsocket = ${db.socket}\n`, {
        mode: 0o600,
      });
      dbArgs = ["--mysql", "--mysql-defaults-file", defaults];
      await sql("CREATE DATABASE app");
    } else {
      // PostgreSQL's data on one volume, its WAL on the other (pg_wal a symlink there).
      pg = await startPostgres({
        datadir: `${data.mountPoint}/pg`,
        waldir: `${binlog.mountPoint}/wal`,
      });
      sql = (query) => pg!.psql(query);
      dbArgs = ["--postgresql"];
      dbEnv = { PGHOST: pg.rundir, PGPORT: String(pg.port), PGUSER: "postgres" };
      await sql("CREATE SCHEMA app");
    }
    await sql(
      `CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(20));
       INSERT INTO app.t VALUES (1, 'before');`,
    );
    const env = {
      ...moto.env,
      AWS_ENDPOINT_URL_EC2: proxy.url,
      ECS_RUN_DIR: dir,
      HOME: dir,
    };
    await fn({
      engine,
      sql,
      dbArgs,
      dbEnv,
      moto,
      ebs,
      env,
      instanceId: instance.instanceId,
      data,
      binlog,
      volumes,
      proc,
    });
  } finally {
    await db?.stop();
    await pg?.stop();
    await ebs.remove();
    await binlog.unmount();
    await data.unmount();
    if (proc) Deno.removeSync(proc, { recursive: true });
    Deno.removeSync(dir, { recursive: true });
    await proxy.stop();
    await moto.stop();
  }
}

/** A run of the program (in this process, with the fixture /proc and /sys): its run id. */
async function snapshotRun(lab: Lab, mounts: TestMount[]): Promise<string> {
  const args = parseCommandLine([
    ...lab.dbArgs,
    ...mounts.flatMap((m) => ["--freeze-filesystem", m.mountPoint]),
  ]);
  const plan = await buildPlan({
    args,
    env: { ...lab.env, ...lab.dbEnv },
    home: lab.env.HOME,
    cwd: "/",
    log: silentLogger,
    procRoot: lab.proc,
    sysRoot: lab.ebs.sys.root,
  });
  const client = createEc2Client({
    region: "us-east-1",
    endpoint: lab.env.AWS_ENDPOINT_URL_EC2,
    credentials: {
      accessKeyId: lab.moto.env.AWS_ACCESS_KEY_ID,
      secretAccessKey: lab.moto.env.AWS_SECRET_ACCESS_KEY,
    },
  });
  try {
    const result = await runSequence(
      {
        ...windowSpec(plan.window),
        volumes: plan.volumes,
        freezeMounts: plan.window.freezeMounts.map((m) => m.mountPoint),
        snapshotTimeoutMs: 30_000,
      },
      {
        ec2: createEc2(client, silentLogger),
        freezer: createFreezer({ log: silentLogger }),
        hooks: createHooks({ log: silentLogger }),
        // The recording watchdog: a real one would kill this test process at its deadline.
        watchdog: recorder().watchdog,
        database: plan.window.database?.kind === "mysql"
          ? createMysqlDatabase(plan.window.database, { log: silentLogger })
          : plan.window.database?.kind === "postgresql"
          ? createPostgresqlDatabase(plan.window.database, { log: silentLogger })
          : undefined,
        log: silentLogger,
        signal: new AbortController().signal,
      },
    );
    assertEquals(result.problems.map((p) => p.message), []);
    return plan.runId;
  } finally {
    client.destroy();
  }
}

/** Runs the drill in this process; its exit code, stdout and stderr lines. */
async function drill(lab: Lab, argv: string[]) {
  let stdout = "";
  const stderr: string[] = [];
  const code = await drillCommand({
    args: parseCommandLine([...argv, "--instance-id", lab.instanceId, "--drill-timeout", "120"]),
    env: lab.env,
    home: lab.env.HOME,
    log: createLogger({ write: (line) => stderr.push(line) }),
    write: (text) => stdout += text,
    say: (line) => stderr.push(line),
    sysRoot: lab.ebs.sys.root,
    devRoot: lab.ebs.devRoot,
  });
  return { code, stdout, stderr: stderr.join("\n") };
}

const DRILL_ENTRY = new URL("./support/drill_entry.ts", import.meta.url).pathname;

/** Starts the drill as its own process; resolves once a stderr line matches `until`. */
async function spawnDrill(lab: Lab, argv: string[], until: RegExp) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      DRILL_ENTRY,
      lab.ebs.sys.root,
      lab.ebs.devRoot,
      ...argv,
      "--instance-id",
      lab.instanceId,
      "--drill-timeout",
      "120",
    ],
    env: Object.fromEntries(
      Object.entries(lab.env).filter((e): e is [string, string] => e[1] !== undefined),
    ),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let stderr = "";
  const decoder = new TextDecoder();
  const reader = child.stderr.getReader();
  const reached = (async () => {
    while (!until.test(stderr)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the drill ended before ${until}: ${stderr}`);
      stderr += decoder.decode(value);
    }
  })();
  await reached;
  const rest = (async () => {
    while (true) {
      const { value, done } = await reader.read();
      if (done) return stderr;
      stderr += decoder.decode(value);
    }
  })();
  return { child, stderr: () => rest, output: child.stdout };
}

/** Processes of the drill's throwaway servers (their sockets are in ecs-drill-* folders). */
async function drillServers(): Promise<string> {
  const out = await new Deno.Command("pgrep", { args: ["-af", "ecs-drill-[0-9a-z]+/mysqld"] })
    .output();
  return new TextDecoder().decode(out.stdout).trim();
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

/** Waits (bounded) until `check` holds; false when it never did. */
async function eventually(check: () => Promise<boolean>, ms = 30_000): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return false;
}

/** The drill's volumes still in moto. */
async function drillVolumes(lab: Lab): Promise<string[]> {
  const out = await lab.moto.client().send(
    new DescribeVolumesCommand({ Filters: [{ Name: "tag-key", Values: [DRILL_TAG] }] }),
  );
  return (out.Volumes ?? []).map((v) => `${v.VolumeId} ${v.State}`);
}

Deno.test({
  name: "drill: MariaDB data and binary log on two volumes restore to the recorded position",
  ignore: ignoreUnless(MARIADB, XFS, MOTO),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withLab("mariadb", async (lab) => {
      const runId = await snapshotRun(lab, [lab.data, lab.binlog]);
      // Writes after the snapshot: not in the restored data.
      await lab.sql("INSERT INTO app.t VALUES (2, 'after')");
      const out = await drill(lab, [
        "--restore-drill",
        runId,
        "--drill-check-command",
        `mariadb --no-defaults -uroot -N -e 'SELECT COUNT(*) FROM app.t' | grep -qx 1`,
      ]);
      assertEquals(out.code, ExitCode.ok, out.stderr);
      assertMatch(out.stdout, new RegExp(`restore drill of run ${runId}: passed`));
      assertMatch(out.stderr, /ok {3}binary log: ends at the recorded binlog\.\d+:\d+/);
      assertMatch(out.stderr, /ok {3}your check: exit 0/);
      // Nothing left: no drill volume in EC2, no loop device, the live mounts untouched.
      assertEquals(await drillVolumes(lab), []);
      assertEquals(lab.ebs.attachedLoops(), []);
      assertEquals(await lab.sql("SELECT COUNT(*) FROM app.t"), "2\n");
    });
  },
});

Deno.test({
  name: "drill: a set without the binary-log volume is refused, naming it, and nothing is made",
  ignore: ignoreUnless(MARIADB, XFS, MOTO),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withLab("mariadb", async (lab) => {
      const runId = await snapshotRun(lab, [lab.data]);
      // Another drill runs: refused, nothing touched.
      const held = await Deno.open(`${lab.env.ECS_RUN_DIR}/drill.lock`, {
        create: true,
        write: true,
      });
      try {
        await held.lock(true);
        const busy = await drill(lab, ["--restore-drill", runId]);
        assertEquals(busy.code, ExitCode.drillRefused, busy.stderr);
        assertMatch(busy.stderr, /another restore drill runs on this instance/);
      } finally {
        held.close();
      }
      const out = await drill(lab, ["--restore-drill", runId]);
      assertEquals(out.code, ExitCode.drillRefused, out.stderr);
      assertMatch(
        out.stderr,
        new RegExp(
          `the binary log ${lab.binlog.mountPoint}/binlog is on none of the set's volumes .*` +
            "was not in the snapshot set",
        ),
      );
      assert(out.stdout.includes("FAILED"));
      assertEquals(await drillVolumes(lab), []);
    });
  },
});

Deno.test({
  name: "drill: a binary-log volume read after writes went on fails the drill, naming why",
  ignore: ignoreUnless(MARIADB, XFS, MOTO),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withLab("mariadb", async (lab) => {
      const runId = await snapshotRun(lab, [lab.data, lab.binlog]);
      // Writes after the recorded position reach the binary-log volume's "snapshot".
      await lab.sql("INSERT INTO app.t VALUES (2, 'after'), (3, 'after')");
      await lab.ebs.retake(lab.volumes.binlog);
      const out = await drill(lab, ["--restore-drill", runId]);
      assertEquals(out.code, ExitCode.drillFailed, out.stderr);
      assertMatch(
        out.stderr,
        /FAIL binary log: binlog\.\d+ ends at \d+, past the recorded binlog\.\d+:\d+: written after the lock/,
      );
      assertMatch(out.stdout, /: FAILED \(/);
      assertEquals(await drillVolumes(lab), []);
      assertEquals(lab.ebs.attachedLoops(), []);
    });
  },
});

Deno.test({
  name: "drill: SIGTERM at each step leaves nothing; after a SIGKILL the next drill cleans up",
  ignore: ignoreUnless(MARIADB, XFS, MOTO),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withLab("mariadb", async (lab) => {
      const runId = await snapshotRun(lab, [lab.data, lab.binlog]);
      for (
        const step of [
          /created vol-/,
          /attached vol-\S+ as \S+nvme\d+n1\n[^]*attached/,
          /ok {3}start/,
        ]
      ) {
        // A check that takes its time: the signal comes while it runs.
        const drill = await spawnDrill(
          lab,
          ["--restore-drill", runId, "--drill-check-command", "sleep 60"],
          step,
        );
        drill.child.kill("SIGTERM");
        const status = await drill.child.status;
        const stderr = await drill.stderr();
        await drill.output.cancel();
        assertEquals(status.code, 143, `SIGTERM after ${step}: ${stderr}`);
        assertMatch(stderr, /stopped by SIGTERM/);
        assertEquals(await drillVolumes(lab), [], `after ${step}`);
        assertEquals(lab.ebs.attachedLoops(), [], `after ${step}`);
        assertEquals(await drillServers(), "", `after ${step}`);
      }
      // SIGKILL while the server runs: the server dies with the drill, its mounts with it; the
      // volumes stay, attached, until the next drill removes them.
      const killed = await spawnDrill(lab, ["--restore-drill", runId], /ok {3}start/);
      killed.child.kill("SIGKILL");
      await killed.child.status;
      await killed.output.cancel();
      await killed.stderr();
      assert(await eventually(async () => await drillServers() === ""), "the server died");
      assertEquals((await drillVolumes(lab)).length, 2);
      const leftDir = Deno.readTextFileSync(`${lab.env.ECS_RUN_DIR}/drill.lock`).trim();
      assertMatch(leftDir, /\/ecs-drill-\w+$/);
      const next = await drill(lab, ["--restore-drill", runId]);
      assertEquals(next.code, ExitCode.ok, next.stderr);
      assertMatch(next.stderr, /removing vol-\S+, left by a drill that was killed/);
      assertEquals(await exists(leftDir), false, "the killed drill's work directory is removed");
      assertEquals(await drillVolumes(lab), []);
      assertEquals(lab.ebs.attachedLoops(), []);
    });
  },
});

Deno.test({
  name: "drill: PostgreSQL data and WAL on two volumes restore past the recorded LSN",
  ignore: ignoreUnless(POSTGRES, XFS, MOTO),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withLab("postgresql", async (lab) => {
      const runId = await snapshotRun(lab, [lab.data, lab.binlog]);
      await lab.sql("INSERT INTO app.t VALUES (2, 'after')");
      const metrics = `${lab.env.HOME}/drill.prom`;
      const out = await drill(lab, [
        "--restore-drill",
        runId,
        "--drill-check-command",
        `psql -tAc 'SELECT count(*) FROM app.t' | grep -qx 1`,
        "--output",
        "json",
        "--metrics-file",
        metrics,
      ]);
      assertEquals(out.code, ExitCode.ok, out.stderr);
      const report = JSON.parse(out.stdout);
      assertEquals([report.ok, report.runId, report.volumes.length], [true, runId, 2]);
      assert(report.timings.recoveryMs >= 0 && report.timings.totalMs > 0);
      assertMatch(
        Deno.readTextFileSync(metrics),
        /^ec2_consistent_snapshot_last_drill_success 1$/m,
      );
      assertMatch(out.stderr, /ok {3}WAL: replay reached \S+, at or past the recorded \S+/);
      assertMatch(out.stderr, /ok {3}timeline: timeline 1, as recorded/);
      assertEquals(await drillVolumes(lab), []);
      assertEquals(lab.ebs.attachedLoops(), []);
      assertEquals((await lab.sql("SELECT count(*) FROM app.t")).trim(), "2");
    });
  },
});

Deno.test({
  name:
    "drill: PostgreSQL without its WAL volume fails, naming it, and the live WAL is not touched",
  ignore: ignoreUnless(POSTGRES, XFS, MOTO),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withLab("postgresql", async (lab) => {
      const runId = await snapshotRun(lab, [lab.data]);
      const walBefore = [...Deno.readDirSync(`${lab.binlog.mountPoint}/wal`)].map((e) => e.name)
        .sort();
      const out = await drill(lab, ["--restore-drill", runId]);
      assertEquals(out.code, ExitCode.drillFailed, out.stderr);
      assertMatch(
        out.stderr,
        new RegExp(
          `pg_wal leads to ${lab.binlog.mountPoint}/wal, on none of the restored volumes: its ` +
            "volume was not in the snapshot set",
        ),
      );
      const walAfter = [...Deno.readDirSync(`${lab.binlog.mountPoint}/wal`)].map((e) => e.name)
        .sort();
      assertEquals(walAfter, walBefore);
      assertEquals(await drillVolumes(lab), []);
      assertEquals(lab.ebs.attachedLoops(), []);
    });
  },
});
