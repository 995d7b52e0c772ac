/** What the consistency window measures: the freeze window, the lock window, the database lock, the preflight; and how they are said. */

/** The measured windows, in milliseconds. */
export interface WindowTimings {
  /** Preflight (DryRun calls, database connection) in milliseconds. */
  preflightMs: number;
  /** First freeze to last thaw; null when nothing was frozen. */
  freezeWindowMs: number | null;
  /** First lock taken (database or freeze) to last released; null when nothing was locked. */
  lockWindowMs: number | null;
  /** Database lock acquired to released; null without a database. */
  databaseLockMs: number | null;
}

/**
 * Takes the window's times as its steps happen, on a monotonic clock.
 *
 * @example
 * ```ts
 * const clock = new WindowClock(() => performance.now());
 * const started = clock.now();
 * clock.preflightDone(started);
 * clock.frozen();
 * clock.thawed();
 * clock.released();
 * clock.timings.freezeWindowMs; // a few milliseconds
 * ```
 */
export class WindowClock {
  /** The timings so far; null where the window has not been (yet). */
  readonly timings: WindowTimings = {
    preflightMs: 0,
    freezeWindowMs: null,
    lockWindowMs: null,
    databaseLockMs: null,
  };
  #firstLockAt: number | undefined;
  #firstFreezeAt: number | undefined;
  #databaseLockedAt: number | undefined;

  /** Takes time from `now` (monotonic milliseconds). */
  constructor(readonly now: () => number) {}

  /** The preflight, started at `startedAt`, is done. */
  preflightDone(startedAt: number): void {
    this.timings.preflightMs = Math.round(this.now() - startedAt);
  }

  /** The database holds writes from now: the database lock and the lock window start. */
  databaseLocked(): void {
    this.#databaseLockedAt = this.now();
    this.#firstLockAt = this.#databaseLockedAt;
  }

  /** The first freeze starts: the freeze window starts, and the lock window if not yet. */
  frozen(): void {
    this.#firstFreezeAt = this.now();
    this.#firstLockAt ??= this.#firstFreezeAt;
  }

  /** A mount was thawed: the freeze window lasts until the last of them. */
  thawed(): void {
    if (this.#firstFreezeAt === undefined) return;
    this.timings.freezeWindowMs = Math.round(this.now() - this.#firstFreezeAt);
  }

  /** The database was released: the database lock ends. */
  databaseReleased(): void {
    if (this.#databaseLockedAt === undefined) return;
    this.timings.databaseLockMs = Math.round(this.now() - this.#databaseLockedAt);
  }

  /** Everything was released: the lock window ends. */
  released(): void {
    if (this.#firstLockAt === undefined) return;
    this.timings.lockWindowMs = Math.round(this.now() - this.#firstLockAt);
  }
}

/**
 * The measured windows in words, for --debug and --release: "freeze window 12 ms, lock window
 * 15 ms", or "nothing was frozen" / "nothing was locked" where there was no window.
 *
 * @example
 * ```ts
 * windowText({ freezeWindowMs: null, lockWindowMs: 8 }); // "nothing was frozen, lock window 8 ms"
 * ```
 */
export function windowText(
  timings: Pick<WindowTimings, "freezeWindowMs" | "lockWindowMs">,
): string {
  const freeze = timings.freezeWindowMs === null
    ? "nothing was frozen"
    : `freeze window ${timings.freezeWindowMs} ms`;
  const lock = timings.lockWindowMs === null
    ? "nothing was locked"
    : `lock window ${timings.lockWindowMs} ms`;
  return `${freeze}, ${lock}`;
}
