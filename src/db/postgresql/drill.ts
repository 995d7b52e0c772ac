/** The restore drill's PostgreSQL part: the installed server, the throwaway server's command line and files, and the checks of the replayed WAL position. */
import { join } from "node:path";
import type { DatabaseTag } from "../../types/restore_tags.ts";
import type { DrillCheck } from "../mysql/drill.ts";

/** The port the throwaway server's socket is named after (no TCP: listen_addresses is empty). */
export const DRILL_PG_PORT = 5432;

/**
 * The installed `postgres` of the tag's major version, or why there is none.
 *
 * @example
 * ```ts
 * await findPostgresServer({ engine: "postgresql", version: "15.8" });
 * // { path: "/usr/lib/postgresql/15/bin/postgres", version: "15.8" }
 * ```
 */
export async function findPostgresServer(
  tag: DatabaseTag,
): Promise<{ path: string; version: string } | { problem: string }> {
  const major = tag.version.split(".")[0];
  const candidates = [
    `/usr/lib/postgresql/${major}/bin/postgres`,
    `/usr/pgsql-${major}/bin/postgres`,
  ];
  for (const path of candidates) {
    try {
      const out = await new Deno.Command(path, { args: ["--version"], stdin: "null" }).output();
      const version = /(\d+(?:\.\d+)*)/.exec(new TextDecoder().decode(out.stdout))?.[1];
      if (version?.split(".")[0] === major) return { path, version };
    } catch { /* not there */ }
  }
  return {
    problem: `the snapshots hold PostgreSQL ${tag.version} data, and no PostgreSQL ${major} ` +
      `server is installed here (looked for ${candidates.join(", ")})`,
  };
}

/**
 * Writes the throwaway server's own configuration into `workDir` (the live one is not read):
 * an empty postgresql.conf, local trust authentication, no ident map.
 */
export async function writePostgresFiles(workDir: string): Promise<void> {
  await Deno.writeTextFile(join(workDir, "postgresql.conf"), "");
  await Deno.writeTextFile(join(workDir, "pg_hba.conf"), "local all all trust\n");
  await Deno.writeTextFile(join(workDir, "pg_ident.conf"), "");
}

/**
 * The throwaway server's command line, run inside the namespace: it refuses to start when
 * pg_wal or a tablespace leads off the restored volumes (to the live system's files), gives the
 * work directory to
 * the data directory's owner, removes the restored postmaster.pid (the live server's), and
 * becomes `postgres` as that owner: no network, its own socket directory and configuration,
 * no archiving, no replication, no preloaded libraries.
 */
export function postgresServerCommand(
  serverPath: string,
  tag: DatabaseTag,
  workDir: string,
  mountPoints: readonly string[],
): string[] {
  // $0 the data directory, $1 the work directory, $2 the restored mount points (one a line).
  const script = `set -e
mounts="$2"
for p in "$0/pg_wal" "$0"/pg_tblspc/*; do
  [ -e "$p" ] || [ -L "$p" ] || continue
  r=$(realpath -m "$p"); ok=
  IFS='
'
  for m in $mounts; do case "$r/" in "$m"/*) ok=1 ;; esac; done
  unset IFS
  [ -n "$ok" ] || { echo "FATAL: $p leads to $r, on none of the restored volumes"; exit 1; }
done
owner=$(stat -c %u:%g "$0")
chown "$owner" "$1" "$1"/*
rm -f "$0/postmaster.pid"
shift 2
exec setpriv --reuid="\${owner%:*}" --regid="\${owner#*:}" --clear-groups --pdeathsig KILL -- "$@"`;
  const settings = {
    config_file: join(workDir, "postgresql.conf"),
    hba_file: join(workDir, "pg_hba.conf"),
    ident_file: join(workDir, "pg_ident.conf"),
    listen_addresses: "",
    unix_socket_directories: workDir,
    port: String(DRILL_PG_PORT),
    archive_mode: "off",
    primary_conninfo: "",
    restore_command: "",
    hot_standby: "on",
    shared_preload_libraries: "",
    external_pid_file: "",
  };
  return [
    "/bin/sh",
    "-c",
    script,
    tag.dataDir!,
    workDir,
    mountPoints.join("\n"),
    serverPath,
    "-D",
    tag.dataDir!,
    ...Object.entries(settings).flatMap(([k, v]) => ["-c", `${k}=${v}`]),
  ];
}

/** The likely cause of a server that did not start, from its log. */
export function postgresStartFailure(log: string): string {
  const lines = log.split("\n").filter((l) => /FATAL|PANIC|ERROR/.test(l));
  const last = lines.at(-1) ?? log.trim().split("\n").at(-1) ?? "";
  if (/on none of the restored volumes/.test(last)) {
    // Not started: it would have used the live system's files there.
    return `${last.replace(/^FATAL:\s*/, "")}: its volume was not in the snapshot set`;
  }
  if (/pg_wal|WAL|checkpoint record/i.test(last)) {
    return `${last} (the WAL is missing or damaged on the restored files: was the pg_wal ` +
      "volume in the snapshot set?)";
  }
  return last || "no error in its log";
}

/**
 * Checks the restored server against the position recorded at the freeze: replay reached at
 * least the recorded LSN, on the recorded timeline.
 */
export async function checkPostgresPosition(
  workDir: string,
  user: string,
  tag: DatabaseTag,
): Promise<DrillCheck[]> {
  const { default: pg } = await import("pg");
  const client = new pg.Client({ host: workDir, port: DRILL_PG_PORT, user, database: "postgres" });
  client.on("error", () => {});
  await client.connect();
  try {
    const { rows } = await client.query(
      "SELECT version() AS version, pg_is_in_recovery() AS standby, " +
        "(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() " +
        "ELSE pg_current_wal_lsn() END)::text AS lsn, " +
        "(SELECT timeline_id FROM pg_control_checkpoint()) AS timeline",
    );
    const row = rows[0];
    const checks: DrillCheck[] = [{
      name: "server",
      ok: true,
      detail: `${String(row.version).split(",")[0]} answers on the restored files`,
    }];
    if (tag.lsn) {
      const { rows: [cmp] } = await client.query(
        "SELECT pg_wal_lsn_diff($1::pg_lsn, $2::pg_lsn) AS diff",
        [row.lsn, tag.lsn],
      );
      const ok = Number(cmp.diff) >= 0;
      checks.push({
        name: "WAL",
        ok,
        detail: ok
          ? `replay reached ${row.lsn}, at or past the recorded ${tag.lsn}`
          : `replay ended at ${row.lsn}, before the recorded ${tag.lsn}: WAL is missing (the ` +
            "pg_wal volume was snapshotted before the freeze, or not at all)",
      });
    }
    if (tag.timeline !== undefined) {
      const ok = Number(row.timeline) === tag.timeline;
      checks.push({
        name: "timeline",
        ok,
        detail: ok
          ? `timeline ${row.timeline}, as recorded`
          : `timeline ${row.timeline}, the recorded one ${tag.timeline}`,
      });
    }
    return checks;
  } finally {
    await client.end().catch(() => {});
  }
}

/** Whether the throwaway server accepts connections on its socket. */
export async function postgresAccepting(workDir: string, user: string): Promise<boolean> {
  const { default: pg } = await import("pg");
  const client = new pg.Client({
    host: workDir,
    port: DRILL_PG_PORT,
    user,
    database: "postgres",
    connectionTimeoutMillis: 2_000,
  });
  client.on("error", () => {});
  try {
    await client.connect();
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}
