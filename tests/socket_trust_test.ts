/**
 * A database password goes only to a socket that root or the server's user owns, in directories
 * no one else may write: the rule on temp directories, and through the real program with a
 * real unprivileged user listening on a socket in a directory of mode 1777 or 0777.
 */
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { ignoreUnless, requireAvailable, rootRequirement } from "./support/real.ts";
import { baseEnv, runProgram } from "./support/program.ts";
import { trustedSocket } from "../src/host/socket_trust.ts";
import { DatabaseError, ExitCode } from "../src/util/errors.ts";
import {
  mysqlServerConfig,
  resolveMysqlSettings,
  SOCKET_PATHS,
} from "../src/plan/mysql_option_files.ts";
import { resolvePostgresqlSettings, serverSocketDirs } from "../src/plan/postgresql_settings.ts";
import { defaultOptions } from "../src/types/options.ts";

const ROOT = rootRequirement("making sockets of other users");
const VOL = "vol-0123456789abcdef0";
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

/** A real unprivileged user, removed afterwards. */
async function withStranger(
  body: (user: { name: string; uid: number; gid: number }) => Promise<void>,
) {
  const name = `ecs-eve-${Deno.pid}`;
  const add = await new Deno.Command("useradd", { args: ["-M", "-s", "/usr/sbin/nologin", name] })
    .output();
  assert(add.success, new TextDecoder().decode(add.stderr));
  try {
    const id = (flag: string) =>
      Number(
        new TextDecoder().decode(
          new Deno.Command("id", { args: [flag, name] }).outputSync().stdout,
        ),
      );
    await body({ name, uid: id("-u"), gid: id("-g") });
  } finally {
    await new Deno.Command("userdel", { args: [name] }).output();
  }
}

/** Listens as `user` on `path` (python3); records every connection and every byte received. */
const LISTENER = `
import os, socket, sys
path, mode = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
os.chmod(path, 0o777)
s.listen(8)
print("LISTENING", flush=True)
while True:
    c, _ = s.accept()
    print("CONNECTION", flush=True)
    c.settimeout(5)
    try:
        first = c.recv(65536)
        print("DATA", first.hex(), flush=True)
        if mode == "pg":
            c.sendall(b"R\\x00\\x00\\x00\\x08\\x00\\x00\\x00\\x03")  # a cleartext password, please
        while True:
            data = c.recv(65536)
            if not data:
                break
            print("DATA", data.hex(), flush=True)
    except Exception:
        pass
    c.close()
`;

async function listenAs(
  user: { uid: number; gid: number },
  dir: string,
  path: string,
  mode: string,
) {
  const script = `${dir}/listener.py`;
  Deno.writeTextFileSync(script, LISTENER, { mode: 0o644 });
  const child = new Deno.Command("setpriv", {
    args: [
      `--reuid=${user.uid}`,
      `--regid=${user.gid}`,
      "--clear-groups",
      "/usr/bin/python3",
      script,
      path,
      mode,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  while (!seen.includes("LISTENING")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the listener ended: ${seen}`);
    seen += value;
  }
  // Read the rest in the background; what it saw is returned after it is killed.
  const rest = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return seen;
      seen += value;
    }
  })();
  return {
    async stop(): Promise<string> {
      child.kill("SIGKILL");
      await child.status;
      return await rest;
    },
  };
}

for (const mode of [0o1777, 0o777]) {
  Deno.test(
    `a password is never sent to another user's socket in a ${mode.toString(8)} directory`,
    {
      ignore: ignoreUnless(ROOT),
    },
    async () => {
      requireAvailable(ROOT);
      await withStranger(async (eve) => {
        const dir = Deno.makeTempDirSync({ prefix: "ecs-socket-" });
        Deno.chmodSync(dir, mode);
        const env = baseEnv({
          AWS_REGION: "us-east-1",
          AWS_ENDPOINT_URL_EC2: "http://127.0.0.1:9",
        });
        const secret = "Root-Secret-9f3";
        try {
          // MySQL, the password in ~/.my.cnf and the stranger's socket named.
          Deno.writeTextFileSync(
            `${env.HOME}/.my.cnf`,
            `[client]\nuser=root\npassword=${secret}\n`,
            {
              mode: 0o600,
            },
          );
          const mysqlSocket = `${dir}/mysql.sock`;
          const mysql = await listenAs(eve, dir, mysqlSocket, "mysql");
          const run = await runProgram(["--mysql", "--mysql-socket", mysqlSocket, VOL], { env });
          const hold = await runProgram(["--hold", "--mysql", "--mysql-socket", mysqlSocket], {
            env,
          });
          const seenMysql = await mysql.stop();
          for (const out of [run, hold]) {
            assertEquals(out.code, ExitCode.database, out.stderr);
            assertEquals(out.stderr.trim().split("\n").length, 1, out.stderr);
            assertMatch(
              out.stderr,
              new RegExp(
                `^ec2-consistent-snapshot: MySQL: not connecting to socket ${mysqlSocket}: it is owned ` +
                  `by ${eve.name} \\(uid ${eve.uid}\\), not root or mysql; another local user could ` +
                  "listen there for the password",
              ),
            );
          }
          assert(!seenMysql.includes("CONNECTION"), `the stranger was connected to: ${seenMysql}`);

          // PostgreSQL, $PGPASSWORD and the stranger's socket in the directory named.
          const pg = await listenAs(eve, dir, `${dir}/.s.PGSQL.5999`, "pg");
          const pgRun = await runProgram(
            ["--postgresql", "--postgresql-host", dir, "--postgresql-port", "5999", VOL],
            { env: { ...env, PGPASSWORD: secret } },
          );
          const seenPg = await pg.stop();
          assertEquals(pgRun.code, ExitCode.database, pgRun.stderr);
          assertEquals(pgRun.stderr.trim().split("\n").length, 1, pgRun.stderr);
          assertMatch(
            pgRun.stderr,
            new RegExp(
              `PostgreSQL: not connecting to socket ${dir}/\\.s\\.PGSQL\\.5999: it is owned by ${eve.name}`,
            ),
          );
          assert(!seenPg.includes("CONNECTION"), `the stranger was connected to: ${seenPg}`);
          const hex = Array.from(
            new TextEncoder().encode(secret),
            (b) => b.toString(16).padStart(2, "0"),
          ).join("");
          assert(!seenMysql.includes(hex) && !seenPg.includes(hex), "no password received");
        } finally {
          Deno.removeSync(dir, { recursive: true });
          Deno.removeSync(env.HOME, { recursive: true });
        }
      });
    },
  );
}
