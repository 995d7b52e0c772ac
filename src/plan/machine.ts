/** What the plan decides about this machine from the environment: the run directory and where programs are found. */
import { PreflightError, UsageError } from "../util/errors.ts";
import { canFreeze } from "../host/proc.ts";

/** Where the freeze locks and the hold's state live unless `$ECS_RUN_DIR` says otherwise. */
export const DEFAULT_RUN_DIR = "/run/ec2-consistent-snapshot";

/**
 * The run directory (the freeze locks, the hold's state): `$ECS_RUN_DIR` when set and not
 * empty, else {@linkcode DEFAULT_RUN_DIR}. A relative `$ECS_RUN_DIR` is refused (UsageError):
 * state at a path that depends on the current directory would be missed by a `--release` run
 * from elsewhere.
 *
 * @example
 * ```ts
 * import { runDirectory } from "./machine.ts";
 * runDirectory({}); // "/run/ec2-consistent-snapshot"
 * runDirectory({ ECS_RUN_DIR: "/tmp/ecs" }); // "/tmp/ecs"
 * ```
 */
export function runDirectory(env: Record<string, string | undefined>): string {
  const dir = env.ECS_RUN_DIR || DEFAULT_RUN_DIR;
  if (!dir.startsWith("/")) {
    throw new UsageError(
      `$ECS_RUN_DIR ${dir}: must be an absolute path (the state of runs and holds lives there)`,
    );
  }
  return dir;
}

/**
 * Where sync, fsfreeze and the hooks' shell are looked for first: `$PATH` (the system
 * directories are searched after it by host/freeze.ts).
 *
 * @example
 * ```ts
 * import { programSearchPath } from "./machine.ts";
 * programSearchPath({ PATH: "/usr/bin:/bin" }); // "/usr/bin:/bin"
 * ```
 */
export function programSearchPath(env: Record<string, string | undefined>): string {
  return env.PATH ?? "";
}

/**
 * Refuses, before anything is locked, a run or hold that would freeze without the right to
 * (not root, no CAP_SYS_ADMIN): the freeze would fail only after the database was locked.
 *
 * @example
 * ```ts
 * import { checkCanFreeze } from "./machine.ts";
 * checkCanFreeze(["/data"], () => false); // throws PreflightError "freezing needs root ..."
 * ```
 */
export function checkCanFreeze(
  mountPoints: readonly string[],
  allowed: () => boolean = canFreeze,
): void {
  if (mountPoints.length === 0 || allowed()) return;
  throw new PreflightError(
    `freezing needs root (CAP_SYS_ADMIN), which this process lacks: --freeze-filesystem ` +
      `${mountPoints.join(", ")}; run it as root (sudo), or without --freeze-filesystem`,
  );
}
