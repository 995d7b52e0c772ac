/** Tests of mountinfo parsing and of the checks on --freeze-filesystem / --no-freeze-filesystem paths. */
import { assertEquals, assertRejects } from "./support/assert.ts";
import { join } from "node:path";
import { PreflightError, UsageError } from "../src/util/errors.ts";
import { findMount, parseMountInfo, resolveMountPoints } from "../src/host/mounts.ts";
import { ignoreUnless, requireAvailable, rootRequirement } from "./support/real.ts";
import { makeProc, type MountSpec } from "./support/sysfs_fixture.ts";

const LOOP = rootRequirement("mounting a loop device");

Deno.test("parseMountInfo: fields, optional fields, octal escapes", () => {
  const text = [
    "27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard",
    "45 27 259:1 / /mnt/my\\040data\\011x rw,noatime shared:30 master:2 - xfs /dev/nvme1n1 rw",
    "46 27 259:1 /sub /srv/back\\134slash rw - xfs /dev/nvme1n1 rw",
    "47 27 0:50 / /run/x rw - tmpfs tmpfs rw",
    "",
  ].join("\n");
  const entries = parseMountInfo(text);
  assertEquals(entries.map((e) => [e.mountPoint, e.majorMinor, e.fsType, e.source, e.root]), [
    ["/", "254:0", "ext4", "/dev/vda", "/"],
    ["/mnt/my data\tx", "259:1", "xfs", "/dev/nvme1n1", "/"],
    ["/srv/back\\slash", "259:1", "xfs", "/dev/nvme1n1", "/sub"],
    ["/run/x", "0:50", "tmpfs", "tmpfs", "/"],
  ]);
});

Deno.test("parseMountInfo: a malformed line throws", () => {
  let thrown = false;
  try {
    parseMountInfo("27 1 254:0 / / rw\n");
  } catch {
    thrown = true;
  }
  assertEquals(thrown, true);
});

Deno.test("parseMountInfo reads this machine's real mountinfo", async () => {
  const entries = parseMountInfo(await Deno.readTextFile("/proc/self/mountinfo"));
  assertEquals(entries.some((e) => e.mountPoint === "/"), true);
});

Deno.test("findMount: deepest mount wins, and the last of a stack", () => {
  const entries = parseMountInfo([
    "1 0 254:0 / / rw - ext4 /dev/vda rw",
    "2 1 259:1 / /data rw - xfs /dev/nvme1n1 rw",
    "3 2 259:2 / /data/logs rw - xfs /dev/nvme2n1 rw",
    "4 1 259:3 / /data rw - xfs /dev/nvme3n1 rw",
  ].join("\n"));
  assertEquals(findMount(entries, "/data/x")?.majorMinor, "259:3");
  assertEquals(findMount(entries, "/data/logs/a")?.majorMinor, "259:2");
  assertEquals(findMount(entries, "/database")?.majorMinor, "254:0");
  assertEquals(findMount(entries, "/")?.majorMinor, "254:0");
});

/** A scene: real directories in a temp dir, listed as mount points in a fake mountinfo. */
async function scene(
  body: (
    context: {
      dir: string;
      proc: (mounts: MountSpec[], fds?: { stdout?: string; stderr?: string }) => string;
    },
  ) => Promise<void>,
) {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "ecs-mounts-" }));
  const procs: string[] = [];
  try {
    for (const sub of ["data", "data/logs", "logs", "work", "space dir", "plain"]) {
      await Deno.mkdir(join(dir, sub), { recursive: true });
    }
    await Deno.symlink(join(dir, "data"), join(dir, "link-to-data"));
    await body({
      dir,
      proc: (mounts, fds) => {
        const root = makeProc(mounts, fds);
        procs.push(root);
        return root;
      },
    });
  } finally {
    for (const p of procs) await Deno.remove(p, { recursive: true });
    await Deno.remove(dir, { recursive: true });
  }
}

function standardMounts(dir: string): MountSpec[] {
  return [
    { mountPoint: "/", majorMinor: "254:0", fsType: "ext4", source: "/dev/vda" },
    { mountPoint: `${dir}/data`, majorMinor: "259:1", source: "/dev/nvme1n1" },
    { mountPoint: `${dir}/data/logs`, majorMinor: "259:2", source: "/dev/nvme2n1" },
    { mountPoint: `${dir}/logs`, majorMinor: "253:0", source: "/dev/mapper/vg-logs" },
    { mountPoint: `${dir}/space dir`, majorMinor: "259:5", source: "/dev/nvme5n1" },
  ];
}

Deno.test("resolveMountPoints: symlinks resolved, relative paths, escapes, duplicates removed", async () => {
  await scene(async ({ dir, proc }) => {
    const procRoot = proc(standardMounts(dir));
    const mounts = await resolveMountPoints(
      [
        `${dir}/link-to-data`,
        "logs",
        `${dir}/data/logs/..`,
        `${dir}/space dir`,
        `${dir}/data/logs`,
      ],
      { procRoot, cwd: dir, outputPaths: [] },
    );
    // cwd is `dir`, which is on "/": fine, since none of these is the root file system.
    assertEquals(mounts, [
      { mountPoint: `${dir}/data`, majorMinor: "259:1", fsType: "xfs", source: "/dev/nvme1n1" },
      {
        mountPoint: `${dir}/logs`,
        majorMinor: "253:0",
        fsType: "xfs",
        source: "/dev/mapper/vg-logs",
      },
      {
        mountPoint: `${dir}/space dir`,
        majorMinor: "259:5",
        fsType: "xfs",
        source: "/dev/nvme5n1",
      },
      {
        mountPoint: `${dir}/data/logs`,
        majorMinor: "259:2",
        fsType: "xfs",
        source: "/dev/nvme2n1",
      },
    ]);
  });
});

Deno.test("resolveMountPoints: a bind mount of a file system given already is frozen once", async () => {
  await scene(async ({ dir, proc }) => {
    const procRoot = proc([
      ...standardMounts(dir),
      { mountPoint: `${dir}/work`, majorMinor: "259:1", source: "/dev/nvme1n1" },
    ]);
    const options = { procRoot, cwd: dir, outputPaths: [] };
    const frozen = await resolveMountPoints([`${dir}/data`, `${dir}/work`], options);
    assertEquals(frozen.map((m) => m.mountPoint), [`${dir}/data`]);
    const listed = await resolveMountPoints([`${dir}/work`, `${dir}/data`], {
      ...options,
      freeze: false,
    });
    assertEquals(listed.map((m) => m.mountPoint), [`${dir}/work`, `${dir}/data`]);
  });
});

Deno.test("resolveMountPoints: not a mount point, missing path, empty path", async () => {
  await scene(async ({ dir, proc }) => {
    const procRoot = proc(standardMounts(dir));
    const options = { procRoot, cwd: "/", outputPaths: [] };
    await assertRejects(
      () => resolveMountPoints([`${dir}/plain`], options),
      UsageError,
      `--freeze-filesystem ${dir}/plain: not a mount point (it is on the file system mounted at /)`,
    );
    await Deno.mkdir(`${dir}/data/inner`);
    await assertRejects(
      () =>
        resolveMountPoints([`${dir}/data/inner`], {
          ...options,
          option: "--no-freeze-filesystem",
          freeze: false,
        }),
      UsageError,
      `--no-freeze-filesystem ${dir}/data/inner: not a mount point (it is on the file system mounted at ${dir}/data)`,
    );
    await assertRejects(
      () => resolveMountPoints([`${dir}/nope`], options),
      UsageError,
      `--freeze-filesystem ${dir}/nope: no such file or directory`,
    );
    await assertRejects(
      () => resolveMountPoints([""], options),
      UsageError,
      "--freeze-filesystem: empty path",
    );
  });
});

Deno.test("resolveMountPoints: / and a bind mount of the root file system are refused for freezing", async () => {
  await scene(async ({ dir, proc }) => {
    const procRoot = proc([
      ...standardMounts(dir),
      {
        mountPoint: `${dir}/work`,
        majorMinor: "254:0",
        fsType: "ext4",
        source: "/dev/vda",
        root: "/srv",
      },
    ]);
    const options = { procRoot, cwd: `${dir}/data/logs`, outputPaths: [] };
    await assertRejects(
      () => resolveMountPoints(["/"], options),
      UsageError,
      "--freeze-filesystem /: refusing to freeze the root file system; use --no-freeze-filesystem",
    );
    await assertRejects(
      () => resolveMountPoints([`${dir}/work`], options),
      UsageError,
      `--freeze-filesystem ${dir}/work: refusing to freeze the root file system (the same file system as /)`,
    );
    // For discovery only, / is fine.
    const mounts = await resolveMountPoints(["/"], {
      ...options,
      option: "--no-freeze-filesystem",
      freeze: false,
    });
    assertEquals(mounts.map((m) => m.majorMinor), ["254:0"]);
  });
});

Deno.test("resolveMountPoints: the file system of the working directory is refused", async () => {
  await scene(async ({ dir, proc }) => {
    const procRoot = proc(standardMounts(dir));
    await Deno.mkdir(`${dir}/data/app`);
    await assertRejects(
      () =>
        resolveMountPoints([`${dir}/logs`, `${dir}/data`], {
          procRoot,
          cwd: `${dir}/data/app`,
          outputPaths: [],
        }),
      UsageError,
      `--freeze-filesystem ${dir}/data: refusing to freeze the file system that holds the working directory ${dir}/data/app; run from another directory`,
    );
    // The nested mount under it is another file system: fine.
    const ok = await resolveMountPoints([`${dir}/data/logs`], {
      procRoot,
      cwd: `${dir}/data/app`,
      outputPaths: [],
    });
    assertEquals(ok.length, 1);
  });
});

Deno.test("resolveMountPoints: stdout or stderr redirected to a file on the mount is refused", async () => {
  await scene(async ({ dir, proc }) => {
    await Deno.writeTextFile(`${dir}/logs/run.log`, "");
    const procRoot = proc(standardMounts(dir), {
      stdout: "pipe:[12345]",
      stderr: `${dir}/logs/run.log`,
    });
    await assertRejects(
      () => resolveMountPoints([`${dir}/data`, `${dir}/logs`], { procRoot, cwd: "/" }),
      UsageError,
      `--freeze-filesystem ${dir}/logs: refusing to freeze the file system that holds ${dir}/logs/run.log, where this program's output goes; redirect it elsewhere`,
    );
    // A deleted log file still pins its file system.
    const procDeleted = proc(standardMounts(dir), { stdout: `${dir}/data/gone.log (deleted)` });
    await assertRejects(
      () => resolveMountPoints([`${dir}/data`], { procRoot: procDeleted, cwd: "/" }),
      UsageError,
      `holds ${dir}/data/gone.log, where this program's output goes`,
    );
    // Pipes, sockets and terminals are not files on a mount.
    const procPipes = proc(standardMounts(dir), { stdout: "pipe:[1]", stderr: "socket:[2]" });
    const ok = await resolveMountPoints([`${dir}/data`], { procRoot: procPipes, cwd: "/" });
    assertEquals(ok.length, 1);
  });
});

Deno.test("resolveMountPoints: no paths reads nothing", async () => {
  assertEquals(await resolveMountPoints([], { procRoot: "/nonexistent" }), []);
});

async function run(command: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(command, { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${command} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
}

Deno.test("real: a loop mount with a space in its path is a mount point; its subdirectory is not", {
  ignore: ignoreUnless(LOOP),
}, async () => {
  requireAvailable(LOOP);
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "ecs-mnt-" }));
  const mountPoint = `${dir}/my mount`;
  let mounted = false;
  try {
    await Deno.mkdir(mountPoint);
    await run("truncate", ["-s", "64M", `${dir}/img`]);
    await run("mkfs.ext4", ["-q", "-F", `${dir}/img`]);
    await run("mount", ["-o", "loop", `${dir}/img`, mountPoint]);
    mounted = true;
    await Deno.mkdir(`${mountPoint}/sub`);
    await Deno.symlink(mountPoint, `${dir}/link`);
    // Real /proc: the process's own stdout/stderr are whatever the test runner has.
    const mounts = await resolveMountPoints([`${dir}/link`, mountPoint], { cwd: "/" });
    assertEquals(mounts.length, 1);
    assertEquals(mounts[0].mountPoint, mountPoint);
    assertEquals(mounts[0].fsType, "ext4");
    assertEquals(/^\/dev\/loop\d+$/.test(mounts[0].source), true);
    assertEquals(/^7:\d+$/.test(mounts[0].majorMinor), true);
    await assertRejects(
      () => resolveMountPoints([`${mountPoint}/sub`], { cwd: "/" }),
      UsageError,
      `--freeze-filesystem ${mountPoint}/sub: not a mount point (it is on the file system mounted at ${mountPoint})`,
    );
    await assertRejects(
      () => resolveMountPoints([mountPoint], { cwd: `${mountPoint}/sub` }),
      UsageError,
      "holds the working directory",
    );
  } finally {
    if (mounted) await run("umount", [mountPoint]);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("resolveMountPoints: an unreadable mountinfo is a preflight error", async () => {
  await assertRejects(
    () => resolveMountPoints(["/data"], { procRoot: "/nonexistent-proc" }),
    PreflightError,
    "cannot read /nonexistent-proc/self/mountinfo",
  );
});
