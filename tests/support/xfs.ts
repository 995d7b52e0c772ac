/** Real XFS file systems on loop devices for tests, and a probe that proves from outside whether one is frozen. */
import { findProgram } from "../../src/host/freeze.ts";
import { isRoot, requireAvailable, type Requirement, rootRequirement } from "./real.ts";

/** A mounted test file system. Nothing else of the test lives on it. */
export interface TestMount {
  /** Where it is mounted. */
  mountPoint: string;
  /** The temporary directory that holds the image and the mount point (not on the mount). */
  dir: string;
  /** Thaws it; "not frozen" is fine. Waits for the write probes blocked on it. */
  thaw(): Promise<void>;
  /** Thaws, unmounts and removes everything. Safe to call twice. */
  unmount(): Promise<void>;
}

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(program: string, args: string[]): Promise<Result> {
  const out = await new Deno.Command(program, {
    args,
    cwd: "/",
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes).trim();
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

async function must(program: string, args: string[]): Promise<string> {
  const result = await run(program, args);
  if (result.code !== 0) {
    throw new Error(`${program} ${args.join(" ")}: exit ${result.code}: ${result.stderr}`);
  }
  return result.stdout;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Write probes still blocked, by mount point: they finish once the mount is thawed. */
const pendingProbes = new Map<string, Set<Promise<void>>>();
let probeCount = 0;

/** A helper process writing (with fsync) to a mount; it blocks while the mount is frozen. */
export interface WriteProbe {
  /** Resolves when the helper has finished (reaped). */
  done: Promise<void>;
  /** True when the helper finished within `timeoutMs`. */
  finishedWithin(timeoutMs: number): Promise<boolean>;
}

/**
 * Starts a writer on `mountPoint`: `dd conv=fsync` of one block to a new file. On a frozen
 * file system it blocks in the kernel (unkillable) until the thaw, so it is tracked and waited
 * for by {@linkcode TestMount.thaw}.
 */
export function startWriteProbe(mountPoint: string): WriteProbe {
  const child = new Deno.Command("dd", {
    args: [
      "if=/dev/zero",
      `of=${mountPoint}/.probe-${Deno.pid}-${++probeCount}`,
      "bs=4096",
      "count=1",
      "conv=fsync",
      "status=none",
    ],
    cwd: "/",
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const set = pendingProbes.get(mountPoint) ?? new Set();
  pendingProbes.set(mountPoint, set);
  const done: Promise<void> = child.status.then(() => {
    set.delete(done);
  });
  set.add(done);
  return {
    done,
    async finishedWithin(timeoutMs) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timedOut = new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), timeoutMs);
      });
      const finished = await Promise.race([done.then(() => true), timedOut]);
      clearTimeout(timer);
      return finished;
    },
  };
}

/**
 * Proves from outside whether `mountPoint` is frozen: true when a write with fsync does not
 * complete within `timeoutMs`. The blocked writer finishes after the thaw.
 */
export async function isFrozen(mountPoint: string, timeoutMs = 1_000): Promise<boolean> {
  return !await startWriteProbe(mountPoint).finishedWithin(timeoutMs);
}

/** Thaws `mountPoint` with fsfreeze; "not frozen" (EINVAL) is not an error. */
export async function thawQuietly(mountPoint: string): Promise<void> {
  const fsfreeze = findProgram("fsfreeze") ?? "fsfreeze";
  const result = await run(fsfreeze, ["-u", mountPoint]);
  if (result.code !== 0 && !/invalid argument/i.test(result.stderr)) {
    throw new Error(`fsfreeze -u ${mountPoint}: ${result.stderr}`);
  }
}

async function waitForProbes(mountPoint: string): Promise<void> {
  const set = pendingProbes.get(mountPoint);
  if (!set || set.size === 0) return;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), 30_000);
  });
  const finished = await Promise.race([Promise.all([...set]).then(() => true), timedOut]);
  clearTimeout(timer);
  if (!finished) throw new Error(`write probes on ${mountPoint} still blocked after the thaw`);
}

/**
 * What {@linkcode withXfsMount} needs: root, and mkfs.xfs (installed here with apt-get when it is
 * missing and we are root). Await it at the top of a test file, before registering the tests.
 */
export async function xfsRequirement(): Promise<Requirement> {
  const root = rootRequirement("loop mounts and freezing");
  if (!root.available) return root;
  return { available: await ensureMkfsXfs(), reason: "mkfs.xfs (xfsprogs) is missing" };
}

/** What {@linkcode withTmpfsMount} needs. */
export const TMPFS: Requirement = rootRequirement("mounting a tmpfs");

/** True when mkfs.xfs is there, installing xfsprogs with apt-get when it is not and we are root. */
export async function ensureMkfsXfs(): Promise<boolean> {
  if (findProgram("mkfs.xfs")) return true;
  if (!isRoot() || !findProgram("apt-get")) return false;
  await run("apt-get", ["update", "-qq"]);
  await run("apt-get", ["install", "-y", "-qq", "xfsprogs"]);
  return findProgram("mkfs.xfs") !== undefined;
}

function makeTestMount(dir: string, mountPoint: string): TestMount {
  let unmounted = false;
  const thaw = async () => {
    await thawQuietly(mountPoint);
    await waitForProbes(mountPoint);
  };
  return {
    mountPoint,
    dir,
    thaw,
    async unmount() {
      if (unmounted) return;
      let thawError: unknown;
      try {
        await thaw();
      } catch (error) {
        thawError = error;
      }
      let last: Result | undefined;
      for (let attempt = 0; attempt < 20; attempt++) {
        last = await run("umount", [mountPoint]);
        if (last.code === 0 || /not mounted/.test(last.stderr)) break;
        await sleep(250);
      }
      if (last && last.code !== 0 && !/not mounted/.test(last.stderr)) {
        throw new Error(`umount ${mountPoint}: ${last.stderr}`, { cause: thawError });
      }
      unmounted = true;
      await Deno.remove(dir, { recursive: true });
      if (thawError) throw thawError;
    },
  };
}

/** Makes a 320 MiB XFS in a file under a new temporary directory and mounts it on a loop device. */
export async function mountXfs(): Promise<TestMount> {
  const dir = await Deno.makeTempDir({ prefix: "ecs-xfs-" });
  const image = `${dir}/fs.img`;
  const mountPoint = `${dir}/mnt`;
  try {
    await Deno.mkdir(mountPoint);
    await must("truncate", ["-s", "320M", image]);
    await must(findProgram("mkfs.xfs") ?? "mkfs.xfs", ["-q", image]);
    await must("mount", ["-o", "loop", image, mountPoint]);
  } catch (error) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw error;
  }
  return makeTestMount(dir, mountPoint);
}

/** Mounts a tmpfs (which cannot be frozen) under a new temporary directory. */
export async function mountTmpfs(): Promise<TestMount> {
  const dir = await Deno.makeTempDir({ prefix: "ecs-tmpfs-" });
  const mountPoint = `${dir}/mnt`;
  try {
    await Deno.mkdir(mountPoint);
    await must("mount", ["-t", "tmpfs", "-o", "size=1m", "ecs-test", mountPoint]);
  } catch (error) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw error;
  }
  return makeTestMount(dir, mountPoint);
}

/**
 * Runs `fn` with a fresh XFS loop mount and ALWAYS thaws, unmounts and removes it afterwards.
 * Throws when root or mkfs.xfs is missing: register the test with
 * `ignore: ignoreUnless(await xfsRequirement())`.
 *
 * @example
 * ```ts
 * await withXfsMount(async ({ mountPoint }) => {
 *   // freeze mountPoint, check isFrozen(mountPoint) ...
 * });
 * ```
 */
export async function withXfsMount<T>(fn: (mount: TestMount) => Promise<T>): Promise<T> {
  requireAvailable(await xfsRequirement());
  const mount = await mountXfs();
  try {
    return await fn(mount);
  } finally {
    await mount.unmount();
  }
}

/** Like {@linkcode withXfsMount}, with a tmpfs; needs {@linkcode TMPFS}. */
export async function withTmpfsMount<T>(fn: (mount: TestMount) => Promise<T>): Promise<T> {
  requireAvailable(TMPFS);
  const mount = await mountTmpfs();
  try {
    return await fn(mount);
  } finally {
    await mount.unmount();
  }
}
