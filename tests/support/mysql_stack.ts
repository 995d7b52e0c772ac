/**
 * A real run's stack with a database: moto behind the fault proxy, a volume, an XFS loop mount
 * holding a private MariaDB's data, a user `snap` for the program and its option file.
 */
import { type MariadbServer, startMariadb } from "./mariadb.ts";
import { type MotoEndpoint, startMoto } from "./moto.ts";
import { baseEnv } from "./program.ts";
import { type Proxy, startProxy } from "./proxy.ts";
import { type TestMount, withXfsMount } from "./xfs.ts";

/** The program's MySQL password in these tests (never printed by the program). */
export const MYSQL_PASSWORD = "wd-Secret-4c1e";

/** What {@linkcode withMysqlStack} hands to a test. */
export interface MysqlStack {
  moto: MotoEndpoint;
  proxy: Proxy;
  volume: string;
  mount: TestMount;
  db: MariadbServer;
  /** The program's environment: moto, the proxy, a private ECS_RUN_DIR. */
  env: Record<string, string>;
  /** A private directory off the mount (markers, pid files), removed afterwards. */
  dir: string;
  /** `--mysql --mysql-defaults-file F` as user snap. */
  mysqlArgs: string[];
}

/**
 * Runs `fn` with the stack; stops and removes everything afterwards. The table `app.t` holds
 * one row ('before'). Needs MariaDB, XFS (root) and moto: check their requirements first.
 *
 * @example
 * ```ts
 * await withMysqlStack(async ({ db, mount, env, mysqlArgs }) => { ... });
 * ```
 */
export async function withMysqlStack(fn: (s: MysqlStack) => Promise<void>): Promise<void> {
  await withXfsMount(async (mount) => {
    const moto = await startMoto();
    const proxy = startProxy(moto.url);
    const dir = Deno.makeTempDirSync({ prefix: "ecs-mysql-stack-" });
    const env = baseEnv({
      ...moto.env,
      AWS_ENDPOINT_URL_EC2: proxy.url,
      ECS_RUN_DIR: `${dir}/run`,
    });
    let db: MariadbServer | undefined;
    try {
      db = await startMariadb({ datadir: `${mount.mountPoint}/mysql` });
      await db.sql(
        `CREATE USER 'snap'@'localhost' IDENTIFIED BY '${MYSQL_PASSWORD}';
         GRANT RELOAD, BINLOG MONITOR, SLAVE MONITOR ON *.* TO 'snap'@'localhost';
         CREATE DATABASE app;
         CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(20)) ENGINE=InnoDB;
         INSERT INTO app.t (v) VALUES ('before');`,
      );
      const defaults = `${dir}/my.cnf`;
      Deno.writeTextFileSync(
        defaults,
        `[client]\nuser = snap\npassword = "${MYSQL_PASSWORD}"\nsocket = ${db.socket}\n`,
        { mode: 0o600 },
      );
      const [volume] = await moto.createVolumes(1);
      await fn({
        moto,
        proxy,
        volume,
        mount,
        db,
        env,
        dir,
        mysqlArgs: ["--mysql", "--mysql-defaults-file", defaults],
      });
    } finally {
      await db?.stop();
      Deno.removeSync(dir, { recursive: true });
      Deno.removeSync(env.HOME, { recursive: true });
      await proxy.stop();
      await moto.stop();
    }
  });
}

/** True when the server answers within `timeoutMs`. */
export async function answers(db: MariadbServer, timeoutMs: number): Promise<boolean> {
  try {
    await db.waitReady(timeoutMs);
    return true;
  } catch {
    return false;
  }
}

/** The sessions of user `snap` (the program's) that the server still has. */
export async function programSessions(db: MariadbServer): Promise<number> {
  const out = await db.sql(
    "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = 'snap'",
  );
  return Number(out.trim().split("\n").at(-1));
}
