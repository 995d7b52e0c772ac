/**
 * A loopback HTTP proxy in front of an endpoint (moto) that lets a test see, hold, delay or
 * hang each request: proof from outside the program of what happens while a call is in flight.
 */

/** One request as the proxy saw it. */
export interface SeenRequest {
  action: string | null;
  dryRun: boolean;
  body: string;
  /** The access key id the request was signed with (SigV4 `Credential=`). */
  accessKeyId: string | undefined;
}

/**
 * What to do with a request: forward it; never answer; or hold it until the promise settles,
 * then forward it unless the promise gave `false` (the test says the client is gone).
 */
export type Decision = "forward" | "hang" | Promise<boolean | void>;

export interface Proxy {
  url: string;
  seen: SeenRequest[];
  /** Decides per request; forward by default. */
  decide: (request: SeenRequest) => Decision;
  /** Added round-trip time for every request, in milliseconds. */
  delayMs: number;
  stop(): Promise<void>;
}

/** Starts a proxy to `target` on a free loopback port. */
export function startProxy(target: string): Proxy {
  const hanging = new Set<() => void>();
  const controller = new AbortController();
  const proxy: Proxy = {
    url: "",
    seen: [],
    decide: () => "forward",
    delayMs: 0,
    async stop() {
      for (const release of hanging) release();
      controller.abort();
      await server.finished;
    },
  };
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: controller.signal, onListen() {} },
    async (req) => {
      const body = await req.text();
      const params = new URLSearchParams(body);
      const seen = {
        action: params.get("Action"),
        dryRun: params.get("DryRun") === "true",
        body,
        accessKeyId: /Credential=([^/]+)\//.exec(req.headers.get("authorization") ?? "")?.[1],
      };
      proxy.seen.push(seen);
      const decision = proxy.decide(seen);
      if (decision === "hang") {
        // Never answer; released only when the proxy stops, so the test can end cleanly.
        await new Promise<void>((resolve) => hanging.add(resolve));
        return new Response("proxy stopped", { status: 503 });
      }
      if (decision !== "forward" && await decision === false) {
        return new Response("dropped by the test", { status: 503 });
      }
      if (proxy.delayMs > 0) await new Promise((r) => setTimeout(r, proxy.delayMs));
      const url = new URL(req.url);
      const headers = new Headers(req.headers);
      headers.delete("host");
      const response = await fetch(`${target}${url.pathname}${url.search}`, {
        method: req.method,
        headers,
        body: req.method === "GET" || req.method === "HEAD" ? undefined : body,
      });
      return new Response(await response.arrayBuffer(), {
        status: response.status,
        headers: response.headers,
      });
    },
  );
  proxy.url = `http://127.0.0.1:${(server.addr as Deno.NetAddr).port}`;
  return proxy;
}
