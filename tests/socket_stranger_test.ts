/**
 * A database password never reaches a local user's listener, through the real program: a real
 * unprivileged user (useradd -M, removed afterwards) listens on a Unix socket in a directory of
 * mode 1777 or 0777, or on a loopback TCP port; the run ends in one line, exit 6, and the
 * listener sees no connection at all.
 */
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { ignoreUnless, requireAvailable, rootRequirement } from "./support/real.ts";
import { baseEnv, runProgram } from "./support/program.ts";
import { freePort } from "./support/mariadb.ts";
import { ExitCode } from "../src/util/errors.ts";

const ROOT = rootRequirement("a real unprivileged user");
const VOL = "vol-0123456789abcdef0";

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
if path.startswith("tcp:"):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("0.0.0.0", int(path[4:])))  # every address of the machine
else:
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

Deno.test("a password is never sent to another user's listener on a loopback TCP port", {
  ignore: ignoreUnless(ROOT),
}, async () => {
  requireAvailable(ROOT);
  await withStranger(async (eve) => {
    const dir = Deno.makeTempDirSync({ prefix: "ecs-socket-" });
    Deno.chmodSync(dir, 0o755);
    const env = baseEnv({ AWS_REGION: "us-east-1", AWS_ENDPOINT_URL_EC2: "http://127.0.0.1:9" });
    try {
      const port = freePort();
      const listener = await listenAs(eve, dir, `tcp:${port}`, "mysql");
      const mysql = await runProgram(
        [
          "--mysql",
          "--mysql-host",
          "127.0.0.1",
          "--mysql-port",
          String(port),
          "--mysql-password",
          "Root-Secret-9f3",
          VOL,
        ],
        { env },
      );
      const pg = await runProgram(
        ["--postgresql", "--postgresql-host", "127.0.0.1", "--postgresql-port", String(port), VOL],
        { env: { ...env, PGPASSWORD: "Root-Secret-9f3" } },
      );
      // The same machine by other names: its host name, "any", inet_aton's short form, an
      // IPv4-mapped address, an address of its own interfaces.
      const own = Deno.networkInterfaces().find((i) =>
        i.family === "IPv4" && i.address !== "127.0.0.1"
      );
      const others = [Deno.hostname(), "0.0.0.0", "127.1", "::ffff:127.0.0.1", own?.address ?? "0"];
      const byOtherNames = [];
      for (const host of others) {
        const args = ["--mysql", "--mysql-host", host, "--mysql-port", String(port), VOL];
        byOtherNames.push({
          host,
          out: await runProgram([...args, "--mysql-password", "Pw-7"], { env }),
        });
      }
      const seen = await listener.stop();
      for (const { host, out } of byOtherNames) {
        assertEquals(out.code, ExitCode.database, `${host}: ${out.stderr}`);
        assertMatch(
          out.stderr,
          new RegExp(`the process listening there runs as ${eve.name}`),
          host,
        );
      }
      for (const [out, what] of [[mysql, "MySQL"], [pg, "PostgreSQL"]] as const) {
        assertEquals(out.code, ExitCode.database, out.stderr);
        assertEquals(
          out.stderr.split("\n").filter((l) => l && !l.includes("warning")).length,
          1,
          out.stderr,
        );
        assertMatch(
          out.stderr,
          new RegExp(
            `${what}: not connecting to 127\\.0\\.0\\.1:${port}: the process listening there runs as ${eve.name}`,
          ),
        );
      }
      assert(!seen.includes("CONNECTION"), `the stranger was connected to: ${seen}`);
    } finally {
      Deno.removeSync(dir, { recursive: true });
      Deno.removeSync(env.HOME, { recursive: true });
    }
  });
});
