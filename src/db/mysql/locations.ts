/** Where a MySQL or MariaDB server keeps its files: data, redo log, binary and relay logs. */
import { dirname, isAbsolute, resolve } from "node:path";
import type { DatabaseFacts, DatabaseFile } from "../../types/side_effects.ts";

/** The server variables that name directories (or, for the logs, a base name in one). */
export const LOCATION_VARIABLES = [
  "datadir",
  "innodb_data_home_dir",
  "innodb_log_group_home_dir",
  "log_bin_basename",
  "relay_log_basename",
] as const;

/** The statement that reads them; no privilege needed, unknown names are simply absent. */
export const LOCATIONS_SQL = `SHOW GLOBAL VARIABLES WHERE Variable_name IN (${
  LOCATION_VARIABLES.map((name) => `'${name}'`).join(", ")
})`;

/**
 * The directories named by the rows of {@linkcode LOCATIONS_SQL}: relative ones resolved
 * against datadir (as the server does), the logs' base names reduced to their directory, empty
 * values (InnoDB's "the datadir") left out.
 *
 * @example
 * ```ts
 * mysqlLocations([{ Variable_name: "datadir", Value: "/data/mysql/" },
 *   { Variable_name: "log_bin_basename", Value: "/logs/binlog" }]);
 * // [{ what: "MySQL datadir", path: "/data/mysql" },
 * //  { what: "MySQL log_bin_basename", path: "/logs" }]
 * ```
 */
export function mysqlLocations(rows: readonly Record<string, unknown>[]): DatabaseFile[] {
  const values = new Map<string, string>();
  for (const row of rows) {
    const name = String(row.Variable_name ?? "").toLowerCase();
    const value = row.Value === null || row.Value === undefined ? "" : String(row.Value).trim();
    if (value !== "") values.set(name, value);
  }
  const datadir = values.get("datadir");
  const files: DatabaseFile[] = [];
  for (const name of LOCATION_VARIABLES) {
    const value = values.get(name);
    if (value === undefined) continue;
    let path = isAbsolute(value) ? value : datadir ? resolve(datadir, value) : undefined;
    if (path === undefined) continue;
    if (name.endsWith("_basename")) path = dirname(path);
    files.push({ what: `MySQL ${name}`, path: resolve(path) });
  }
  return files;
}

/**
 * The facts of the database tag from rows of {@linkcode LOCATIONS_SQL} with `version` added:
 * MariaDB or MySQL, the version's digits, datadir and log_bin_basename (absolute).
 *
 * @example
 * ```ts
 * mysqlFacts([{ Variable_name: "version", Value: "10.11.6-MariaDB-0+deb12u1" },
 *   { Variable_name: "datadir", Value: "/var/lib/mysql/" }]);
 * // { engine: "mariadb", version: "10.11.6", dataDir: "/var/lib/mysql" }
 * ```
 */
export function mysqlFacts(rows: readonly Record<string, unknown>[]): DatabaseFacts {
  const value = (name: string) => {
    const row = rows.find((r) => String(r.Variable_name ?? "").toLowerCase() === name);
    const text = row?.Value === null || row?.Value === undefined ? "" : String(row.Value).trim();
    return text === "" ? undefined : text;
  };
  const version = value("version") ?? "";
  const datadir = value("datadir");
  const logBin = value("log_bin_basename");
  return {
    engine: /mariadb/i.test(version) ? "mariadb" : "mysql",
    version: /^\d+(\.\d+)*/.exec(version)?.[0] ?? version,
    ...(datadir ? { dataDir: resolve(datadir) } : {}),
    ...(logBin && (isAbsolute(logBin) || datadir)
      ? { logBin: resolve(datadir ?? "/", logBin) }
      : {}),
  };
}
