/**
 * The cleanup stack: every step that takes a lock pushes its release; the stack unwinds exactly
 * once, in reverse order, attempting every release even when an earlier one failed. Signals
 * (SIGINT, SIGTERM, SIGHUP) abort the run through `signal`; the run then unwinds as on error.
 */

/** One release that failed during unwinding. */
export interface ReleaseFailure {
  /** The name the release was pushed with, e.g. "thaw /data". */
  name: string;
  /** What it threw. */
  error: unknown;
}

/** A release: undoes what a step took (thaw, unlock, start again); may be async. */
export type Release = () => Promise<void> | void;

/** Hooks of a {@linkcode CleanupStack}, for logging. */
export interface CleanupStackOptions {
  /** Called before each release, e.g. for a debug line. */
  onRelease?: (name: string) => void;
  /** Called when a release fails; unwinding goes on. */
  onFailure?: (name: string, error: unknown) => void;
}

/**
 * A stack of releases.
 *
 * @example
 * ```ts
 * import type { Freezer } from "../types/side_effects.ts";
 * const freezer = {} as Freezer;
 * const stack = new CleanupStack();
 * stack.push("thaw /data", () => freezer.thaw("/data"));
 * const failures = await stack.unwind();
 * ```
 */
export class CleanupStack {
  #entries: { name: string; release: Release }[] = [];
  #unwinding: Promise<ReleaseFailure[]> | undefined;
  #lateFailures: ReleaseFailure[] = [];
  #late: Promise<void>[] = [];
  #options: CleanupStackOptions;

  /** An empty stack. */
  constructor(options: CleanupStackOptions = {}) {
    this.#options = options;
  }

  /** Number of releases waiting. */
  get size(): number {
    return this.#entries.length;
  }

  /** True once unwinding has begun. */
  get closed(): boolean {
    return this.#unwinding !== undefined;
  }

  /**
   * Pushes a release. On a stack that is already unwinding (a signal arrived while the lock was
   * being taken) the release runs at once, so nothing taken late is ever left held.
   */
  push(name: string, release: Release): void {
    if (this.#unwinding) {
      this.#late.push(this.#attempt(name, release, this.#lateFailures));
      return;
    }
    this.#entries.push({ name, release });
  }

  /**
   * Runs every release, newest first, once. Later calls return the same result; releases
   * pushed while unwinding are awaited too.
   */
  unwind(): Promise<ReleaseFailure[]> {
    this.#unwinding ??= (async () => {
      const failures: ReleaseFailure[] = [];
      while (this.#entries.length > 0) {
        const { name, release } = this.#entries.pop()!;
        await this.#attempt(name, release, failures);
      }
      await Promise.all(this.#late);
      return failures;
    })();
    return this.#unwinding.then(async (failures) => {
      await Promise.all(this.#late);
      return [...failures, ...this.#lateFailures];
    });
  }

  async #attempt(name: string, release: Release, failures: ReleaseFailure[]): Promise<void> {
    // The callbacks only report (a log line): one that throws never stops a release.
    quietly(() => this.#options.onRelease?.(name));
    try {
      await release();
    } catch (error) {
      failures.push({ name, error });
      quietly(() => this.#options.onFailure?.(name, error));
    }
  }
}

function quietly(report: () => void): void {
  try {
    report();
  } catch {
    // Reporting failed (stderr closed): the release goes on regardless.
  }
}

/** Signals that stop a run, with their numbers (exit code is 128 + number). */
export const STOP_SIGNALS = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as const;
/** The name of a stop signal: "SIGHUP", "SIGINT" or "SIGTERM". */
export type StopSignal = keyof typeof STOP_SIGNALS;

/** What a signal handler installation gives back. */
export interface SignalTrap {
  /** Aborted (with a SignalError reason) when the first stop signal arrives. */
  signal: AbortSignal;
  /** The first stop signal received, if any. */
  received(): StopSignal | undefined;
  /** Removes the handlers. */
  dispose(): void;
}

/** The abort reason when a stop signal arrived. */
export class SignalError extends Error {
  /** The signal that arrived. */
  readonly signalName: StopSignal;
  /** The reason for `signalName` arriving. */
  constructor(signalName: StopSignal) {
    super(`stopped by ${signalName}`);
    this.name = "SignalError";
    this.signalName = signalName;
  }
}

/**
 * Installs handlers for SIGINT, SIGTERM and SIGHUP. The first one aborts `signal`; later ones
 * are reported through `onRepeat` and otherwise ignored, so they cannot cut unwinding short.
 *
 * @example
 * ```ts
 * import { runSequence, type RunDeps, type RunSpec } from "./sequence.ts";
 * import type { Logger } from "../util/log.ts";
 * const spec = {} as RunSpec, deps = {} as RunDeps, log = {} as Logger;
 * const trap = trapStopSignals((name) => log.warn(`${name} again: still releasing`));
 * try {
 *   await runSequence(spec, { ...deps, signal: trap.signal });
 * } finally {
 *   trap.dispose();
 * }
 * ```
 */
export function trapStopSignals(onRepeat?: (name: StopSignal) => void): SignalTrap {
  const controller = new AbortController();
  let first: StopSignal | undefined;
  const handlers: [StopSignal, () => void][] = [];
  for (const name of Object.keys(STOP_SIGNALS) as StopSignal[]) {
    const handler = () => {
      if (first) {
        onRepeat?.(name);
        return;
      }
      first = name;
      controller.abort(new SignalError(name));
    };
    Deno.addSignalListener(name, handler);
    handlers.push([name, handler]);
  }
  return {
    signal: controller.signal,
    received: () => first,
    dispose() {
      for (const [name, handler] of handlers) Deno.removeSignalListener(name, handler);
    },
  };
}
