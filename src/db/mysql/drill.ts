/** The restore drill's MySQL/MariaDB part: the installed server, the throwaway server's command line, and the checks of the restored position. */
import { join } from "node:path";
import { connect, rows } from "./connection.ts";
import type { DatabaseTag } from "../../types/restore_tags.ts";
import type { Logger } from "../../util/log.ts";

/** One check of the drill: what was checked, whether it passed, and in words. */
export interface DrillCheck {
  /** Short name, e.g. "binary log". */
  name: string;
  /** Passed. */
  ok: boolean;
  /** One line: what was found (and, failing, the likely cause). */
  detail: string;
}

const CANDIDATES = ["/usr/sbin/mariadbd", "/usr/sbin/mysqld", "/usr/libexec/mysqld"];

/**
 * The installed server binary whose version has the tag's major.minor, or a reason why none
 * does (to refuse the drill before anything is created).
 */
export async function findMysqlServer(
  tag: DatabaseTag,
): Promise<{ path: string; version: string } | { problem: string }> {
  const want = tag.version.split(".").slice(0, 2).join(".");
  const seen: string[] = [];
  for (const path of CANDIDATES) {
    let text: string;
    try {
      const out = await new Deno.Command(path, { args: ["--version"], stdin: "null" }).output();
      text = new TextDecoder().decode(out.stdout);
    } catch {
      continue;
    }
    const version = /Ver\s+(\d+\.\d+\.\d+)/.exec(text)?.[1];
    if (!version) continue;
    seen.push(`${path} ${version}`);
    if (version.split(".").slice(0, 2).join(".") === want) return { path, version };
  }
  return {
    problem: `the snapshots hold ${tag.engine} ${tag.version} data, and no ${tag.engine} ${want} ` +
      `server is installed here (${seen.join(", ") || `none of ${CANDIDATES.join(", ")}`})`,
  };
}

/** Where the throwaway server keeps what is its own: socket, pid file, temp dir, error log. */
export function mysqlWorkFiles(
  workDir: string,
): { socket: string; pidFile: string; errorLog: string } {
  return {
    socket: join(workDir, "mysqld.sock"),
    pidFile: join(workDir, "mysqld.pid"),
    errorLog: join(workDir, "mysqld.err"),
  };
}

/**
 * The throwaway server's command line: no option file read (--no-defaults), no network, no
 * replication, its own socket, pid file and temp dir, the binary log where the live one was
 * (so that its crash recovery resolves prepared transactions from it, as a real restore would).
 */
export function mysqlServerCommand(
  serverPath: string,
  tag: DatabaseTag,
  workDir: string,
): string[] {
  const files = mysqlWorkFiles(workDir);
  return [
    serverPath,
    "--no-defaults",
    "--user=root",
    `--datadir=${tag.dataDir}`,
    ...(tag.logBin ? [`--log-bin=${tag.logBin}`] : []),
    `--socket=${files.socket}`,
    `--pid-file=${files.pidFile}`,
    `--tmpdir=${workDir}`,
    `--log-error=${files.errorLog}`,
    "--skip-networking",
    "--skip-slave-start",
    "--skip-grant-tables",
    "--server-id=1",
    "--event-scheduler=OFF",
  ];
}

/**
 * The likely cause of a server that did not start, from its error log.
 *
 * @example
 * ```ts
 * mysqlStartFailure("[ERROR] Found 1 prepared transactions! ... binlog", {
 *   engine: "mariadb",
 *   version: "10.11.6",
 *   logBin: "/logs/binlog",
 * });
 * ```
 */
export function mysqlStartFailure(errorLog: string, tag: DatabaseTag): string {
  const lines = errorLog.split("\n").filter((l) => /\[ERROR\]|error|fatal/i.test(l));
  const last = (lines.at(-1) ?? errorLog.trim().split("\n").at(-1) ?? "").replace(
    /^\S+\s+\S+\s+\d+\s+/,
    "",
  );
  if (/prepared transaction/i.test(errorLog) && /binlog|binary log|tc log/i.test(errorLog)) {
    return `${tag.engine} found prepared transactions it cannot resolve without the binary ` +
      `log (was the binary-log volume in the snapshot set?): ${last}`;
  }
  if (/binlog|binary log|\.index/i.test(last)) {
    return `${last} (the binary log ${tag.logBin} is missing or damaged on the restored files)`;
  }
  return last || "no error in its log";
}

/**
 * Checks the restored server against the position recorded at the lock: the binary log that
 * was current then ends exactly at the recorded position (a shorter one lost commits, a longer
 * one holds writes after the lock), and the GTID position is the recorded one.
 */
export async function checkMysqlPosition(
  socket: string,
  tag: DatabaseTag,
  log: Logger,
): Promise<DrillCheck[]> {
  const conn = await connect(
    { host: "localhost", port: 0, socketPath: socket, user: "root", files: [] },
    { purpose: "drill", log, timeoutMs: 10_000 },
  );
  try {
    const checks: DrillCheck[] = [];
    const [version] = await rows(conn, "SELECT VERSION() AS v");
    checks.push({ name: "server", ok: true, detail: `${version.v} answers on the restored files` });
    if (tag.binlog) {
      const logs = await rows(conn, "SHOW BINARY LOGS");
      const recorded = logs.find((r) => r.Log_name === tag.binlog!.file);
      const at = `${tag.binlog.file}:${tag.binlog.position}`;
      if (!recorded) {
        checks.push({
          name: "binary log",
          ok: false,
          detail: `${tag.binlog.file} is not among the restored binary logs (${
            logs.map((r) => r.Log_name).join(", ") || "none"
          }): the binary-log volume was not in the set, or was snapshotted at another time`,
        });
      } else {
        const size = Number(recorded.File_size);
        checks.push({
          name: "binary log",
          ok: size === tag.binlog.position,
          detail: size === tag.binlog.position
            ? `ends at the recorded ${at}`
            : size > tag.binlog.position
            ? `${tag.binlog.file} ends at ${size}, past the recorded ${at}: written after the ` +
              `lock (the snapshot was not taken while the database was locked and frozen)`
            : `${tag.binlog.file} ends at ${size}, before the recorded ${at}: commits are ` +
              `missing (the binary-log volume was snapshotted before the lock)`,
        });
      }
    }
    if (tag.gtid !== undefined && tag.engine === "mariadb") {
      const [row] = await rows(conn, "SELECT @@GLOBAL.gtid_binlog_pos AS pos");
      const pos = String(row.pos ?? "");
      checks.push({
        name: "GTID",
        ok: pos === tag.gtid,
        detail: pos === tag.gtid
          ? `gtid_binlog_pos is the recorded ${tag.gtid}`
          : `gtid_binlog_pos is ${pos || "empty"}, the recorded one ${tag.gtid}`,
      });
    }
    return checks;
  } finally {
    await conn.end().catch(() => conn.destroy());
  }
}
