/** Processes in tests: whether one still runs, waiting for a condition or a pid file, killing without fuss. */

/**
 * True while `pid` runs (a zombie, dead but not yet reaped, does not count).
 *
 * @example
 * ```ts
 * alive(Deno.pid); // true
 * ```
 */
export function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(Deno.readTextFileSync(`/proc/${pid}/stat`));
  } catch {
    return false;
  }
}

/**
 * Polls `condition` every 25 ms until it holds (true) or `timeoutMs` passes (its last answer).
 *
 * @example
 * ```ts
 * await waitUntil(() => !alive(watchdogPid), 5_000); // the watchdog has exited
 * ```
 */
export async function waitUntil(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = performance.now() + timeoutMs;
  while (performance.now() < end) {
    if (condition()) return true;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return condition();
}

/**
 * The pid a process writes to `file` (a hook's `echo $$ > file`), once it is there; throws
 * after `timeoutMs`.
 *
 * @example
 * ```ts
 * const hookPid = await readPidFile(`${dir}/hook.pid`);
 * ```
 */
export async function readPidFile(file: string, timeoutMs = 60_000): Promise<number> {
  const end = performance.now() + timeoutMs;
  while (performance.now() < end) {
    try {
      const pid = Number(Deno.readTextFileSync(file).trim());
      if (pid > 0) return pid;
    } catch { /* not yet */ }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`${file} was not written within ${timeoutMs} ms`);
}

/**
 * SIGKILLs `pid` if there is one and it still runs; never throws.
 *
 * @example
 * ```ts
 * killQuietly(hookPid);
 * ```
 */
export function killQuietly(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    Deno.kill(pid, "SIGKILL");
  } catch { /* gone */ }
}
