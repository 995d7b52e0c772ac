/** The holder's unix socket: takes `release` requests and answers each, once released, with the record. */
import { HoldLine } from "./protocol.ts";
import { writeLine } from "../util/lines.ts";
import type { ReleaseRecord } from "./state.ts";
import type { Logger } from "../util/log.ts";

/** The listening socket of a holder. */
export interface ReleaseSocket {
  /** Resolves when the first `release` request arrives. */
  requested: Promise<void>;
  /** Answers every request received (and those still to come) with `record`, then closes. */
  answer(record: ReleaseRecord): Promise<void>;
}

async function readLine(conn: Deno.Conn, maxBytes = 256): Promise<string> {
  const buffer = new Uint8Array(maxBytes);
  let text = "";
  while (!text.includes("\n") && text.length < maxBytes) {
    const n = await conn.read(buffer);
    if (n === null) break;
    text += new TextDecoder().decode(buffer.subarray(0, n));
  }
  return text.split("\n")[0].trim();
}

/**
 * Listens on `path` (a stale socket file there is replaced; the directory is the holder's own,
 * 0700, so only root reaches it).
 *
 * @example
 * ```ts
 * import type { ReleaseRecord } from "./state.ts";
 * import type { Logger } from "../util/log.ts";
 * const log = {} as Logger, record = {} as ReleaseRecord;
 * const socket = listenForRelease("/run/ec2-consistent-snapshot/hold.sock", log);
 * await socket.requested;
 * // ... release everything ...
 * await socket.answer(record);
 * ```
 */
export function listenForRelease(path: string, log: Logger): ReleaseSocket {
  try {
    Deno.removeSync(path);
  } catch { /* none */ }
  const listener = Deno.listen({ transport: "unix", path });
  Deno.chmodSync(path, 0o600);
  let request!: () => void;
  const requested = new Promise<void>((resolve) => request = resolve);
  const waiting: Deno.Conn[] = [];
  let answered: ReleaseRecord | undefined;

  const send = async (conn: Deno.Conn, record: ReleaseRecord) => {
    try {
      await writeLine(conn, JSON.stringify(record));
    } catch (error) {
      log.debug(`release socket: cannot answer: ${(error as Error).message}`);
    }
    try {
      conn.close();
    } catch { /* closed */ }
  };

  const serve = async (conn: Deno.Conn) => {
    let line = "";
    try {
      line = await readLine(conn);
    } catch { /* the client went away */ }
    if (line !== HoldLine.release) {
      try {
        conn.close();
      } catch { /* closed */ }
      return;
    }
    log.debug("release requested");
    if (answered) return send(conn, answered);
    waiting.push(conn);
    request();
  };

  const accepting = (async () => {
    try {
      for await (const conn of listener) serve(conn);
    } catch { /* closed */ }
  })();

  return {
    requested,
    async answer(record) {
      answered = record;
      await Promise.all(waiting.splice(0).map((conn) => send(conn, record)));
      try {
        listener.close();
      } catch { /* closed */ }
      await accepting;
    },
  };
}
