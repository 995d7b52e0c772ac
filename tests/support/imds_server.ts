/** An IMDSv2 endpoint on loopback for tests: the token protocol as EC2 implements it, nothing more. */

/** One request the server saw. */
export interface ImdsRequest {
  method: string;
  path: string;
  /** The X-aws-ec2-metadata-token header, if any. */
  token?: string;
  /** The X-aws-ec2-metadata-token-ttl-seconds header, if any. */
  ttl?: string;
  /** The status the server answered with. */
  status: number;
}

/** Options of {@linkcode startImdsServer}. */
export interface ImdsServerOptions {
  instanceId?: string;
  region?: string;
  /** An instance role; enables /latest/meta-data/iam/security-credentials/ (for the SDK). */
  role?: { name: string; accessKeyId: string; secretAccessKey: string; token: string };
  /** Hold every answer until `release()` (to test client timeouts). */
  hang?: boolean;
}

export interface ImdsServer {
  /** "http://127.0.0.1:PORT", for AWS_EC2_METADATA_SERVICE_ENDPOINT. */
  url: string;
  requests: ImdsRequest[];
  /** Lets held requests go (with a 503). */
  release(): void;
  stop(): Promise<void>;
}

const MAX_TTL = 21600;

/**
 * Starts the server on a free loopback port. As on EC2 with `HttpTokens=required`: a token
 * comes only from `PUT /latest/api/token` with a TTL header of 1 to 21600 seconds (else 400),
 * a PUT carrying X-Forwarded-For is refused (403), and every metadata request without a valid,
 * unexpired token gets 401. Call `stop()` in `finally`.
 */
export function startImdsServer(options: ImdsServerOptions = {}): ImdsServer {
  const instanceId = options.instanceId ?? "i-0123456789abcdef0";
  const region = options.region ?? "eu-west-1";
  const tokens = new Map<string, number>(); // token -> expiry (ms since epoch)
  const requests: ImdsRequest[] = [];
  let release!: () => void;
  const released = new Promise<void>((resolve) => release = resolve);

  const metadata = (path: string): string | undefined => {
    const values: Record<string, string> = {
      "/latest/meta-data/instance-id": instanceId,
      "/latest/meta-data/placement/region": region,
      "/latest/meta-data/placement/availability-zone": `${region}a`,
    };
    if (options.role) {
      const role = options.role;
      values["/latest/meta-data/iam/security-credentials/"] = role.name;
      values[`/latest/meta-data/iam/security-credentials/${role.name}`] = JSON.stringify({
        Code: "Success",
        LastUpdated: new Date().toISOString(),
        Type: "AWS-HMAC",
        AccessKeyId: role.accessKeyId,
        SecretAccessKey: role.secretAccessKey,
        Token: role.token,
        Expiration: new Date(Date.now() + 6 * 3600_000).toISOString(),
      });
    }
    return values[path];
  };

  const answer = (request: Request): Response => {
    const path = new URL(request.url).pathname;
    if (path === "/latest/api/token") {
      if (request.method !== "PUT") return new Response("", { status: 405 });
      if (request.headers.has("x-forwarded-for")) return new Response("", { status: 403 });
      const ttl = Number(request.headers.get("x-aws-ec2-metadata-token-ttl-seconds"));
      if (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_TTL) {
        return new Response("", { status: 400 });
      }
      const token = btoa(crypto.getRandomValues(new Uint8Array(24)).join(","));
      tokens.set(token, Date.now() + ttl * 1000);
      return new Response(token, {
        headers: { "x-aws-ec2-metadata-token-ttl-seconds": String(ttl) },
      });
    }
    if (request.method !== "GET") return new Response("", { status: 405 });
    const token = request.headers.get("x-aws-ec2-metadata-token");
    const expiry = token ? tokens.get(token) : undefined;
    if (expiry === undefined || expiry < Date.now()) return new Response("", { status: 401 });
    const value = metadata(path);
    if (value === undefined) return new Response("", { status: 404 });
    return new Response(value, { headers: { "content-type": "text/plain" } });
  };

  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen() {},
  }, async (request) => {
    const response = options.hang
      ? (await released, new Response("", { status: 503 }))
      : answer(request);
    requests.push({
      method: request.method,
      path: new URL(request.url).pathname,
      token: request.headers.get("x-aws-ec2-metadata-token") ?? undefined,
      ttl: request.headers.get("x-aws-ec2-metadata-token-ttl-seconds") ?? undefined,
      status: response.status,
    });
    return response;
  });

  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    requests,
    release,
    async stop() {
      release();
      await server.shutdown();
    },
  };
}
