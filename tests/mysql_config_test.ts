/** Tests of the MySQL option-file reader and the connection settings. */

import assert from "node:assert/strict";
import { UsageError } from "../src/util/errors.ts";
import {
  readOptionFile,
  resolveMysqlSettings,
  SOCKET_PATHS,
} from "../src/plan/mysql_option_files.ts";
import { describeMysqlSettings } from "../src/types/database_plans.ts";
import { defaultOptions, type Options } from "../src/types/options.ts";

const assertEquals: typeof assert.deepEqual = assert.deepEqual;
const assertMatch: typeof assert.match = assert.match;

function assertThrows<E extends Error>(fn: () => unknown, type: new (...args: never[]) => E): E {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof type, `expected ${type.name}, got ${error}`);
    return error;
  }
  throw new assert.AssertionError({ message: `expected ${type.name}, nothing was thrown` });
}

function withDir(fn: (dir: string) => void): void {
  const dir = Deno.makeTempDirSync({ prefix: "ecs-mycnf-" });
  try {
    fn(dir);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

function options(overrides: Partial<Options> = {}): Options {
  return { ...defaultOptions(), mysql: true, ...overrides };
}

const noSockets = {
  socketExists: () => false,
  loginName: () => "login",
  home: "/nonexistent",
  // Not this machine's /etc/mysql: nothing named there.
  serverConfig: () => ({ user: "mysql" }),
};

Deno.test("option file: client and mysql groups, quotes, keys without value, comments", () => {
  withDir((dir) => {
    const file = `${dir}/my.cnf`;
    Deno.writeTextFileSync(
      file,
      [
        "# a comment",
        "; another",
        "[mysqld]",
        "user = mysql",
        "[client]",
        'user = "backup user"',
        "password='s3cr#t;x'",
        "host=db.example # trailing comment",
        "port = 3307",
        "skip-ssl",
        "default_character_set = utf8mb4",
        "[mysql]",
        "port=3308",
        "password=a;b",
      ].join("\n"),
    );
    const { groups, files } = readOptionFile(file);
    assertEquals(files, [file]);
    assertEquals(groups.mysqld.user, "mysql");
    assertEquals(groups.client.user, "backup user");
    assertEquals(groups.client.password, "s3cr#t;x");
    assertEquals(groups.client.host, "db.example");
    assertEquals(groups.client["skip-ssl"], true);
    assertEquals(groups.client["default-character-set"], "utf8mb4");
    assertEquals(groups.mysql.password, "a;b");

    const settings = resolveMysqlSettings(options({ mysqlDefaultsFile: file }), noSockets);
    // [mysql] is read after [client]: it wins.
    assertEquals(settings.port, 3308);
    assertEquals(settings.password, "a;b");
    assertEquals(settings.user, "backup user");
    assertEquals(settings.host, "db.example");
    assertEquals(settings.socketPath, undefined);
  });
});

Deno.test("option file: the command line wins over the file", () => {
  withDir((dir) => {
    const file = `${dir}/my.cnf`;
    Deno.writeTextFileSync(
      file,
      "[client]\nuser=fileuser\npassword=filepw\nsocket=/file.sock\nport=1\n",
    );
    const settings = resolveMysqlSettings(
      options({
        mysqlDefaultsFile: file,
        mysqlUsername: "cli",
        mysqlPassword: "clipw",
        mysqlSocket: "/cli.sock",
        mysqlPort: 3310,
      }),
      noSockets,
    );
    assertEquals(settings.user, "cli");
    assertEquals(settings.password, "clipw");
    assertEquals(settings.socketPath, "/cli.sock");
    assertEquals(settings.socketSource, "option");
    assertEquals(settings.port, 3310);
    const fromFile = resolveMysqlSettings(options({ mysqlDefaultsFile: file }), noSockets);
    assertEquals(fromFile.socketPath, "/file.sock");
    assertEquals(fromFile.socketSource, "file");
    assertEquals(fromFile.user, "fileuser");
  });
});

Deno.test("option file: !include and !includedir, later values win", () => {
  withDir((dir) => {
    Deno.mkdirSync(`${dir}/conf.d`);
    Deno.writeTextFileSync(`${dir}/conf.d/10-a.cnf`, "[client]\nuser=from-a\nport=1001\n");
    Deno.writeTextFileSync(`${dir}/conf.d/20-b.cnf`, "[client]\nport=1002\n");
    Deno.writeTextFileSync(`${dir}/conf.d/ignored.txt`, "[client]\nport=9999\n");
    Deno.writeTextFileSync(`${dir}/extra.cnf`, "[client]\npassword=included\nhost=h1\n");
    Deno.writeTextFileSync(
      `${dir}/my.cnf`,
      "[client]\nhost=h0\n!include extra.cnf\nhost=h2\n!includedir " + `${dir}/conf.d\n`,
    );
    const { groups, files } = readOptionFile(`${dir}/my.cnf`);
    assertEquals(files, [
      `${dir}/my.cnf`,
      `${dir}/extra.cnf`,
      `${dir}/conf.d/10-a.cnf`,
      `${dir}/conf.d/20-b.cnf`,
    ]);
    // host=h2 comes after the include, in the same [client] group: it wins.
    assertEquals(groups.client.host, "h2");
    assertEquals(groups.client.password, "included");
    assertEquals(groups.client.user, "from-a");
    assertEquals(groups.client.port, "1002");
  });
});

Deno.test("option file: bad files are usage errors naming the file", () => {
  withDir((dir) => {
    const missing = `${dir}/missing.cnf`;
    const error = assertThrows(
      () => resolveMysqlSettings(options({ mysqlDefaultsFile: missing }), noSockets),
      UsageError,
    );
    assertMatch(error.message, new RegExp(`${missing}: cannot read: no such file`));

    const cases: [string, RegExp][] = [
      ["[client\nuser=x\n", /line 1: bad group/],
      ["[client]\nthis is not an option\n", /line 2: not an option/],
      ["user=x\n", /outside of a \[group\]/],
      ["[client]\n!include nothere.cnf\n", /!include in .*: .*nothere\.cnf: cannot read/],
      ["[client]\n!frobnicate x\n", /unknown directive/],
      ["[client]\nport=abc\n", /port must be a number/],
      ["[client]\nuser\n", /'user' needs a value/],
    ];
    for (const [text, pattern] of cases) {
      const file = `${dir}/bad.cnf`;
      Deno.writeTextFileSync(file, text);
      const bad = assertThrows(
        () => resolveMysqlSettings(options({ mysqlDefaultsFile: file }), noSockets),
        UsageError,
      );
      assertMatch(bad.message, pattern);
      assertMatch(bad.message, /bad\.cnf|nothere/);
    }
  });
});

Deno.test("option file: ~/.my.cnf is read when it exists, ignored when not", () => {
  withDir((dir) => {
    const none = resolveMysqlSettings(options(), { ...noSockets, home: dir });
    assertEquals(none.files, []);
    assertEquals(none.user, "login");
    assertEquals(none.password, undefined);
    Deno.writeTextFileSync(`${dir}/.my.cnf`, "[client]\nuser=homeuser\npassword\n");
    const home = resolveMysqlSettings(options(), { ...noSockets, home: dir });
    assertEquals(home.files, [`${dir}/.my.cnf`]);
    assertEquals(home.user, "homeuser");
    // "password" alone would make mysql prompt; here it means no password.
    assertEquals(home.password, undefined);
  });
});

Deno.test("socket: localhost searches the usual paths in order; other hosts use TCP", () => {
  const seen: string[] = [];
  const third = SOCKET_PATHS[2];
  const settings = resolveMysqlSettings(options(), {
    ...noSockets,
    socketExists: (path) => {
      seen.push(path);
      return path === third;
    },
  });
  assertEquals(settings.socketPath, third);
  assertEquals(settings.socketSource, "search");
  assertEquals(seen, SOCKET_PATHS.slice(0, 3));
  const tcp = resolveMysqlSettings(options({ mysqlHost: "127.0.0.1", mysqlPort: 3307 }), noSockets);
  assertEquals(tcp.socketPath, undefined);
  assertEquals(tcp.port, 3307);
  assertMatch(describeMysqlSettings(tcp), /127\.0\.0\.1:3307 as login, no password/);
});

Deno.test("describeMysqlSettings never shows the password", () => {
  const settings = resolveMysqlSettings(
    options({ mysqlPassword: "hunter2-secret" }),
    noSockets,
  );
  const text = describeMysqlSettings(settings);
  assertEquals(text.includes("hunter2-secret"), false);
  assertMatch(text, /password set/);
});
