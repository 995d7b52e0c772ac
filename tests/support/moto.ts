/** Starts a real moto EC2 endpoint on loopback for a test, and an SDK client to inspect it. */
import {
  AttachVolumeCommand,
  CreateVolumeCommand,
  DescribeImagesCommand,
  DescribeSnapshotsCommand,
  EC2Client,
  RunInstancesCommand,
  type Snapshot,
} from "@aws-sdk/client-ec2";
import { fileURLToPath } from "node:url";
import { requireAvailable, type Requirement } from "./real.ts";

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
  /** The snapshots moto holds of these volumes (DescribeSnapshots, a volume-id filter). */
  snapshotsOf(volumeIds: readonly string[], region?: string): Promise<Snapshot[]>;
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

/** The python of moto's venv (it has boto3 too). */
export const MOTO_PYTHON = `${ROOT}.tools/venv/bin/python3`;

/** moto's server, installed by scripts/setup.sh (or named by $MOTO_SERVER). */
export const MOTO: Requirement = {
  available: exists(MOTO_SERVER),
  reason: `moto_server not found at ${MOTO_SERVER}; run scripts/setup.sh`,
};

/**
 * Starts moto_server on a free loopback port; throws when it is not installed (register the
 * test with `ignore: ignoreUnless(MOTO)`). Call `stop()` in `finally`. With `clockFile`, moto
 * runs through `moto_clock.py`: new snapshots start at the ISO time that file holds (now when
 * it is empty).
 */
export async function startMoto(options: { clockFile?: string } = {}): Promise<MotoEndpoint> {
  requireAvailable(MOTO);
  const port = freePort();
  const serverArgs = ["-H", "127.0.0.1", "-p", String(port)];
  const clock = options.clockFile;
  const child = new Deno.Command(clock ? MOTO_PYTHON : MOTO_SERVER, {
    args: clock ? [`${ROOT}tests/support/moto_clock.py`, ...serverArgs] : serverArgs,
    env: clock ? { ECS_MOTO_CLOCK: clock } : {},
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
    async snapshotsOf(volumeIds, region = "us-east-1") {
      const out = await client(region).send(
        new DescribeSnapshotsCommand({ Filters: [{ Name: "volume-id", Values: [...volumeIds] }] }),
      );
      return out.Snapshots ?? [];
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

let imageId: string | undefined;

/** An instance in moto with new volumes attached at the given device names. */
export interface MotoInstance {
  instanceId: string;
  rootDevice: string;
  /** Volume id by device name, for the attached volumes. */
  volumes: Map<string, string>;
}

/** Runs one instance in moto and attaches new volumes at the given device names. */
export async function instanceWithVolumes(
  moto: MotoEndpoint,
  deviceNames: string[],
  region = "us-east-1",
): Promise<MotoInstance> {
  const ec2 = moto.client(region);
  // Listing moto's images is slow: once per process.
  imageId ??= (await ec2.send(new DescribeImagesCommand({}))).Images?.find((i) => i.ImageId)
    ?.ImageId;
  if (!imageId) throw new Error("moto lists no image");
  const run = await ec2.send(
    new RunInstancesCommand({
      ImageId: imageId,
      MinCount: 1,
      MaxCount: 1,
      InstanceType: "t2.micro",
    }),
  );
  const instanceId = run.Instances![0].InstanceId!;
  const rootDevice = run.Instances![0].RootDeviceName ?? "/dev/sda1";
  const ids = await moto.createVolumes(deviceNames.length, region);
  const volumes = new Map<string, string>();
  for (const [index, device] of deviceNames.entries()) {
    await ec2.send(
      new AttachVolumeCommand({ InstanceId: instanceId, VolumeId: ids[index], Device: device }),
    );
    volumes.set(device, ids[index]);
  }
  return { instanceId, rootDevice, volumes };
}

/** A snapshot's tags as a record. */
export function tagsOf(snapshot: Snapshot): Record<string, string> {
  return Object.fromEntries((snapshot.Tags ?? []).map((t) => [t.Key!, t.Value!]));
}
