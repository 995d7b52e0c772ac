/**
 * A main process for the SIGKILL test: arms the watchdog, freezes MOUNT, says `frozen WATCHDOG_PID`
 * on stdout and waits to be killed. Usage: freeze_and_arm.ts MOUNT DEADLINE_MS
 */
import { createFreezer } from "../../src/host/freeze.ts";
import { silentLogger } from "../../src/util/log.ts";
import { createWatchdog } from "../../src/watchdog/client.ts";

const [mountPoint, deadline] = Deno.args;
const watchdog = createWatchdog({
  log: silentLogger,
  entry: new URL("./watchdog_entry.ts", import.meta.url),
});
const armed = await watchdog.arm([mountPoint], Number(deadline));
await createFreezer({ log: silentLogger }).freeze(mountPoint);
console.log(`frozen ${armed.pid}`);
setInterval(() => {}, 1_000);
