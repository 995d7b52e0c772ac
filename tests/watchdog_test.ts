/** The watchdog on real XFS loop mounts: it thaws when the main process dies or the deadline passes, and not after a disarm. */
import { waitUntil } from "./support/processes.ts";
import assert from "node:assert/strict";
import { FreezeError } from "../src/util/errors.ts";
import { createFreezer } from "../src/host/freeze.ts";
import { createLogger, type Logger, silentLogger } from "../src/util/log.ts";
import { RUN_FLAGS } from "../src/host/permissions.ts";
import { isSameProcessAlive, parseProcStat, readProcessStat } from "../src/host/proc.ts";
import { createWatchdog, watchdogCommand } from "../src/watchdog/client.ts";
import { CONFIG_ON_STDIN, WATCHDOG_ARG, type WatchdogConfig } from "../src/watchdog/protocol.ts";
import { isFrozen, startWriteProbe, withXfsMount, xfsRequirement } from "./support/xfs.ts";
import { ignoreUnless } from "./support/real.ts";

const XFS = await xfsRequirement();

const ENTRY = new URL("./support/watchdog_entry.ts", import.meta.url);
const freezer = createFreezer({ log: silentLogger });

function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return { ...createLogger({ debug: true, write: (line) => lines.push(line) }), lines };
}

function exists(pid: number): boolean {
  const stat = readProcessStat(pid);
  return stat !== undefined && stat.state !== "Z";
}

/** Freezes the mount and checks that the armed watchdog thaws it when its deadline passes. */
async function assertThawedAtDeadline(
  mount: { mountPoint: string; thaw(): Promise<void> },
  armed: { disarm(): Promise<void> },
  log: { lines: string[] },
): Promise<void> {
  try {
    await freezer.freeze(mount.mountPoint);
    const probe = startWriteProbe(mount.mountPoint);
    assert.equal(await probe.finishedWithin(300), false, "frozen");
    assert.equal(await probe.finishedWithin(3_000), true, "thawed by the watchdog");
    await armed.disarm();
    assert.ok(
      log.lines.some((line) => /the watchdog acted before the disarm: deadline passed/.test(line)),
      log.lines.join("\n"),
    );
  } finally {
    await armed.disarm();
    await mount.thaw();
  }
}

/** Fields 5 and 6 of /proc/PID/stat: process group and session. */
function groupAndSession(pid: number): [number, number] {
  const text = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = text.slice(text.lastIndexOf(")") + 1).trim().split(/\s+/);
  return [Number(fields[2]), Number(fields[3])];
}

Deno.test("parseProcStat counts fields from the last parenthesis", () => {
  const text = "42 (a (b) c) S 1 42 42 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 777 0 0\n";
  assert.deepEqual(parseProcStat(text), { state: "S", startTime: 777 });
  assert.equal(parseProcStat("garbage"), undefined);
  const self = readProcessStat(Deno.pid);
  assert.ok(self);
  assert.equal(isSameProcessAlive(Deno.pid, self.startTime), true);
  assert.equal(isSameProcessAlive(Deno.pid, self.startTime + 1), false, "another process");
});

Deno.test("the watchdog is the same program: the binary itself, or deno run with RUN_FLAGS", () => {
  const config: WatchdogConfig = {
    pid: 10,
    startTime: 20,
    mountPoints: ["/data"],
    deadlineMs: 30,
    sentAtEpochMs: 40,
  };
  assert.deepEqual(
    watchdogCommand({ standalone: true, execPath: "/usr/bin/ecs", entry: "ignored", config }),
    { program: "/usr/bin/ecs", args: [WATCHDOG_ARG, JSON.stringify(config)] },
  );
  const run = watchdogCommand({
    standalone: false,
    execPath: "/opt/deno",
    entry: "file:///src/my%20dir/main.ts",
    config,
  });
  assert.equal(run.program, "/opt/deno");
  assert.deepEqual(run.args, [
    "run",
    ...RUN_FLAGS,
    "--no-code-cache",
    "/src/my dir/main.ts",
    WATCHDOG_ARG,
    JSON.stringify(config),
  ]);
});

Deno.test("arm runs a detached watchdog; disarm ends it without thawing", {
  ignore: ignoreUnless(XFS),
}, async () => {
  await withXfsMount(async (mount) => {
    const log = recordingLogger();
    const watchdog = createWatchdog({ log, entry: ENTRY });
    const armed = await watchdog.arm([mount.mountPoint], 1_500);
    try {
      assert.ok(exists(armed.pid), "running once arm resolved");
      const [group, session] = groupAndSession(armed.pid);
      assert.equal(group, armed.pid, "its own process group");
      assert.equal(session, armed.pid, "its own session");
      assert.notEqual(session, groupAndSession(Deno.pid)[1]);
      assert.equal(Deno.readLinkSync(`/proc/${armed.pid}/cwd`), "/");
      await freezer.freeze(mount.mountPoint);
      await armed.disarm();
      assert.equal(exists(armed.pid), false, "exited after the disarm");
      assert.ok(log.lines.some((line) => line.endsWith(`watchdog ${armed.pid} disarmed`)));
      await armed.disarm(); // twice is harmless
      // Past the deadline: a disarmed watchdog did nothing, the mount is still frozen.
      await new Promise((resolve) => setTimeout(resolve, 1_800));
      assert.equal(await isFrozen(mount.mountPoint, 1_000), true);
    } finally {
      await armed.disarm();
      await mount.thaw();
    }
  });
});

Deno.test(
  "the watchdog thaws when the deadline passes",
  { ignore: ignoreUnless(XFS) },
  async () => {
    await withXfsMount(async (mount) => {
      const log = recordingLogger();
      const armed = await createWatchdog({ log, entry: ENTRY, stderr: "null" }).arm(
        [mount.mountPoint],
        1_000,
      );
      await assertThawedAtDeadline(mount, armed, log);
    });
  },
);

Deno.test("SIGKILL of the main process while frozen: the watchdog thaws", {
  ignore: ignoreUnless(XFS),
}, async () => {
  await withXfsMount(async (mount) => {
    const main = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        ...RUN_FLAGS,
        new URL("./support/freeze_and_arm.ts", import.meta.url).pathname,
        mount.mountPoint,
        "60000",
      ],
      cwd: "/",
      stdin: "null",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    let watchdogPid = 0;
    try {
      const reader = main.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let said = "";
      while (!said.includes("\n")) {
        const { value, done } = await reader.read();
        if (done) break;
        said += value;
      }
      reader.releaseLock();
      const match = /^frozen (\d+)\n/.exec(said);
      assert.ok(match, `main said: ${said}`);
      watchdogPid = Number(match[1]);
      const probe = startWriteProbe(mount.mountPoint);
      assert.equal(await probe.finishedWithin(300), false, "frozen");
      main.kill("SIGKILL");
      assert.equal((await main.status).signal, "SIGKILL");
      assert.equal(await probe.finishedWithin(3_000), true, "thawed by the watchdog");
      assert.ok(await waitUntil(() => !exists(watchdogPid), 5_000), "the watchdog exited");
    } finally {
      try {
        main.kill("SIGKILL");
      } catch { /* already dead */ }
      await main.stdout.cancel().catch(() => {});
      await main.status;
      await mount.thaw();
    }
  });
});

/**
 * Starts the watchdog by hand, with --allow-all so that it may read /proc, and with its stdin
 * held open by the test: only the /proc check can tell it that its "main" process is gone.
 */
function startWatchdog(config: WatchdogConfig) {
  const program = Deno.execPath();
  const args = [
    "run",
    "--allow-all",
    ENTRY.pathname,
    WATCHDOG_ARG,
    JSON.stringify(config),
  ];
  const child = new Deno.Command(program, {
    args,
    cwd: "/",
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  return {
    child,
    /** Reads until `pattern` matches what the watchdog said, or it ends. */
    async until(pattern: RegExp): Promise<string> {
      while (!pattern.test(text)) {
        const { value, done } = await lines.read();
        if (done) break;
        text += value;
      }
      return text;
    },
    async close() {
      await child.stdin.close().catch(() => {});
      await lines.cancel().catch(() => {});
      await child.status;
    },
  };
}

Deno.test("the watchdog notices the main process gone even while its stdin stays open", {
  ignore: ignoreUnless(XFS),
}, async () => {
  await withXfsMount(async (mount) => {
    const fakeMain = new Deno.Command("sleep", { args: ["60"], stdin: "null" }).spawn();
    const stat = readProcessStat(fakeMain.pid)!;
    const watchdog = startWatchdog({
      pid: fakeMain.pid,
      startTime: stat.startTime,
      mountPoints: [mount.mountPoint],
      deadlineMs: 60_000,
      sentAtEpochMs: Date.now(),
    });
    try {
      assert.match(await watchdog.until(/armed\n/), /^armed\n$/);
      await freezer.freeze(mount.mountPoint);
      const probe = startWriteProbe(mount.mountPoint);
      assert.equal(await probe.finishedWithin(300), false, "frozen");
      fakeMain.kill("SIGKILL");
      await fakeMain.status;
      assert.equal(await probe.finishedWithin(3_000), true, "thawed by the watchdog");
      assert.match(await watchdog.until(/fired.*\n/), /fired main process gone .*: thawed /);
    } finally {
      try {
        fakeMain.kill("SIGKILL");
      } catch { /* already dead */ }
      await fakeMain.status;
      await watchdog.close();
      await mount.thaw();
    }
  });
});

Deno.test("pid reuse: a process with the main pid but another start time is not the main process", {
  ignore: ignoreUnless(XFS),
}, async () => {
  await withXfsMount(async (mount) => {
    const other = new Deno.Command("sleep", { args: ["60"], stdin: "null" }).spawn();
    const stat = readProcessStat(other.pid)!;
    await freezer.freeze(mount.mountPoint);
    const watchdog = startWatchdog({
      pid: other.pid,
      startTime: stat.startTime - 1, // the process that had this pid before
      mountPoints: [mount.mountPoint],
      deadlineMs: 60_000,
      sentAtEpochMs: Date.now(),
    });
    try {
      const said = await watchdog.until(/fired.*\n/);
      assert.doesNotMatch(said, /armed/, "never armed for the wrong process");
      assert.match(said, /fired main process gone/);
      assert.equal(await isFrozen(mount.mountPoint, 30_000), false, "thawed");
      assert.ok(exists(other.pid), "the other process is left alone");
    } finally {
      other.kill("SIGKILL");
      await other.status;
      await watchdog.close();
      await mount.thaw();
    }
  });
});

Deno.test("the watchdog ignores SIGTERM, SIGINT and SIGHUP and still disarms", {
  ignore: ignoreUnless(XFS),
}, async () => {
  await withXfsMount(async (mount) => {
    const log = recordingLogger();
    const armed = await createWatchdog({ log, entry: ENTRY, stderr: "null" }).arm(
      [mount.mountPoint],
      30_000,
    );
    try {
      for (const signal of ["SIGTERM", "SIGINT", "SIGHUP"] as const) Deno.kill(armed.pid, signal);
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.ok(exists(armed.pid), "still running");
      await armed.disarm();
      assert.ok(log.lines.some((line) => line.endsWith(`watchdog ${armed.pid} disarmed`)));
    } finally {
      await armed.disarm();
    }
  });
});

Deno.test("a watchdog that cannot start makes arm fail with FreezeError", async () => {
  const missing = createWatchdog({
    log: silentLogger,
    entry: new URL("./support/no_such_entry.ts", import.meta.url),
    stderr: "null",
  });
  await assert.rejects(
    missing.arm(["/nonexistent-mount"], 5_000),
    (error: Error) =>
      error instanceof FreezeError && /^the watchdog did not start: /.test(error.message),
  );
  const bad = createWatchdog({ log: silentLogger, entry: ENTRY, stderr: "null" });
  await assert.rejects(
    bad.arm(["relative/mount"], 5_000),
    /the watchdog did not start: bad watchdog configuration/,
  );
});

Deno.test(
  "the watchdog thaws every mount it was given",
  { ignore: ignoreUnless(XFS) },
  async () => {
    await withXfsMount(async (first) => {
      await withXfsMount(async (second) => {
        const mounts = [first.mountPoint, second.mountPoint];
        const log = recordingLogger();
        const armed = await createWatchdog({ log, entry: ENTRY, stderr: "null" }).arm(mounts, 800);
        try {
          for (const mount of mounts) await freezer.freeze(mount);
          const probes = mounts.map((mount) => startWriteProbe(mount));
          for (const probe of probes) assert.equal(await probe.finishedWithin(100), false);
          for (const probe of probes) assert.equal(await probe.finishedWithin(3_000), true);
          await armed.disarm();
          assert.ok(log.lines.some((line) => /deadline passed .*: thawed /.test(line)));
        } finally {
          await armed.disarm();
          await second.thaw();
          await first.thaw();
        }
      });
    });
  },
);

Deno.test("a watchdog started ahead (prepare) is armed by one line, and thaws at the deadline", {
  ignore: ignoreUnless(XFS),
}, async () => {
  await withXfsMount(async (mount) => {
    const log = recordingLogger();
    const watchdog = createWatchdog({ log, entry: ENTRY, stderr: "null" });
    watchdog.prepare();
    watchdog.prepare(); // twice starts one
    const armed = await watchdog.arm([mount.mountPoint], 1_000);
    try {
      assert.ok(exists(armed.pid), "running once arm resolved");
      assert.equal(groupAndSession(armed.pid)[1], armed.pid, "its own session");
    } catch (error) {
      await armed.disarm();
      throw error;
    }
    await assertThawedAtDeadline(mount, armed, log);
  });
});

Deno.test("a watchdog started ahead and never armed ends quietly at the end of its stdin", async () => {
  const { program, args } = watchdogCommand({
    standalone: false,
    execPath: Deno.execPath(),
    entry: ENTRY,
    config: "stdin",
  });
  assert.equal(args.at(-1), CONFIG_ON_STDIN);
  const child = new Deno.Command(program, {
    args,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  await child.stdin.close();
  const out = await child.output();
  assert.equal(out.code, 0);
  assert.equal(new TextDecoder().decode(out.stdout), "", "said nothing: not armed");
  assert.equal(new TextDecoder().decode(out.stderr), "");
});

Deno.test(
  "main process SIGKILLed: the watchdog thaws, then runs the start command (--mysql-stop)",
  {
    ignore: ignoreUnless(XFS),
  },
  async () => {
    await withXfsMount(async (mount) => {
      const fakeMain = new Deno.Command("sleep", { args: ["60"], stdin: "null" }).spawn();
      const stat = readProcessStat(fakeMain.pid)!;
      const marker = `${mount.dir}/started`;
      const watchdog = startWatchdog({
        pid: fakeMain.pid,
        startTime: stat.startTime,
        mountPoints: [],
        deadlineMs: 60_000,
        sentAtEpochMs: Date.now(),
        startCommand: "echo 'not yet' > /dev/null",
      });
      try {
        assert.match(await watchdog.until(/armed\n/), /^armed\n$/);
        // Later lines: the mount to guard, then the start command once the database is stopped.
        const writer = watchdog.child.stdin.getWriter();
        const send = (update: unknown) =>
          writer.write(new TextEncoder().encode(JSON.stringify(update) + "\n"));
        await send({ mountPoints: [mount.mountPoint] });
        await send({ startCommand: `touch '${marker}'` });
        await writer.write(new TextEncoder().encode("not json\n")); // ignored
        writer.releaseLock();
        await new Promise((resolve) => setTimeout(resolve, 200));
        await freezer.freeze(mount.mountPoint);
        fakeMain.kill("SIGKILL");
        await fakeMain.status;
        const said = await watchdog.until(/fired.*\n/);
        assert.match(said, /fired main process gone .*: thawed .*; started the database/);
        assert.equal(await isFrozen(mount.mountPoint, 30_000), false, "thawed");
        assert.ok(Deno.statSync(marker).isFile, "the start command ran");
      } finally {
        try {
          fakeMain.kill("SIGKILL");
        } catch { /* already dead */ }
        await fakeMain.status;
        await watchdog.close();
        await mount.thaw();
      }
    });
  },
);

Deno.test("a main process stopped (SIGSTOP) past the deadline is killed, then thawed", {
  ignore: ignoreUnless(XFS),
}, async () => {
  await withXfsMount(async (mount) => {
    const fakeMain = new Deno.Command("sleep", { args: ["60"], stdin: "null" }).spawn();
    const stat = readProcessStat(fakeMain.pid)!;
    await freezer.freeze(mount.mountPoint);
    const watchdog = startWatchdog({
      pid: fakeMain.pid,
      startTime: stat.startTime,
      mountPoints: [mount.mountPoint],
      deadlineMs: 1_000,
      sentAtEpochMs: Date.now(),
      killAtDeadline: true,
    });
    try {
      assert.match(await watchdog.until(/armed\n/), /^armed\n$/);
      Deno.kill(fakeMain.pid, "SIGSTOP");
      const said = await watchdog.until(/fired.*\n/);
      assert.match(said, /fired deadline passed .*: thawed .*; killed the stuck main process/);
      assert.equal((await fakeMain.status).signal, "SIGKILL");
      assert.equal(await isFrozen(mount.mountPoint, 30_000), false, "thawed");
    } finally {
      try {
        fakeMain.kill("SIGKILL");
      } catch { /* already dead */ }
      await fakeMain.status;
      await watchdog.close();
      await mount.thaw();
    }
  });
});

Deno.test("without killAtDeadline, a main process alive at the deadline is left alone", async () => {
  const fakeMain = new Deno.Command("sleep", { args: ["60"], stdin: "null" }).spawn();
  const stat = readProcessStat(fakeMain.pid)!;
  const watchdog = startWatchdog({
    pid: fakeMain.pid,
    startTime: stat.startTime,
    mountPoints: ["/nonexistent-mount-for-test"],
    deadlineMs: 300,
    sentAtEpochMs: Date.now(),
  });
  try {
    const said = await watchdog.until(/fired.*\n/);
    assert.doesNotMatch(said, /killed/);
    assert.ok(exists(fakeMain.pid), "still running");
  } finally {
    fakeMain.kill("SIGKILL");
    await fakeMain.status;
    await watchdog.close();
  }
});
