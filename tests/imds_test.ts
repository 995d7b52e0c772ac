/** Tests of the IMDSv2 client against a loopback server that implements the token protocol. */
import { assert, assertEquals, assertRejects } from "./support/assert.ts";
import { PreflightError } from "../src/util/errors.ts";
import { imdsEndpoint, readInstanceIdentity } from "../src/aws/imds.ts";
import { startImdsServer } from "./support/imds_server.ts";

function envOf(values: Record<string, string>) {
  return { get: (name: string) => values[name] };
}

Deno.test("imdsEndpoint: as the SDK chooses it", () => {
  assertEquals(imdsEndpoint(envOf({})), "http://169.254.169.254");
  assertEquals(
    imdsEndpoint(envOf({ AWS_EC2_METADATA_SERVICE_ENDPOINT: "http://127.0.0.1:1234/" })),
    "http://127.0.0.1:1234",
  );
  assertEquals(
    imdsEndpoint(envOf({ AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE: "IPv6" })),
    "http://[fd00:ec2::254]",
  );
});

Deno.test("the test server implements IMDSv2: no token or a bad token is 401, a bad TTL 400", async () => {
  const server = startImdsServer();
  try {
    const get = async (headers: Record<string, string>) => {
      const r = await fetch(`${server.url}/latest/meta-data/instance-id`, { headers });
      await r.body?.cancel();
      return r.status;
    };
    assertEquals(await get({}), 401);
    assertEquals(await get({ "X-aws-ec2-metadata-token": "forged" }), 401);
    const put = async (headers: Record<string, string>) => {
      const r = await fetch(`${server.url}/latest/api/token`, { method: "PUT", headers });
      return { status: r.status, body: await r.text() };
    };
    assertEquals((await put({})).status, 400);
    assertEquals((await put({ "X-aws-ec2-metadata-token-ttl-seconds": "21601" })).status, 400);
    assertEquals(
      (await put({ "X-aws-ec2-metadata-token-ttl-seconds": "5", "X-Forwarded-For": "1.2.3.4" }))
        .status,
      403,
    );
    const { status, body: token } = await put({ "X-aws-ec2-metadata-token-ttl-seconds": "5" });
    assertEquals(status, 200);
    assertEquals(await get({ "X-aws-ec2-metadata-token": token }), 200);
  } finally {
    await server.stop();
  }
});

Deno.test("readInstanceIdentity: token first, then instance id and region with the token", async () => {
  const server = startImdsServer({ instanceId: "i-0abc1234def567890", region: "ap-southeast-2" });
  try {
    const identity = await readInstanceIdentity({
      env: envOf({ AWS_EC2_METADATA_SERVICE_ENDPOINT: server.url }),
    });
    assertEquals(identity, { instanceId: "i-0abc1234def567890", region: "ap-southeast-2" });
    const [first, ...rest] = server.requests;
    assertEquals([first.method, first.path, first.ttl, first.status], [
      "PUT",
      "/latest/api/token",
      "60",
      200,
    ]);
    assertEquals(
      rest.map((r) => [r.method, r.path, r.status]).sort(),
      [
        ["GET", "/latest/meta-data/instance-id", 200],
        ["GET", "/latest/meta-data/placement/region", 200],
      ],
    );
    assert(rest.every((r) => r.token !== undefined && r.token.length > 0));
  } finally {
    await server.stop();
  }
});

Deno.test("readInstanceIdentity: honours AWS_EC2_METADATA_SERVICE_ENDPOINT in the real environment", async () => {
  const server = startImdsServer();
  const saved = Deno.env.get("AWS_EC2_METADATA_SERVICE_ENDPOINT");
  Deno.env.set("AWS_EC2_METADATA_SERVICE_ENDPOINT", `${server.url}/`);
  try {
    assertEquals((await readInstanceIdentity()).instanceId, "i-0123456789abcdef0");
  } finally {
    if (saved === undefined) Deno.env.delete("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    else Deno.env.set("AWS_EC2_METADATA_SERVICE_ENDPOINT", saved);
    await server.stop();
  }
});

Deno.test("readInstanceIdentity: an endpoint that hangs fails within the timeout", async () => {
  const server = startImdsServer({ hang: true });
  try {
    const start = performance.now();
    const error = await assertRejects(
      () => readInstanceIdentity({ endpoint: server.url, timeoutMs: 200 }),
      PreflightError,
    );
    const took = performance.now() - start;
    assert(took < 10_000, `took ${took} ms (the endpoint never answers)`);
    assertEquals(
      error.message,
      `instance metadata (IMDSv2) at ${server.url} did not answer: PUT /latest/api/token: ` +
        "no answer within 200 ms; off EC2, give --region and the volume ids",
    );
    assertEquals(error.exitCode, 3);
  } finally {
    await server.stop();
  }
});

Deno.test("readInstanceIdentity: nothing listening (off EC2) is a clear preflight error", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  await assertRejects(
    () => readInstanceIdentity({ endpoint: `http://127.0.0.1:${port}` }),
    PreflightError,
    `instance metadata (IMDSv2) at http://127.0.0.1:${port} did not answer: PUT /latest/api/token:`,
  );
});

Deno.test("readInstanceIdentity: metadata disabled, and an endpoint that is not IMDS", async () => {
  await assertRejects(
    () => readInstanceIdentity({ env: envOf({ AWS_EC2_METADATA_DISABLED: "true" }) }),
    PreflightError,
    "instance metadata is disabled (AWS_EC2_METADATA_DISABLED=true)",
  );
  // A web server that answers 404 to everything.
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response("not here", { status: 404 }),
  );
  try {
    const url = `http://127.0.0.1:${server.addr.port}`;
    await assertRejects(
      () => readInstanceIdentity({ endpoint: url }),
      PreflightError,
      `instance metadata (IMDSv2) at ${url} did not answer: PUT /latest/api/token: HTTP 404`,
    );
  } finally {
    await server.shutdown();
  }
});
