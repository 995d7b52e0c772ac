/**
 * Real-service tests skip only outside CI: when ECS_REQUIRE_REAL=1 (set by scripts/test.sh and
 * .ci/run), a missing service or privilege fails the run instead.
 */

/** True when the environment demands that every real-service test runs. */
export function realRequired(): boolean {
  return Deno.env.get("ECS_REQUIRE_REAL") === "1";
}

/**
 * Returns the reason to skip, or throws when skipping is not allowed. Use as:
 * `Deno.test({ name, ignore: skipUnless(haveRoot(), "needs root") ... })` is NOT enough in CI,
 * so call `assertAvailable(ok, reason)` at the top of a test body instead.
 */
export function assertAvailable(ok: boolean, reason: string): boolean {
  if (ok) return true;
  if (realRequired()) throw new Error(`real-service test cannot run: ${reason}`);
  console.warn(`SKIPPED (not in CI): ${reason}`);
  return false;
}

/** True when running as root (loop mounts and freezing need it). */
export function isRoot(): boolean {
  return Deno.uid() === 0;
}
