/** The drill's checks before it creates anything: the run, the whole set completed (bounded wait), its consistency, the zone, permissions by DryRun, the server binaries. */
import { instancePlacement, resolveRunId, runSnapshots } from "../aws/drill_snapshots.ts";
import { checkPermissions, type DrillEc2 } from "../aws/drill_volumes.ts";
import { type DrillSet, readSet } from "./set.ts";
import type { DrillPlan } from "../plan/drill_plan.ts";
import { findServer } from "./servers.ts";
import type { DrillCheck } from "../db/mysql/drill.ts";
import { DrillError, ExitCode } from "../util/errors.ts";
import { delay } from "../util/deadline.ts";

/** What the checks found: the set, where to restore it, and the server to start. */
export interface Ready {
  /** The set. */
  set: DrillSet;
  /** This instance's Availability Zone. */
  zone: string;
  /** Device names in use on the instance (new attachments avoid them). */
  devicesInUse: string[];
  /** The installed server binary of the right version. */
  serverPath: string;
}

/**
 * Runs every check before anything is created; adds one line per check to `checks`; throws
 * DrillError (exit 18) naming the first thing that fails.
 */
export async function checkBeforeCreating(
  plan: DrillPlan,
  ec2: DrillEc2,
  io: { say: (line: string) => void; checks: DrillCheck[]; signal: AbortSignal },
): Promise<Ready> {
  const { say, checks, signal } = io;
  const refuse = (name: string, detail: string): never => {
    checks.push({ name, ok: false, detail });
    throw new DrillError(`restore drill refused: ${detail}`, ExitCode.drillRefused);
  };
  const runId = await resolveRunId(ec2.client, plan.target, signal);
  let snapshots = await runSnapshots(ec2.client, runId, signal);
  const { set, problems } = readSet(runId, snapshots);
  if (!set) return refuse("snapshot set", problems[0]);
  checks.push({
    name: "snapshot set",
    ok: true,
    detail: `run ${runId}: ${set.members.length} volume(s), ${
      set.members.map((m) => `${m.snapshot.snapshotId} ${m.layout.fsType}:${m.layout.mountPoint}`)
        .join(", ")
    }; ${set.database.engine} ${set.database.version}`,
  });
  const until = Date.now() + plan.timeoutMs;
  while (snapshots.some((s) => s.state !== "completed")) {
    const pending = snapshots.filter((s) => s.state !== "completed");
    if (pending.some((s) => s.state === "error")) {
      refuse("completed", `${pending.find((s) => s.state === "error")!.snapshotId} is in error`);
    }
    if (Date.now() > until) {
      refuse(
        "completed",
        `${pending.map((s) => `${s.snapshotId} ${s.progress}`).join(", ")} not completed ` +
          `within --drill-timeout ${plan.timeoutMs / 1000}s`,
      );
    }
    say(`waiting for ${pending.map((s) => `${s.snapshotId} (${s.progress})`).join(", ")}`);
    await delay(10_000, { signal });
    snapshots = await runSnapshots(ec2.client, runId, signal);
  }
  checks.push({ name: "completed", ok: true, detail: "every snapshot of the set is completed" });
  const placement = await instancePlacement(ec2.client, plan.instanceId, signal);
  checks.push({ name: "zone", ok: true, detail: `${plan.instanceId} in ${placement.zone}` });
  await checkPermissions(ec2, {
    snapshotId: set.members[0].snapshot.snapshotId,
    zone: placement.zone,
    runId,
  }, signal).catch((error) => refuse("permissions", (error as Error).message));
  checks.push({
    name: "permissions",
    ok: true,
    detail: "CreateVolume and AttachVolume allowed (DryRun)",
  });
  const server = await findServer(set.database);
  if ("problem" in server) return refuse("server", server.problem);
  checks.push({ name: "server", ok: true, detail: `${server.path} ${server.version}` });
  return { set, zone: placement.zone, devicesInUse: placement.devices, serverPath: server.path };
}
