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

/**
 * The accounts of /etc/passwd (none when it cannot be read).
 *
 * @example
 * ```ts
 * const root = readAccounts().find((a) => a.uid === 0)?.name;
 * ```
 */
export function readAccounts(): Account[] {
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

/**
 * An IPv4 address as getaddrinfo reads it, also in inet_aton's short forms ("127.1", "0",
 * "0x7f.1"), as a number; undefined for anything else.
 */
function ipv4(text: string): number | undefined {
  const parts = text.split(".");
  if (parts.length > 4 || !parts.every((p) => /^(0x[0-9a-f]+|0[0-7]*|[1-9]\d*)$/i.test(p))) {
    return undefined;
  }
  const values = parts.map((p) =>
    /^0x/i.test(p) ? parseInt(p, 16) : /^0./.test(p) ? parseInt(p, 8) : Number(p)
  );
  const last = values.pop()!;
  if (values.some((v) => v > 255) || last >= 2 ** (8 * (4 - values.length))) return undefined;
  return values.reduce((sum, v, i) => sum + v * 2 ** (24 - 8 * i), 0) + last;
}

/** This machine's own addresses: its interfaces', loopback and "any" aside. */
function ownAddresses(): Set<string> {
  try {
    return new Set(
      Deno.networkInterfaces().map((i) => i.address.toLowerCase().replace(/%.*$/, "")),
    );
  } catch {
    return new Set();
  }
}

/** True for an address literal that reaches this machine. */
function isLocalAddress(address: string): boolean {
  const text = address.toLowerCase().replace(/^\[(.*)\]$/, "$1").replace(/%.*$/, "");
  const mapped = /^(?:0*:)*:?ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(text)?.[1];
  const v4 = ipv4(mapped ?? text);
  if (v4 !== undefined) {
    // 127.0.0.0/8 is loopback; 0.0.0.0 ("any") is this machine too.
    if (v4 >>> 24 === 127 || v4 === 0) return true;
    const dotted = [24, 16, 8, 0].map((shift) => (v4 >>> shift) & 255).join(".");
    return ownAddresses().has(dotted);
  }
  if (!text.includes(":")) return false;
  return /^[0:]*:?(1)?$/.test(text) || ownAddresses().has(text);
}

/** The addresses /etc/hosts gives a name (getaddrinfo reads it before DNS). */
function hostsFileAddresses(name: string): string[] {
  try {
    return Deno.readTextFileSync("/etc/hosts").split("\n").flatMap((line) => {
      const [address, ...names] = line.replace(/#.*/, "").trim().split(/\s+/);
      return names.some((n) => n.toLowerCase() === name) ? [address] : [];
    });
  } catch {
    return [];
  }
}

/**
 * True for a host name or address that is this machine: loopback, "any" (0.0.0.0, ::), an
 * address of its interfaces, in any form getaddrinfo reads ("127.1", "::ffff:127.0.0.1"), its
 * host name, or a name /etc/hosts maps to one of those. A name only DNS knows is not looked up.
 */
function isLoopback(host: string): boolean {
  const name = host.toLowerCase().replace(/\.$/, "");
  if (name === "localhost" || name.endsWith(".localhost")) return true;
  if (isLocalAddress(name)) return true;
  let own = "";
  try {
    own = Deno.hostname().toLowerCase();
  } catch { /* no host name: only the other rules */ }
  if (own !== "" && (name === own || name === own.split(".")[0])) return true;
  return hostsFileAddresses(name).some(isLocalAddress);
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
