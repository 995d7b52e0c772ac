/** One deadline and one abortable sleep: AbortSignal.timeout combined with the caller's signal. */

/**
 * A signal that aborts after `ms` milliseconds (reason: a "TimeoutError" DOMException) or when
 * `signal` aborts (its reason), whichever comes first.
 *
 * @example
 * ```ts
 * const stopSignal = {} as AbortSignal;
 * const bounded = deadline(5_000, stopSignal);
 * await fetch("http://169.254.169.254/latest/api/token", { signal: bounded });
 * ```
 */
export function deadline(ms: number, signal?: AbortSignal): AbortSignal {
  const timeout = AbortSignal.timeout(Math.max(0, ms));
  return signal ? AbortSignal.any([timeout, signal]) : timeout;
}

/**
 * Settles as `promise` does, or rejects with `signal.reason` as soon as the signal aborts (the
 * promise itself goes on; its outcome is ignored).
 *
 * @example
 * ```ts
 * const reader = {} as ReadableStreamDefaultReader<Uint8Array>;
 * const line = await abortable(reader.read(), deadline(1_000)); // rejects: TimeoutError
 * ```
 */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    promise.catch(() => {});
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/**
 * Waits `ms` milliseconds; rejects with `signal.reason` when the signal aborts first (it does
 * not quietly resolve), and at once when it is already aborted.
 *
 * @example
 * ```ts
 * const signal = {} as AbortSignal;
 * await delay(250, { signal }); // throws signal.reason if stopped meanwhile
 * ```
 */
export function delay(ms: number, options: { signal?: AbortSignal } = {}): Promise<void> {
  const { signal } = options;
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * True when `error` is the reason of a deadline that passed (not of the caller's signal).
 *
 * @example
 * ```ts
 * const work = {} as Promise<void>;
 * try { await abortable(work, deadline(1_000)); } catch (e) { if (!isTimeout(e)) throw e; }
 * ```
 */
export function isTimeout(error: unknown): boolean {
  return error instanceof DOMException && error.name === "TimeoutError";
}

/**
 * Runs `fn` with a signal that aborts after `ms` milliseconds (a "TimeoutError") or when
 * `signal` aborts. Unlike {@linkcode deadline}, its timer keeps the process alive while `fn`
 * runs and is cleared when `fn` settles: for waits on something that does not keep the process
 * alive by itself (a detached child, a read from one).
 *
 * @example
 * ```ts
 * import type { LineReader } from "./lines.ts";
 * const lines = {} as LineReader;
 * const line = await withDeadline(2_000, (bounded) => lines.next(bounded));
 * ```
 */
export async function withDeadline<T>(
  ms: number,
  fn: (signal: AbortSignal) => Promise<T>,
  signal?: AbortSignal,
): Promise<T> {
  const controller = new AbortController();
  const timer = setTimeout(
    () => controller.abort(new DOMException("Signal timed out.", "TimeoutError")),
    Math.max(0, ms),
  );
  try {
    return await fn(signal ? AbortSignal.any([controller.signal, signal]) : controller.signal);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The value of `promise`, or undefined when it does not settle within `ms` milliseconds; a
 * rejection rejects.
 *
 * @example
 * ```ts
 * const connection = {} as { end(): Promise<void>; destroy(): void };
 * const closed = await within(connection.end().then(() => true), 2_000);
 * if (!closed) connection.destroy();
 * ```
 */
export async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  try {
    return await withDeadline(ms, (signal) => abortable(promise, signal));
  } catch (error) {
    if (isTimeout(error)) return undefined;
    throw error;
  }
}
