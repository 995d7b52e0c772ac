/** EC2 through boto3 (tests/support/ec2_boto3.py), from outside the program under test. */
import { fileURLToPath } from "node:url";
import { MOTO_PYTHON, type MotoEndpoint } from "./moto.ts";

const SCRIPT = fileURLToPath(new URL("./ec2_boto3.py", import.meta.url));

/** A snapshot as boto3 lists it. */
export interface Boto3Snapshot {
  id: string;
  volume: string;
  /** ISO time with offset, as boto3 parsed it. */
  start: string;
  state: string;
  tags: Record<string, string>;
}

async function boto3(args: string[]): Promise<unknown> {
  const out = await new Deno.Command(MOTO_PYTHON, { args: [SCRIPT, ...args], stdin: "null" })
    .output();
  const stderr = new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`ec2_boto3.py ${args[0]} failed: ${stderr}`);
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

/**
 * Creates one snapshot of `volumeId` per time (moto started with the same `clockFile`), tagged
 * with `tags`; returns their ids in order.
 */
export async function createSnapshotsAt(
  moto: MotoEndpoint,
  spec: { clockFile: string; volumeId: string; tags: Record<string, string>; times: string[] },
): Promise<string[]> {
  const tags = Object.entries(spec.tags).map(([k, v]) => `${k}=${v}`).join(";");
  return await boto3([
    "create",
    moto.url,
    spec.clockFile,
    spec.volumeId,
    tags,
    ...spec.times,
  ]) as string[];
}

/** The snapshots of these volumes, listed by boto3. */
export async function listSnapshots(
  moto: MotoEndpoint,
  volumeIds: readonly string[],
): Promise<Boto3Snapshot[]> {
  return await boto3(["list", moto.url, ...volumeIds]) as Boto3Snapshot[];
}
