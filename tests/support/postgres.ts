/** Starts private PostgreSQL 15 servers (Debian's postgresql) as the postgres user for real-service tests. */

import { dirname } from "node:path";
import { freePort } from "./mariadb.ts";
import { isRoot, type Requirement } from "./real.ts";

/** Where Debian puts the server programs of PostgreSQL 15. */
export const PG_BIN = "/usr/lib/postgresql/15/bin";

/** A running private server. */
export interface PostgresServer {
  /** The data directory (may be on a test's loop mount). */
  readonly datadir: string;
  /** Directory of the socket and the server log (never on a frozen mount). */
  readonly rundir: string;
  /** The port, which names the socket file `.s.PGSQL.<port>` in rundir. */
  readonly port: number;
  /** Environment for a libpq client reaching this server as the superuser `postgres`. */
  readonly env: Record<string, string>;
  /** Runs SQL through `psql` as `user` (default postgres); returns unaligned, tuples-only output. */
  psql(sql: string, options?: { user?: string; database?: string }): Promise<string>;
  /** Stops the server (fast) and removes rundir and, if we made it, the datadir. Safe twice. */
  stop(): Promise<void>;
}

/** How to start a server. */
export interface StartPostgresOptions {
  /** Data directory; made with initdb when missing or empty. Default: a temp dir. */
  datadir?: string;
  /** initdb --waldir: pg_wal elsewhere (a symlink in datadir). */
  waldir?: string;
  /** Make this server a standby of `primary` (pg_basebackup -R) instead of initdb. */
  standbyOf?: PostgresServer;
}

interface Output {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(cmd: string, args: string[], stdin?: string): Promise<Output> {
  const child = new Deno.Command(cmd, {
    args,
    cwd: "/",
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(stdin));
    await writer.close();
  }
  const out = await child.output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

async function must(cmd: string, args: string[], stdin?: string): Promise<string> {
  const out = await run(cmd, args, stdin);
  if (out.code !== 0) {
    throw new Error(`${cmd} ${args.join(" ")} failed (${out.code}): ${out.stderr.trim()}`);
  }
  return out.stdout;
}

/** Runs a program as the postgres user (initdb and the server refuse root). */
function asPostgres(program: string, args: string[], stdin?: string): Promise<string> {
  return must("runuser", ["-u", "postgres", "--", program, ...args], stdin);
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/**
 * True when PostgreSQL 15 can be started here: root (for runuser), the postgres user and the
 * server programs. As root, installs Debian's postgresql when it is missing.
 */
export async function postgresAvailable(): Promise<boolean> {
  if (!isRoot()) return false;
  if (!isFile(`${PG_BIN}/postgres`)) {
    try {
      await must("apt-get", ["update", "-qq"]);
      await must("apt-get", ["install", "-y", "-qq", "--no-install-recommends", "postgresql"]);
    } catch (error) {
      console.warn(`could not install postgresql: ${error}`);
      return false;
    }
  }
  return isFile(`${PG_BIN}/postgres`) && (await run("id", ["postgres"])).code === 0;
}

/**
 * What {@linkcode startPostgres} needs (see {@linkcode postgresAvailable}). Await it at the top
 * of a test file, before registering the tests.
 */
export async function postgresRequirement(): Promise<Requirement> {
  return {
    available: await postgresAvailable(),
    reason: "needs root and Debian's postgresql (15): run scripts/setup.sh as root",
  };
}

/** Gives the postgres user `path` and lets it pass through the temporary directories above. */
async function handOver(path: string): Promise<void> {
  await Deno.mkdir(path, { recursive: true, mode: 0o700 });
  await must("chown", ["postgres:postgres", path]);
  await Deno.chmod(path, 0o700);
  for (let dir = dirname(path); dir.startsWith("/tmp/") && dir !== "/tmp"; dir = dirname(dir)) {
    const mode = Deno.statSync(dir).mode ?? 0;
    if ((mode & 0o001) === 0) await Deno.chmod(dir, (mode & 0o777) | 0o011);
  }
}

function isEmptyDir(path: string): boolean {
  try {
    for (const _ of Deno.readDirSync(path)) return false;
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return true;
    throw error;
  }
}

function postmasterPid(datadir: string): number | undefined {
  try {
    const pid = Number(Deno.readTextFileSync(`${datadir}/postmaster.pid`).split("\n")[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Starts a private PostgreSQL 15 as the postgres user: its own data directory (trust
 * authentication), a socket in its own run directory, no TCP; waits until it accepts
 * connections. With `standbyOf`, the data directory is a pg_basebackup -R of that server.
 *
 * @example
 * ```ts
 * const pg = await startPostgres({ datadir: `${mount.mountPoint}/pg` });
 * try { console.log(await pg.psql("SELECT pg_current_wal_lsn()")); } finally { await pg.stop(); }
 * ```
 */
export async function startPostgres(options: StartPostgresOptions = {}): Promise<PostgresServer> {
  const rundir = await Deno.makeTempDir({ prefix: "ecs-pg-run-" });
  const ownDatadir = options.datadir === undefined;
  const datadir = options.datadir ?? `${await Deno.makeTempDir({ prefix: "ecs-pg-data-" })}/data`;
  const port = freePort();
  let stopped = false;

  async function stop(): Promise<void> {
    if (stopped) return;
    stopped = true;
    if (postmasterPid(datadir) !== undefined) {
      await run("runuser", [
        "-u",
        "postgres",
        "--",
        `${PG_BIN}/pg_ctl`,
        "-D",
        datadir,
        "-m",
        "fast",
        "-w",
        "-t",
        "60",
        "stop",
      ]);
    }
    await Deno.remove(rundir, { recursive: true }).catch(() => {});
    if (ownDatadir) await Deno.remove(dirname(datadir), { recursive: true }).catch(() => {});
  }

  try {
    await handOver(rundir);
    if (options.standbyOf) {
      await handOver(datadir);
      const primary = options.standbyOf;
      await asPostgres(`${PG_BIN}/pg_basebackup`, [
        "-D",
        datadir,
        "-R",
        "-X",
        "stream",
        "-c",
        "fast",
        "-h",
        primary.rundir,
        "-p",
        String(primary.port),
        "-U",
        "postgres",
      ]);
    } else if (isEmptyDir(datadir)) {
      await handOver(datadir);
      if (options.waldir) await handOver(options.waldir);
      await asPostgres(`${PG_BIN}/initdb`, [
        "-D",
        datadir,
        "-A",
        "trust",
        "-U",
        "postgres",
        "--no-sync",
        ...(options.waldir ? ["--waldir", options.waldir] : []),
      ]);
    }
    await asPostgres(`${PG_BIN}/pg_ctl`, [
      "-D",
      datadir,
      "-o",
      `-k ${rundir} -p ${port} -c listen_addresses= -c shared_buffers=16MB -c max_wal_senders=4`,
      "-l",
      `${rundir}/server.log`,
      "-w",
      "-t",
      "60",
      "start",
    ]);
  } catch (error) {
    let log = "";
    try {
      log = Deno.readTextFileSync(`${rundir}/server.log`).split("\n").slice(-20).join("\n");
    } catch {
      // no log
    }
    await stop();
    throw new Error(`PostgreSQL did not start: ${(error as Error).message}\n${log}`);
  }

  // Should the test runner die before stop(), do not leave the server behind.
  globalThis.addEventListener("unload", () => {
    const pid = postmasterPid(datadir);
    if (pid === undefined || stopped) return;
    try {
      Deno.kill(pid, "SIGINT");
    } catch {
      // already gone
    }
  });

  return {
    datadir,
    rundir,
    port,
    env: { PGHOST: rundir, PGPORT: String(port), PGUSER: "postgres", PGDATABASE: "postgres" },
    psql: (sql, opts = {}) =>
      must(`${PG_BIN}/psql`, [
        "-X",
        "-q",
        "-A",
        "-t",
        "-v",
        "ON_ERROR_STOP=1",
        "-h",
        rundir,
        "-p",
        String(port),
        "-U",
        opts.user ?? "postgres",
        "-d",
        opts.database ?? "postgres",
      ], sql),
    stop,
  };
}

/** Waits until `standby` has replayed everything `primary` has written so far. */
export async function waitStandbySynced(
  primary: PostgresServer,
  standby: PostgresServer,
  timeoutMs = 30_000,
): Promise<string> {
  const target = (await primary.psql("SELECT pg_current_wal_lsn()")).trim();
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const caughtUp = await standby.psql(
      `SELECT pg_last_wal_replay_lsn() >= '${target}'::pg_lsn`,
    );
    if (caughtUp.trim() === "t") return target;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`standby did not replay up to ${target}`);
}
