/** MySQL connection settings: the option file (`~/.my.cnf` or --mysql-defaults-file) and the command line. */

import ini from "ini";
import { userInfo } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { UsageError } from "../util/errors.ts";
import { readUserFile } from "../util/files.ts";
import type { Options } from "../types/options.ts";
import type { MysqlSettings } from "../types/database_plans.ts";

/** The option-file groups a client reads, in order: later groups win. */
export const CLIENT_GROUPS = ["client", "client-server", "client-mariadb", "mysql"] as const;

/**
 * Where MySQL and MariaDB put their socket by default (Debian, upstream, RHEL), tried in this
 * order when neither the options, the option file nor the server's configuration name one.
 * Never a world-writable place such as /tmp: another user could listen there.
 */
export const SOCKET_PATHS = [
  "/run/mysqld/mysqld.sock",
  "/var/run/mysqld/mysqld.sock",
  "/var/lib/mysql/mysql.sock",
] as const;

/** The server's own configuration files, read for its socket and its user only. */
export const SERVER_CONFIG_FILES = ["/etc/my.cnf", "/etc/mysql/my.cnf"] as const;

/** The groups the server reads (its socket, its user). */
const SERVER_GROUPS = ["client-server", "mysqld", "server", "mariadb", "mariadbd"] as const;

/** What the server's own configuration says about where clients reach it and who runs it. */
export interface MysqlServerConfig {
  /** `socket` of its client groups: the socket its own clients use. */
  clientSocket?: string;
  /** `socket` of its server groups: where it listens. */
  serverSocket?: string;
  /** `user` of its server groups (default "mysql"): who may own its socket. */
  user: string;
}

/**
 * Reads the server's configuration (/etc/my.cnf, /etc/mysql/my.cnf with their includes) for
 * its socket and user; a file that is missing or cannot be read adds nothing (it is the
 * server's, not the user's input).
 *
 * @example
 * ```ts
 * mysqlServerConfig(); // { clientSocket: "/run/mysqld/mysqld.sock", user: "mysql" }
 * ```
 */
export function mysqlServerConfig(
  files: readonly string[] = SERVER_CONFIG_FILES,
): MysqlServerConfig {
  const groups: OptionFile = {};
  for (const file of files) {
    try {
      Deno.statSync(file);
      readInto(groups, [], file, 0);
    } catch { /* missing or unreadable: the server's business */ }
  }
  const client = clientValues(groups);
  const server: Record<string, string | true> = {};
  for (const group of SERVER_GROUPS) Object.assign(server, groups[group] ?? {});
  const text = (value: string | true | undefined) => typeof value === "string" ? value : undefined;
  return {
    clientSocket: text(client.socket),
    serverSocket: text(server.socket),
    user: text(server.user) ?? "mysql",
  };
}

/** The values of an option file, by group, keys normalised (`_` to `-`, no `loose-`). */
export type OptionFile = Record<string, Record<string, string | true>>;

const MAX_INCLUDE_DEPTH = 10;

function readText(path: string, includedFrom?: string): string {
  return readUserFile(path, includedFrom ? `!include in ${includedFrom}:` : "MySQL option file");
}

function normaliseKey(key: string): string {
  return key.trim().toLowerCase().replaceAll("_", "-").replace(/^loose-/, "");
}

/** Merges one ini-parsed chunk into `into`; later values win. */
function mergeChunk(into: OptionFile, parsed: Record<string, unknown>, file: string): void {
  for (const [group, values] of Object.entries(parsed)) {
    if (values === null || typeof values !== "object" || Array.isArray(values)) {
      throw new UsageError(
        `MySQL option file ${file}: option '${group}' outside of a [group] section`,
      );
    }
    const target = into[group.trim().toLowerCase()] ??= {};
    for (const [key, value] of Object.entries(values as Record<string, unknown>)) {
      if (typeof value === "string" || value === true) target[normaliseKey(key)] = value;
      else if (Array.isArray(value)) target[normaliseKey(key)] = String(value.at(-1));
      else if (typeof value === "object" && value !== null) {
        // ini reads "[a.b]" as nested groups; MySQL has no such thing. Keep the dotted name.
        mergeChunk(into, { [`${group}.${key}`]: value }, file);
      } else target[normaliseKey(key)] = String(value);
    }
  }
}

function parseChunk(text: string, file: string): Record<string, unknown> {
  try {
    return ini.parse(text, { bracketedArray: false });
  } catch (error) {
    throw new UsageError(`MySQL option file ${file}: cannot parse: ${error}`);
  }
}

/**
 * Checks every line for what the ini package would silently accept but MySQL refuses, so a
 * mistyped file is reported instead of half-read.
 */
function checkLines(text: string, file: string): void {
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) return;
    if (line.startsWith("!")) return;
    if (line.startsWith("[")) {
      if (!/^\[[^\]]+\]\s*(#.*)?$/.test(line)) {
        throw new UsageError(`MySQL option file ${file}, line ${index + 1}: bad group: ${line}`);
      }
      return;
    }
    if (!/^[A-Za-z0-9_.-]+\s*(=|$|#)/.test(line)) {
      throw new UsageError(
        `MySQL option file ${file}, line ${index + 1}: not an option: ${line.slice(0, 40)}`,
      );
    }
  });
}

function readInto(into: OptionFile, files: string[], path: string, depth: number, from?: string) {
  if (depth > MAX_INCLUDE_DEPTH) {
    throw new UsageError(`MySQL option file ${path}: !include nested too deeply`);
  }
  const text = readText(path, from);
  files.push(path);
  checkLines(text, path);
  // The ini package parses the file; the !include directives are split out first and read in
  // place, so that values after an include still override it, as MySQL does.
  let chunk: string[] = [];
  let group = "";
  const flush = () => {
    if (chunk.length > 0) mergeChunk(into, parseChunk(chunk.join("\n"), path), path);
    chunk = group ? [`[${group}]`] : [];
  };
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    const directive = /^!(include|includedir)\s+(.+)$/.exec(line);
    if (directive) {
      flush();
      const target = resolveRelative(path, directive[2].trim());
      if (directive[1] === "include") {
        readInto(into, files, target, depth + 1, path);
      } else {
        for (const name of listCnfFiles(target, path)) {
          readInto(into, files, join(target, name), depth + 1, path);
        }
      }
      continue;
    }
    if (line.startsWith("!")) {
      throw new UsageError(`MySQL option file ${path}: unknown directive: ${line}`);
    }
    const header = /^\[([^\]]+)\]/.exec(line);
    if (header) group = header[1].trim();
    chunk.push(protectSemicolons(raw));
  }
  flush();
}

/**
 * MySQL ends an unquoted value only at `#`; the ini package also at `;`. Escaping `;` in
 * unquoted values keeps a password such as `a;b` whole.
 */
function protectSemicolons(raw: string): string {
  const option = /^(\s*[A-Za-z0-9_.-]+\s*=\s*)(.*)$/.exec(raw);
  if (!option || /^["']/.test(option[2])) return raw;
  return option[1] + option[2].replaceAll(";", "\\;");
}

function resolveRelative(file: string, target: string): string {
  return isAbsolute(target) ? target : resolve(dirname(file), target);
}

function listCnfFiles(dir: string, from: string): string[] {
  try {
    return [...Deno.readDirSync(dir)]
      .filter((entry) => !entry.isDirectory && /\.cnf$/.test(entry.name))
      .map((entry) => entry.name)
      .sort();
  } catch (error) {
    throw new UsageError(
      `MySQL option file ${from}: !includedir ${dir}: ${
        error instanceof Error ? error.message : error
      }`,
    );
  }
}

/**
 * Reads a MySQL option file with its `!include` and `!includedir` files.
 *
 * @example
 * ```ts
 * const file = readOptionFile("/root/.my.cnf");
 * console.log(file.groups.client?.user, file.files);
 * ```
 */
export function readOptionFile(path: string): { groups: OptionFile; files: string[] } {
  const groups: OptionFile = {};
  const files: string[] = [];
  readInto(groups, files, path, 0);
  return { groups, files };
}

/** The client's view of an option file: its client groups merged, later groups winning. */
export function clientValues(groups: OptionFile): Record<string, string | true> {
  const out: Record<string, string | true> = {};
  for (const group of CLIENT_GROUPS) Object.assign(out, groups[group] ?? {});
  return out;
}

/** Injectable bits of the environment, for tests. */
export interface MysqlSettingsDeps {
  /** The home directory (for ~/.my.cnf); none: no ~/.my.cnf is read. */
  home?: string;
  /** The environment: $USER and $LOGNAME name the login when the system cannot. */
  env?: Record<string, string | undefined>;
  /** Whether a socket exists at path; default: a stat. */
  socketExists?: (path: string) => boolean;
  /** The login name; default the current user's. */
  loginName?: () => string;
  /** The server's own configuration; default {@linkcode mysqlServerConfig}. */
  serverConfig?: () => MysqlServerConfig;
}

function defaultSocketExists(path: string): boolean {
  try {
    return Deno.statSync(path).isSocket === true;
  } catch {
    return false;
  }
}

function defaultLoginName(env: Record<string, string | undefined>): string {
  try {
    return userInfo().username;
  } catch {
    return env.USER ?? env.LOGNAME ?? "root";
  }
}

function stringValue(
  values: Record<string, string | true>,
  key: string,
  file: string,
): string | undefined {
  const value = values[key];
  if (value === undefined) return undefined;
  if (value === true) {
    // "password" alone makes the mysql client prompt; there is nobody to prompt here.
    if (key === "password") return undefined;
    throw new UsageError(`MySQL option file ${file}: '${key}' needs a value`);
  }
  return value;
}

/**
 * Works out where and as whom to connect: the command-line options win over the option file
 * (`--mysql-defaults-file`, else `~/.my.cnf` when it exists); host `localhost` means the Unix
 * socket: `--mysql-socket`, else the file's `socket`, else the server's own configuration's
 * (mysqlServerConfig), else the first of SOCKET_PATHS that exists. Throws UsageError for an
 * unreadable or malformed file.
 *
 * @example
 * ```ts
 * import { defaultOptions } from "../types/options.ts";
 * const settings = resolveMysqlSettings({ ...defaultOptions(), mysql: true }, { home: "/root" });
 * ```
 */
export function resolveMysqlSettings(
  options: Options,
  deps: MysqlSettingsDeps = {},
): MysqlSettings {
  const home = deps.home;
  let file = options.mysqlDefaultsFile;
  if (file === undefined && home) {
    const candidate = join(home, ".my.cnf");
    try {
      Deno.statSync(candidate);
      file = candidate;
    } catch {
      // no ~/.my.cnf: fine
    }
  }
  const { groups, files } = file ? readOptionFile(file) : { groups: {}, files: [] };
  const values = clientValues(groups);
  const where = file ?? "";

  const host = options.mysqlHost ?? stringValue(values, "host", where) ?? "localhost";
  const portText = stringValue(values, "port", where);
  let port = options.mysqlPort ?? 3306;
  if (options.mysqlPort === undefined && portText !== undefined) {
    if (!/^\d+$/.test(portText) || Number(portText) > 65535) {
      throw new UsageError(`MySQL option file ${where}: port must be a number, got '${portText}'`);
    }
    port = Number(portText);
  }
  if (port < 1 || port > 65535) {
    throw new UsageError(`--mysql-port: must be between 1 and 65535, got ${port}`);
  }
  const user = options.mysqlUsername ?? stringValue(values, "user", where) ??
    (deps.loginName ?? (() => defaultLoginName(deps.env ?? {})))();
  const password = options.mysqlPassword ?? stringValue(values, "password", where);

  const server = (deps.serverConfig ?? mysqlServerConfig)();
  const settings: MysqlSettings = { host, port, user, password, files, serverUsers: [server.user] };
  if (host === "localhost") {
    const fromFile = stringValue(values, "socket", where);
    const exists = deps.socketExists ?? defaultSocketExists;
    if (options.mysqlSocket !== undefined) {
      settings.socketPath = options.mysqlSocket;
      settings.socketSource = "option";
    } else if (fromFile !== undefined) {
      settings.socketPath = fromFile;
      settings.socketSource = "file";
    } else if (server.clientSocket ?? server.serverSocket) {
      settings.socketPath = server.clientSocket ?? server.serverSocket;
      settings.socketSource = "server configuration";
    } else {
      settings.socketPath = SOCKET_PATHS.find(exists) ?? SOCKET_PATHS[0];
      settings.socketSource = "search";
    }
  }
  return settings;
}
