/** The local demo's driver: one consistent snapshot against moto (and, as root, MariaDB on a frozen XFS loop mount), explained for a person. */
import { DescribeSnapshotsCommand } from "@aws-sdk/client-ec2";
import type { Connection } from "mysql2/promise";
import { parseArgs } from "node:util";
import { mariadbAvailable, type MariadbServer, startMariadb } from "../tests/support/mariadb.ts";
import { type MotoEndpoint, startMoto, TEST_CREDENTIALS } from "../tests/support/moto.ts";
import { programCommand, ROOT } from "../tests/support/program.ts";
import { isRoot } from "../tests/support/real.ts";
import { ensureMkfsXfs, mountXfs, type TestMount } from "../tests/support/xfs.ts";

const USAGE = `Usage: bash scripts/demo.sh [--moto-only] [--moto-url URL]

Runs ec2-consistent-snapshot's main job on this machine, with no AWS account: moto stands in
for the EC2 API; as root, MariaDB keeps its data on an XFS loop mount that the program locks,
freezes, snapshots, thaws and unlocks. Prints the command line, the snapshot ids, the binary-log
coordinates and the measured lock and freeze windows, shows the snapshot through the EC2 API,
then removes everything it started (also on Ctrl-C).

  --moto-only     skip the XFS mount and MariaDB even as root
  --moto-url URL  use this running moto instead of starting one (it is left running)
`;

const REGION = "us-east-1";

/** Thrown at a checkpoint once a stop signal arrived. */
class Interrupted extends Error {
  constructor(readonly signalName: Deno.Signal) {
    super(`interrupted by ${signalName}`);
  }
}

const SIGNAL_NUMBERS: Partial<Record<Deno.Signal, number>> = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 };

const encoder = new TextEncoder();
/** Prints a line for the person watching. */
function say(line = ""): void {
  Deno.stdout.writeSync(encoder.encode(line + "\n"));
}

function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

/** A path relative to the repository when it is inside it, for shorter command lines. */
function fromRoot(path: string): string {
  return path.startsWith(ROOT) ? path.slice(ROOT.length) : path;
}

async function output(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, cwd: "/", stdin: "null", stderr: "null" })
    .output();
  return new TextDecoder().decode(out.stdout).trim();
}

/** The milliseconds as a person reads them, or why there is no number. */
function ms(value: number | null | undefined, none: string): string {
  return typeof value === "number" ? `${value} ms` : none;
}

/**
 * An INSERT every 20 ms into a table on the mount; records how long the longest one waited since
 * `measureFromNow()` (the program's run, not the writer's whole life with its warm-up).
 */
interface Writer {
  rows(): number;
  /** Starts the measurement again: only INSERTs that end after this count. */
  measureFromNow(): void;
  longestMs(): number;
  failures(): string[];
  stop(): Promise<void>;
}

async function startWriter(db: MariadbServer): Promise<Writer> {
  const { default: mysql } = await import("mysql2/promise");
  const connection: Connection = await mysql.createConnection({
    socketPath: db.socket,
    user: "root",
    database: "demo",
  });
  let rows = 0;
  let longest = 0;
  const failures: string[] = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const started = performance.now();
      try {
        await connection.query("INSERT INTO ticks (at) VALUES (NOW(6))");
        rows++;
      } catch (error) {
        failures.push((error as Error).message);
      }
      longest = Math.max(longest, performance.now() - started);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  return {
    rows: () => rows,
    measureFromNow: () => {
      longest = 0;
    },
    longestMs: () => Math.round(longest),
    failures: () => failures,
    async stop() {
      stopped = true;
      await loop;
      await connection.end();
    },
  };
}

/** What the program printed with --output json (src/cli/report.ts). */
interface JsonReport {
  ok: boolean;
  snapshots: {
    volumeId: string;
    snapshotId: string | null;
    error: { code: string; message: string } | null;
  }[];
  binlog: { file: string; position: number } | null;
  timings: {
    preflightMs: number;
    createMs: number | null;
    freezeWindowMs: number | null;
    lockWindowMs: number | null;
    databaseLockMs: number | null;
  };
  problems: { exitCode: number; message: string }[];
}

async function main(argv: string[]): Promise<number> {
  const { values: flags } = parseArgs({
    args: argv,
    options: {
      "moto-only": { type: "boolean", default: false },
      "moto-url": { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (flags.help) {
    say(USAGE);
    return 0;
  }

  const interrupt = new AbortController();
  let program: Deno.ChildProcess | undefined;
  const onSignal = (name: Deno.Signal) => () => {
    if (interrupt.signal.aborted) {
      say(`${name}: still cleaning up, please wait (leaving now could leave a mount frozen)`);
      return;
    }
    say(`\n${name}: stopping; everything the demo started is removed first`);
    interrupt.abort(new Interrupted(name));
    try {
      program?.kill(name); // it releases its locks and thaws, then exits
    } catch {
      // already finished
    }
  };
  const signals: [Deno.Signal, () => void][] = (["SIGINT", "SIGTERM", "SIGHUP"] as const).map(
    (name) => [name, onSignal(name)],
  );
  for (const [name, handler] of signals) Deno.addSignalListener(name, handler);
  const checkpoint = () => {
    if (interrupt.signal.aborted) throw interrupt.signal.reason;
  };

  /** Releases in reverse order, each attempted even when an earlier one failed. */
  const cleanups: { what: string; run: () => Promise<void> }[] = [];
  let failed = false;
  const full = isRoot() && !flags["moto-only"];

  say("ec2-consistent-snapshot demo: the main job on a local stack, no AWS account needed");
  say();
  try {
    const work = await Deno.makeTempDir({ prefix: "ecs-demo-" });
    cleanups.push({
      what: `removed ${work}`,
      run: () => Deno.remove(work, { recursive: true }),
    });

    // The EC2 API.
    let moto: MotoEndpoint | undefined;
    let endpoint = flags["moto-url"];
    if (endpoint === undefined) {
      moto = await startMoto();
      if (!moto) throw new Error("moto is not installed: run bash scripts/setup.sh");
      const started = moto;
      cleanups.push({ what: "stopped moto", run: () => started.stop() });
      endpoint = moto.url;
      say(`* moto, a local EC2 API, at ${endpoint}`);
    } else {
      say(`* the EC2 API of the running moto at ${endpoint} (left running)`);
    }
    const { EC2Client, CreateVolumeCommand } = await import("@aws-sdk/client-ec2");
    const ec2 = new EC2Client({ region: REGION, endpoint, credentials: TEST_CREDENTIALS });
    cleanups.push({ what: "closed the EC2 client", run: () => Promise.resolve(ec2.destroy()) });
    checkpoint();

    // As root: the file system to freeze and a database on it, being written to.
    let mount: TestMount | undefined;
    let db: MariadbServer | undefined;
    let writer: Writer | undefined;
    if (full) {
      if (!await ensureMkfsXfs()) throw new Error("mkfs.xfs is missing (Debian: xfsprogs)");
      if (!await mariadbAvailable()) throw new Error("mariadbd is missing (mariadb-server)");
      mount = await mountXfs();
      const made = mount;
      cleanups.push({
        what: `thawed, unmounted and removed ${made.mountPoint} and its image`,
        run: () => made.unmount(),
      });
      const device = await output("findmnt", ["-n", "-o", "SOURCE", "--target", made.mountPoint]);
      if (!device.startsWith("/dev/loop")) {
        throw new Error(`${made.mountPoint} is on ${device}, not on the demo's loop device`);
      }
      say(`* a 320 MiB XFS file system on ${device}, mounted at ${made.mountPoint}`);
      checkpoint();

      db = await startMariadb({ datadir: `${made.mountPoint}/mysql` });
      const server = db;
      cleanups.push({ what: "stopped MariaDB", run: () => server.stop() });
      const version = (await db.sql("SELECT VERSION()")).trim();
      say(`* MariaDB ${version} with its data in ${db.datadir}, binary logging on`);
      say(`  (socket ${db.socket}, port ${db.port}; socket and logs are off the mount)`);
      checkpoint();

      const password = crypto.randomUUID();
      await db.sql(
        `CREATE USER 'snapshot'@'localhost' IDENTIFIED BY '${password}';
         GRANT RELOAD, BINLOG MONITOR, BINLOG ADMIN, SLAVE MONITOR, PROCESS, CONNECTION ADMIN
           ON *.* TO 'snapshot'@'localhost';
         CREATE DATABASE demo;
         CREATE TABLE demo.ticks (id INT AUTO_INCREMENT PRIMARY KEY, at DATETIME(6))
           ENGINE=InnoDB;`,
      );
      await Deno.writeTextFile(
        `${work}/my.cnf`,
        `[client]\nuser = snapshot\npassword = "${password}"\nsocket = ${db.socket}\n`,
        { mode: 0o600 },
      );
      writer = await startWriter(db);
      const running = writer;
      cleanups.push({ what: "stopped the writer", run: () => running.stop() });
      say("* a writer inserting a row into demo.ticks every 20 ms");
    } else {
      say(
        isRoot()
          ? "* skipped (--moto-only): the XFS loop mount, the freeze and MariaDB"
          : "* skipped, because this is not root: the XFS loop mount, the freeze and MariaDB.\n" +
            "  Mounting a loop device and freezing a file system need root (CAP_SYS_ADMIN);\n" +
            "  run `sudo bash scripts/demo.sh` for the whole job. Now: the snapshot part only.",
      );
    }
    checkpoint();

    const volume = (await ec2.send(
      new CreateVolumeCommand({ AvailabilityZone: `${REGION}a`, Size: 1 }),
    )).VolumeId!;
    say(`* volume ${volume} created in moto: it stands for the EBS volume to snapshot`);
    await Deno.writeTextFile(
      `${work}/awssecret`,
      `${TEST_CREDENTIALS.accessKeyId}\n${TEST_CREDENTIALS.secretAccessKey}\n`,
      { mode: 0o600 },
    );
    checkpoint();

    // The program, exactly as a user runs it.
    const args = [
      "--output",
      "json",
      "--debug",
      "--region",
      REGION,
      "--ec2-endpoint",
      endpoint,
      "--aws-credentials-file",
      `${work}/awssecret`,
      ...(mount ? ["--mysql", "--mysql-defaults-file", `${work}/my.cnf`] : []),
      ...(mount ? ["--freeze-filesystem", mount.mountPoint] : []),
      "--description",
      "ec2-consistent-snapshot demo",
      "--tag",
      "Name=demo;made-by=scripts/demo.sh",
      volume,
    ];
    const command = programCommand(args);
    // The program as it ships: the bundle of src/ that scripts/build.sh compiles.
    const shown = [command.cmd, ...command.args].map((word) => shellWord(fromRoot(word)));
    say();
    say("Running the program as a user would (secrets only in the 0600 files it names):");
    say();
    say(`  $ ${shown.join(" ")}`);
    say();
    if (writer) await new Promise((resolve) => setTimeout(resolve, 300)); // some rows before
    const rowsBefore = writer?.rows() ?? 0;
    writer?.measureFromNow();
    const started = performance.now();
    program = new Deno.Command(command.cmd, {
      args: command.args,
      cwd: ROOT, // never on the mount being frozen
      clearEnv: true,
      env: {
        PATH: Deno.env.get("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin",
        HOME: work,
        DENO_DIR: Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME")}/.cache/deno`,
        AWS_EC2_METADATA_DISABLED: "true",
      },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const result = await program.output();
    program = undefined;
    const elapsed = ((performance.now() - started) / 1000).toFixed(1);
    const stderr = new TextDecoder().decode(result.stderr).trimEnd();
    const stdout = new TextDecoder().decode(result.stdout);
    say(
      `The program's step log (--debug, on stderr), exit code ${result.code} after ${elapsed} s:`,
    );
    say();
    for (const line of stderr ? stderr.split("\n") : ["(nothing)"]) say(`  | ${line}`);
    say();
    checkpoint();
    let report: JsonReport;
    try {
      report = JSON.parse(stdout);
    } catch {
      throw new Error(`the program printed no JSON report (exit code ${result.code}):\n${stdout}`);
    }

    say("What it reported (--output json):");
    for (const s of report.snapshots) {
      say(
        s.snapshotId
          ? `  snapshot         ${s.snapshotId} of ${s.volumeId}`
          : `  snapshot         none of ${s.volumeId}: ${s.error?.code}: ${s.error?.message}`,
      );
    }
    say(
      report.binlog
        ? `  binary log       ${report.binlog.file} at position ${report.binlog.position}` +
          " (the snapshot holds the data up to here)"
        : "  binary log       - (no database in this run)",
    );
    const t = report.timings;
    say(`  freeze window    ${ms(t.freezeWindowMs, "- (nothing frozen)")}`);
    say(`  lock window      ${ms(t.lockWindowMs, "- (nothing locked)")}`);
    say(`  database lock    ${ms(t.databaseLockMs, "- (no database)")}`);
    say(
      `  CreateSnapshot   ${ms(t.createMs, "-")} (preflight before any lock: ${t.preflightMs} ms)`,
    );
    for (const problem of report.problems) say(`  problem          ${problem.message}`);
    if (writer) {
      await new Promise((resolve) => setTimeout(resolve, 200)); // writes go on after the thaw
      const failures = writer.failures();
      say(
        `  the writer       ${writer.rows()} rows, ${writer.rows() - rowsBefore} since the ` +
          `program started; the longest INSERT during the run waited ${writer.longestMs()} ms; ` +
          (failures.length ? `${failures.length} failed: ${failures[0]}` : "none failed"),
      );
      if (failures.length) failed = true;
    }
    if (!report.ok || result.code !== 0) failed = true;
    checkpoint();

    const ids = report.snapshots.flatMap((s) => s.snapshotId ? [s.snapshotId] : []);
    if (ids.length > 0) {
      say();
      say("The snapshot, as the EC2 API shows it (DescribeSnapshots):");
      const found = await ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: ids }));
      for (const snapshot of found.Snapshots ?? []) {
        say(`  SnapshotId       ${snapshot.SnapshotId}`);
        say(`  VolumeId         ${snapshot.VolumeId}`);
        say(`  State            ${snapshot.State}`);
        say(`  StartTime        ${snapshot.StartTime?.toISOString()}`);
        say(`  Description      ${snapshot.Description}`);
        const tags = (snapshot.Tags ?? []).map((tag) => `${tag.Key}=${tag.Value}`).join("; ");
        say(`  Tags             ${tags}`);
      }
      if ((found.Snapshots ?? []).length !== ids.length) {
        say("  (the API does not list every snapshot the program reported)");
        failed = true;
      }
    }
  } catch (error) {
    if (error instanceof Interrupted) {
      failed = true;
    } else {
      failed = true;
      say();
      say(`demo failed: ${error instanceof Error ? error.message : error}`);
    }
  } finally {
    say();
    say("Cleaning up:");
    for (const cleanup of cleanups.reverse()) {
      try {
        await cleanup.run();
        say(`  ${cleanup.what}`);
      } catch (error) {
        failed = true;
        say(`  FAILED: ${cleanup.what}: ${error instanceof Error ? error.message : error}`);
      }
    }
    for (const [name, handler] of signals) Deno.removeSignalListener(name, handler);
  }
  const reason = interrupt.signal.reason;
  if (reason instanceof Interrupted) return 128 + (SIGNAL_NUMBERS[reason.signalName] ?? 0);
  say(failed ? "The demo did not complete; see above." : "Done: nothing of the demo is left.");
  return failed ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
