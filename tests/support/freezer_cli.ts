/**
 * Runs the real freezer in a process with the program's own permission flags (no /proc access
 * in Deno 2.9). Usage: freezer_cli.ts freeze|thaw MOUNT. Prints "ok" or the error's message.
 */
import { createFreezer } from "../../src/freeze.ts";
import { silentLogger } from "../../src/log.ts";

const [action, mountPoint] = Deno.args;
const freezer = createFreezer({ log: silentLogger });
try {
  await (action === "freeze" ? freezer.freeze(mountPoint) : freezer.thaw(mountPoint));
  console.log("ok");
} catch (error) {
  console.log(`${(error as Error).name}: ${(error as Error).message}`);
}
