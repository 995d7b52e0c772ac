/** A loopback HTTP endpoint that answers every request with one handler and counts them. */

export interface StubEndpoint {
  url: string;
  /** Requests received so far. */
  count(): number;
  stop(): Promise<void>;
}

/** Starts the endpoint on a free loopback port; call `stop()` in `finally`. */
export function startStubEndpoint(
  handler: (req: Request) => Response | Promise<Response>,
): StubEndpoint {
  let count = 0;
  const controller = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: controller.signal, onListen() {} },
    (req) => {
      count++;
      return handler(req);
    },
  );
  return {
    url: `http://127.0.0.1:${(server.addr as Deno.NetAddr).port}`,
    count: () => count,
    async stop() {
      controller.abort();
      await server.finished;
    },
  };
}
