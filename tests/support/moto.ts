/** Starts a real moto EC2 endpoint on loopback for a test, and an SDK client to inspect it. */
import { CreateVolumeCommand, EC2Client } from "@aws-sdk/client-ec2";
import { fileURLToPath } from "node:url";
import { assertAvailable } from "./real.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const MOTO_SERVER = Deno.env.get("MOTO_SERVER") ?? `${ROOT}.tools/venv/bin/moto_server`;

/** Environment that makes the program under test talk to moto with dummy credentials. */
export interface MotoEndpoint {
  url: string;
  port: number;
  /** An SDK client for the given region (default us-east-1), written by AWS, not by us. */
  client(region?: string): EC2Client;
  /** Environment variables for a child process of the program under test. */
  env: Record<string, string>;
  /** Creates volumes in moto and returns their ids. */
  createVolumes(count: number, region?: string): Promise<string[]>;
  stop(): Promise<void>;
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** Dummy credentials: moto accepts any. */
export const TEST_CREDENTIALS = {
  accessKeyId: "AKIAIOSFODNN7EXAMPLE",
  secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
};

/**
 * Starts moto_server on a free loopback port; returns undefined (outside CI) when moto is not
 * installed. Call `stop()` in `finally`.
 */
export async function startMoto(): Promise<MotoEndpoint | undefined> {
  if (
    !assertAvailable(
      exists(MOTO_SERVER),
      `moto_server not found at ${MOTO_SERVER}; run scripts/setup.sh`,
    )
  ) {
    return undefined;
  }
  const port = freePort();
  const child = new Deno.Command(MOTO_SERVER, {
    args: ["-H", "127.0.0.1", "-p", String(port)],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      const response = await fetch(`${url}/moto-api/`);
      await response.body?.cancel();
      break;
    } catch {
      if (Date.now() > deadline) {
        child.kill("SIGKILL");
        await child.status;
        throw new Error(`moto_server did not start on ${url}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const clients: EC2Client[] = [];
  const client = (region = "us-east-1") => {
    const c = new EC2Client({ region, endpoint: url, credentials: TEST_CREDENTIALS });
    clients.push(c);
    return c;
  };
  return {
    url,
    port,
    client,
    env: {
      AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
      AWS_REGION: "us-east-1",
      AWS_ENDPOINT_URL_EC2: url,
      AWS_EC2_METADATA_DISABLED: "true",
    },
    async createVolumes(count, region = "us-east-1") {
      const ec2 = client(region);
      const ids: string[] = [];
      for (let i = 0; i < count; i++) {
        const out = await ec2.send(
          new CreateVolumeCommand({ AvailabilityZone: `${region}a`, Size: 1 }),
        );
        ids.push(out.VolumeId!);
      }
      return ids;
    },
    async stop() {
      for (const c of clients) c.destroy();
      try {
        child.kill("SIGTERM");
      } catch { /* already gone */ }
      await child.status;
    },
  };
}
