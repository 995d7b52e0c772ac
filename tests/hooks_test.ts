/** The real hooks: `sh -c`, output to stderr, bounded in time, failures named. */
import assert from "node:assert/strict";
import { HookError } from "../src/util/errors.ts";
import { createHooks } from "../src/run/hooks.ts";
import { silentLogger } from "../src/util/log.ts";

/** Runs `code` in a child deno (so its stdout/stderr can be captured) and returns what it wrote. */
async function inChild(code: string) {
  const module = new URL("../src/run/hooks.ts", import.meta.url).href;
  const logModule = new URL("../src/util/log.ts", import.meta.url).href;
  const script = `import { createHooks } from ${JSON.stringify(module)};
import { silentLogger } from ${JSON.stringify(logModule)};
const hooks = createHooks({ log: silentLogger });
${code}`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--quiet", script],
    stdin: "piped", // a hook must not read it: it gets /dev/null
    stdout: "piped",
    stderr: "piped",
  }).spawn().output();
  const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

Deno.test("a hook's output all goes to stderr (stdout carries the ids) and it reads no input", async () => {
  const result = await inChild(
    `await hooks.run("pre-freeze", "echo to-stdout; echo to-stderr >&2; cat; echo \\"[$?]\\"");`,
  );
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout, "");
  assert.equal(result.stderr, "to-stdout\nto-stderr\n[0]\n");
});

Deno.test("a hook past its time limit is killed with what it started: a HookError", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const hooks = createHooks({ log: silentLogger, timeoutMs: 500 });
    const started = performance.now();
    await assert.rejects(
      hooks.run("pre-freeze", `sleep 30 & echo $! > '${dir}/pid'; wait`),
      (error: Error) =>
        error instanceof HookError &&
        /^--pre-freeze-command did not finish within 0.5 s; killed/.test(error.message),
    );
    assert.ok(performance.now() - started < 20_000, "killed, not waited for (30 s)");
    const pid = Number(await Deno.readTextFile(`${dir}/pid`));
    let gone = false;
    for (let i = 0; i < 40 && !gone; i++) {
      const stat = await Deno.readTextFile(`/proc/${pid}/stat`).catch(() => "");
      gone = stat === "" || / Z /.test(stat.slice(stat.lastIndexOf(")")));
      if (!gone) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.ok(gone, "the command's background child was killed too");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a hook runs through sh -c with shell syntax", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const hooks = createHooks({ log: silentLogger });
    await hooks.run(
      "post-thaw",
      `for x in a b; do printf "$x" >> '${dir}/out'; done && test -s '${dir}/out'`,
    );
    assert.equal(await Deno.readTextFile(`${dir}/out`), "ab");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a failing hook is a HookError naming the hook and the exit code", async () => {
  const hooks = createHooks({ log: silentLogger });
  await assert.rejects(
    hooks.run("pre-freeze", "exit 3"),
    (error: Error) =>
      error instanceof HookError &&
      error.message === "--pre-freeze-command failed with exit code 3" && error.exitCode === 8,
  );
  await assert.rejects(
    hooks.run("post-thaw", "no-such-command-here 2>/dev/null"),
    (error: Error) =>
      error instanceof HookError &&
      error.message === "--post-thaw-command failed with exit code 127",
  );
  await assert.rejects(
    hooks.run("post-thaw", "kill -TERM $$"),
    (error: Error) =>
      error instanceof HookError && error.message === "--post-thaw-command was killed by SIGTERM",
  );
});

Deno.test("a shell that cannot be started is a HookError", async () => {
  const hooks = createHooks({ log: silentLogger, shell: "/nonexistent/sh" });
  await assert.rejects(
    hooks.run("pre-freeze", "true"),
    (error: Error) =>
      error instanceof HookError && error.message.startsWith("--pre-freeze-command: cannot run"),
  );
});
