/** Whether a database server answers at its address: the watchdog asks before it starts one that --mysql-stop stopped. */
import { delay, within } from "../util/deadline.ts";
import type { ServerAddress } from "../types/side_effects.ts";

/** How often the probe asks while it waits. */
const PROBE_EVERY_MS = 250;

/**
 * True when something accepts a connection at `address` (no credentials are sent: a connection
 * accepted is a server that runs there, even a stopped one).
 *
 * @example
 * ```ts
 * await serverAnswers({ socketPath: "/run/mysqld/mysqld.sock" }); // false when it is down
 * ```
 */
export async function serverAnswers(address: ServerAddress, timeoutMs = 2_000): Promise<boolean> {
  try {
    const connecting: Promise<Deno.Conn> = address.socketPath !== undefined
      ? Deno.connect({ transport: "unix", path: address.socketPath })
      : Deno.connect({ hostname: address.host ?? "127.0.0.1", port: address.port ?? 3306 });
    const conn = await within(connecting, timeoutMs);
    if (!conn) {
      connecting.then((late) => late.close(), () => {});
      return false;
    }
    conn.close();
    return true;
  } catch {
    return false;
  }
}

/**
 * True when the server answered at `address` all the time for `waitMs`: it was not stopped (a
 * stop command that stops another server, or none) or was started again. False as soon as it
 * does not answer: it is down (a stop still on its way counts once it is done).
 *
 * @example
 * ```ts
 * const start = () => Promise.resolve(); // the start command
 * const socketPath = "/run/mysqld/mysqld.sock";
 * if (!await answersThroughout({ socketPath }, 60_000)) await start();
 * ```
 */
export async function answersThroughout(address: ServerAddress, waitMs: number): Promise<boolean> {
  const end = performance.now() + waitMs;
  while (true) {
    if (!await serverAnswers(address)) return false;
    if (performance.now() >= end) return true;
    await delay(PROBE_EVERY_MS);
  }
}

/** The address in words, for the log: its socket, or host:port. */
export function describeAddress(address: ServerAddress): string {
  return address.socketPath ?? `${address.host ?? "127.0.0.1"}:${address.port ?? 3306}`;
}
