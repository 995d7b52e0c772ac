/** Finds the system programs a test needs, installing their Debian package when root. */
import { isRoot, type Requirement } from "./real.ts";

/** The path of `command` on PATH (or in /usr/sbin, /sbin), or undefined. */
export async function which(command: string): Promise<string | undefined> {
  const path = `${Deno.env.get("PATH") ?? ""}:/usr/sbin:/sbin:/usr/bin:/bin`;
  for (const dir of path.split(":").filter(Boolean)) {
    try {
      const info = await Deno.stat(`${dir}/${command}`);
      if (info.isFile && (info.mode ?? 0o111) & 0o111) return `${dir}/${command}`;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

let aptUpdated = false;

/**
 * The path of `command`; when it is missing and we are root, installs `debianPackage` with
 * apt-get first. Undefined when it is still missing.
 */
export async function ensureCommand(
  command: string,
  debianPackage: string,
): Promise<string | undefined> {
  const found = await which(command);
  if (found || !isRoot() || !(await which("apt-get"))) return found;
  const env = { DEBIAN_FRONTEND: "noninteractive" };
  if (!aptUpdated) {
    await new Deno.Command("apt-get", { args: ["update", "-qq"], env, stdout: "null" }).output();
    aptUpdated = true;
  }
  await new Deno.Command("apt-get", {
    args: ["install", "-y", "-qq", "--no-install-recommends", debianPackage],
    env,
    stdout: "null",
  }).output();
  return await which(command);
}

/** Runs a command and returns its exit code and text output. */
export async function runCommand(
  command: string,
  args: string[],
  options: { env?: Record<string, string>; cwd?: string; clearEnv?: boolean } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const { code, stdout, stderr } = await new Deno.Command(command, {
    args,
    env: options.env,
    cwd: options.cwd,
    clearEnv: options.clearEnv,
    stdin: "null",
  }).output();
  const decoder = new TextDecoder();
  return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
}

/**
 * `command` as a test requirement, with its path when found (installed first as
 * {@linkcode ensureCommand} does). Await it at the top of a test file, before registering tests.
 */
export async function commandRequirement(
  command: string,
  debianPackage: string,
): Promise<Requirement & { path?: string }> {
  const path = await ensureCommand(command, debianPackage);
  return {
    available: path !== undefined,
    reason: `${command} is not installed (apt-get install ${debianPackage})`,
    path,
  };
}
