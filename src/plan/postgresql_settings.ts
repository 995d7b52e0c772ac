/** PostgreSQL connection settings as libpq resolves them: options, service file, PG* variables, ~/.pgpass. */

import ini from "ini";
import { userInfo } from "node:os";
import { join } from "node:path";
import { UsageError } from "../util/errors.ts";
import { readUserFile } from "../util/files.ts";
import type { Options } from "../types/options.ts";
import type { PostgresqlSettings } from "../types/database_plans.ts";

/** The options this module reads. */
export type PostgresqlOptions = Pick<
  Options,
  "postgresqlHost" | "postgresqlPort" | "postgresqlUsername" | "postgresqlDbname"
>;

/** What {@linkcode resolvePostgresqlSettings} reads besides the options; all have defaults. */
export interface PostgresqlSettingsInputs {
  /** --postgresql-host, -port, -username, -dbname. */
  options: PostgresqlOptions;
  /** The environment (PG* variables). */
  env: Record<string, string | undefined>;
  /** The home directory (~/.pgpass, ~/.pg_service.conf). */
  home: string | undefined;
  /** The login name (libpq's default user); default: the process's user. */
  loginName?: string;
  /** True when a file exists; default: stat. For finding the default socket. */
  exists?: (path: string) => boolean;
  /** Debug lines (which files were read). */
  debug?: (message: string) => void;
  /** The socket directories of the servers' configuration; default {@linkcode serverSocketDirs}. */
  serverSocketDirs?: (port: number) => string[];
}

/**
 * Socket directories tried when no host is given, after those the server's own configuration
 * names (serverSocketDirs): Debian's and the distributions'. Not upstream's /tmp: another user
 * could listen there (a socket in /tmp is used only when named).
 */
export const SOCKET_DIRS = ["/var/run/postgresql", "/run/postgresql"] as const;

/** The directories libpq builds in as its default (Debian's, upstream's): "localhost" in ~/.pgpass. */
const LIBPQ_DEFAULT_DIRS = ["/var/run/postgresql", "/run/postgresql", "/tmp"];

/**
 * The socket directories the servers on this machine are configured with:
 * `unix_socket_directories` of /etc/postgresql/VERSION/CLUSTER/postgresql.conf (Debian's
 * layout), for the clusters on `port` (or with no port set, 5432). Unreadable files add none.
 *
 * @example
 * ```ts
 * serverSocketDirs(5432); // ["/var/run/postgresql"]
 * ```
 */
export function serverSocketDirs(port: number, root = "/etc/postgresql"): string[] {
  const dirs: string[] = [];
  const list = (dir: string) => {
    try {
      return [...Deno.readDirSync(dir)].filter((e) => e.isDirectory).map((e) => e.name).sort();
    } catch {
      return [];
    }
  };
  for (const version of list(root)) {
    for (const cluster of list(`${root}/${version}`)) {
      let text: string;
      try {
        text = readUserFile(`${root}/${version}/${cluster}/postgresql.conf`, "postgresql.conf");
      } catch {
        continue;
      }
      const setting = (name: string) =>
        new RegExp(`^\\s*${name}\\s*=\\s*'?([^'#\\n]*)'?`, "m").exec(text)?.[1].trim();
      if (Number(setting("port") ?? "5432") !== port) continue;
      for (const dir of (setting("unix_socket_directories") ?? "").split(",")) {
        if (dir.trim().startsWith("/")) dirs.push(dir.trim());
      }
    }
  }
  return dirs;
}

/** The settings a service file may give that we use; others are ignored (said in --debug). */
const SERVICE_KEYS = ["host", "port", "user", "dbname", "password"] as const;
type ServiceKey = typeof SERVICE_KEYS[number];

function fileExists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** The values of service `name` from the first service file that defines it, and that file. */
function readService(
  name: string,
  inputs: PostgresqlSettingsInputs,
): { values: Partial<Record<ServiceKey, string>>; file: string } {
  const { env, home } = inputs;
  const userFile = env.PGSERVICEFILE ?? (home ? join(home, ".pg_service.conf") : undefined);
  const systemFile = join(env.PGSYSCONFDIR ?? "/etc/postgresql-common", "pg_service.conf");
  const tried: string[] = [];
  for (const file of [userFile, systemFile]) {
    if (file === undefined) continue;
    tried.push(file);
    if (!fileExists(file)) continue;
    let parsed: Record<string, unknown>;
    try {
      parsed = ini.parse(readUserFile(file, "PostgreSQL service file"), {
        bracketedArray: false,
      });
    } catch (error) {
      if (error instanceof UsageError) throw error;
      throw new UsageError(`PostgreSQL service file ${file}: cannot parse: ${error}`);
    }
    const section = parsed[name];
    if (section === undefined || section === null || typeof section !== "object") continue;
    const values: Partial<Record<ServiceKey, string>> = {};
    for (const [key, value] of Object.entries(section as Record<string, unknown>)) {
      const k = key.trim();
      if ((SERVICE_KEYS as readonly string[]).includes(k)) {
        values[k as ServiceKey] = String(value).trim();
      } else inputs.debug?.(`PostgreSQL service ${name} in ${file}: ${k} is not used`);
    }
    return { values, file };
  }
  throw new UsageError(
    `$PGSERVICE: definition of service "${name}" not found (looked in ${tried.join(", ")})`,
  );
}

function checkPort(text: string, source: string): number {
  const port = Number(text);
  if (!/^\d+$/.test(text.trim()) || port < 1 || port > 65535) {
    throw new UsageError(`PostgreSQL port from ${source}: expected 1 to 65535, got '${text}'`);
  }
  return port;
}

/** The first value given, with where it came from. */
function first(
  candidates: [string | number | undefined, string][],
): [string, string] | undefined {
  for (const [value, source] of candidates) {
    if (value !== undefined && value !== "") return [String(value), source];
  }
  return undefined;
}

/** True when a socket connection to `host` is what libpq calls "localhost" in a password file. */
function isDefaultSocket(host: string, given: boolean): boolean {
  return !given || LIBPQ_DEFAULT_DIRS.includes(host.replace(/\/+$/, ""));
}

/**
 * Finds the password for a connection in the password file (`$PGPASSFILE` or `~/.pgpass`),
 * with the `pgpass` package's line parser and matcher; a file others may read is ignored,
 * as libpq does. Returns the password and the file, or undefined.
 */
async function fromPasswordFile(
  connection: { host: string; port: number; database: string; user: string },
  inputs: PostgresqlSettingsInputs,
): Promise<{ password: string; file: string } | { ignored: string } | undefined> {
  const { env, home } = inputs;
  const file = env.PGPASSFILE ?? (home ? join(home, ".pgpass") : undefined);
  if (file === undefined) return undefined;
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(file);
  } catch {
    return undefined;
  }
  const mode = (info.mode ?? 0) & 0o777;
  const ignored = !info.isFile
    ? `${file} was ignored: not a plain file`
    : (mode & 0o077) !== 0
    ? `${file} was ignored: mode ${mode.toString(8).padStart(4, "0")} lets group or others ` +
      `read it; chmod 0600 ${file}`
    : undefined;
  if (ignored) {
    inputs.debug?.(`PostgreSQL password file: ${ignored}`);
    return { ignored };
  }
  const { default: helper } = await import("pgpass/lib/helper.js");
  const text = readUserFile(file, "PostgreSQL password file");
  for (const line of text.split(/\r?\n/)) {
    if (line.trimStart().startsWith("#")) continue;
    const entry = helper.parseLine(line);
    if (entry && helper.isValidEntry(entry) && helper.match(connection, entry)) {
      return { password: entry.password, file };
    }
  }
  return undefined;
}

/**
 * Resolves the connection as libpq would, without connecting: each setting from the option,
 * else the service named by `$PGSERVICE` (pg_service.conf), else `$PGHOST`, `$PGPORT`,
 * `$PGUSER`, `$PGDATABASE`, else libpq's default (the local socket, 5432, the login name, the
 * user name). The password: the service's, else `$PGPASSWORD`, else the password file.
 * Throws UsageError for a bad port, several hosts, or a service that is not defined.
 *
 * @example
 * ```ts
 * import { defaultOptions } from "../types/options.ts";
 * const options = defaultOptions();
 * const plan = await resolvePostgresqlSettings({ options, env: Deno.env.toObject(), home: "/root" });
 * // { host: "/var/run/postgresql", port: 5432, user: "snap", database: "snap", ... }
 * ```
 */
export async function resolvePostgresqlSettings(
  inputs: PostgresqlSettingsInputs,
): Promise<PostgresqlSettings> {
  const { options, env } = inputs;
  const serviceName = env.PGSERVICE;
  const service = serviceName !== undefined && serviceName !== ""
    ? readService(serviceName, inputs)
    : undefined;
  const svc = (key: ServiceKey): [string | undefined, string] => [
    service?.values[key],
    `service ${serviceName} (${service?.file})`,
  ];
  if (service) inputs.debug?.(`PostgreSQL: service ${serviceName} from ${service.file}`);

  const portGiven = first([
    [options.postgresqlPort, "--postgresql-port"],
    svc("port"),
    [env.PGPORT, "$PGPORT"],
  ]);
  const port = portGiven ? checkPort(portGiven[0], portGiven[1]) : 5432;
  const exists = inputs.exists ?? fileExists;
  const hostGiven = first([
    [options.postgresqlHost, "--postgresql-host"],
    svc("host"),
    [env.PGHOST, "$PGHOST"],
  ]);
  if (hostGiven && hostGiven[0].includes(",")) {
    throw new UsageError(
      `PostgreSQL host from ${hostGiven[1]}: several hosts ('${hostGiven[0]}') are not ` +
        "supported; name the one server whose files are on these volumes",
    );
  }
  const candidates = [...(inputs.serverSocketDirs ?? serverSocketDirs)(port), ...SOCKET_DIRS];
  const defaultSocket = candidates.find((dir) => exists(`${dir}/.s.PGSQL.${port}`)) ??
    candidates[0];
  const host = hostGiven?.[0] ?? defaultSocket;
  const loginName = inputs.loginName ?? userInfo().username;
  const [user, userSource] = first([
    [options.postgresqlUsername, "--postgresql-username"],
    svc("user"),
    [env.PGUSER, "$PGUSER"],
  ]) ?? [loginName, "the login name"];
  const [database, databaseSource] = first([
    [options.postgresqlDbname, "--postgresql-dbname"],
    svc("dbname"),
    [env.PGDATABASE, "$PGDATABASE"],
  ]) ?? [user, "the user name"];

  let password = first([svc("password"), [env.PGPASSWORD, "$PGPASSWORD"]]);
  let passwordIgnored: string | undefined;
  if (!password) {
    const pgHost = host.startsWith("/") && isDefaultSocket(host, hostGiven !== undefined)
      ? "localhost"
      : host;
    const found = await fromPasswordFile({ host: pgHost, port, database, user }, inputs);
    if (found && "password" in found) password = [found.password, found.file];
    else if (found) passwordIgnored = found.ignored;
  }
  return {
    host,
    port,
    user,
    database,
    ...(password ? { password: password[0] } : {}),
    sources: {
      host: hostGiven?.[1] ?? "the default socket directory",
      port: portGiven?.[1] ?? "the default",
      user: userSource,
      database: databaseSource,
      password: password?.[1] ?? (passwordIgnored ? `none (${passwordIgnored})` : "none"),
    },
  };
}

/**
 * One line saying where and as whom the program connects, and where each setting came from;
 * never the password.
 *
 * @example
 * ```ts
 * import type { PostgresqlSettings } from "../types/database_plans.ts";
 * const plan = {} as PostgresqlSettings;
 * describePostgresqlSettings(plan);
 * // "PostgreSQL: socket /var/run/postgresql port 5432, user snap (the login name), ..."
 * ```
 */
export function describePostgresqlSettings(plan: PostgresqlSettings): string {
  const where = plan.host.startsWith("/") ? `socket ${plan.host}` : `host ${plan.host}`;
  const s = plan.sources;
  return `PostgreSQL: ${where} (${s.host}) port ${plan.port} (${s.port}), user ${plan.user} ` +
    `(${s.user}), database ${plan.database} (${s.database}), password ${
      plan.password === undefined ? s.password : `from ${s.password}`
    }`;
}
