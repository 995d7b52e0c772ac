/** Instance metadata (IMDSv2): the instance id and region, with a session token and short timeouts. */
import { PreflightError } from "../util/errors.ts";

/** What the instance metadata tells us about this instance. */
export interface InstanceIdentity {
  /** The instance id, e.g. "i-0123456789abcdef0". */
  instanceId: string;
  /** The region the instance runs in, e.g. "eu-west-1". */
  region: string;
}

/** Options of the IMDS functions. */
export interface ImdsOptions {
  /** Base URL; by default {@linkcode imdsEndpoint} of the environment. */
  endpoint?: string;
  /** Time limit of each request in milliseconds; 1000 by default. */
  timeoutMs?: number;
  /** Lifetime of the session token in seconds; 60 by default (we need it for a moment). */
  tokenTtlSeconds?: number;
  /** Environment to read the endpoint settings from; `Deno.env` by default. */
  env?: { get(name: string): string | undefined };
}

const DEFAULT_ENDPOINT = "http://169.254.169.254";
const DEFAULT_ENDPOINT_IPV6 = "http://[fd00:ec2::254]";

/**
 * The metadata endpoint, chosen as the AWS SDK does: `AWS_EC2_METADATA_SERVICE_ENDPOINT`,
 * else the IPv6 address when `AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE` is "IPv6", else
 * http://169.254.169.254. Trailing slashes are removed.
 */
export function imdsEndpoint(
  env: { get(name: string): string | undefined } = Deno.env,
): string {
  const explicit = env.get("AWS_EC2_METADATA_SERVICE_ENDPOINT");
  if (explicit) return explicit.replace(/\/+$/, "");
  const mode = env.get("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE");
  return mode?.toLowerCase() === "ipv6" ? DEFAULT_ENDPOINT_IPV6 : DEFAULT_ENDPOINT;
}

function failure(
  endpoint: string,
  detail: string,
  options: { cause?: unknown; what?: string } = {},
): PreflightError {
  return new PreflightError(
    `instance metadata (IMDSv2) at ${endpoint} ${options.what ?? "did not answer"}: ${detail}; ` +
      `off EC2, give --region and the volume ids`,
    { cause: options.cause },
  );
}

function describe(error: unknown, timeoutMs: number): string {
  const e = error as Error;
  if (e?.name === "TimeoutError") return `no answer within ${timeoutMs} ms`;
  return e?.message ?? String(error);
}

async function request(
  url: string,
  init: RequestInit,
  context: { endpoint: string; timeoutMs: number; path: string },
): Promise<string> {
  let response: Response;
  try {
    response = await fetch(url, { ...init, signal: AbortSignal.timeout(context.timeoutMs) });
  } catch (error) {
    throw failure(context.endpoint, `${context.path}: ${describe(error, context.timeoutMs)}`, {
      cause: error,
    });
  }
  let body: string;
  try {
    body = await response.text();
  } catch (error) {
    throw failure(context.endpoint, `${context.path}: ${describe(error, context.timeoutMs)}`, {
      cause: error,
    });
  }
  if (!response.ok) {
    throw failure(context.endpoint, `${context.path}: HTTP ${response.status}`);
  }
  return body.trim();
}

/**
 * Reads the instance id and region from IMDSv2: one `PUT /latest/api/token`, then the two
 * values with the token. Throws PreflightError when metadata is disabled
 * (`AWS_EC2_METADATA_DISABLED=true`) or does not answer (off EC2, hop limit, blocked).
 *
 * @example
 * ```ts
 * const { instanceId, region } = await readInstanceIdentity({ timeoutMs: 1000 });
 * ```
 */
export async function readInstanceIdentity(options: ImdsOptions = {}): Promise<InstanceIdentity> {
  const env = options.env ?? Deno.env;
  const endpoint = options.endpoint?.replace(/\/+$/, "") ?? imdsEndpoint(env);
  if (!options.endpoint && env.get("AWS_EC2_METADATA_DISABLED")?.toLowerCase() === "true") {
    throw new PreflightError(
      "instance metadata is disabled (AWS_EC2_METADATA_DISABLED=true); " +
        "give --region and the volume ids",
    );
  }
  const timeoutMs = options.timeoutMs ?? 1000;
  const ttl = options.tokenTtlSeconds ?? 60;

  const tokenPath = "/latest/api/token";
  const token = await request(`${endpoint}${tokenPath}`, {
    method: "PUT",
    headers: { "X-aws-ec2-metadata-token-ttl-seconds": String(ttl) },
  }, { endpoint, timeoutMs, path: `PUT ${tokenPath}` });
  if (token === "") throw failure(endpoint, `PUT ${tokenPath}: empty token`);

  const get = (path: string) =>
    request(`${endpoint}${path}`, {
      headers: { "X-aws-ec2-metadata-token": token },
    }, { endpoint, timeoutMs, path: `GET ${path}` });
  const [instanceId, region] = await Promise.all([
    get("/latest/meta-data/instance-id"),
    get("/latest/meta-data/placement/region"),
  ]);
  if (!/^i-[0-9a-f]{8,17}$/.test(instanceId)) {
    throw failure(endpoint, `instance id ${JSON.stringify(instanceId)}`, {
      what: "gave an unexpected answer",
    });
  }
  if (!/^[a-z]{2}(-[a-z]+)+-\d+$/.test(region)) {
    throw failure(endpoint, `region ${JSON.stringify(region)}`, {
      what: "gave an unexpected answer",
    });
  }
  return { instanceId, region };
}
