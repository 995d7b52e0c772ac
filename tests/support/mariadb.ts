/** Starts private MariaDB servers (Debian's mariadb-server) for real-service tests. */

import { isRoot, type Requirement } from "./real.ts";

/** Where the server keeps its data, and how it is reached and controlled. */
export interface MariadbServer {
  /** The data directory (may be on a test's loop mount). */
  readonly datadir: string;
  /** Directory of the socket, pid file and error log (never on a frozen mount). */
  readonly rundir: string;
  readonly socket: string;
  readonly port: number;
  readonly pidFile: string;
  /** A shell command that stops this server and returns once it is gone. */
  readonly stopCommand: string;
  /** A shell command that starts this server again in the background, same arguments. */
  readonly startCommand: string;
  /** Runs SQL as root through the `mariadb` client; returns its tab-separated output. */
  sql(query: string): Promise<string>;
  /** Runs one SQL statement as root; returns its rows by column name. */
  rows(query: string): Promise<Record<string, string>[]>;
  /** Waits until the server accepts connections again (after startCommand). */
  waitReady(timeoutMs?: number): Promise<void>;
  /** Stops the server (if running) and removes rundir and, if we made it, the datadir. */
  stop(): Promise<void>;
}

/** How to start a server. */
export interface StartMariadbOptions {
  /** Data directory; made and initialised when empty or missing. Default: a temp dir. */
  datadir?: string;
  /** Server id, for replication. Default 1. */
  serverId?: number;
  /** Binary logging (--log-bin). Default true. */
  logBin?: boolean;
  /** More mariadbd arguments. */
  extraArgs?: string[];
}

const MARIADBD_PATHS = ["/usr/sbin/mariadbd", "/usr/bin/mariadbd", "/usr/sbin/mysqld"];

function findProgram(paths: readonly string[]): string | undefined {
  for (const path of paths) {
    try {
      if (Deno.statSync(path).isFile) return path;
    } catch {
      // not there
    }
  }
  return undefined;
}

async function run(
  cmd: string,
  args: string[],
  options: { stdin?: string } = {},
): Promise<string> {
  const child = new Deno.Command(cmd, {
    args,
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(options.stdin));
    await writer.close();
  }
  const out = await child.output();
  const decoder = new TextDecoder();
  if (!out.success) {
    throw new Error(
      `${cmd} ${args.join(" ")} failed (${out.code}): ${decoder.decode(out.stderr).trim()}`,
    );
  }
  return decoder.decode(out.stdout);
}

/**
 * True when a MariaDB server can be started here. As root, installs Debian's mariadb-server
 * when it is missing.
 */
export async function mariadbAvailable(): Promise<boolean> {
  if (findProgram(MARIADBD_PATHS) && findProgram(["/usr/bin/mariadb-install-db"])) return true;
  if (!isRoot()) return false;
  try {
    await run("apt-get", ["update"]);
    await run("apt-get", ["install", "-y", "--no-install-recommends", "mariadb-server"]);
  } catch (error) {
    console.warn(`could not install mariadb-server: ${error}`);
    return false;
  }
  return findProgram(MARIADBD_PATHS) !== undefined;
}

/**
 * What {@linkcode startMariadb} needs (see {@linkcode mariadbAvailable}). Await it at the top of
 * a test file, before registering the tests.
 */
export async function mariadbRequirement(): Promise<Requirement> {
  return { available: await mariadbAvailable(), reason: "needs mariadb-server (Debian)" };
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

function shellQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
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

function readPid(pidFile: string): number | undefined {
  try {
    const pid = Number(Deno.readTextFileSync(pidFile).trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** True while `pid` exists at all, zombie or not. */
async function exists(pid: number): Promise<boolean> {
  const out = await new Deno.Command("ps", { args: ["-o", "stat=", "-p", String(pid)] }).output();
  return out.success;
}

/** True while `pid` runs (a zombie counts as gone); `ps`, since /proc needs --allow-all. */
async function alive(pid: number): Promise<boolean> {
  const out = await new Deno.Command("ps", { args: ["-o", "stat=", "-p", String(pid)] }).output();
  const state = new TextDecoder().decode(out.stdout).trim();
  return out.success && state !== "" && !state.startsWith("Z");
}

/**
 * Starts a private MariaDB with its own datadir, socket and port, binary logging on, root
 * without password over the socket, and waits until it accepts connections.
 *
 * @example
 * ```ts
 * const server = await startMariadb();
 * try { console.log(await server.sql("SELECT VERSION()")); } finally { await server.stop(); }
 * ```
 */
export async function startMariadb(options: StartMariadbOptions = {}): Promise<MariadbServer> {
  const mariadbd = findProgram(MARIADBD_PATHS);
  if (!mariadbd) throw new Error("mariadbd is not installed");
  const rundir = await Deno.makeTempDir({ prefix: "ecs-mariadb-run-" });
  const ownDatadir = options.datadir === undefined;
  const datadir = options.datadir ?? await Deno.makeTempDir({ prefix: "ecs-mariadb-data-" });
  const socket = `${rundir}/mysqld.sock`;
  const pidFile = `${rundir}/mysqld.pid`;
  const port = freePort();
  const serverId = options.serverId ?? 1;

  if (isEmptyDir(datadir)) {
    await Deno.mkdir(datadir, { recursive: true });
    await run("mariadb-install-db", [
      "--no-defaults",
      "--user=root",
      `--datadir=${datadir}`,
      "--auth-root-authentication-method=normal",
      "--skip-test-db",
      "--skip-name-resolve",
      // Its own temporary directory: bootstraps of parallel test runs never share /tmp's names.
      `--tmpdir=${rundir}`,
    ]);
  }

  const args = [
    "--no-defaults",
    "--user=root",
    `--datadir=${datadir}`,
    `--socket=${socket}`,
    `--pid-file=${pidFile}`,
    `--port=${port}`,
    "--bind-address=127.0.0.1",
    `--log-error=${rundir}/error.log`,
    `--tmpdir=${rundir}`,
    `--server-id=${serverId}`,
    "--skip-name-resolve",
    "--innodb-buffer-pool-size=32M",
    "--performance-schema=OFF",
    ...(options.logBin ?? true ? [`--log-bin=${datadir}/binlog`] : []),
    ...(options.extraArgs ?? []),
  ];
  const startCommand = `nohup ${[mariadbd, ...args].map(shellQuote).join(" ")} ` +
    `>>${shellQuote(`${rundir}/stdout.log`)} 2>&1 </dev/null &`;
  // Stops by pid file and waits until the process is gone (systemctl stop waits too).
  const stopCommand = `pid=$(cat ${shellQuote(pidFile)}) && kill "$pid" && ` +
    `for i in $(seq 600); do s=$(ps -o stat= -p "$pid") || exit 0; ` +
    `case "$s" in Z*) exit 0;; esac; sleep 0.1; done; exit 1`;

  const client = (query: string, columnNames = false) =>
    run("mariadb", [
      "--no-defaults",
      `--socket=${socket}`,
      "--user=root",
      "--batch",
      ...(columnNames ? [] : ["--skip-column-names"]),
      "--raw",
    ], { stdin: query });

  async function rows(query: string): Promise<Record<string, string>[]> {
    const [header, ...lines] = (await client(query, true)).split("\n").filter((l) => l !== "");
    if (header === undefined) return [];
    const names = header.split("\t");
    return lines.map((line) => {
      const values = line.split("\t");
      return Object.fromEntries(names.map((name, i) => [name, values[i] ?? ""]));
    });
  }

  async function waitReady(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    while (Date.now() < deadline) {
      try {
        await client("SELECT 1");
        return;
      } catch (error) {
        last = error;
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    let log = "";
    try {
      log = Deno.readTextFileSync(`${rundir}/error.log`).split("\n").slice(-20).join("\n");
    } catch {
      // no log
    }
    throw new Error(`MariaDB did not become ready: ${last}\n${log}`);
  }

  async function stop(): Promise<void> {
    const pid = readPid(pidFile);
    if (pid !== undefined && await alive(pid)) {
      Deno.kill(pid, "SIGTERM");
      const deadline = Date.now() + 30_000;
      while (await alive(pid) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      if (await alive(pid)) Deno.kill(pid, "SIGKILL");
      while (await alive(pid)) await new Promise((resolve) => setTimeout(resolve, 50));
      // An orphaned server is reaped by init, at its own pace; wait for that too, so that no
      // <defunct> mariadbd is left when the test ends.
      const reaped = Date.now() + 15_000;
      while (await exists(pid) && Date.now() < reaped) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    await Deno.remove(rundir, { recursive: true }).catch(() => {});
    if (ownDatadir) await Deno.remove(datadir, { recursive: true }).catch(() => {});
  }

  // Should the test runner die before stop(), do not leave the server behind.
  globalThis.addEventListener("unload", () => {
    const pid = readPid(pidFile);
    if (pid === undefined) return;
    try {
      Deno.kill(pid, "SIGTERM");
    } catch {
      // already gone
    }
  });
  await run("sh", ["-c", startCommand]);
  try {
    await waitReady();
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    datadir,
    rundir,
    socket,
    port,
    pidFile,
    stopCommand,
    startCommand,
    sql: (query: string) => client(query),
    rows,
    waitReady,
    stop,
  };
}

/**
 * Starts a replica of `primary` (a second server with server id 2, replicating from the
 * primary's first binary log over TCP as user `repl`).
 */
export async function startReplica(
  primary: MariadbServer,
  options: StartMariadbOptions = {},
): Promise<MariadbServer> {
  await primary.sql(
    "CREATE USER IF NOT EXISTS 'repl'@'127.0.0.1' IDENTIFIED BY 'repl-secret';" +
      "GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1';",
  );
  const firstLog = (await primary.sql("SHOW BINARY LOGS")).split("\n")[0].split("\t")[0];
  const replica = await startMariadb({ serverId: 2, ...options });
  try {
    await replica.sql(
      `CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=${primary.port}, ` +
        `MASTER_USER='repl', MASTER_PASSWORD='repl-secret', ` +
        `MASTER_LOG_FILE='${firstLog}', MASTER_LOG_POS=4, MASTER_USE_GTID=no; START SLAVE;`,
    );
  } catch (error) {
    await replica.stop();
    throw error;
  }
  return replica;
}

/** Waits until `replica` has executed everything `primary` has binary-logged so far. */
export async function waitReplicaSynced(
  primary: MariadbServer,
  replica: MariadbServer,
  timeoutMs = 30_000,
): Promise<void> {
  const [file, pos] = (await primary.sql("SHOW MASTER STATUS")).split("\t");
  const result = await replica.sql(
    `SELECT MASTER_POS_WAIT('${file}', ${Number(pos)}, ${Math.ceil(timeoutMs / 1000)})`,
  );
  if (result.trim() === "NULL" || Number(result.trim()) < 0) {
    const status = await replica.rows("SHOW SLAVE STATUS");
    throw new Error(`replica did not catch up with ${file}:${pos}: ${JSON.stringify(status)}`);
  }
}

/**
 * Starts `sql` in its own client session (a writer, a long query) beside what a test does;
 * `done` settles when it completes, `finished()` tells whether it has.
 *
 * @example
 * ```ts
 * const writer = session(db, "INSERT INTO app.t (v) VALUES ('during')");
 * await writer.done;
 * ```
 */
export function session(
  db: MariadbServer,
  sql: string,
): { done: Promise<string>; finished: () => boolean } {
  let finished = false;
  const done = db.sql(sql).finally(() => finished = true);
  return { done, finished: () => finished };
}
