/** Finds the device of a volume just attached, as discovery reads sysfs: the NVMe serial on Nitro, the attachment's name on Xen. */
import { join } from "node:path";
import { volumeIdFromSerial, xenCandidateNames } from "./discovery.ts";
import { delay } from "../util/deadline.ts";

/** Where to look. */
export interface DeviceRoots {
  /** Root of sysfs ("/sys"). */
  sysRoot: string;
  /** Where device nodes are ("/dev"). */
  devRoot: string;
}

async function readTrimmed(path: string): Promise<string | undefined> {
  try {
    return (await Deno.readTextFile(path)).trim();
  } catch {
    return undefined;
  }
}

/**
 * The device node of `volumeId` when the kernel shows it: an NVMe disk whose serial is the
 * volume id, or a Xen disk under one of the names the attachment's device name maps to.
 *
 * @example
 * ```ts
 * await findAttachedDevice("vol-0123456789abcdef0", "/dev/sdf", { sysRoot: "/sys", devRoot: "/dev" });
 * // "/dev/nvme2n1"
 * ```
 */
export async function findAttachedDevice(
  volumeId: string,
  attachedAs: string,
  roots: DeviceRoots,
): Promise<string | undefined> {
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(join(roots.sysRoot, "block"))) names.push(entry.name);
  } catch {
    return undefined;
  }
  for (const name of names.sort()) {
    if (!/^nvme\d+n\d+$/.test(name)) continue;
    const serial = await readTrimmed(join(roots.sysRoot, "block", name, "device", "serial"));
    if (serial && volumeIdFromSerial(serial) === volumeId) return join(roots.devRoot, name);
  }
  const disk = attachedAs.replace(/^\/dev\//, "").replace(/^(sd|xvd)/, "xvd");
  for (const candidate of xenCandidateNames(disk)) {
    if (candidate.startsWith("xvd") && names.includes(candidate)) {
      return join(roots.devRoot, candidate);
    }
  }
  return undefined;
}

/** Waits, bounded, for {@linkcode findAttachedDevice}; undefined when it did not appear. */
export async function waitForDevice(
  volumeId: string,
  attachedAs: string,
  roots: DeviceRoots & { timeoutMs: number; signal: AbortSignal },
): Promise<string | undefined> {
  const until = Date.now() + roots.timeoutMs;
  while (Date.now() <= until) {
    const found = await findAttachedDevice(volumeId, attachedAs, roots);
    if (found) return found;
    await delay(250, { signal: roots.signal });
  }
  return undefined;
}
