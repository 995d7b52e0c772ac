/**
 * The bundle the tests run (the program as it ships: scripts/bundle.ts's output, which
 * scripts/build.sh compiles), kept current: built again whenever src/, deno.json, deno.lock or
 * scripts/bundle.ts changed, into dist/bundle/<hash of them>/. `deno run` this file to build it.
 */
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const BUNDLES = `${ROOT}dist/bundle`;
/** A bundle of other sources is removed once it is this old (a test may still be running it). */
const STALE_MS = 60 * 60 * 1000;

function filesUnder(dir: string): string[] {
  const files: string[] = [];
  for (const entry of Deno.readDirSync(dir)) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) files.push(...filesUnder(path));
    else if (entry.isFile) files.push(path);
  }
  return files;
}

/** A hash of everything the bundle is made from. */
export async function sourceHash(root = ROOT): Promise<string> {
  const inputs = [
    ...filesUnder(`${root}src`),
    `${root}deno.json`,
    `${root}deno.lock`,
    `${root}scripts/bundle.ts`,
  ].sort();
  const encoder = new TextEncoder();
  const parts: Uint8Array[] = [];
  for (const path of inputs) {
    parts.push(encoder.encode(`\0${path.slice(root.length)}\0`), await Deno.readFile(path));
  }
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    all.set(part, at);
    at += part.length;
  }
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", all));
  return [...digest.slice(0, 8)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Removes bundles of other sources (and killed builds' leftovers) after a while. */
function prune(keep: string): void {
  for (const entry of Deno.readDirSync(BUNDLES)) {
    const path = `${BUNDLES}/${entry.name}`;
    // .packages stays; a .building-PID folder is left only by a build that was killed.
    if (!entry.isDirectory || path === keep || entry.name === ".packages") continue;
    try {
      if (Date.now() - (Deno.statSync(path).mtime?.getTime() ?? 0) > STALE_MS) {
        Deno.removeSync(path, { recursive: true });
      }
    } catch { /* another test process removed it */ }
  }
}

/**
 * The path of the current bundle's main.js, building it first when src/ changed since (one
 * build at a time: parallel test processes wait for the first).
 */
export async function currentBundle(): Promise<string> {
  const dir = `${BUNDLES}/${await sourceHash()}`;
  if (exists(`${dir}/main.js`)) return `${dir}/main.js`;
  await Deno.mkdir(BUNDLES, { recursive: true });
  using lock = await Deno.open(`${BUNDLES}/.lock`, { create: true, write: true });
  await lock.lock(true);
  if (!exists(`${dir}/main.js`)) {
    const temp = `${BUNDLES}/.building-${Deno.pid}`;
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-all",
        `${ROOT}scripts/bundle.ts`,
        "--out",
        temp,
        "--packages",
        `${BUNDLES}/.packages`,
      ],
      cwd: ROOT,
      stdin: "null",
      stdout: "inherit",
      stderr: "piped",
    }).output();
    if (!out.success) {
      await Deno.remove(temp, { recursive: true }).catch(() => {});
      throw new Error(`scripts/bundle.ts failed:\n${new TextDecoder().decode(out.stderr)}`);
    }
    await Deno.rename(temp, dir);
    prune(dir);
  }
  return `${dir}/main.js`;
}

if (import.meta.main) console.log(await currentBundle());
