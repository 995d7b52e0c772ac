/** The real freezer on real XFS loop mounts: frozen and thawed as seen from outside. */
import assert from "node:assert/strict";
import { AlreadyFrozenError, FreezeError, NotFrozenError } from "../src/util/errors.ts";
import { createFreezer, findFreezeProgram, findProgram } from "../src/host/freeze.ts";
import { silentLogger } from "../src/util/log.ts";
import { isFrozen, TMPFS, withTmpfsMount, withXfsMount, xfsRequirement } from "./support/xfs.ts";
import { ignoreUnless } from "./support/real.ts";

const XFS = await xfsRequirement();

Deno.test(
  "freeze makes writes block; thaw lets them through",
  { ignore: ignoreUnless(XFS) },
  async () => {
    await withXfsMount(async (mount) => {
      const freezer = createFreezer({ log: silentLogger });
      await freezer.sync();
      assert.equal(await isFrozen(mount.mountPoint, 30_000), false, "not frozen before");
      await freezer.freeze(mount.mountPoint);
      try {
        assert.equal(await isFrozen(mount.mountPoint, 1_000), true, "frozen after freeze");
      } finally {
        await freezer.thaw(mount.mountPoint);
      }
      assert.equal(await isFrozen(mount.mountPoint, 30_000), false, "thawed after thaw");
    });
  },
);

Deno.test("freezing twice or thawing a thawed mount is a FreezeError quoting fsfreeze", {
  ignore: ignoreUnless(XFS),
}, async () => {
  await withXfsMount(async (mount) => {
    const freezer = createFreezer({ log: silentLogger });
    await assert.rejects(
      freezer.thaw(mount.mountPoint),
      (error: Error) =>
        error instanceof NotFrozenError && error instanceof FreezeError &&
        error.exitCode === 7 &&
        /^cannot thaw .*: it is not frozen \(fsfreeze: .*\)$/.test(error.message),
    );
    await freezer.freeze(mount.mountPoint);
    try {
      await assert.rejects(
        freezer.freeze(mount.mountPoint),
        (error: Error) =>
          error instanceof AlreadyFrozenError && error instanceof FreezeError &&
          /frozen already, by someone else \(.*busy.*\)/i.test(error.message),
      );
    } finally {
      await mount.thaw();
    }
  });
});

Deno.test("a file system that cannot be frozen (tmpfs) is a FreezeError", {
  ignore: ignoreUnless(TMPFS),
}, async () => {
  await withTmpfsMount(async (mount) => {
    const freezer = createFreezer({ log: silentLogger });
    try {
      await assert.rejects(
        freezer.freeze(mount.mountPoint),
        (error: Error) =>
          error instanceof FreezeError &&
          error.message.startsWith(`cannot freeze ${mount.mountPoint}: `) &&
          !error.message.includes("\n"),
      );
    } finally {
      await mount.thaw();
    }
  });
});

Deno.test("a directory that is not a mount point, /, or a missing path is refused before fsfreeze runs", async () => {
  const freezer = createFreezer({ log: silentLogger });
  const dir = await Deno.makeTempDir();
  try {
    // fsfreeze on a plain directory would freeze the file system holding it: never run it.
    await assert.rejects(freezer.freeze(dir), /not a mount point/);
    await assert.rejects(freezer.freeze("/"), /refusing to freeze "\/"/);
    await assert.rejects(freezer.freeze(`${dir}/missing`), FreezeError);
    await assert.rejects(freezer.freeze("relative/path"), FreezeError);
    await assert.rejects(freezer.thaw(dir), /not a mount point/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fsfreeze and sync are found in the system directories when PATH lacks them", () => {
  const search = { path: "/nonexistent:relative/bin" };
  assert.match(findFreezeProgram(search).path, /^\/(usr\/)?sbin\/fsfreeze$/);
  assert.match(findProgram("sync", search) ?? "", /^\/(usr\/)?bin\/sync$/);
  assert.throws(
    () => findFreezeProgram({ path: "/nonexistent", systemDirs: [] }),
    (error: Error) =>
      error instanceof FreezeError && /neither fsfreeze nor xfs_freeze/.test(error.message),
  );
});

Deno.test("a freezer whose PATH lacks fsfreeze still freezes (cron's PATH)", {
  ignore: ignoreUnless(XFS),
}, async () => {
  await withXfsMount(async (mount) => {
    const freezer = createFreezer({ log: silentLogger, search: { path: "/nonexistent" } });
    await freezer.sync();
    await freezer.freeze(mount.mountPoint);
    try {
      assert.equal(await isFrozen(mount.mountPoint, 1_000), true);
    } finally {
      await mount.thaw();
    }
  });
});

Deno.test("without fsfreeze, xfs_freeze is used", { ignore: ignoreUnless(XFS) }, async () => {
  await withXfsMount(async (mount) => {
    const bin = await Deno.makeTempDir();
    try {
      // A wrapper: xfs_freeze finds xfs_io next to itself.
      const xfsFreeze = findProgram("xfs_freeze");
      assert.ok(xfsFreeze, "xfs_freeze is installed with xfsprogs");
      await Deno.writeTextFile(`${bin}/xfs_freeze`, `#!/bin/sh\nexec ${xfsFreeze} "$@"\n`, {
        mode: 0o755,
      });
      const search = { path: bin, systemDirs: [] };
      assert.equal(findFreezeProgram(search).name, "xfs_freeze");
      const freezer = createFreezer({ log: silentLogger, search });
      await freezer.freeze(mount.mountPoint);
      try {
        assert.equal(await isFrozen(mount.mountPoint, 1_000), true);
      } finally {
        await freezer.thaw(mount.mountPoint).finally(() => mount.thaw());
      }
      assert.equal(await isFrozen(mount.mountPoint, 30_000), false);
    } finally {
      await Deno.remove(bin, { recursive: true });
    }
  });
});

Deno.test(
  "a missing freeze program is a FreezeError, nothing run",
  { ignore: ignoreUnless(XFS) },
  async () => {
    await withXfsMount(async (mount) => {
      const freezer = createFreezer({
        log: silentLogger,
        search: { path: "/nonexistent", systemDirs: [] },
      });
      await assert.rejects(freezer.freeze(mount.mountPoint), /neither fsfreeze nor xfs_freeze/);
      await assert.rejects(freezer.sync(), /sync was not found/);
      assert.equal(await isFrozen(mount.mountPoint, 30_000), false);
    });
  },
);

Deno.test("a freeze program that hangs is a FreezeError after the timeout", {
  ignore: ignoreUnless(XFS),
}, async () => {
  await withXfsMount(async (mount) => {
    const bin = await Deno.makeTempDir();
    try {
      await Deno.writeTextFile(`${bin}/fsfreeze`, "#!/bin/sh\nexec sleep 120\n", { mode: 0o755 });
      const freezer = createFreezer({
        log: silentLogger,
        timeoutMs: 300,
        search: { path: bin, systemDirs: [] },
      });
      const started = performance.now();
      await assert.rejects(freezer.freeze(mount.mountPoint), /did not finish within 300 ms/);
      // The program would sleep 120 s: a generous bound far below it proves the timeout.
      assert.ok(performance.now() - started < 30_000);
    } finally {
      await Deno.remove(bin, { recursive: true });
    }
  });
});
