/** The freeze lock: one holder per device across processes, stale locks taken over, all or none. */
import { assert, assertEquals, assertRejects } from "./support/assert.ts";
import { acquireFreezeLocks, adoptFreezeLocks, lockFileName } from "../src/host/freeze_lock.ts";
import { BusyError, ExitCode, PreflightError } from "../src/util/errors.ts";

const SRC = new URL("../src/host/freeze_lock.ts", import.meta.url).href;

async function withRunDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "ecs-run-" });
  try {
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function lockFiles(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.endsWith(".lock")).sort();
}

/** Another process that takes the lock, says "locked", and waits until killed. */
function otherHolder(dir: string, device: string, purpose: string) {
  const code = `
    const { acquireFreezeLocks } = await import(${JSON.stringify(SRC)});
    await acquireFreezeLocks([{ mountPoint: "/other", device: ${JSON.stringify(device)} }],
      { runDir: ${JSON.stringify(dir)}, purpose: ${JSON.stringify(purpose)} });
    console.log("locked");
    setInterval(() => {}, 1000);
  `;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", "--quiet", code],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.getReader();
  const ready = reader.read().then((r) => new TextDecoder().decode(r.value));
  return { child, ready, reader };
}

Deno.test("lockFileName: one file per device; anything else is refused", () => {
  assertEquals(lockFileName("259:1"), "freeze-259-1.lock");
  let threw = false;
  try {
    lockFileName("../x");
  } catch {
    threw = true;
  }
  assert(threw);
});

Deno.test("a second acquisition of the same device is busy; another device goes on; release frees", async () => {
  await withRunDir(async (dir) => {
    const first = await acquireFreezeLocks([
      { mountPoint: "/data", device: "7:1" },
      { mountPoint: "/data-bind", device: "7:1" }, // a bind mount: the same device, once
    ], { runDir: dir, purpose: "run" });
    assertEquals(first.devices, ["7:1"]);
    assertEquals(lockFiles(dir), ["freeze-7-1.lock"]);
    assertEquals((Deno.statSync(dir).mode ?? 0) & 0o777, 0o700);

    const error = await assertRejects(
      () =>
        acquireFreezeLocks([{ mountPoint: "/data-bind", device: "7:1" }], {
          runDir: dir,
          purpose: "run",
        }),
      BusyError,
    );
    assertEquals(error.exitCode, ExitCode.busy);
    assert(error.message.includes(`pid ${Deno.pid}`), error.message);
    assert(error.message.includes("another run"), error.message);
    assert(error.message.includes("/data-bind (device 7:1)"), error.message);
    assert(error.message.includes("through /data"), error.message);

    const other = await acquireFreezeLocks([{ mountPoint: "/logs", device: "7:2" }], {
      runDir: dir,
      purpose: "run",
    });
    await first.release();
    await first.release(); // idempotent
    assertEquals(lockFiles(dir), ["freeze-7-2.lock"]);
    const again = await acquireFreezeLocks([{ mountPoint: "/data", device: "7:1" }], {
      runDir: dir,
      purpose: "run",
    });
    await again.release();
    await other.release();
    assertEquals(lockFiles(dir), []);
  });
});

Deno.test("all or none: when one device is busy, none of the others is locked", async () => {
  await withRunDir(async (dir) => {
    const held = await acquireFreezeLocks([{ mountPoint: "/b", device: "8:2" }], {
      runDir: dir,
      purpose: "hold",
    });
    const error = await assertRejects(
      () =>
        acquireFreezeLocks([
          { mountPoint: "/a", device: "8:1" },
          { mountPoint: "/b", device: "8:2" },
        ], { runDir: dir, purpose: "run" }),
      BusyError,
    );
    assert(error.message.includes("a hold of ec2-consistent-snapshot"), error.message);
    assertEquals(lockFiles(dir), ["freeze-8-2.lock"]);
    await held.release();
  });
});

Deno.test("another live process holds: busy, naming its pid; once it is SIGKILLed the lock is taken over", async () => {
  await withRunDir(async (dir) => {
    const { child, ready, reader } = otherHolder(dir, "9:1", "hold");
    try {
      assertEquals((await ready).trim(), "locked");
      const error = await assertRejects(
        () =>
          acquireFreezeLocks([{ mountPoint: "/d", device: "9:1" }], {
            runDir: dir,
            purpose: "run",
          }),
        BusyError,
      );
      assert(error.message.includes(`pid ${child.pid}`), error.message);
      assert(error.message.includes("a hold"), error.message);
    } finally {
      child.kill("SIGKILL");
      await reader.cancel();
      await child.status;
    }
    const taken = await acquireFreezeLocks([{ mountPoint: "/d", device: "9:1" }], {
      runDir: dir,
      purpose: "run",
    });
    const record = JSON.parse(Deno.readTextFileSync(`${dir}/freeze-9-1.lock`));
    assertEquals(record.holder.pid, Deno.pid);
    assertEquals(record.token, taken.token);
    await taken.release();
    assertEquals(lockFiles(dir), []);
  });
});

Deno.test("a stale record of a dead pid, or a garbled file, is taken over; the loser's release leaves the new lock alone", async () => {
  await withRunDir(async (dir) => {
    const dead = new Deno.Command("true").spawn();
    await dead.status;
    Deno.writeTextFileSync(
      `${dir}/freeze-10-1.lock`,
      JSON.stringify({
        token: "old",
        device: "10:1",
        mountPoint: "/x",
        purpose: "run",
        holder: { pid: dead.pid, startTime: 1 },
        guards: [],
        since: "then",
      }),
    );
    Deno.writeTextFileSync(`${dir}/freeze-10-2.lock`, "garbage");
    const first = await acquireFreezeLocks([
      { mountPoint: "/x", device: "10:1" },
      { mountPoint: "/y", device: "10:2" },
    ], { runDir: dir, purpose: "run" });
    // A pid that is alive but a different process (start time differs) is not the holder.
    await first.handOver(Deno.pid);
    const stolen = await assertRejects(
      () =>
        acquireFreezeLocks([{ mountPoint: "/x", device: "10:1" }], { runDir: dir, purpose: "run" }),
      BusyError,
    );
    assert(stolen.message.includes(`pid ${Deno.pid}`));
    const record = JSON.parse(Deno.readTextFileSync(`${dir}/freeze-10-1.lock`));
    record.holder.startTime = 1; // as if the pid now belonged to another process
    Deno.writeTextFileSync(`${dir}/freeze-10-1.lock`, JSON.stringify(record));
    const second = await acquireFreezeLocks([{ mountPoint: "/x", device: "10:1" }], {
      runDir: dir,
      purpose: "run",
    });
    await first.release(); // its 10:1 file now carries the second's token: only 10:2 goes
    assertEquals(lockFiles(dir), ["freeze-10-1.lock"]);
    await second.release();
    assertEquals(lockFiles(dir), []);
  });
});

Deno.test("a guard (the watchdog) keeps the lock held after the holder died; handOver and adopt", async () => {
  await withRunDir(async (dir) => {
    const locks = await acquireFreezeLocks([{ mountPoint: "/g", device: "11:1" }], {
      runDir: dir,
      purpose: "run",
    });
    const watchdog = new Deno.Command("sleep", { args: ["30"] }).spawn();
    const dead = new Deno.Command("true").spawn();
    await dead.status;
    try {
      await locks.guard(watchdog.pid);
      await locks.handOver(dead.pid); // the holder is gone, its watchdog is not
      const error = await assertRejects(
        () =>
          acquireFreezeLocks([{ mountPoint: "/g", device: "11:1" }], {
            runDir: dir,
            purpose: "run",
          }),
        BusyError,
      );
      assert(error.message.includes(`watchdog (pid ${watchdog.pid})`), error.message);
      assert(error.message.includes(`(pid ${dead.pid})`), error.message);
    } finally {
      watchdog.kill("SIGKILL");
      await watchdog.status;
    }
    const adopted = await adoptFreezeLocks(locks.token, { runDir: dir });
    assertEquals(adopted.devices, ["11:1"]);
    const taken = await acquireFreezeLocks([{ mountPoint: "/g", device: "11:1" }], {
      runDir: dir,
      purpose: "run",
    });
    await adopted.release(); // the token changed hands: nothing of the new holder is removed
    assertEquals(lockFiles(dir), ["freeze-11-1.lock"]);
    await taken.release();
  });
});

Deno.test("a run directory that others may write into is refused before anything is locked", async () => {
  await withRunDir(async (dir) => {
    Deno.chmodSync(dir, 0o777);
    await assertRejects(
      () =>
        acquireFreezeLocks([{ mountPoint: "/a", device: "12:1" }], { runDir: dir, purpose: "run" }),
      PreflightError,
    );
    assertEquals(lockFiles(dir), []);
    const nested = `${dir}/sub/run`;
    Deno.chmodSync(dir, 0o700);
    const locks = await acquireFreezeLocks([{ mountPoint: "/a", device: "12:1" }], {
      runDir: nested,
      purpose: "run",
    });
    assertEquals((Deno.statSync(nested).mode ?? 0) & 0o777, 0o700);
    await locks.release();
  });
});

Deno.test("processes racing for one device: exactly one holds it", async () => {
  await withRunDir(async (dir) => {
    // Each holds what it won until its stdin ends, so the winners cannot follow one another.
    const code = `
      const { acquireFreezeLocks } = await import(${JSON.stringify(SRC)});
      try {
        await acquireFreezeLocks([{ mountPoint: "/r", device: "13:1" }],
          { runDir: ${JSON.stringify(dir)}, purpose: "run" });
        console.log("won");
      } catch (e) { console.log(e.name); }
      for await (const _ of Deno.stdin.readable) { /* until the end of input */ }
    `;
    const children = Array.from({ length: 5 }, () =>
      new Deno.Command(Deno.execPath(), {
        args: ["eval", "--quiet", code],
        stdin: "piped",
        stdout: "piped",
        stderr: "inherit",
      }).spawn());
    const said = await Promise.all(children.map(async (child) => {
      const reader = child.stdout.getReader();
      const { value } = await reader.read();
      reader.releaseLock();
      return new TextDecoder().decode(value).trim();
    }));
    for (const child of children) await child.stdin.close();
    for (const child of children) await child.output();
    assertEquals(said.filter((s) => s === "won").length, 1, said.join(","));
    assertEquals(said.filter((s) => s === "BusyError").length, 4, said.join(","));
  });
});
