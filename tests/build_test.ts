/**
 * scripts/build.sh: its plain message when the Deno runtime for compiling is missing, and, when
 * a runtime is available (DENORT_BIN or internet), the compiled binary itself.
 */
import { assert, assertEquals } from "./support/assert.ts";
import { runCommand } from "./support/tools.ts";
import { MAIN } from "./support/program.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const HOST_TARGET = `${Deno.build.arch}-unknown-linux-gnu`;
const NAME = "ec2-consistent-snapshot";

/** Runs the build script with extra environment; `unset` names variables to drop. */
async function build(args: string[], env: Record<string, string> = {}, unset: string[] = []) {
  const base = Deno.env.toObject();
  for (const name of [...unset, "DENORT_BIN", "ECS_VERSION"]) delete base[name];
  return await runCommand("bash", [`${ROOT}scripts/build.sh`, ...args], {
    env: { ...base, ...env },
    clearEnv: true,
  });
}

async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "ecs-build-test-" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Without a runtime only the man page and its sum are written, and the sum checks out. */
async function assertOnlyManPage(dir: string): Promise<void> {
  const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
  assertEquals(names, ["SHA256SUMS", `${NAME}.1`], "the man page is written even so");
  const sums = await runCommand("sha256sum", ["-c", "SHA256SUMS"], { cwd: dir });
  assertEquals(sums.code, 0, sums.stdout + sums.stderr);
  assert(Deno.readTextFileSync(`${dir}/${NAME}.1`).includes(".SH EXIT STATUS"));
}

Deno.test("without a runtime to compile with, build.sh says what is missing and how to get it", async () => {
  await withTempDir(async (dir) => {
    // An empty Deno cache and a proxy that refuses: no denort, even on a machine with internet.
    const proxy = "http://127.0.0.1:9";
    const result = await build(["--out", `${dir}/dist`, HOST_TARGET], {
      DENO_DIR: `${dir}/deno-dir`,
      HTTPS_PROXY: proxy,
      https_proxy: proxy,
      HTTP_PROXY: proxy,
      http_proxy: proxy,
    }, ["NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"]);
    assertEquals(result.code, 3, result.stderr);
    const message = result.stderr;
    assert(
      message.includes(`cannot build ${HOST_TARGET}: the runtime could not be fetched`),
      message,
    );
    assert(message.includes("denort"), message);
    assert(message.includes("internet access"), message);
    assert(message.includes(`DENORT_BIN=/path/to/denort scripts/build.sh ${HOST_TARGET}`), message);
    assert(/denort-x86_64|denort-aarch64/.test(message), message);
    await assertOnlyManPage(`${dir}/dist`);
  });
});

Deno.test("DENORT_BIN that is missing or is the deno CLI is refused plainly", async () => {
  await withTempDir(async (dir) => {
    const missing = await build(["--out", dir], { DENORT_BIN: `${dir}/no-such-denort` });
    assertEquals(missing.code, 3, missing.stderr);
    assert(missing.stderr.includes("is not an executable file"), missing.stderr);

    const cli = await build(["--out", dir], { DENORT_BIN: Deno.execPath() });
    assertEquals(cli.code, 3, cli.stderr);
    assert(cli.stderr.includes("is not a working denort"), cli.stderr);
    assert(cli.stderr.includes("the deno CLI binary itself does not work"), cli.stderr);
    await assertOnlyManPage(dir);
  });
});

Deno.test("build.sh refuses unknown targets and options", async () => {
  const target = await build(["sparc-sun-solaris"]);
  assertEquals(target.code, 2);
  assert(target.stderr.includes("unknown target 'sparc-sun-solaris'"), target.stderr);
  const option = await build(["--frobnicate"]);
  assertEquals(option.code, 2);
  assert(option.stderr.includes("unknown option --frobnicate"), option.stderr);
});

/** A binary built once for the tests below, or the reason there is none. */
const VERSION = "9.9.9-test";
const compiled: { dir?: string; skip?: string } = await (async () => {
  const dir = await Deno.makeTempDir({ prefix: "ecs-build-test-" });
  const result = await build(["--out", dir, HOST_TARGET], { ECS_VERSION: VERSION });
  if (result.code === 0) return { dir };
  await Deno.remove(dir, { recursive: true });
  if (result.code !== 3) return {}; // a real failure: the test below reports it
  const reason = (result.stderr.split("\n").find((line) => line.includes("cannot build")) ?? "")
    .replace(/^build\.sh: /, "");
  console.warn(
    `SKIPPED build_test "the compiled binary ...": no Deno runtime (denort) to compile with: ` +
      `${reason}\n  Set DENORT_BIN to a denort of the pinned Deno version, or build with internet.`,
  );
  return { skip: reason };
})();

Deno.test({
  name: "the compiled binary runs --version, --help and the end-to-end tests",
  ignore: compiled.skip !== undefined,
  async fn() {
    const dir = compiled.dir;
    assert(dir, "scripts/build.sh failed; run it by hand to see why");
    try {
      const binary = `${dir}/${NAME}-${HOST_TARGET}`;
      const shown = await runCommand(binary, ["--version"]);
      assertEquals(shown.code, 0, shown.stderr);
      assert(shown.stdout.includes(VERSION), shown.stdout);

      const flags = (await Deno.readTextFile(`${ROOT}scripts/run-flags`)).trim().split(/\s+/);
      const help = await runCommand(binary, ["--help"]);
      const expected = await runCommand(Deno.execPath(), [
        "run",
        ...flags,
        MAIN,
        "--help",
      ]);
      assertEquals(help.code, 0, help.stderr);
      const withoutVersion = (text: string) => text.split("\n").slice(1).join("\n");
      assertEquals(withoutVersion(help.stdout), withoutVersion(expected.stdout));

      const bad = await runCommand(binary, ["--no-such-option"]);
      assertEquals(bad.code, 2, bad.stderr);

      // The foundation's end-to-end tests, with the binary instead of `deno run`.
      const e2e = await runCommand(Deno.execPath(), [
        "test",
        "--allow-all",
        `${ROOT}tests/cli_test.ts`,
        `${ROOT}tests/snapshot_test.ts`,
      ], { env: { ECS_BINARY: binary }, cwd: ROOT });
      assertEquals(e2e.code, 0, e2e.stdout.slice(-3000) + e2e.stderr.slice(-3000));

      const sums = await runCommand("sha256sum", ["-c", "SHA256SUMS"], { cwd: dir });
      assertEquals(sums.code, 0, sums.stdout + sums.stderr);
      assert(sums.stdout.includes(`${NAME}.1: OK`), sums.stdout);
      assert(sums.stdout.includes(`${NAME}-${HOST_TARGET}: OK`), sums.stdout);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
