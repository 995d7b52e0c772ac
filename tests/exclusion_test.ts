/**
 * Runs that would share a freeze exclude each other, through the real program on real XFS loop
 * mounts and moto: the second run is refused (exit 11) before it touches anything, naming the
 * first; runs on other file systems go on; a bind mount is the same file system (frozen once,
 * and busy too); a run never thaws a freeze that is not its own.
 */
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { MOTO } from "./support/moto.ts";
import { ignoreUnless } from "./support/real.ts";
import { runProgram, spawnProgram } from "./support/program.ts";
import type { SeenRequest } from "./support/proxy.ts";
import { holder, withStack } from "./support/stack.ts";
import { isFrozen, thawQuietly, withXfsMount, xfsRequirement } from "./support/xfs.ts";
import { ExitCode } from "../src/util/errors.ts";
import { findProgram } from "../src/host/freeze.ts";

const XFS = await xfsRequirement();

const STACK_OPTIONS = { volumes: 3, runDir: true };

const isCreateOf = (volume: string) => (r: SeenRequest) =>
  r.action === "CreateSnapshot" && !r.dryRun && r.body.includes(`VolumeId=${volume}`);

async function bindMount(source: string, target: string): Promise<void> {
  Deno.mkdirSync(target, { recursive: true });
  const out = await new Deno.Command("mount", { args: ["--bind", source, target] }).output();
  assert(out.success, new TextDecoder().decode(out.stderr));
}

async function unmount(target: string): Promise<void> {
  await new Deno.Command("umount", { args: [target] }).output();
  Deno.removeSync(target, { recursive: true });
}

Deno.test(
  "a second run on a file system being frozen is refused before anything, naming the first; another file system goes on",
  { ignore: ignoreUnless(XFS, MOTO) },
  async () => {
    await withStack(async ({ moto, proxy, volumes: [a, b, c], mount, env }) => {
      await withXfsMount(async (other) => {
        const hold = holder(isCreateOf(a));
        proxy.decide = hold.decide;
        const first = spawnProgram(["--freeze-filesystem", mount.mountPoint, a], { env });
        const bind = `${other.dir}/bind`;
        try {
          await hold.seen;
          assertEquals(await isFrozen(mount.mountPoint), true);
          const requestsBefore = proxy.seen.length;

          const second = await runProgram(["--freeze-filesystem", mount.mountPoint, b], { env });
          assertEquals(second.code, ExitCode.busy, second.stderr);
          assertEquals(second.stdout, "");
          assertMatch(
            second.stderr,
            new RegExp(
              `frozen, or about to be, by another run of ec2-consistent-snapshot \\(pid ${first.pid},`,
            ),
          );
          assertEquals(proxy.seen.length, requestsBefore, "refused before any call to EC2");
          assertEquals(await isFrozen(mount.mountPoint), true, "the first run's freeze is intact");

          // The same file system through a bind mount is the same lock.
          await bindMount(mount.mountPoint, bind);
          const viaBind = await runProgram(["--freeze-filesystem", bind, b], { env });
          assertEquals(viaBind.code, ExitCode.busy, viaBind.stderr);
          assertMatch(viaBind.stderr, new RegExp(`through ${mount.mountPoint}`));
          assertEquals(await isFrozen(mount.mountPoint), true);

          // Another file system: side by side, as with the old tool.
          const beside = await runProgram(["--freeze-filesystem", other.mountPoint, c], { env });
          assertEquals(beside.code, 0, beside.stderr);
          assertMatch(beside.stdout, /^snap-[0-9a-f]+\n$/);
          assertEquals(await isFrozen(mount.mountPoint), true, "still frozen by the first run");
        } finally {
          hold.release();
        }
        const out = await first.output();
        assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
        assertEquals(await isFrozen(mount.mountPoint), false);
        await unmount(bind);
        assertEquals((await moto.snapshotsOf([a])).length, 1);
        assertEquals((await moto.snapshotsOf([b])).length, 0);
        assertEquals((await moto.snapshotsOf([c])).length, 1);
      });
    }, STACK_OPTIONS);
  },
);

Deno.test("the same file system by two paths (a bind mount) is frozen once", {
  ignore: ignoreUnless(XFS, MOTO),
}, async () => {
  await withStack(async ({ moto, proxy, volumes: [a], mount, env }) => {
    const bind = `${mount.dir}/bind`;
    await bindMount(mount.mountPoint, bind);
    try {
      const hold = holder(isCreateOf(a));
      proxy.decide = hold.decide;
      const child = spawnProgram(
        ["--freeze-filesystem", mount.mountPoint, "--freeze-filesystem", bind, "-d", a],
        { env },
      );
      try {
        await hold.seen;
        assertEquals(await isFrozen(mount.mountPoint), true);
      } finally {
        hold.release();
      }
      const out = await child.output();
      const stderr = new TextDecoder().decode(out.stderr);
      assertEquals(out.code, 0, stderr);
      assertEquals(stderr.match(/freeze: \S+ -f /g)?.length, 1, stderr);
      assertEquals(await isFrozen(mount.mountPoint), false);
      assertEquals((await moto.snapshotsOf([a])).length, 1);
    } finally {
      await unmount(bind);
    }
  }, STACK_OPTIONS);
});

Deno.test(
  "a file system frozen by someone else is refused (exit 7) and left frozen: never thawed by a run that did not freeze it",
  { ignore: ignoreUnless(XFS, MOTO) },
  async () => {
    await withStack(async ({ moto, proxy, volumes: [a], mount, env }) => {
      const fsfreeze = findProgram("fsfreeze")!;
      const frozen = await new Deno.Command(fsfreeze, { args: ["-f", mount.mountPoint] }).output();
      assert(frozen.success);
      try {
        const out = await runProgram(["--freeze-filesystem", mount.mountPoint, a], { env });
        assertEquals(out.code, ExitCode.freeze, out.stderr);
        assertMatch(out.stderr, new RegExp(`${mount.mountPoint}.*frozen already`));
        assertEquals(await isFrozen(mount.mountPoint), true, "someone else's freeze is left alone");
        assertEquals(proxy.seen.filter(isCreateOf(a)).length, 0);
        assertEquals((await moto.snapshotsOf([a])).length, 0);
      } finally {
        await thawQuietly(mount.mountPoint);
        await mount.thaw();
      }
    }, STACK_OPTIONS);
  },
);

Deno.test(
  "a run stopped (SIGSTOP) while frozen keeps its lock; at the deadline its watchdog kills it and thaws; then the next run goes",
  { ignore: ignoreUnless(XFS, MOTO) },
  async () => {
    await withStack(async ({ moto, proxy, volumes: [a, b], mount, env }) => {
      const hold = holder(isCreateOf(a));
      proxy.decide = hold.decide;
      const first = spawnProgram(
        ["--freeze-filesystem", mount.mountPoint, "--snapshot-timeout", "2", a],
        { env },
      );
      try {
        await hold.seen;
        const stoppedAt = performance.now();
        Deno.kill(first.pid, "SIGSTOP");
        const refused = await runProgram(["--freeze-filesystem", mount.mountPoint, b], { env });
        assertEquals(refused.code, ExitCode.busy, refused.stderr);
        assertMatch(
          refused.stderr,
          new RegExp(`another run of ec2-consistent-snapshot \\(pid ${first.pid},`),
        );
        assertEquals(await isFrozen(mount.mountPoint), true);
        // Deadline: --snapshot-timeout (2 s) plus the margin (5 s) from arming.
        const status = await first.status;
        assertEquals(status.signal, "SIGKILL", "ended by its watchdog");
        // The deadline is 7 s away; generously bounded (a busy machine), far below "never".
        assert(performance.now() - stoppedAt < 7_000 + 20_000);
        assertEquals(await isFrozen(mount.mountPoint, 30_000), false, "thawed by the watchdog");
      } finally {
        hold.drop();
        await first.output().catch(() => {});
      }
      // The dead run's lock is stale: taken over (once its watchdog, which guards it, has exited).
      let next = await runProgram(["--freeze-filesystem", mount.mountPoint, b], { env });
      for (let i = 0; i < 120 && next.code === ExitCode.busy; i++) {
        await new Promise((resolve) => setTimeout(resolve, 250));
        next = await runProgram(["--freeze-filesystem", mount.mountPoint, b], { env });
      }
      assertEquals(next.code, 0, next.stderr);
      assertEquals((await moto.snapshotsOf([b])).length, 1);
      assertEquals((await moto.snapshotsOf([a])).length, 0, "the killed run's call was dropped");
      assertEquals(await isFrozen(mount.mountPoint), false);
    }, STACK_OPTIONS);
  },
);

Deno.test(
  "a run SIGKILLed while frozen: its watchdog thaws at once, and the next run takes the stale lock over",
  { ignore: ignoreUnless(XFS, MOTO) },
  async () => {
    await withStack(async ({ moto, proxy, volumes: [a, b], mount, env }) => {
      const hold = holder(isCreateOf(a));
      proxy.decide = hold.decide;
      const first = spawnProgram(["--freeze-filesystem", mount.mountPoint, a], { env });
      try {
        await hold.seen;
        first.kill("SIGKILL");
        await first.output();
        assertEquals(await isFrozen(mount.mountPoint, 30_000), false, "thawed by the watchdog");
      } finally {
        hold.drop();
      }
      let next = await runProgram(["--freeze-filesystem", mount.mountPoint, b], { env });
      for (let i = 0; i < 120 && next.code === ExitCode.busy; i++) {
        assertMatch(next.stderr, /the watchdog \(pid \d+\) of another run that ended/);
        await new Promise((resolve) => setTimeout(resolve, 250));
        next = await runProgram(["--freeze-filesystem", mount.mountPoint, b], { env });
      }
      assertEquals(next.code, 0, next.stderr);
      assertEquals((await moto.snapshotsOf([b])).length, 1);
    }, STACK_OPTIONS);
  },
);
