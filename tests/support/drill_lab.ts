/** The restore drill's test lab: MariaDB or PostgreSQL on two XFS loop mounts, moto behind the fault proxy with EBS emulated, and the drill run in or out of process. */
import { windowSpec } from "../../src/run/window_parts.ts";
import { DescribeVolumesCommand } from "@aws-sdk/client-ec2";
import { assertEquals } from "./assert.ts";
import { mariadbRequirement, type MariadbServer, startMariadb } from "./mariadb.ts";
import { postgresRequirement, type PostgresServer, startPostgres } from "./postgres.ts";
import { createPostgresqlDatabase } from "../../src/db/postgresql/database.ts";
import { instanceWithVolumes, MOTO, type MotoEndpoint, startMoto } from "./moto.ts";
import { type Proxy, startProxy } from "./proxy.ts";
import { requireAvailable } from "./real.ts";
import { makeProc } from "./sysfs_fixture.ts";
import { EbsEmulator, majorMinorOf } from "./ebs.ts";
import { mountXfs, type TestMount, xfsRequirement } from "./xfs.ts";
import { parseCommandLine } from "../../src/cli/parse.ts";
import { buildPlan } from "../../src/plan/plan.ts";
import { createEc2, createEc2Client } from "../../src/aws/ec2.ts";
import { createFreezer } from "../../src/host/freeze.ts";
import { createHooks } from "../../src/run/hooks.ts";
import { recorder } from "./recording.ts";
import { createMysqlDatabase } from "../../src/db/mysql/database.ts";
import { runSequence } from "../../src/run/sequence.ts";
import { drillCommand } from "../../src/cli/drill_command.ts";
import { createLogger, silentLogger } from "../../src/util/log.ts";
import { DRILL_TAG } from "../../src/types/tags.ts";

/** Whether the lab can run. */
export const MARIADB = await mariadbRequirement();
/** Whether the lab can run. */
export const XFS = await xfsRequirement();
/** Whether the lab can run. */
export const POSTGRES = await postgresRequirement();

/** The database of a lab. */
export type Engine = "mariadb" | "postgresql";

/** A lab. */
export interface Lab {
  engine: Engine;
  /** Runs SQL on the live server; its output. */
  sql(query: string): Promise<string>;
  /** The options and environment that connect the program to the live server. */
  dbArgs: string[];
  dbEnv: Record<string, string>;
  moto: MotoEndpoint;
  /** The fault proxy in front of moto (its `decide` is the EBS emulation). */
  proxy: Proxy;
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

export async function withLab(engine: Engine, fn: (lab: Lab) => Promise<void>): Promise<void> {
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
      proxy,
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
export async function snapshotRun(lab: Lab, mounts: TestMount[]): Promise<string> {
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

/** --drill-timeout 120 unless the test gives its own. */
const timeout = (argv: string[]) =>
  argv.includes("--drill-timeout") ? [] : ["--drill-timeout", "120"];

/** Runs the drill in this process; its exit code, stdout and stderr lines. */
export async function drill(lab: Lab, argv: string[]) {
  let stdout = "";
  const stderr: string[] = [];
  const code = await drillCommand({
    args: parseCommandLine([...argv, "--instance-id", lab.instanceId, ...timeout(argv)]),
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

const DRILL_ENTRY = new URL("./drill_entry.ts", import.meta.url).pathname;

/** Starts the drill as its own process; resolves once a stderr line matches `until`. */
export async function spawnDrill(lab: Lab, argv: string[], until: RegExp) {
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
      ...timeout(argv),
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

/** Processes of the drill's throwaway servers (their sockets are in ecs-drill-* folders; a
 * PostgreSQL's children end with it). */
export async function drillServers(): Promise<string> {
  const out = await new Deno.Command("pgrep", {
    args: ["-af", "ecs-drill-[0-9a-zA-Z]+/mysqld|postgres.*ecs-drill-[0-9a-zA-Z]+"],
  })
    .output();
  return new TextDecoder().decode(out.stdout).trim();
}

export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

/** Waits (bounded) until `check` holds; false when it never did. */
export async function eventually(check: () => Promise<boolean>, ms = 30_000): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return false;
}

/** The drill's volumes still in moto. */
export async function drillVolumes(lab: Lab): Promise<string[]> {
  const out = await lab.moto.client().send(
    new DescribeVolumesCommand({ Filters: [{ Name: "tag-key", Values: [DRILL_TAG] }] }),
  );
  return (out.Volumes ?? []).map((v) => `${v.VolumeId} ${v.State}`);
}
