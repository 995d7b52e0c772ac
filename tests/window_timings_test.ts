/** run/window_timings.ts: the windows measured as the steps happen, and said in words. */
import { assertEquals } from "./support/assert.ts";
import { WindowClock, windowText } from "../src/run/window_timings.ts";

Deno.test("WindowClock: the lock window starts at the database lock, the freeze window at the freeze", () => {
  let t = 0;
  const clock = new WindowClock(() => t);
  clock.preflightDone(0);
  t = 5;
  clock.preflightDone(0);
  t = 10;
  clock.databaseLocked();
  t = 20;
  clock.frozen();
  t = 32;
  clock.thawed();
  t = 40;
  clock.databaseReleased();
  t = 41;
  clock.released();
  assertEquals(clock.timings, {
    preflightMs: 5,
    freezeWindowMs: 12,
    lockWindowMs: 31,
    databaseLockMs: 30,
  });
  assertEquals(windowText(clock.timings), "freeze window 12 ms, lock window 31 ms");
});

Deno.test("WindowClock: nothing locked, nothing frozen", () => {
  const clock = new WindowClock(() => 7);
  clock.thawed();
  clock.databaseReleased();
  clock.released();
  assertEquals(clock.timings.lockWindowMs, null);
  assertEquals(windowText(clock.timings), "nothing was frozen, nothing was locked");
});
