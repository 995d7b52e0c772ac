/**
 * The drill's sequence: the checks before creating anything, then volumes from the snapshots,
 * attached and found as discovery does, mounted in a private namespace under a throwaway
 * server; the position checks and the user's; then everything removed, on every path.
 */
import { join } from "node:path";
import { checkBeforeCreating } from "./before.ts";
import {
  attachDrillVolume,
  createDrillVolume,
  type DrillEc2,
  drillLeftovers,
  removeDrillVolume,
  waitAvailable,
} from "../aws/drill_volumes.ts";
import { waitForDevice } from "../host/attached_device.ts";
import { ensureRunDir } from "../host/freeze_lock.ts";
import {
  type NamespaceMount,
  removeCreatedMountPoints,
  restoreMountOptions,
  startInNamespace,
} from "../host/namespace.ts";
import type { DrillCheck } from "../db/mysql/drill.ts";
import { throwawayServer } from "./servers.ts";
import { checkDataVersion } from "./data_version.ts";
import type { DrillPlan } from "../plan/drill_plan.ts";
import { CleanupStack, SignalError, STOP_SIGNALS } from "../run/cleanup.ts";
import { type AppError, DrillError, errorMessage, ExitCode, StoppedError } from "../util/errors.ts";
import { delay } from "../util/deadline.ts";
import type { Logger } from "../util/log.ts";

/** How long each part took, in milliseconds; null when it did not happen. */
export interface DrillTimings {
  /** Creating the volumes until all were available. */
  createMs: number | null;
  /** Attaching them until every device was found. */
  attachMs: number | null;
  /** The server's start and crash recovery, until it answered. */
  recoveryMs: number | null;
  /** --drill-check-command. */
  checkMs: number | null;
  /** Stopping, unmounting, detaching and deleting. */
  cleanupMs: number | null;
  /** The whole drill. */
  totalMs: number;
}

/** What the drill found. */
export interface DrillResult {
  /** The run restored, when it was found. */
  runId?: string;
  /** One line per check, in order. */
  checks: DrillCheck[];
  /** The volumes created (all removed unless a problem says otherwise). */
  volumes: { snapshotId: string; volumeId: string; device?: string }[];
  /** The timings. */
  timings: DrillTimings;
  /** Every problem, the one that decides the exit code first; empty on success. */
  problems: AppError[];
}

/** The drill's side effects and sinks. */
export interface DrillDeps {
  /** EC2. */
  ec2: DrillEc2;
  /** Debug lines and warnings. */
  log: Logger;
  /** One line per step and check, on stderr. */
  say: (line: string) => void;
  /** Aborted by a stop signal. */
  signal: AbortSignal;
}

const DEVICE_LETTERS = "fghijklmnop";

/**
 * Runs the drill; never throws. Everything created is removed before it returns.
 *
 * @example
 * ```ts
 * import type { DrillPlan } from "../plan/drill_plan.ts";
 * import { createEc2Client } from "../aws/ec2.ts";
 * import { createLogger } from "../util/log.ts";
 * const plan = {} as DrillPlan;
 * const client = createEc2Client({ region: "us-east-1" });
 * const result = await runDrill(plan, {
 *   ec2: { client, instanceId: "i-0123456789abcdef0", timeoutMs: 600_000 },
 *   log: createLogger(),
 *   say: (line) => console.error(line),
 *   signal: new AbortController().signal,
 * });
 * ```
 */
export async function runDrill(plan: DrillPlan, deps: DrillDeps): Promise<DrillResult> {
  const { ec2, log, say, signal } = deps;
  const started = performance.now();
  const checks: DrillCheck[] = [];
  const check = (c: DrillCheck) => {
    checks.push(c);
    say(`${c.ok ? "ok  " : "FAIL"} ${c.name}: ${c.detail}`);
  };
  const timings: DrillTimings = {
    createMs: null,
    attachMs: null,
    recoveryMs: null,
    checkMs: null,
    cleanupMs: null,
    totalMs: 0,
  };
  const volumes: DrillResult["volumes"] = [];
  const problems: AppError[] = [];
  const stack = new CleanupStack({
    onRelease: (name) => log.debug(`release: ${name}`),
    onFailure: (name, error) => log.debug(`${name} failed: ${errorMessage(error)}`),
  });
  let runId: string | undefined;
  // Cleanup is bounded, and not cut short by the stop signal that started it.
  const cleanupSignal = () => AbortSignal.timeout(Math.max(plan.timeoutMs, 60_000));
  try {
    // One drill at a time on an instance: the next one deletes the drill volumes it finds.
    const lock = await takeDrillLock(plan.runDir);
    stack.push("drill lock release", () => lock.close());
    for (const leftover of await drillLeftovers(ec2, signal)) {
      say(`removing ${leftover}, left by a drill that was killed`);
      await removeDrillVolume(ec2, leftover, signal);
    }
    const recorded: DrillCheck[] = [];
    const ready = await checkBeforeCreating(plan, ec2, { say, checks: recorded, signal })
      .finally(() => recorded.forEach(check));
    runId = ready.set.runId;
    const { set } = ready;
    if (plan.noaction) {
      say(`--noaction: would restore ${set.members.length} volume(s) in ${ready.zone}`);
      return finish();
    }

    let t = performance.now();
    // A CreateVolume whose answer is lost may still make a volume: swept by tag at the end.
    stack.push("sweep the drill's volumes", () => sweep());
    for (const member of set.members) {
      const { snapshotId } = member.snapshot;
      // Not aborted by a stop signal: the answer names the volume that cleanup then removes.
      const volumeId = await createDrillVolume(
        ec2,
        { snapshotId, zone: ready.zone, runId },
        AbortSignal.timeout(ec2.timeoutMs),
      );
      volumes.push({ snapshotId, volumeId });
      stack.push(`remove ${volumeId}`, () => removeDrillVolume(ec2, volumeId, cleanupSignal()));
      say(`created ${volumeId} from ${snapshotId}`);
      signal.throwIfAborted();
    }
    for (const v of volumes) await waitAvailable(ec2, v.volumeId, signal);
    timings.createMs = Math.round(performance.now() - t);

    t = performance.now();
    const free = [...DEVICE_LETTERS].map((l) => `/dev/sd${l}`).filter((d) =>
      !ready.devicesInUse.some((used) => used.replace("/dev/xvd", "/dev/sd") === d)
    );
    for (const [i, v] of volumes.entries()) {
      await attachDrillVolume(ec2, v.volumeId, free[i], signal);
      const device = await waitForDevice(v.volumeId, free[i], {
        sysRoot: plan.sysRoot,
        devRoot: plan.devRoot,
        timeoutMs: plan.timeoutMs,
        signal,
      });
      if (!device) {
        throw new DrillError(
          `${v.volumeId} is attached at ${free[i]} but no device shows it in ${plan.sysRoot}/block`,
          ExitCode.drillFailed,
        );
      }
      v.device = device;
      say(`attached ${v.volumeId} as ${device}`);
    }
    timings.attachMs = Math.round(performance.now() - t);

    signal.throwIfAborted();
    const workDir = await Deno.makeTempDir({ prefix: "ecs-drill-" });
    // Named in the lock file: a drill killed before removing it has the next one remove it.
    await recordWorkDir(lock, workDir);
    stack.push(`remove ${workDir}`, async () => {
      await Deno.remove(workDir, { recursive: true });
      await recordWorkDir(lock, "");
    });
    const mounts: NamespaceMount[] = set.members.map((m, i) => ({
      device: volumes[i].device!,
      mountPoint: m.layout.mountPoint,
      fsType: m.layout.fsType,
      options: restoreMountOptions(m.layout.fsType),
    }));
    t = performance.now();
    const db = throwawayServer(set.database, ready.serverPath, mounts.map((m) => m.mountPoint));
    await db.prepare(workDir);
    const namespaceLog = join(workDir, "namespace.log");
    // After the server (and its namespace) ended: the mount points it had to make go.
    stack.push("remove the mount points made", () => removeCreatedMountPoints(namespaceLog));
    const server = startInNamespace(mounts, db.command(workDir), namespaceLog);
    let ended = false;
    server.status.finally(() => ended = true);
    stack.push("stop the throwaway server", async () => {
      if (ended) return;
      // The files are thrown away: a clean shutdown is a courtesy, bounded short.
      server.kill("SIGTERM");
      const timer = setTimeout(() => server.kill("SIGKILL"), 10_000);
      await server.status.finally(() => clearTimeout(timer));
    });
    const until = Date.now() + plan.timeoutMs;
    while (ended || !(await db.ready(workDir, server.pid))) {
      if (ended || Date.now() > until) {
        const cause = ended
          ? await db.failure(workDir)
          : `no answer within --drill-timeout ${
            plan.timeoutMs / 1000
          }s (crash recovery still going?)`;
        check({
          name: "start",
          ok: false,
          detail: `${set.database.engine} did not start on the restored files: ${cause}`,
        });
        throw new DrillError(
          `${set.database.engine} did not start on the restored files: ${cause}`,
          ExitCode.drillFailed,
        );
      }
      await delay(500, { signal });
    }
    timings.recoveryMs = Math.round(performance.now() - t);
    check({ name: "start", ok: true, detail: `started and recovered in ${timings.recoveryMs} ms` });

    const positionChecks = [
      await checkDataVersion(set.database, server.pid),
      ...await db.check(workDir, server.pid, log),
    ];
    positionChecks.forEach(check);
    const failed = positionChecks.find((c) => !c.ok);
    if (failed) {
      throw new DrillError(
        `restore drill failed: ${failed.name}: ${failed.detail}`,
        ExitCode.drillFailed,
      );
    }

    if (plan.checkCommand) {
      t = performance.now();
      const code = await userCheck(
        plan.checkCommand,
        db.env(workDir, server.pid),
        plan.timeoutMs,
        signal,
      );
      timings.checkMs = Math.round(performance.now() - t);
      const ok = code === 0;
      check({
        name: "your check",
        ok,
        detail: ok ? "exit 0" : `${plan.checkCommand}: exit ${code}`,
      });
      if (!ok) {
        throw new DrillError(
          `restore drill failed: --drill-check-command exited ${code}`,
          ExitCode.drillFailed,
        );
      }
    }
  } catch (error) {
    const stop = signal.aborted && signal.reason instanceof SignalError ? signal.reason : error;
    problems.push(
      stop instanceof SignalError
        ? new StoppedError(stop.signalName, STOP_SIGNALS[stop.signalName])
        : error instanceof DrillError
        ? error
        : new DrillError(errorMessage(error), ExitCode.drillFailed, { cause: error }),
    );
  }
  return finish();

  async function sweep(): Promise<void> {
    for (const volumeId of await drillLeftovers(ec2, cleanupSignal())) {
      if (!volumes.some((v) => v.volumeId === volumeId)) volumes.push({ snapshotId: "", volumeId });
      await removeDrillVolume(ec2, volumeId, cleanupSignal());
    }
  }

  async function finish(): Promise<DrillResult> {
    const t = performance.now();
    const failures = await stack.unwind();
    // A stop signal during the last step or the cleanup still ends the drill as stopped.
    if (
      signal.aborted && signal.reason instanceof SignalError &&
      !problems.some((p) => p instanceof StoppedError)
    ) {
      const name = signal.reason.signalName;
      problems.unshift(new StoppedError(name, STOP_SIGNALS[name]));
    }
    if (volumes.length > 0 || failures.length > 0) {
      timings.cleanupMs = Math.round(performance.now() - t);
    }
    for (const failure of failures) {
      problems.push(
        failure.error instanceof DrillError ? failure.error : new DrillError(
          `${failure.name} failed: ${errorMessage(failure.error)}`,
          ExitCode.drillLeftover,
        ),
      );
    }
    timings.totalMs = Math.round(performance.now() - started);
    return { runId, checks, volumes, timings, problems };
  }
}

/** The drill's lock (a flock, which dies with its holder); refuses when another drill holds it. */
async function takeDrillLock(runDir: string): Promise<Deno.FsFile> {
  ensureRunDir(runDir);
  const path = join(runDir, "drill.lock");
  const file = await Deno.open(path, { create: true, read: true, write: true, mode: 0o600 });
  if (await file.tryLock(true)) {
    const left = (await Deno.readTextFile(path)).trim();
    // Only a work directory of ours, as recorded by a drill that was killed.
    if (/^\/[^\n]*\/ecs-drill-[0-9a-z]+$/.test(left)) {
      await removeCreatedMountPoints(join(left, "namespace.log"));
      await Deno.remove(left, { recursive: true }).catch(() => {});
    }
    await recordWorkDir(file, "");
    return file;
  }
  file.close();
  throw new DrillError(
    `another restore drill runs on this instance (it holds ${path}); one at a time`,
    ExitCode.drillRefused,
  );
}

/** Writes the work directory's path into the drill's lock file ("" when none). */
async function recordWorkDir(lock: Deno.FsFile, workDir: string): Promise<void> {
  await lock.truncate(0);
  await lock.seek(0, Deno.SeekMode.Start);
  await lock.write(new TextEncoder().encode(workDir ? `${workDir}\n` : ""));
}

async function userCheck(
  command: string,
  env: Record<string, string>,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<number> {
  // Its own process group: on a stop signal or the timeout, all it started is killed too.
  const child = new Deno.Command("/bin/sh", {
    args: ["-c", 'exec 1>&2; eval "$1"', "sh", command],
    env,
    cwd: "/",
    stdin: "null",
    detached: true,
  }).spawn();
  const bound = AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]);
  const kill = () => {
    try {
      Deno.kill(-child.pid, "SIGKILL");
    } catch { /* gone */ }
  };
  if (bound.aborted) kill();
  bound.addEventListener("abort", kill);
  try {
    const status = await child.status;
    signal.throwIfAborted();
    if (bound.aborted) {
      throw new DrillError(
        `--drill-check-command did not finish within --drill-timeout ${timeoutMs / 1000}s`,
        ExitCode.drillFailed,
      );
    }
    return status.code;
  } finally {
    bound.removeEventListener("abort", kill);
  }
}
