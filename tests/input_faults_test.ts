/**
 * The standing fault table of the paths and values a user names, through the real program: a
 * FIFO, /dev/zero, a directory, a huge file, a link, an empty or relative path, a value with a
 * newline. Each ends at once in one line and the usage exit code, before anything is locked (the
 * run directory stays empty); nothing hangs.
 */
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { baseEnv, spawnProgram } from "./support/program.ts";
import { ExitCode } from "../src/util/errors.ts";

const VOL = "vol-0123456789abcdef0";
/** Far beyond what any of these takes; a run still going then is hung (and is killed). */
const HANG_MS = 60_000;

/** Runs the program; a run that does not end within HANG_MS is killed and fails the test. */
async function runBounded(args: string[], env: Record<string, string>) {
  const child = spawnProgram(args, { env });
  let hung = false;
  const timer = setTimeout(() => {
    hung = true;
    child.kill("SIGKILL");
  }, HANG_MS);
  try {
    const out = await child.output();
    assert(!hung, `hung: ${args.join(" ")}`);
    const decoder = new TextDecoder();
    return {
      code: out.code,
      stdout: decoder.decode(out.stdout),
      stderr: decoder.decode(out.stderr),
    };
  } finally {
    clearTimeout(timer);
  }
}

/** The error lines of stderr (warnings aside). */
function errorLines(stderr: string): string[] {
  return stderr.split("\n").filter((line) => line !== "" && !line.includes(": warning: "));
}

/** A temp folder with a FIFO, a directory and a regular file; removed after `body`. */
async function withOddPaths(
  body: (p: { dir: string; fifo: string; subdir: string; env: Record<string, string> }) => Promise<
    void
  >,
): Promise<void> {
  const dir = Deno.makeTempDirSync({ prefix: "ecs-input-" });
  const fifo = `${dir}/fifo`;
  const mkfifo = await new Deno.Command("mkfifo", { args: [fifo] }).output();
  assert(mkfifo.success, "mkfifo");
  Deno.mkdirSync(`${dir}/subdir`);
  Deno.mkdirSync(`${dir}/run`, { mode: 0o700 });
  // No network at all: an EC2 call would fail, and none should be made.
  const env = baseEnv({
    AWS_REGION: "us-east-1",
    AWS_ENDPOINT_URL_EC2: "http://127.0.0.1:9",
    ECS_RUN_DIR: `${dir}/run`,
  });
  try {
    await body({ dir, fifo, subdir: `${dir}/subdir`, env });
    // Nothing was locked: no freeze lock, no hold record in the run directory.
    assertEquals([...Deno.readDirSync(`${dir}/run`)].map((e) => e.name), []);
  } finally {
    Deno.removeSync(dir, { recursive: true });
    Deno.removeSync(env.HOME, { recursive: true });
  }
}

Deno.test("a named file that is a FIFO, /dev/zero or a directory: one line, exit 2, no hang", async () => {
  await withOddPaths(async ({ dir, fifo, subdir, env }) => {
    const keyFile = `${dir}/key`;
    Deno.writeTextFileSync(keyFile, "AKIAIOSFODNN7EXAMPLE\n", { mode: 0o600 });
    for (const odd of [fifo, "/dev/zero", subdir]) {
      const kind = odd === fifo ? /a FIFO/ : odd === subdir ? /a directory/ : /a device/;
      const cases: [string[], string][] = [
        [["--config", odd, VOL], "--config"],
        [["--aws-credentials-file", odd, VOL], "--aws-credentials-file"],
        [
          ["--aws-access-key-id-file", odd, "--aws-secret-access-key-file", keyFile, VOL],
          "--aws-access-key-id-file",
        ],
        [
          ["--aws-access-key-id-file", keyFile, "--aws-secret-access-key-file", odd, VOL],
          "--aws-secret-access-key-file",
        ],
        [["--mysql", "--mysql-defaults-file", odd, VOL], "MySQL option file"],
        [["--hold", "--mysql", "--mysql-defaults-file", odd], "MySQL option file"],
      ];
      for (const [args, what] of cases) {
        const out = await runBounded(args, env);
        assertEquals(out.code, ExitCode.usage, `${args.join(" ")}: ${out.stderr}`);
        const lines = errorLines(out.stderr);
        assertEquals(lines.length, 1, out.stderr);
        assert(lines[0].includes(`${what} ${odd}: cannot read: `), lines[0]);
        assertMatch(lines[0], kind);
      }
    }
  });
});

Deno.test("files found by default (~/.my.cnf, $PGSERVICEFILE, $AWS_CONFIG_FILE) that are FIFOs: exit 2, no hang", async () => {
  await withOddPaths(async ({ fifo, env }) => {
    const myCnf = `${env.HOME}/.my.cnf`;
    await new Deno.Command("mkfifo", { args: [myCnf] }).output();
    const mysql = await runBounded(["--mysql", VOL], env);
    assertEquals(mysql.code, ExitCode.usage, mysql.stderr);
    assertMatch(mysql.stderr, /MySQL option file .*\.my\.cnf: cannot read: a FIFO/);
    Deno.removeSync(myCnf);

    const service = await runBounded(["--postgresql", VOL], {
      ...env,
      PGSERVICE: "main",
      PGSERVICEFILE: fifo,
    });
    assertEquals(service.code, ExitCode.usage, service.stderr);
    assertMatch(service.stderr, /PostgreSQL service file .*: cannot read: a FIFO/);

    const aws = await runBounded([VOL], { ...env, AWS_CONFIG_FILE: fifo });
    assertEquals(aws.code, ExitCode.usage, aws.stderr);
    assertMatch(aws.stderr, /\$AWS_CONFIG_FILE .*: cannot read: a FIFO/);
  });
});

Deno.test("--metrics-file: empty is refused up front; a FIFO never hangs, even after a usage error", async () => {
  await withOddPaths(async ({ fifo, env }) => {
    const empty = await runBounded(["--metrics-file", "", VOL], env);
    assertEquals(empty.code, ExitCode.usage, empty.stderr);
    assertEquals(errorLines(empty.stderr), [
      "ec2-consistent-snapshot: --metrics-file: the path is empty",
    ]);
    const emptyEq = await runBounded(["--metrics-file=", "--keep", "-1", VOL], env);
    assertEquals(emptyEq.code, ExitCode.usage, emptyEq.stderr);
    assertEquals(errorLines(emptyEq.stderr).length, 1, emptyEq.stderr);

    const fifoRun = await runBounded(["--metrics-file", fifo, VOL], env);
    assertEquals(fifoRun.code, ExitCode.usage, fifoRun.stderr);
    assertEquals(errorLines(fifoRun.stderr).length, 1, fifoRun.stderr);
    assertMatch(fifoRun.stderr, /--metrics-file .*: is not a regular file/);
    // After a usage error the failed run's metrics are written; a FIFO there is left alone.
    const afterUsage = await runBounded(["--keep", "-1", "--metrics-file", fifo, VOL], env);
    assertEquals(afterUsage.code, ExitCode.usage, afterUsage.stderr);
    assertEquals(errorLines(afterUsage.stderr).length, 1, afterUsage.stderr);
    assert(Deno.lstatSync(fifo).isFifo, "the FIFO is still there, untouched");
  });
});

Deno.test("a relative $ECS_RUN_DIR, --hold below 5 s, --keep-days too large: one line, exit 2", async () => {
  await withOddPaths(async ({ env }) => {
    const cases: [string[], Record<string, string>, RegExp][] = [
      [
        ["--release"],
        { ECS_RUN_DIR: "relative/run" },
        /\$ECS_RUN_DIR relative\/run: must be an absolute path/,
      ],
      [[VOL], { ECS_RUN_DIR: "run" }, /\$ECS_RUN_DIR run: must be an absolute path/],
      [["--hold", "0.0004", "--mysql"], {}, /--hold: must be at least 5 seconds, got '0.0004'/],
      [
        ["--keep-days", "99999999", VOL],
        {},
        /--keep-days: must be at most 36500 days, got '99999999'/,
      ],
      [["--keep-days", "soon", VOL], {}, /--keep-days: must be a number of days/],
    ];
    for (const [args, extra, pattern] of cases) {
      const out = await runBounded(args, { ...env, ...extra });
      assertEquals(out.code, ExitCode.usage, `${args.join(" ")}: ${out.stderr}`);
      assertEquals(errorLines(out.stderr).length, 1, out.stderr);
      assertMatch(out.stderr, pattern);
    }
  });
});

Deno.test("a newline or a tab in an echoed value stays on one line, escaped", async () => {
  await withOddPaths(async ({ env }) => {
    const out = await runBounded(["--output", "js\non\tx", VOL], env);
    assertEquals(out.code, ExitCode.usage, out.stderr);
    assertEquals(out.stderr.split("\n").filter((l) => l !== "").length, 1, out.stderr);
    assert(out.stderr.includes("js\\x0aon\\x09x"), out.stderr);
    // The dry run's plan echoes the description: one line for it, the newline escaped.
    const plan = await runBounded(["--noaction", "--description", "a\nwould freeze /", VOL], env);
    assertEquals(plan.code, 0, plan.stderr);
    assert(!plan.stderr.split("\n").some((l) => l.startsWith("would freeze")), plan.stderr);
    assert(plan.stderr.includes('description="a\\x0awould freeze /"'), plan.stderr);
    const config = await runBounded(["--config", "/no/such\nfile", VOL], env);
    assertEquals(config.code, ExitCode.usage, config.stderr);
    assertEquals(config.stderr.split("\n").filter((l) => l !== "").length, 1, config.stderr);
  });
});

Deno.test("a huge --config, a link to a FIFO, a FIFO or /dev/zero as ~/.pgpass: bounded, no hang", async () => {
  await withOddPaths(async ({ dir, fifo, env }) => {
    const huge = `${dir}/huge.conf`;
    Deno.writeTextFileSync(huge, "");
    Deno.truncateSync(huge, 2 * 1024 * 1024);
    const big = await runBounded(["--config", huge, VOL], env);
    assertEquals(big.code, ExitCode.usage, big.stderr);
    assertMatch(big.stderr, /--config .*huge\.conf: cannot read: larger than 1048576 bytes/);

    const link = `${dir}/link.conf`;
    Deno.symlinkSync(fifo, link);
    const linked = await runBounded(["--config", link, VOL], env);
    assertEquals(linked.code, ExitCode.usage, linked.stderr);
    assertMatch(linked.stderr, /--config .*link\.conf: cannot read: a FIFO, not a regular file/);

    // A ~/.pgpass others may read is ignored, as libpq does, and said to be (not "none is set").
    Deno.writeTextFileSync(`${env.HOME}/.pgpass`, "*:*:*:*:pg-Secret-1\n", { mode: 0o644 });
    const open = await runBounded(["--noaction", "--debug", "--postgresql", VOL], env);
    assertEquals(open.code, 0, open.stderr);
    assertMatch(
      open.stderr,
      /password none \(.*\/\.pgpass was ignored: mode 0644 lets group or others read it; chmod 0600 /,
    );
    assert(!open.stderr.includes("pg-Secret-1"), "the password is never shown");
    Deno.removeSync(`${env.HOME}/.pgpass`);

    // libpq ignores a password file that is not a plain file; so does the plan, and says so.
    for (const odd of [fifo, "/dev/zero"]) {
      const out = await runBounded(["--noaction", "--debug", "--postgresql", VOL], {
        ...env,
        PGPASSFILE: odd,
      });
      assertEquals(out.code, 0, out.stderr);
      assertMatch(
        out.stderr,
        new RegExp(`password none \\(${odd} was ignored: not a plain file\\)`),
      );
    }
  });
});

Deno.test("every path option given an empty path, on the command line or in --config: one line, exit 2", async () => {
  await withOddPaths(async ({ dir, env }) => {
    const paths = [
      "mysql-defaults-file",
      "mysql-socket",
      "mysql-master-status-file",
      "aws-access-key-id-file",
      "aws-secret-access-key-file",
      "aws-credentials-file",
    ];
    for (const name of paths) {
      const line = `ec2-consistent-snapshot: --${name}: the path is empty`;
      const given = await runBounded(["--mysql", `--${name}`, "", VOL], env);
      assertEquals(given.code, ExitCode.usage, given.stderr);
      assertEquals(errorLines(given.stderr), [line]);
      // Nothing after '=': refused as Getopt::Long refuses it, before any path check.
      const equals = await runBounded(["--mysql", `--${name}=`, VOL], env);
      assertEquals(equals.code, ExitCode.usage, equals.stderr);
      assertEquals(errorLines(equals.stderr), [
        `ec2-consistent-snapshot: --${name}=: needs a value after '='`,
      ]);
      const config = `${dir}/empty-${name}.conf`;
      Deno.writeTextFileSync(config, `mysql = true\n${name} =\n`);
      const fromFile = await runBounded(["--config", config, VOL], env);
      assertEquals(fromFile.code, ExitCode.usage, fromFile.stderr);
      assertEquals(errorLines(fromFile.stderr).length, 1, fromFile.stderr);
      assertMatch(fromFile.stderr, new RegExp(`--${name}: the path is empty`));
    }
  });
});

Deno.test("a region name with a newline, with an endpoint given: one line, exit 2, escaped", async () => {
  await withOddPaths(async ({ env }) => {
    const keys = { AWS_ACCESS_KEY_ID: "AKIDEXAMPLE", AWS_SECRET_ACCESS_KEY: "x" };
    const given = await runBounded(["--region", "us-east-1\nx", VOL], { ...env, ...keys });
    assertEquals(given.code, ExitCode.usage, given.stderr);
    assertEquals(errorLines(given.stderr), [
      "ec2-consistent-snapshot: --region: 'us-east-1\\x0ax' is not a region name (letters, " +
      "digits and hyphens, like eu-west-1)",
    ]);
    const fromEnv = await runBounded(["--noaction", VOL], {
      ...env,
      ...keys,
      AWS_REGION: "us-east-1 x",
    });
    assertEquals(fromEnv.code, ExitCode.usage, fromEnv.stderr);
    assertMatch(fromEnv.stderr, /\$AWS_REGION: 'us-east-1 x' is not a region name/);
  });
});
