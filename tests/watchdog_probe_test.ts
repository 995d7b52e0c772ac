/**
 * The watchdog starts only what was stopped (--mysql-stop): before the start command it checks
 * the server's address; one that answers all along (a stop command that stopped another server,
 * or none) is not started. With a real watchdog process and a real Unix socket.
 */
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { answersThroughout, serverAnswers } from "../src/watchdog/probe.ts";
import { WATCHDOG_ARG, type WatchdogConfig } from "../src/watchdog/protocol.ts";
import { readProcessStat } from "../src/host/proc.ts";

const ENTRY = new URL("./support/watchdog_entry.ts", import.meta.url);

/** A Unix socket that accepts connections (a running server, as far as a probe can tell). */
function listen(path: string): Deno.UnixListener {
  const listener = Deno.listen({ transport: "unix", path });
  (async () => {
    try {
      for await (const conn of listener) conn.close();
    } catch { /* closed */ }
  })();
  return listener;
}

/** Runs a watchdog for a stand-in main process that is killed at once; what it said. */
async function fireWithProbe(config: Partial<WatchdogConfig>): Promise<string> {
  const main = new Deno.Command("sleep", { args: ["60"], stdin: "null" }).spawn();
  const full: WatchdogConfig = {
    pid: main.pid,
    startTime: readProcessStat(main.pid)!.startTime,
    mountPoints: [],
    deadlineMs: 60_000,
    sentAtEpochMs: Date.now(),
    ...config,
  };
  const watchdog = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", ENTRY.pathname, WATCHDOG_ARG, JSON.stringify(full)],
    cwd: "/",
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = watchdog.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let said = "";
  try {
    while (!/armed\n/.test(said)) said += (await reader.read()).value ?? "";
    main.kill("SIGKILL");
    while (!/fired.*\n/.test(said)) {
      const { value, done } = await reader.read();
      if (done) break;
      said += value;
    }
    return said;
  } finally {
    try {
      main.kill("SIGKILL");
    } catch { /* gone */ }
    await main.status;
    await watchdog.stdin.close().catch(() => {});
    await reader.cancel().catch(() => {});
    await watchdog.status;
  }
}

Deno.test("the probe: a listening socket answers; none, or one closed meanwhile, does not", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ecs-probe-" });
  try {
    const socketPath = `${dir}/mysqld.sock`;
    assertEquals(await serverAnswers({ socketPath }), false, "no socket");
    const listener = listen(socketPath);
    assertEquals(await serverAnswers({ socketPath }), true);
    assertEquals(await answersThroughout({ socketPath }, 600), true);
    setTimeout(() => listener.close(), 300);
    assertEquals(await answersThroughout({ socketPath }, 10_000), false, "went down meanwhile");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("the watchdog does not start a server that answers all along; it starts one that is down", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ecs-probe-" });
  try {
    const socketPath = `${dir}/mysqld.sock`;
    const marker = `${dir}/started`;
    const startProbe = { address: { socketPath }, waitMs: 1_000 };
    const listener = listen(socketPath);
    const running = await fireWithProbe({ startCommand: `touch '${marker}'`, startProbe });
    listener.close();
    assertMatch(running, /fired main process gone .*: the database runs: not started/);
    let started = true;
    try {
      Deno.statSync(marker);
    } catch {
      started = false;
    }
    assertEquals(started, false, "the start command did not run");

    const down = await fireWithProbe({ startCommand: `touch '${marker}'`, startProbe });
    assertMatch(down, /fired main process gone .*: started the database/);
    assert(Deno.statSync(marker).isFile, "the start command ran");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
