/**
 * A fault-injecting TCP proxy in front of an endpoint (moto): per request it forwards, delays,
 * holds, hangs, closes the connection (before or after forwarding) or answers an EC2 error, and
 * it records every request with the moment it arrived: proof from outside the program.
 */

/** One request as the proxy saw it. */
export interface SeenRequest {
  action: string | null;
  dryRun: boolean;
  /** The `VolumeId` parameter of the query body, when there is one. */
  volumeId: string | null;
  body: string;
  /** The access key id the request was signed with (SigV4 `Credential=`). */
  accessKeyId: string | undefined;
  /** The SDK's `amz-sdk-request` header ("attempt=1; max=3"), when sent. */
  attempt: string | undefined;
  /** When the request was complete at the proxy (`performance.now()` of the test process). */
  at: number;
  /** What the proxy did with it. */
  decision: string;
}

/**
 * What to do with a request:
 * - `"forward"`: pass it to the endpoint and its answer back;
 * - `"hang"`: never answer (released when the proxy stops);
 * - `"close"`: close the connection without an answer; the endpoint never sees the request;
 * - `"forward-then-close"`: the endpoint gets (and acts on) the request, the answer is dropped
 *   and the connection closed: the client cannot know what happened;
 * - `"forward-then-hang"`: the endpoint acts on it; the client never hears back;
 * - `"forward-and-close"`: answered, then the connection is closed (a server ending an idle
 *   keep-alive connection): the client's next request needs a new connection;
 * - `{ delayMs }`: forward after a delay;
 * - `{ error, status }`: answer an EC2 error in EC2's XML format, e.g.
 *   `{ error: "RequestLimitExceeded", status: 503 }`; the endpoint never sees the request;
 * - a promise: hold the request until it settles, then forward it unless it gave `false` (the
 *   test says the client is gone: answer 503 without forwarding).
 */
export type Decision =
  | "forward"
  | "hang"
  | "close"
  | "forward-then-close"
  | "forward-then-hang"
  | "forward-and-close"
  | { delayMs: number }
  | { error: string; status: number; message?: string }
  | Promise<boolean | void>;

export interface Proxy {
  url: string;
  seen: SeenRequest[];
  /** Decides per request; forward by default. */
  decide: (request: SeenRequest) => Decision;
  /** Added round-trip time for every forwarded request, in milliseconds. */
  delayMs: number;
  /**
   * Rewrites a forwarded answer before the client gets it (its headers in place, its body as
   * returned): e.g. a DescribeSnapshots listing a snapshot as `error`, or a `Date` that is off.
   */
  rewrite: (request: SeenRequest, headers: Headers, body: string) => string;
  /**
   * Closes a new connection at once, before a byte of it is read (with data waiting, the kernel
   * answers with a TCP reset), when it gives true for the connection's number (1, 2, ...).
   */
  closeOnAccept: (connection: number) => boolean;
  stop(): Promise<void>;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const HEADER_END = encoder.encode("\r\n\r\n");

/** The body of an EC2 error answer, as EC2 writes it. */
export function ec2ErrorXml(code: string, message: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${code}</Code>` +
    `<Message>${message}</Message></Error></Errors>` +
    `<RequestID>${crypto.randomUUID()}</RequestID></Response>`;
}

function indexOf(haystack: Uint8Array, needle: Uint8Array, from = 0): number {
  outer: for (let i = from; i <= haystack.length - needle.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

interface RawRequest {
  method: string;
  target: string;
  headers: Headers;
  body: Uint8Array<ArrayBuffer>;
}

/** Reads HTTP/1.1 requests (Content-Length bodies) one after another from a connection. */
class RequestReader {
  #buffer: Uint8Array<ArrayBuffer> = new Uint8Array();
  constructor(private conn: Deno.Conn) {}

  async #fill(): Promise<boolean> {
    const chunk = new Uint8Array(64 * 1024);
    const n = await this.conn.read(chunk);
    if (n === null) return false;
    this.#buffer = concat(this.#buffer, chunk.subarray(0, n));
    return true;
  }

  /** The next request, or null when the client closed the connection. */
  async next(): Promise<RawRequest | null> {
    let end;
    while ((end = indexOf(this.#buffer, HEADER_END)) < 0) if (!await this.#fill()) return null;
    const [requestLine, ...lines] = decoder.decode(this.#buffer.subarray(0, end)).split("\r\n");
    const [method, target] = requestLine.split(" ");
    const headers = new Headers();
    for (const line of lines) {
      const colon = line.indexOf(":");
      headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
    }
    const length = Number(headers.get("content-length") ?? 0);
    const start = end + HEADER_END.length;
    while (this.#buffer.length < start + length) if (!await this.#fill()) return null;
    const body = this.#buffer.slice(start, start + length);
    this.#buffer = this.#buffer.slice(start + length);
    return { method, target, headers, body };
  }
}

function responseBytes(status: number, headers: Headers, body: Uint8Array): Uint8Array {
  const lines = [`HTTP/1.1 ${status} ${status < 400 ? "OK" : "Error"}`];
  for (const [name, value] of headers) {
    if (!["content-length", "transfer-encoding", "connection", "content-encoding"].includes(name)) {
      lines.push(`${name}: ${value}`);
    }
  }
  lines.push(`content-length: ${body.length}`, "connection: keep-alive", "", "");
  return concat(encoder.encode(lines.join("\r\n")), body);
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await conn.write(bytes.subarray(written));
}

/**
 * Starts a proxy to `target` on a free loopback port. Call `stop()` in `finally`.
 *
 * @example
 * ```ts
 * const proxy = startProxy(moto.url);
 * proxy.decide = (r) => r.action === "CreateSnapshot" && !r.dryRun ? "forward-then-close" : "forward";
 * ```
 */
export function startProxy(target: string): Proxy {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const hanging = new Set<() => void>();
  const tasks = new Set<Promise<void>>();
  let stopped = false;
  const hang = () => new Promise<void>((resolve) => hanging.add(resolve));

  const forward = async (request: RawRequest) => {
    const headers = new Headers(request.headers);
    for (const name of ["host", "connection", "content-length"]) headers.delete(name);
    const response = await fetch(`${target}${request.target}`, {
      method: request.method,
      headers,
      body: ["GET", "HEAD"].includes(request.method) ? undefined : request.body,
    });
    return { status: response.status, headers: response.headers, body: await response.bytes() };
  };

  /** Answers one request; false when the connection is to be closed. */
  const answer = async (conn: Deno.Conn, request: RawRequest): Promise<boolean> => {
    const body = decoder.decode(request.body);
    const params = new URLSearchParams(body);
    const seen: SeenRequest = {
      action: params.get("Action"),
      dryRun: params.get("DryRun") === "true",
      volumeId: params.get("VolumeId"),
      body,
      accessKeyId: /Credential=([^/]+)\//.exec(request.headers.get("authorization") ?? "")?.[1],
      attempt: request.headers.get("amz-sdk-request") ?? undefined,
      at: performance.now(),
      decision: "forward",
    };
    proxy.seen.push(seen);
    const decision = proxy.decide(seen);
    seen.decision = decision instanceof Promise
      ? "hold"
      : typeof decision === "string"
      ? decision
      : JSON.stringify(decision);
    if (decision === "close") return false;
    if (decision === "hang") {
      await hang();
      return false;
    }
    if (typeof decision === "object" && "error" in decision) {
      const xml = encoder.encode(ec2ErrorXml(decision.error, decision.message ?? decision.error));
      const headers = new Headers({ "content-type": "text/xml;charset=UTF-8" });
      await writeAll(conn, responseBytes(decision.status, headers, xml));
      return true;
    }
    if (decision instanceof Promise && await decision === false) {
      const headers = new Headers({ "content-type": "text/plain" });
      await writeAll(conn, responseBytes(503, headers, encoder.encode("dropped by the test")));
      return true;
    }
    const delay = proxy.delayMs +
      (typeof decision === "object" && "delayMs" in decision ? decision.delayMs : 0);
    if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
    const response = await forward(request);
    if (decision === "forward-then-close") return false;
    if (decision === "forward-then-hang") {
      await hang();
      return false;
    }
    const headers = new Headers(response.headers);
    const rewritten = proxy.rewrite(seen, headers, decoder.decode(response.body));
    await writeAll(conn, responseBytes(response.status, headers, encoder.encode(rewritten)));
    return decision !== "forward-and-close";
  };

  let accepted = 0;
  const serve = async (conn: Deno.Conn) => {
    try {
      if (proxy.closeOnAccept(++accepted)) return;
      const reader = new RequestReader(conn);
      for (;;) {
        const request = await reader.next();
        if (request === null || stopped) return;
        if (!await answer(conn, request)) return;
      }
    } catch {
      // The client went away, or the proxy stopped: nothing to answer.
    } finally {
      conns.delete(conn);
      try {
        conn.close();
      } catch { /* closed already */ }
    }
  };

  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        conns.add(conn);
        const task = serve(conn);
        tasks.add(task);
        task.finally(() => tasks.delete(task));
      }
    } catch {
      // The listener was closed.
    }
  })();

  const proxy: Proxy = {
    url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    seen: [],
    decide: () => "forward",
    delayMs: 0,
    rewrite: (_request, _headers, body) => body,
    closeOnAccept: () => false,
    async stop() {
      stopped = true;
      for (const release of hanging) release();
      try {
        listener.close();
      } catch { /* closed already */ }
      for (const conn of conns) {
        try {
          conn.close();
        } catch { /* closed already */ }
      }
      await accepting;
      await Promise.allSettled([...tasks]);
    },
  };
  return proxy;
}
