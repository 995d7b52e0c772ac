/** The server version the restored files themselves record (PostgreSQL's PG_VERSION, MariaDB's mysql_upgrade_info), checked against the version the tag names. */
import { join } from "node:path";
import type { DrillCheck } from "../db/mysql/drill.ts";
import type { DatabaseTag } from "../types/restore_tags.ts";

/** What is compared: PostgreSQL's major version; MySQL's and MariaDB's major.minor. */
function release(tag: DatabaseTag, version: string): string {
  const parts = version.split(".");
  return tag.engine === "postgresql" && Number(parts[0]) >= 10
    ? parts[0]
    : parts.slice(0, 2).join(".");
}

/** The first bytes of a plain file (never a symlink, a FIFO or a device: the data is not trusted). */
async function readSmall(path: string): Promise<string | undefined> {
  try {
    if (!(await Deno.lstat(path)).isFile) return undefined;
    const file = await Deno.open(path, { read: true });
    try {
      const buffer = new Uint8Array(64);
      const n = await file.read(buffer);
      return new TextDecoder().decode(buffer.subarray(0, n ?? 0));
    } finally {
      file.close();
    }
  } catch {
    return undefined;
  }
}

/**
 * The "data version" check: reads, through the server's own mount namespace
 * (`/proc/PID/root`), the version the restored data directory records, and compares it with
 * the tag's. A data directory that records none (MySQL 8 writes no mysql_upgrade_info) passes,
 * saying so.
 *
 * @example
 * ```ts
 * const check = await checkDataVersion(
 *   { engine: "postgresql", version: "16.4", dataDir: "/pg" },
 *   Deno.pid,
 * );
 * console.log(check.ok, check.detail);
 * ```
 */
export async function checkDataVersion(tag: DatabaseTag, pid: number): Promise<DrillCheck> {
  const name = "data version";
  const file = tag.engine === "postgresql" ? "PG_VERSION" : "mysql_upgrade_info";
  const text = tag.dataDir ? await readSmall(join(`/proc/${pid}/root`, tag.dataDir, file)) : "";
  const version = text === undefined ? undefined : /^\s*(\d+(?:\.\d+){0,2})/.exec(text)?.[1];
  if (!version) {
    return { name, ok: true, detail: `the data directory records no version (no ${file})` };
  }
  const want = release(tag, tag.version);
  const found = release(tag, version);
  return found === want
    ? { name, ok: true, detail: `${file} says ${version}, as the tag (${tag.version})` }
    : {
      name,
      ok: false,
      detail: `${file} says ${version} and the tag ${tag.engine} ${tag.version}: the tag does ` +
        "not describe these files",
    };
}
