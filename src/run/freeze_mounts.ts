/**
 * Freezing the window's file systems: at once when none lies inside another, else in order;
 * each thaw on the cleanup stack before its freeze; a file system frozen by someone else is
 * left as it is; a thaw that finds one of ours thawed already is a break of the window.
 */
import type { CleanupStack } from "./cleanup.ts";
import { AlreadyFrozenError, NotFrozenError } from "../util/errors.ts";
import type { ArmedWatchdog, Freezer } from "../types/side_effects.ts";
import type { Logger } from "../util/log.ts";

/**
 * True when no mount point lies inside another: their freezes do not depend on each other.
 *
 * @example
 * ```ts
 * independent(["/data", "/logs"]); // true
 * independent(["/data", "/data/sub"]); // false
 * ```
 */
export function independent(mounts: readonly string[]): boolean {
  const inside = (a: string, b: string) => a !== b && a.startsWith(b === "/" ? "/" : `${b}/`);
  return !mounts.some((a) => mounts.some((b) => inside(a, b)));
}

/** What {@linkcode freezeMounts} works with. */
export interface FreezeContext {
  /** Freezes and thaws. */
  freezer: Freezer;
  /** The window's cleanup stack: each thaw goes on it. */
  stack: CleanupStack;
  /** The armed watchdog: told when a mount turns out to be someone else's freeze. */
  guard: ArmedWatchdog;
  /** Where --debug steps and warnings go. */
  log: Logger;
  /** Throws the stop signal's reason once it came. */
  checkSignal: () => void;
  /** Called after each thaw of ours (the freeze window's end). */
  onThaw: () => void;
  /** Where a thaw that found a mount of ours thawed already says so (the window was broken). */
  broken: string[];
}

/**
 * Freezes `mounts` (the caller has armed the watchdog for them); their thaws, in reverse
 * order, are on the stack before the freezes start (a freeze that timed out may still have
 * frozen). Throws the first freeze's failure, or the stop signal.
 *
 * @example
 * ```ts
 * const context = {} as FreezeContext;
 * await freezeMounts(["/data", "/logs"], context);
 * ```
 */
export async function freezeMounts(
  mounts: readonly string[],
  context: FreezeContext,
): Promise<void> {
  const { freezer, stack, guard, log, checkSignal } = context;
  /** Mounts whose freeze found them frozen already: someone else's, never thawed by us. */
  const notOurs = new Set<string>();
  /** Mounts this run froze (its freeze succeeded): a thaw that finds one thawed is a break. */
  const frozenByUs = new Set<string>();
  const freeze = (mount: string) =>
    freezer.freeze(mount).then(() => void frozenByUs.add(mount), async (error) => {
      if (error instanceof AlreadyFrozenError) {
        notOurs.add(mount);
        // Nor may the watchdog thaw it, should this process die now.
        const ours = mounts.filter((m) => !notOurs.has(m));
        await guard.update?.({ mountPoints: ours }).catch(() => {});
      }
      throw error;
    });
  const thawLater = (mount: string) =>
    stack.push(`thaw ${mount}`, async () => {
      if (notOurs.has(mount)) {
        log.warn(`${mount} was frozen by someone else before this run: left frozen`, {
          evenWhenQuiet: true,
        });
        return;
      }
      try {
        await freezer.thaw(mount);
      } catch (error) {
        if (!(error instanceof NotFrozenError)) throw error;
        // Frozen by this run, thawed by someone else (an administrator, another agent, the
        // watchdog at its deadline) while held: what was made meanwhile is not vouched for.
        if (frozenByUs.has(mount)) {
          context.broken.push(
            `${mount} was no longer frozen when this run thawed it (thawed by ` +
              "someone else, or by the watchdog at its deadline)",
          );
        }
      }
      context.onThaw();
    });
  if (independent(mounts)) {
    // Separate file systems: one freeze does not wait for another, so they run at once
    // (the kernel's freeze costs tens of milliseconds each). Thaws stay in reverse order.
    log.debug(`freeze ${mounts.join(", ")} at once`);
    mounts.forEach(thawLater);
    const frozen = await Promise.allSettled(mounts.map(freeze));
    const failed = frozen.find((f) => f.status === "rejected");
    if (failed) throw (failed as PromiseRejectedResult).reason;
    checkSignal();
  } else {
    for (const mount of mounts) {
      log.debug(`freeze ${mount}`);
      thawLater(mount);
      await freeze(mount);
      checkSignal();
    }
  }
}
