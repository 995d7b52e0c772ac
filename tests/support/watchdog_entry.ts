/** A stand-in for src/main.ts in tests: dispatches the hidden watchdog argument exactly as main.ts does. */
import { runWatchdog } from "../../src/watchdog/process.ts";
import { WATCHDOG_ARG } from "../../src/watchdog/protocol.ts";

if (Deno.args[0] === WATCHDOG_ARG) {
  Deno.exit(await runWatchdog(Deno.args.slice(1), { path: Deno.env.get("PATH") ?? "" }));
}
console.error("watchdog_entry.ts: expected __watchdog");
Deno.exit(2);
