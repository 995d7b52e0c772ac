/**
 * The tags that make a run's snapshots describe themselves for a restore (the drill reads
 * them): the volume set and each volume's file system, and the database with its position.
 */
import { characters, MAX_TAG_VALUE } from "./tags.ts";

/** Where one volume of a run was mounted, and what file system it held. */
export interface VolumeLayout {
  /** The volume; only written in a `--multi-volume` run, whose snapshots share one tag set. */
  volumeId?: string;
  /** The file system type, e.g. "xfs". */
  fsType: string;
  /** The mount point, e.g. "/var/lib/mysql". */
  mountPoint: string;
}

/** What the volumes tag says. */
export interface VolumesTag {
  /** How many volumes the run snapshotted. */
  count: number;
  /** Where they were mounted; a layout without volumeId is the tagged snapshot's own volume. */
  layouts: VolumeLayout[];
}

/** A database, as the restore needs to know it; learnt after connecting. */
export interface DatabaseFacts {
  /** The server kind. */
  engine: "mysql" | "mariadb" | "postgresql";
  /** The server version, digits only, e.g. "10.11.6" or "15.8". */
  version: string;
  /** The data directory. */
  dataDir?: string;
  /** MySQL's log_bin_basename, e.g. "/var/log/mysql/binlog"; none when the log is off. */
  logBin?: string;
}

/** What the database tag says: the facts and the position recorded at the lock. */
export interface DatabaseTag extends DatabaseFacts {
  /** The binary-log file and position at the lock (MySQL/MariaDB). */
  binlog?: { file: string; position: number };
  /** The GTID position at the lock, when the server has one. */
  gtid?: string;
  /** PostgreSQL's LSN at the freeze. */
  lsn?: string;
  /** PostgreSQL's timeline at the freeze. */
  timeline?: number;
}

/** Escapes space, tab, newline and backslash as /proc/self/mountinfo does. */
function escapeField(text: string): string {
  return text.replace(/[\\ \t\n]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, "0")}`);
}

function unescapeField(text: string): string {
  return text.replace(
    /\\([0-7]{3})/g,
    (_, octal: string) => String.fromCharCode(parseInt(octal, 8)),
  );
}

/**
 * The volumes tag's value: the count, then `fs:mountpoint` (or `vol-...=fs:mountpoint` for
 * each volume of a multi-volume run). Undefined layouts are left out (volumes named by id).
 *
 * @example
 * ```ts
 * volumesTagValue(2, [{ fsType: "xfs", mountPoint: "/var/lib/mysql" }]); // "2 xfs:/var/lib/mysql"
 * ```
 */
export function volumesTagValue(count: number, layouts: readonly VolumeLayout[]): string {
  const entries = layouts.map((l) =>
    `${l.volumeId ? `${l.volumeId}=` : ""}${escapeField(l.fsType)}:${escapeField(l.mountPoint)}`
  );
  return [String(count), ...entries].join(" ");
}

/**
 * Reads a volumes tag; undefined when it is not one.
 *
 * @example
 * ```ts
 * parseVolumesTag("2 xfs:/data"); // { count: 2, layouts: [{ fsType: "xfs", mountPoint: "/data" }] }
 * ```
 */
export function parseVolumesTag(value: string): VolumesTag | undefined {
  const [count, ...entries] = value.trim().split(" ");
  if (!/^[1-9]\d*$/.test(count)) return undefined;
  const layouts: VolumeLayout[] = [];
  for (const entry of entries) {
    const match = /^(?:(vol-[0-9a-f]+)=)?([^:=]+):(\/.*)$/.exec(entry);
    if (!match) return undefined;
    layouts.push({
      ...(match[1] ? { volumeId: match[1] } : {}),
      fsType: unescapeField(match[2]),
      mountPoint: unescapeField(match[3]),
    });
  }
  return { count: Number(count), layouts };
}

/**
 * The database tag's value, and what had to be left out to stay within EC2's 256 characters
 * (first the GTID position, then the paths). The fields are separated by spaces, paths escaped.
 *
 * @example
 * ```ts
 * const tag = {} as DatabaseTag;
 * databaseTagValue({
 *   engine: "mariadb",
 *   version: "10.11.6",
 *   dataDir: "/var/lib/mysql",
 *   logBin: "/logs/binlog",
 *   binlog: { file: "binlog.000003", position: 1234 },
 * }).value;
 * // "mariadb 10.11.6 datadir=/var/lib/mysql log-bin=/logs/binlog binlog=binlog.000003:1234"
 * ```
 */
export function databaseTagValue(tag: DatabaseTag): { value: string; dropped: string[] } {
  const head = [tag.engine, escapeField(tag.version)];
  const paths = [
    ...(tag.dataDir ? [`datadir=${escapeField(tag.dataDir)}`] : []),
    ...(tag.logBin ? [`log-bin=${escapeField(tag.logBin)}`] : []),
  ];
  const position = [
    ...(tag.binlog ? [`binlog=${escapeField(tag.binlog.file)}:${tag.binlog.position}`] : []),
    ...(tag.lsn ? [`lsn=${tag.lsn}`, `timeline=${tag.timeline ?? 0}`] : []),
  ];
  const gtid = tag.gtid ? [`gtid=${tag.gtid.replace(/\s+/g, "")}`] : [];
  const fits = (parts: string[]) => characters(parts.join(" ")) <= MAX_TAG_VALUE;
  const tries: [string[], string[]][] = [
    [[...head, ...paths, ...position, ...gtid], []],
    [[...head, ...paths, ...position], gtid.length ? ["the GTID position"] : []],
    [[...head, ...position], [...(gtid.length ? ["the GTID position"] : []), "the paths"]],
  ];
  for (const [parts, dropped] of tries) {
    if (fits(parts)) return { value: parts.join(" "), dropped };
  }
  return { value: head.join(" "), dropped: ["the position", "the paths"] };
}

/**
 * Reads a database tag; undefined when it is not one.
 *
 * @example
 * ```ts
 * parseDatabaseTag("postgresql 15.8 datadir=/pg lsn=0/3000060 timeline=1")?.lsn; // "0/3000060"
 * ```
 */
export function parseDatabaseTag(value: string): DatabaseTag | undefined {
  const [engine, version, ...fields] = value.trim().split(" ");
  if (engine !== "mysql" && engine !== "mariadb" && engine !== "postgresql") return undefined;
  if (!version) return undefined;
  const tag: DatabaseTag = { engine, version: unescapeField(version) };
  for (const field of fields) {
    const at = field.indexOf("=");
    const [key, raw] = at < 0 ? [field, ""] : [field.slice(0, at), field.slice(at + 1)];
    const text = unescapeField(raw);
    if (key === "datadir") tag.dataDir = text;
    else if (key === "log-bin") tag.logBin = text;
    else if (key === "gtid") tag.gtid = text;
    else if (key === "lsn") tag.lsn = text;
    else if (key === "timeline") tag.timeline = Number(text);
    else if (key === "binlog") {
      const colon = text.lastIndexOf(":");
      if (colon < 0) return undefined;
      tag.binlog = { file: text.slice(0, colon), position: Number(text.slice(colon + 1)) };
    }
  }
  return tag;
}
