/** Lines to an armed watchdog sent at the same moment (updates, the disarm) all arrive, one after another. */
import { assert, assertEquals } from "./support/assert.ts";
import { createWatchdog } from "../src/watchdog/client.ts";
import { createLogger, type Logger } from "../src/util/log.ts";

const ENTRY = new URL("./support/watchdog_entry.ts", import.meta.url);

function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return { ...createLogger({ debug: true, write: (line) => lines.push(line) }), lines };
}

Deno.test("updates and the disarm sent at once are each written, and the watchdog disarms", async () => {
  const log = recordingLogger();
  const armed = await createWatchdog({ log, entry: ENTRY, stderr: "null" }).arm([], 60_000, {
    startCommand: "true",
  });
  try {
    // Two mounts found frozen by someone else at once each tell the watchdog (freeze_mounts.ts).
    const results = await Promise.allSettled([
      armed.update({ mountPoints: [] }),
      armed.update({ deadlineMs: 60_000 }),
      armed.update({ holdMs: 10 }),
      armed.disarm(),
    ]);
    assertEquals(results.map((r) => r.status), [
      "fulfilled",
      "fulfilled",
      "fulfilled",
      "fulfilled",
    ]);
    assertEquals(log.lines.filter((l) => l.includes(`watchdog ${armed.pid} updated`)).length, 3);
    assert(
      log.lines.some((l) => l.endsWith(`watchdog ${armed.pid} disarmed`)),
      log.lines.join("\n"),
    );
  } finally {
    await armed.disarm();
  }
});
