/**
 * Entry point of the binary and of `deno run src/main.ts`: the hidden watchdog and holder modes,
 * else the command. The command is loaded lazily so that the watchdog starts without the AWS SDK.
 */
import { runWatchdog } from "./watchdog/process.ts";
import { WATCHDOG_ARG } from "./watchdog/protocol.ts";
import { HOLDER_ARG } from "./hold/protocol.ts";

if (import.meta.main) {
  if (Deno.args[0] === WATCHDOG_ARG) {
    // Deno.exit: the watchdog's read of its stdin is still pending when it is done.
    Deno.exit(await runWatchdog(Deno.args.slice(1), { path: Deno.env.get("PATH") ?? "" }));
  }
  if (Deno.args[0] === HOLDER_ARG) {
    const { runHolder } = await import("./hold/holder.ts");
    Deno.exit(await runHolder());
  }
  const { main } = await import("./cli/main.ts");
  Deno.exit(await main(Deno.args));
}
