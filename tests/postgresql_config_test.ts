/** Tests of the PostgreSQL connection settings: libpq's order of options, service file, PG* variables and ~/.pgpass. */

import { assertEquals, assertMatch, assertRejects } from "./support/assert.ts";
import { ExitCode, UsageError } from "../src/util/errors.ts";
import { baseEnv, runProgram } from "./support/program.ts";
import {
  describePostgresqlSettings,
  type PostgresqlOptions,
  type PostgresqlSettingsInputs,
  resolvePostgresqlSettings,
} from "../src/plan/postgresql_settings.ts";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = Deno.makeTempDirSync({ prefix: "ecs-pgconf-" });
  try {
    await fn(dir);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

const none: PostgresqlOptions = {
  postgresqlHost: undefined,
  postgresqlPort: undefined,
  postgresqlUsername: undefined,
  postgresqlDbname: undefined,
};

function inputs(
  dir: string,
  overrides: Partial<PostgresqlSettingsInputs> = {},
): PostgresqlSettingsInputs {
  return {
    options: none,
    env: { PGSYSCONFDIR: `${dir}/etc` },
    home: dir,
    loginName: "login",
    exists: () => false,
    serverSocketDirs: () => [], // not this machine's /etc/postgresql
    ...overrides,
  };
}

Deno.test("postgresql settings: libpq's defaults without anything set", async () => {
  await withDir(async (dir) => {
    const plan = await resolvePostgresqlSettings(inputs(dir));
    assertEquals(
      { host: plan.host, port: plan.port, user: plan.user, database: plan.database },
      { host: "/var/run/postgresql", port: 5432, user: "login", database: "login" },
    );
    assertEquals(plan.password, undefined);
    assertMatch(describePostgresqlSettings(plan), /socket \/var\/run\/postgresql .*password none/);
  });
});

Deno.test("postgresql settings: the default socket is the first directory that has one", async () => {
  await withDir(async (dir) => {
    const plan = await resolvePostgresqlSettings(
      inputs(dir, {
        env: { PGPORT: "5433" },
        exists: (path) => path === "/run/postgresql/.s.PGSQL.5433",
      }),
    );
    assertEquals([plan.host, plan.port], ["/run/postgresql", 5433]);
    // Upstream's /tmp is never searched: another user could listen there.
    const tmp = await resolvePostgresqlSettings(
      inputs(dir, { env: { PGPORT: "5433" }, exists: (path) => path.startsWith("/tmp/") }),
    );
    assertEquals(tmp.host, "/var/run/postgresql");
    // The server's own configuration comes first.
    const configured = await resolvePostgresqlSettings(
      inputs(dir, {
        serverSocketDirs: (port) => port === 5432 ? ["/srv/pg"] : [],
        exists: (path) => path.startsWith("/srv/pg/") || path.startsWith("/run/postgresql/"),
      }),
    );
    assertEquals(configured.host, "/srv/pg");
  });
});

Deno.test("postgresql settings: options win over PG* variables, variables over defaults", async () => {
  await withDir(async (dir) => {
    const env = {
      PGHOST: "db.example",
      PGPORT: "6432",
      PGUSER: "envuser",
      PGDATABASE: "envdb",
      PGPASSWORD: "env-Secret-1",
    };
    const fromEnv = await resolvePostgresqlSettings(inputs(dir, { env }));
    assertEquals(
      [fromEnv.host, fromEnv.port, fromEnv.user, fromEnv.database, fromEnv.password],
      ["db.example", 6432, "envuser", "envdb", "env-Secret-1"],
    );
    assertEquals(fromEnv.sources.password, "$PGPASSWORD");
    const fromOptions = await resolvePostgresqlSettings(inputs(dir, {
      env,
      options: {
        postgresqlHost: "/run/pg",
        postgresqlPort: 7000,
        postgresqlUsername: "snap",
        postgresqlDbname: "app",
      },
    }));
    assertEquals(
      [fromOptions.host, fromOptions.port, fromOptions.user, fromOptions.database],
      ["/run/pg", 7000, "snap", "app"],
    );
    assertEquals(fromOptions.sources.user, "--postgresql-username");
    assertEquals(describePostgresqlSettings(fromOptions).includes("env-Secret-1"), false);
  });
});

Deno.test("postgresql settings: $PGSERVICE from ~/.pg_service.conf, which beats PG* variables", async () => {
  await withDir(async (dir) => {
    Deno.writeTextFileSync(
      `${dir}/.pg_service.conf`,
      "# services\n[other]\nhost=elsewhere\n\n[snap]\nhost = /run/custom\nport=5499\n" +
        "user=svcuser\ndbname=svcdb\npassword=svc-Secret-2\nsslmode=disable\n",
    );
    const debug: string[] = [];
    const plan = await resolvePostgresqlSettings(inputs(dir, {
      env: { PGSERVICE: "snap", PGHOST: "ignored", PGUSER: "ignored", PGPASSWORD: "ignored" },
      options: { ...none, postgresqlDbname: "fromoption" },
      debug: (m) => debug.push(m),
    }));
    assertEquals(
      [plan.host, plan.port, plan.user, plan.database, plan.password],
      ["/run/custom", 5499, "svcuser", "fromoption", "svc-Secret-2"],
    );
    assertMatch(plan.sources.host, /^service snap \(.*\.pg_service\.conf\)$/);
    assertMatch(debug.join("\n"), /sslmode is not used/);
  });
});

Deno.test("postgresql settings: the system pg_service.conf when the user's has no such service", async () => {
  await withDir(async (dir) => {
    Deno.mkdirSync(`${dir}/etc`);
    Deno.writeTextFileSync(`${dir}/.pg_service.conf`, "[other]\nhost=x\n");
    Deno.writeTextFileSync(`${dir}/etc/pg_service.conf`, "[snap]\nport=5555\n");
    const plan = await resolvePostgresqlSettings(
      inputs(dir, { env: { PGSERVICE: "snap", PGSYSCONFDIR: `${dir}/etc` } }),
    );
    assertEquals(plan.port, 5555);
    await assertRejects(
      () =>
        resolvePostgresqlSettings(
          inputs(dir, { env: { PGSERVICE: "nope", PGSYSCONFDIR: `${dir}/etc` } }),
        ),
      UsageError,
      /definition of service "nope" not found/,
    );
  });
});

Deno.test("postgresql settings: ~/.pgpass, first match wins, localhost for the default socket", async () => {
  await withDir(async (dir) => {
    const pgpass = `${dir}/.pgpass`;
    Deno.writeTextFileSync(
      pgpass,
      [
        "# comment:*:*:*:nope",
        "db.example:5432:app:snap:remote-Pass-1",
        "localhost:5432:*:snap:local\\:Pass-2",
        "/run/custom:*:*:*:custom-Pass-3",
        "*:*:*:snap:fallback-Pass-4",
      ].join("\n") + "\n",
      { mode: 0o600 },
    );
    Deno.chmodSync(pgpass, 0o600);
    const user = { ...none, postgresqlUsername: "snap" };
    const local = await resolvePostgresqlSettings(inputs(dir, { options: user }));
    assertEquals(local.password, "local:Pass-2");
    assertEquals(local.sources.password, pgpass);
    const remote = await resolvePostgresqlSettings(
      inputs(dir, { options: { ...user, postgresqlHost: "db.example", postgresqlDbname: "app" } }),
    );
    assertEquals(remote.password, "remote-Pass-1");
    const custom = await resolvePostgresqlSettings(
      inputs(dir, { options: { ...user, postgresqlHost: "/run/custom" } }),
    );
    assertEquals(custom.password, "custom-Pass-3");
    const other = await resolvePostgresqlSettings(
      inputs(dir, { options: { ...user, postgresqlHost: "other.example", postgresqlPort: 1 } }),
    );
    assertEquals(other.password, "fallback-Pass-4");
    const withVariable = await resolvePostgresqlSettings(
      inputs(dir, { options: user, env: { PGPASSWORD: "env-Pass-5" } }),
    );
    assertEquals(withVariable.password, "env-Pass-5");

    Deno.chmodSync(pgpass, 0o644);
    const debug: string[] = [];
    const open = await resolvePostgresqlSettings(
      inputs(dir, { options: user, debug: (m) => debug.push(m) }),
    );
    assertEquals(open.password, undefined, "a password file others may read is ignored");
    assertMatch(debug.join("\n"), /ignored.*0600/);
  });
});

Deno.test("postgresql settings: $PGPASSFILE names the password file", async () => {
  await withDir(async (dir) => {
    Deno.writeTextFileSync(`${dir}/pw`, "*:*:*:*:file-Pass-6\n", { mode: 0o600 });
    Deno.chmodSync(`${dir}/pw`, 0o600);
    const plan = await resolvePostgresqlSettings(inputs(dir, { env: { PGPASSFILE: `${dir}/pw` } }));
    assertEquals(plan.password, "file-Pass-6");
  });
});

Deno.test("postgresql settings: a bad port or several hosts are refused, naming the source", async () => {
  await withDir(async (dir) => {
    await assertRejects(
      () => resolvePostgresqlSettings(inputs(dir, { env: { PGPORT: "54x" } })),
      UsageError,
      "PostgreSQL port from $PGPORT: expected 1 to 65535, got '54x'",
    );
    await assertRejects(
      () => resolvePostgresqlSettings(inputs(dir, { env: { PGHOST: "a,b" } })),
      UsageError,
      /\$PGHOST: several hosts/,
    );
  });
});

Deno.test("postgresql settings through the program: one database per run; an unknown service is exit 2", async () => {
  const env = baseEnv({ AWS_REGION: "us-east-1" });
  try {
    const both = await runProgram(["-n", "--postgresql", "--mysql", "vol-1234abcd"], { env });
    assertEquals(both.code, ExitCode.usage, both.stderr);
    assertMatch(both.stderr, /--postgresql cannot be combined with --mysql/);
    const service = await runProgram(["-n", "--postgresql", "vol-1234abcd"], {
      env: { ...env, PGSERVICE: "nope", PGSYSCONFDIR: env.HOME },
    });
    assertEquals(service.code, ExitCode.usage, service.stderr);
    assertMatch(service.stderr, /\$PGSERVICE: definition of service "nope" not found/);
  } finally {
    // baseEnv's HOME is removed when the test process ends.
  }
});
