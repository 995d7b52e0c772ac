/**
 * Recording fakes of the sequence's side effects, for the exact order of steps and for faults
 * injected at each step. They complement the real-service tests; they never replace them.
 */
import type {
  ArmedWatchdog,
  BinlogCoordinates,
  Database,
  Ec2,
  FailureKind,
  FoundSnapshot,
  Freezer,
  Hooks,
  SnapshotOutcome,
  SnapshotRequest,
  Watchdog,
} from "../../src/types/side_effects.ts";

/** A step name at which a fault can be injected, e.g. "freeze /b" or "create". */
export type Step = string;

export interface Recorder {
  log: Step[];
  /** Steps that throw (the error given) instead of succeeding. */
  faults: Map<Step, Error>;
  /** Steps that never finish until aborted (create only) or the promise given resolves. */
  holds: Map<Step, Promise<void>>;
  /**
   * What the run-id lookup after the thaw finds ("lookup" is its step; a fault there is a
   * lookup that cannot be done).
   */
  found: FoundSnapshot[];
  /** The watchdog's deadlines, in the order given (at arming, then each update). */
  bounds: number[];
  ec2: Ec2;
  freezer: Freezer;
  hooks: Hooks;
  watchdog: Watchdog;
  database: Database;
}

/** Makes a set of fakes that append every call to `log`. */
export function recorder(binlog?: BinlogCoordinates): Recorder {
  const log: Step[] = [];
  const faults = new Map<Step, Error>();
  const holds = new Map<Step, Promise<void>>();
  const found: FoundSnapshot[] = [];
  const step = async (name: Step) => {
    log.push(name);
    const hold = holds.get(name);
    if (hold) await hold;
    const fault = faults.get(name);
    if (fault) throw fault;
  };
  const ec2: Ec2 = {
    async preflight(requests: readonly SnapshotRequest[]) {
      await step(`preflight ${requests.map((r) => r.volumeId).join(",")}`);
    },
    async createSnapshots(requests, signal) {
      log.push("create");
      const hold = holds.get("create");
      if (hold) {
        await Promise.race([
          hold,
          new Promise((resolve) => signal.addEventListener("abort", resolve, { once: true })),
        ]);
      }
      return requests.map((r, i): SnapshotOutcome => {
        if (signal.aborted) {
          const kind = "aborted";
          return {
            volumeId: r.volumeId,
            ok: false,
            kind,
            errorCode: "Aborted",
            message: "aborted",
          };
        }
        // A fault's `kind` says how the call ended: "error" (the default) or "unknown".
        const fault = faults.get(`create ${r.volumeId}`) as Error & { kind?: FailureKind };
        return fault
          ? {
            volumeId: r.volumeId,
            ok: false,
            kind: fault.kind ?? "error",
            errorCode: fault.name,
            message: fault.message,
          }
          : { volumeId: r.volumeId, ok: true, snapshotId: `snap-${i}` };
      });
    },
    async findRunSnapshots() {
      await step("lookup");
      return [...found];
    },
  };
  const freezer: Freezer = {
    sync: () => step("sync"),
    freeze: (mount) => step(`freeze ${mount}`),
    thaw: (mount) => step(`thaw ${mount}`),
  };
  const hooks: Hooks = { run: (which) => step(which) };
  const bounds: number[] = [];
  const watchdog: Watchdog = {
    async arm(mounts, deadlineMs): Promise<ArmedWatchdog> {
      await step(`arm ${mounts.join(",")}`);
      bounds.push(deadlineMs);
      return {
        disarm: () => step("disarm"),
        // A new deadline alone is a bound, not a step; new mounts are a step.
        async update(change) {
          if (change.deadlineMs !== undefined) bounds.push(change.deadlineMs);
          if (change.mountPoints) await step(`update ${change.mountPoints.join(",")}`);
        },
      };
    },
  };
  const database: Database = {
    prepare: () => step("db prepare"),
    async lock(_signal, guard) {
      await step("db lock");
      await guard?.(1_000);
      return binlog;
    },
    release: () => step("db release"),
  };
  return { log, faults, holds, found, bounds, ec2, freezer, hooks, watchdog, database };
}
