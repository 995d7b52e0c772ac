/** Whether a database's Unix socket may be trusted with a password: owned by root or the server's user, in directories no one else may write. */
import { basename, dirname } from "node:path";
import { DatabaseError } from "../util/errors.ts";

/** One account of /etc/passwd: name, uid and primary gid. */
export interface Account {
  /** The user name. */
  name: string;
  /** The user id. */
  uid: number;
  /** The primary group id. */
  gid: number;
}

/** What a check reads from the machine; tests replace it. */
export interface SocketTrustDeps {
  /** The accounts (default: /etc/passwd). */
  accounts?: () => Account[];
  /** The effective uid and gid of this process (default: Deno.uid(), Deno.gid()). */
  self?: () => { uid: number; gid: number };
}

/** What the caller checks: the socket, for whom, and how messages name the database. */
export interface SocketTrustRequest {
  /** The socket path as configured (a link is followed; the file it names is checked). */
  path: string;
  /** The OS users that run the database server, e.g. ["mysql"]; root always counts. */
  serverUsers: readonly string[];
  /** The database, as messages name it: "MySQL", "PostgreSQL". */
  what: string;
  /** How to name the server's own socket instead, for the message: "--mysql-socket". */
  fix: string;
}

function readAccounts(): Account[] {
  try {
    return Deno.readTextFileSync("/etc/passwd").split("\n").flatMap((line) => {
      const [name, , uid, gid] = line.split(":");
      return name && /^\d+$/.test(uid ?? "") && /^\d+$/.test(gid ?? "")
        ? [{ name, uid: Number(uid), gid: Number(gid) }]
        : [];
    });
  } catch {
    return [];
  }
}

function realPath(path: string): string | undefined {
  try {
    return Deno.realPathSync(path);
  } catch {
    return undefined;
  }
}

/** Who is trusted: root, this process's user, the server's users (and their groups). */
function trustedIds(serverUsers: readonly string[], deps: SocketTrustDeps) {
  const accounts = (deps.accounts ?? readAccounts)();
  const self = (deps.self ?? (() => ({ uid: Deno.uid() ?? 0, gid: Deno.gid() ?? 0 })))();
  const servers = accounts.filter((a) => serverUsers.includes(a.name));
  const who = (uid: number) => {
    const name = accounts.find((a) => a.uid === uid)?.name;
    return name ? `${name} (uid ${uid})` : `uid ${uid}`;
  };
  return {
    uids: new Set([0, self.uid, ...servers.map((a) => a.uid)]),
    gids: new Set([0, self.gid, ...servers.map((a) => a.gid)]),
    who,
    trusted: ["root", ...serverUsers].join(" or "),
  };
}

/** The one-line refusal: what is not connected to, why, and what to do. */
function refuser(request: { what: string; fix: string }, where: string) {
  return (reason: string): never => {
    throw new DatabaseError(
      `${request.what}: not connecting to ${where}: ${reason}; another local user could ` +
        `listen there for the password (name the server's own socket with ${request.fix})`,
    );
  };
}

/** stat, or the one-line refusal when the path vanished or cannot be read meanwhile. */
function statOrRefuse(path: string, refuse: (reason: string) => never): Deno.FileInfo {
  try {
    return Deno.statSync(path);
  } catch (error) {
    return refuse(`cannot check ${path}: ${error instanceof Error ? error.message : error}`);
  }
}

/** True for a host name or address that is this machine's loopback. */
function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host) ||
    host === "[::1]";
}

/** The uids of the processes listening on TCP `port` (IPv4 and IPv6), from /proc/net. */
function tcpListeners(port: number): number[] {
  const uids: number[] = [];
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = Deno.readTextFileSync(file);
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 8 || cols[3] !== "0A") continue; // 0A: LISTEN
      if (parseInt(cols[1].split(":").at(-1) ?? "", 16) === port) uids.push(Number(cols[7]));
    }
  }
  return uids;
}

/**
 * Checks that a password may go to TCP `port` of a loopback `host`: every process listening on
 * that port of this machine runs as root, this process's user or the server's user (a local
 * user may bind a free port, say while the server restarts, and wait for a password). Other
 * hosts, and a port nobody listens on here, pass. Throws a one-line DatabaseError.
 *
 * @example
 * ```ts
 * trustedLoopbackPort({ host: "127.0.0.1", port: 3306, serverUsers: ["mysql"], what: "MySQL", fix: "--mysql-socket" });
 * ```
 */
export function trustedLoopbackPort(
  request: {
    host: string;
    port: number;
    serverUsers: readonly string[];
    what: string;
    fix: string;
  },
  deps: SocketTrustDeps & { listeners?: (port: number) => number[] } = {},
): void {
  if (!isLoopback(request.host)) return;
  const { uids, who, trusted } = trustedIds(request.serverUsers, deps);
  const refuse = refuser(request, `${request.host}:${request.port}`);
  for (const uid of (deps.listeners ?? tcpListeners)(request.port)) {
    if (!uids.has(uid)) refuse(`the process listening there runs as ${who(uid)}, not ${trusted}`);
  }
}

/**
 * Checks that a password may go to the socket at `request.path`, and returns the path to
 * connect to: the socket's real path (so that a link someone swaps later is not followed
 * again), or the path as given when nothing is there yet (the connection then fails; nothing is
 * sent). Trusted owners are root, this process's user and the server's users. Refused, with a
 * one-line DatabaseError saying why: a socket another user owns; a socket, or a missing one,
 * in a directory that another user owns or may write to (a sticky directory such as /tmp
 * passes when the socket's owner is trusted: nobody else may replace it there); the same for
 * every directory above it.
 *
 * @example
 * ```ts
 * const socket = trustedSocket({
 *   path: "/run/mysqld/mysqld.sock",
 *   serverUsers: ["mysql"],
 *   what: "MySQL",
 *   fix: "--mysql-socket",
 * }); // "/run/mysqld/mysqld.sock"
 * ```
 */
export function trustedSocket(request: SocketTrustRequest, deps: SocketTrustDeps = {}): string {
  const { uids, gids, who, trusted } = trustedIds(request.serverUsers, deps);
  const refuse = refuser(request, `socket ${request.path}`);

  const real = realPath(request.path);
  let dir: string;
  if (real !== undefined) {
    const info = statOrRefuse(real, refuse);
    if (!uids.has(info.uid ?? -1)) refuse(`it is owned by ${who(info.uid ?? -1)}, not ${trusted}`);
    dir = dirname(real);
  } else {
    // Nothing there yet: whoever may create it there must be trusted too.
    const parent = realPath(dirname(request.path));
    if (parent === undefined) return request.path;
    dir = parent;
  }
  for (let current = dir;; current = dirname(current)) {
    const info = statOrRefuse(current, refuse);
    const mode = info.mode ?? 0;
    const sticky = (mode & 0o1000) !== 0;
    const octal = (mode & 0o7777).toString(8).padStart(4, "0");
    const where = current === dir ? "its directory" : "the directory";
    if (!uids.has(info.uid ?? -1)) {
      refuse(`${where} ${current} is owned by ${who(info.uid ?? -1)}, not ${trusted}`);
    }
    if ((mode & 0o002) !== 0 && !sticky) {
      refuse(`${where} ${current} may be written by every user (mode ${octal})`);
    }
    if ((mode & 0o020) !== 0 && !sticky && !gids.has(info.gid ?? -1)) {
      refuse(`${where} ${current} may be written by group ${info.gid} (mode ${octal})`);
    }
    // In a sticky directory only the owner may replace a name: a trusted owner suffices.
    if ((mode & 0o002) !== 0 && sticky && real === undefined && current === dir) {
      refuse(`${where} ${current} lets every user create it (mode ${octal}) and it is not there`);
    }
    if (current === "/") break;
  }
  return real ?? request.path;
}

/**
 * The socket directory to give a PostgreSQL client for `dir` and `port`, checked with
 * {@linkcode trustedSocket}: the real directory of `.s.PGSQL.PORT` when the socket is there
 * under that name, else `dir` as given.
 *
 * @example
 * ```ts
 * trustedPostgresqlSocketDir("/var/run/postgresql", 5432, ["postgres"]); // "/run/postgresql"
 * ```
 */
export function trustedPostgresqlSocketDir(
  dir: string,
  port: number,
  serverUsers: readonly string[],
  deps: SocketTrustDeps = {},
): string {
  const name = `.s.PGSQL.${port}`;
  const real = trustedSocket(
    { path: `${dir}/${name}`, serverUsers, what: "PostgreSQL", fix: "--postgresql-host" },
    deps,
  );
  return basename(real) === name && real.startsWith("/") ? dirname(real) : dir;
}
