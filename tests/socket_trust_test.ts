/**
 * A database password goes only to a socket that root or the server's user owns, in directories
 * no one else may write, or to a loopback port the server listens on: the rule, on temp
 * directories and fake accounts; the default sockets. (The real program against a real local
 * user's listener: socket_stranger_test.ts.)
 */
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { ignoreUnless, requireAvailable, rootRequirement } from "./support/real.ts";
import { trustedLoopbackPort, trustedSocket } from "../src/host/socket_trust.ts";
import { DatabaseError } from "../src/util/errors.ts";
import {
  mysqlServerConfig,
  resolveMysqlSettings,
  SOCKET_PATHS,
} from "../src/plan/mysql_option_files.ts";
import { resolvePostgresqlSettings, serverSocketDirs } from "../src/plan/postgresql_settings.ts";
import { defaultOptions } from "../src/types/options.ts";

const ROOT = rootRequirement("making sockets of other users");
const STRANGER = 4242;
/** Fake accounts: the server's user "mysql" is uid 102, gid 105. */
const deps = {
  accounts: () => [
    { name: "root", uid: 0, gid: 0 },
    { name: "mysql", uid: 102, gid: 105 },
    { name: "eve", uid: STRANGER, gid: STRANGER },
  ],
  self: () => ({ uid: 0, gid: 0 }),
};

function check(path: string) {
  return trustedSocket(
    { path, serverUsers: ["mysql"], what: "MySQL", fix: "--mysql-socket" },
    deps,
  );
}

function refused(path: string, reason: RegExp): void {
  try {
    check(path);
  } catch (error) {
    assert(error instanceof DatabaseError, String(error));
    assertMatch(error.message, reason);
    assertMatch(error.message, /another local user could listen there for the password/);
    return;
  }
  throw new Error(`${path} was trusted`);
}

/** A temp dir (root, 0700 by default) with a listening socket in it; removed after `body`. */
async function withSocket(
  body: (s: { dir: string; socket: string }) => Promise<void> | void,
): Promise<void> {
  const dir = Deno.makeTempDirSync({ prefix: "ecs-socket-" });
  const socket = `${dir}/mysql.sock`;
  const listener = Deno.listen({ transport: "unix", path: socket });
  try {
    await body({ dir, socket });
  } finally {
    listener.close();
    Deno.removeSync(dir, { recursive: true });
  }
}

Deno.test(
  "the rule: owners, modes, sticky directories, links",
  { ignore: ignoreUnless(ROOT) },
  async () => {
    requireAvailable(ROOT);
    await withSocket(({ dir, socket }) => {
      assertEquals(check(socket), socket, "root's socket in root's 0700 directory");
      Deno.chownSync(socket, 102, 105);
      assertEquals(check(socket), socket, "the server's user's socket");
      Deno.chownSync(socket, STRANGER, STRANGER);
      refused(socket, /it is owned by eve \(uid 4242\), not root or mysql/);
      Deno.chownSync(socket, 0, 0);

      Deno.chmodSync(dir, 0o777);
      refused(socket, /its directory .* may be written by every user \(mode 0777\)/);
      Deno.chmodSync(dir, 0o1777);
      assertEquals(
        check(socket),
        socket,
        "sticky, and the socket is root's: nobody may replace it",
      );
      Deno.chownSync(socket, STRANGER, STRANGER);
      refused(socket, /owned by eve/);
      Deno.chownSync(socket, 0, 0);
      refused(`${dir}/missing.sock`, /lets every user create it \(mode 1777\) and it is not there/);

      Deno.chmodSync(dir, 0o770);
      Deno.chownSync(dir, 0, STRANGER);
      refused(socket, /may be written by group 4242 \(mode 0770\)/);
      Deno.chownSync(dir, 0, 105);
      assertEquals(check(socket), socket, "writable by the server's group");
      Deno.chownSync(dir, STRANGER, 0);
      Deno.chmodSync(dir, 0o755);
      refused(socket, /its directory .* is owned by eve \(uid 4242\)/);
      Deno.chownSync(dir, 0, 0);
      Deno.chmodSync(dir, 0o700);

      // A link is followed once, to the socket it names; the connection goes to that real path.
      const link = `${dir}/link.sock`;
      Deno.symlinkSync(socket, link);
      assertEquals(check(link), socket);
      assertEquals(check(`${dir}/no-such-dir/x.sock`), `${dir}/no-such-dir/x.sock`);
    });
    const parent = Deno.makeTempDirSync({ prefix: "ecs-socket-" });
    try {
      Deno.chmodSync(parent, 0o777);
      Deno.mkdirSync(`${parent}/sub`, { mode: 0o700 });
      refused(`${parent}/sub/mysql.sock`, /the directory .* may be written by every user/);
    } finally {
      Deno.removeSync(parent, { recursive: true });
    }
  },
);

Deno.test("defaults come from the server's configuration, never /tmp", () => {
  const dir = Deno.makeTempDirSync({ prefix: "ecs-server-config-" });
  try {
    assert(!SOCKET_PATHS.some((p) => p.startsWith("/tmp")), SOCKET_PATHS.join(", "));
    Deno.writeTextFileSync(
      `${dir}/my.cnf`,
      "[client-server]\nsocket = /srv/db/mysqld.sock\n[mysqld]\nuser = dbsvc\n",
    );
    const config = mysqlServerConfig([`${dir}/my.cnf`, `${dir}/missing.cnf`]);
    assertEquals(config, {
      clientSocket: "/srv/db/mysqld.sock",
      serverSocket: "/srv/db/mysqld.sock",
      user: "dbsvc",
    });
    const settings = resolveMysqlSettings({ ...defaultOptions(), mysql: true }, {
      home: "/nonexistent",
      serverConfig: () => config,
      socketExists: () => false,
    });
    assertEquals([settings.socketPath, settings.socketSource, settings.serverUsers], [
      "/srv/db/mysqld.sock",
      "server configuration",
      ["dbsvc"],
    ]);
    const none = resolveMysqlSettings({ ...defaultOptions(), mysql: true }, {
      home: "/nonexistent",
      serverConfig: () => ({ user: "mysql" }),
      socketExists: () => false,
    });
    assertEquals(none.socketPath, "/run/mysqld/mysqld.sock");

    Deno.mkdirSync(`${dir}/15/main`, { recursive: true });
    Deno.writeTextFileSync(
      `${dir}/15/main/postgresql.conf`,
      "port = 5433\t# next\nunix_socket_directories = '/srv/pg, /run/pg2'\t# comma-separated\n",
    );
    assertEquals(serverSocketDirs(5433, dir), ["/srv/pg", "/run/pg2"]);
    assertEquals(serverSocketDirs(5432, dir), []);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("PostgreSQL: no host given and no socket anywhere: the Debian directory, not /tmp", async () => {
  const settings = await resolvePostgresqlSettings({
    options: defaultOptions(),
    env: {},
    home: undefined,
    loginName: "snap",
    exists: () => false,
    serverSocketDirs: () => [],
  });
  assertEquals(settings.host, "/var/run/postgresql");
});

Deno.test("a loopback TCP port: a password only to the server's own listener", () => {
  const request = {
    host: "127.0.0.1",
    port: 3306,
    serverUsers: ["mysql"],
    what: "MySQL",
    fix: "--mysql-socket",
  };
  trustedLoopbackPort(request, { ...deps, listeners: () => [102, 0] });
  trustedLoopbackPort(request, { ...deps, listeners: () => [] }); // nobody listens: nothing is sent
  trustedLoopbackPort({ ...request, host: "db.example" }, { ...deps, listeners: () => [STRANGER] });
  for (const host of ["127.0.0.1", "localhost", "::1"]) {
    try {
      trustedLoopbackPort({ ...request, host }, { ...deps, listeners: () => [STRANGER] });
      throw new Error(`${host}: trusted`);
    } catch (error) {
      assert(error instanceof DatabaseError, String(error));
      assertMatch(
        error.message,
        /the process listening there runs as eve \(uid 4242\), not root or mysql/,
      );
    }
  }
});
