/**
 * The consistency engine end to end, through the real program, on real XFS loop mounts and a
 * real EC2 endpoint (moto): frozen while each CreateSnapshot is in flight and thawed after,
 * on success, on signals, on SIGKILL (the watchdog), on a hanging endpoint and on bad input.
 * The proof is taken from outside the program: a proxy holds the request while a write probe
 * on the mount shows whether it is frozen.
 */
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { MOTO } from "./support/moto.ts";
import { ignoreUnless } from "./support/real.ts";
import { runProgram, spawnProgram } from "./support/program.ts";
import { holder, isCreate, isDryRun, withStack } from "./support/stack.ts";
import { isFrozen, TMPFS, withTmpfsMount, xfsRequirement } from "./support/xfs.ts";
import { ExitCode } from "../src/util/errors.ts";

const XFS = await xfsRequirement();

Deno.test("frozen while CreateSnapshot is in flight, thawed after, snapshot made", {
  ignore: ignoreUnless(XFS, MOTO),
}, async () => {
  await withStack(async ({ moto, proxy, volume, mount, env }) => {
    const hold = holder(isCreate);
    proxy.decide = hold.decide;
    const child = spawnProgram([
      "--freeze-filesystem",
      mount.mountPoint,
      "-d",
      "--output",
      "json",
      volume,
    ], { env });
    await hold.seen;
    assertEquals(await isFrozen(mount.mountPoint), true, "frozen while the request is in flight");
    hold.release();
    const out = await child.output();
    const stderr = new TextDecoder().decode(out.stderr);
    assertEquals(out.code, 0, stderr);
    assertEquals(await isFrozen(mount.mountPoint), false, "thawed after");
    const report = JSON.parse(new TextDecoder().decode(out.stdout));
    assert(report.timings.freezeWindowMs > 0, "the freeze window is measured");
    assert(report.timings.lockWindowMs >= report.timings.freezeWindowMs);
    assertMatch(stderr, /freeze window \d+ ms/);
    assertEquals((await moto.snapshotsOf([volume])).length, 1);
  });
});

for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  const number = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 }[signal];

  Deno.test(`${signal} while frozen (create call hanging): thawed, exit ${128 + number}`, {
    ignore: ignoreUnless(XFS, MOTO),
  }, async () => {
    await withStack(async ({ moto, proxy, volume, mount, env }) => {
      const hold = holder(isCreate);
      proxy.decide = hold.decide;
      const child = spawnProgram(["--freeze-filesystem", mount.mountPoint, volume], { env });
      try {
        await hold.seen;
        assertEquals(await isFrozen(mount.mountPoint), true);
        child.kill(signal);
        const out = await child.output();
        assertEquals(out.code, 128 + number, new TextDecoder().decode(out.stderr));
        assertMatch(new TextDecoder().decode(out.stderr), new RegExp(`stopped by ${signal}`));
        assertEquals(new TextDecoder().decode(out.stdout), "");
        assertEquals(await isFrozen(mount.mountPoint), false);
      } finally {
        hold.drop();
      }
      assertEquals((await moto.snapshotsOf([volume])).length, 0);
    });
  });

  Deno.test(
    `${signal} before the freeze (during preflight): nothing frozen, exit ${128 + number}`,
    { ignore: ignoreUnless(XFS, MOTO) },
    async () => {
      await withStack(async ({ moto, proxy, volume, mount, env }) => {
        const hold = holder(isDryRun);
        proxy.decide = hold.decide;
        const child = spawnProgram(["--freeze-filesystem", mount.mountPoint, volume], { env });
        try {
          await hold.seen;
          child.kill(signal);
          const out = await child.output();
          assertEquals(out.code, 128 + number, new TextDecoder().decode(out.stderr));
          assertEquals(await isFrozen(mount.mountPoint), false);
        } finally {
          hold.drop();
        }
        assertEquals(proxy.seen.filter(isCreate).length, 0);
        assertEquals((await moto.snapshotsOf([volume])).length, 0);
      });
    },
  );
}

Deno.test("a second signal during unwinding does not cut it short", {
  ignore: ignoreUnless(XFS, MOTO),
}, async () => {
  await withStack(async ({ moto, proxy, volume, mount, env }) => {
    const hold = holder(isCreate);
    proxy.decide = hold.decide;
    const child = spawnProgram(["--freeze-filesystem", mount.mountPoint, volume], { env });
    try {
      await hold.seen;
      child.kill("SIGTERM");
      child.kill("SIGINT");
      child.kill("SIGTERM");
      const out = await child.output();
      const stderr = new TextDecoder().decode(out.stderr);
      // The kernel may deliver them in any order: the first one received decides the code.
      assert([128 + 2, 128 + 15].includes(out.code), stderr);
      assertMatch(stderr, /received again; still releasing/);
      assertEquals(await isFrozen(mount.mountPoint), false);
    } finally {
      hold.drop();
    }
    assertEquals((await moto.snapshotsOf([volume])).length, 0);
  });
});

Deno.test("SIGKILL while frozen: the watchdog thaws within the deadline", {
  ignore: ignoreUnless(XFS, MOTO),
}, async () => {
  await withStack(async ({ proxy, volume, mount, env }) => {
    const hold = holder(isCreate);
    proxy.decide = hold.decide;
    const child = spawnProgram(
      ["--freeze-filesystem", mount.mountPoint, "--snapshot-timeout", "2", volume],
      { env },
    );
    try {
      await hold.seen;
      assertEquals(await isFrozen(mount.mountPoint), true);
      child.kill("SIGKILL");
      await child.output();
      // Deadline: --snapshot-timeout (2 s) plus the watchdog's margin (5 s) from arming.
      // Generously bounded: the watchdog (not the test) thaws, however busy the machine.
      const thawed = !await isFrozen(mount.mountPoint, 7_000 + 30_000);
      assert(thawed, "the watchdog thawed the mount after the main process was killed");
    } finally {
      hold.drop();
    }
  });
});

Deno.test("a hanging endpoint: the run ends within --snapshot-timeout plus a second, thawed", {
  ignore: ignoreUnless(XFS, MOTO),
}, async () => {
  await withStack(async ({ proxy, volume, mount, env }) => {
    proxy.decide = (r) => isCreate(r) ? "hang" : "forward";
    const started = performance.now();
    const out = await runProgram(
      ["--freeze-filesystem", mount.mountPoint, "--snapshot-timeout", "1", "-d", volume],
      { env },
    );
    assertEquals(out.code, ExitCode.timeout, out.stderr);
    assertEquals(out.stdout, "");
    // From the moment the create calls start (start-up and preflight excluded).
    const createdAt = Number(/\+(\d+)ms CreateSnapshot for 1 volume/.exec(out.stderr)?.[1]);
    const endedAt = Number(/\+(\d+)ms released;/.exec(out.stderr)?.[1]);
    // Bounded by the program's own stamps: the 1 s timeout and the release, generously.
    assert(
      endedAt - createdAt < 1_000 + 5_000,
      `released ${endedAt - createdAt} ms after the create`,
    );
    assert(performance.now() - started < 60_000, "the run ended (start-up and lookup included)");
    assertEquals(await isFrozen(mount.mountPoint), false);
  });
});

Deno.test("hooks run around the freeze; a failing post-thaw hook still prints the id", {
  ignore: ignoreUnless(XFS, MOTO),
}, async () => {
  await withStack(async ({ moto, volume, mount, env }) => {
    const dir = Deno.makeTempDirSync();
    try {
      const log = `${dir}/hooks.log`;
      const out = await runProgram([
        "--freeze-filesystem",
        mount.mountPoint,
        "--pre-freeze-command",
        `echo pre >> ${log}`,
        "--post-thaw-command",
        `echo post >> ${log}; exit 3`,
        volume,
      ], { env });
      assertEquals(out.code, ExitCode.hook, out.stderr);
      assertMatch(out.stdout, /^snap-[0-9a-f]+\n$/);
      assertMatch(out.stderr, /--post-thaw-command failed with exit code 3/);
      assertEquals(Deno.readTextFileSync(log), "pre\npost\n");
      assertEquals((await moto.snapshotsOf([volume])).length, 1);
      assertEquals(await isFrozen(mount.mountPoint), false);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  });
});

Deno.test("a failing pre-freeze hook aborts before the freeze; nothing created", {
  ignore: ignoreUnless(XFS, MOTO),
}, async () => {
  await withStack(async ({ moto, proxy, volume, mount, env }) => {
    const out = await runProgram(
      ["--freeze-filesystem", mount.mountPoint, "--pre-freeze-command", "exit 5", volume],
      { env },
    );
    assertEquals(out.code, ExitCode.hook, out.stderr);
    assertMatch(out.stderr, /--pre-freeze-command failed with exit code 5/);
    assertEquals(proxy.seen.filter(isCreate).length, 0);
    assertEquals((await moto.snapshotsOf([volume])).length, 0);
  });
});

Deno.test("a freeze that fails (tmpfs): thawed what was frozen, nothing created", {
  ignore: ignoreUnless(XFS, MOTO, TMPFS),
}, async () => {
  await withStack(async ({ moto, proxy, volume, mount, env }) => {
    await withTmpfsMount(async (tmpfs) => {
      const out = await runProgram(
        ["--freeze-filesystem", mount.mountPoint, "--freeze-filesystem", tmpfs.mountPoint, volume],
        { env },
      );
      assertEquals(out.code, ExitCode.freeze, out.stderr);
      assertMatch(out.stderr, /cannot freeze .*mnt/);
      assertEquals(proxy.seen.filter(isCreate).length, 0);
      assertEquals((await moto.snapshotsOf([volume])).length, 0);
      assertEquals(await isFrozen(mount.mountPoint), false);
    });
  });
});

Deno.test("not a mount point, and /, are refused before anything is touched", {
  ignore: ignoreUnless(XFS, MOTO),
}, async () => {
  await withStack(async ({ proxy, volume, mount, env }) => {
    const inside = `${mount.mountPoint}/subdir`;
    Deno.mkdirSync(inside);
    const notMount = await runProgram(["--freeze-filesystem", inside, volume], { env });
    assertEquals(notMount.code, ExitCode.usage);
    assertMatch(notMount.stderr, /--freeze-filesystem .*subdir: not a mount point/);
    const root = await runProgram(["--noaction", "--freeze-filesystem", "/", volume], { env });
    assertEquals(root.code, ExitCode.usage);
    assertMatch(root.stderr, /--freeze-filesystem \/: /);
    assertEquals(proxy.seen.length, 0, "no network call");
    assertEquals(await isFrozen(mount.mountPoint), false);
  });
});

Deno.test("--noaction freezes nothing", { ignore: ignoreUnless(XFS, MOTO) }, async () => {
  await withStack(async ({ proxy, volume, mount, env }) => {
    const out = await runProgram(["-n", "--freeze-filesystem", mount.mountPoint, volume], { env });
    assertEquals(out.code, 0, out.stderr);
    assertMatch(out.stderr, new RegExp(`would freeze ${mount.mountPoint} \\(xfs on /dev/loop`));
    assertEquals(proxy.seen.length, 0);
    assertEquals(await isFrozen(mount.mountPoint), false);
  });
});
