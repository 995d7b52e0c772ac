/**
 * Tests that need something this machine may lack (moto, MariaDB, root, groff ...): outside CI
 * they are ignored, with the reason printed; when ECS_REQUIRE_REAL=1 (set by scripts/test.sh and
 * .ci/run) they run, and fail on the missing piece.
 */

/** Something a test needs, and whether this machine has it. */
export interface Requirement {
  readonly available: boolean;
  /** What is missing and how to get it, e.g. "moto_server not found; run scripts/setup.sh". */
  readonly reason: string;
}

/** True when the environment demands that every real-service test runs. */
export function realRequired(): boolean {
  return Deno.env.get("ECS_REQUIRE_REAL") === "1";
}

const printed = new Set<string>();

/**
 * The `ignore` flag of a test that needs `requirements`, decided before the test is registered:
 * true when one is missing and this is not CI (each reason is printed once); false otherwise,
 * so that under ECS_REQUIRE_REAL=1 the test runs and its {@linkcode requireAvailable} (or the
 * helper that calls it: startMoto, withXfsMount ...) fails it.
 *
 * @example
 * ```ts
 * Deno.test("snapshots against moto", { ignore: ignoreUnless(MOTO) }, async () => {
 *   const moto = await startMoto();
 *   // ...
 * });
 * ```
 */
export function ignoreUnless(...requirements: Requirement[]): boolean {
  const missing = requirements.filter((r) => !r.available);
  if (missing.length === 0 || realRequired()) return false;
  for (const { reason } of missing) {
    if (printed.has(reason)) continue;
    printed.add(reason);
    console.warn(`ignoring the tests that need it (not in CI): ${reason}`);
  }
  return true;
}

/** Throws (the test fails) when a requirement is missing: for CI, where nothing is ignored. */
export function requireAvailable(...requirements: Requirement[]): void {
  const missing = requirements.filter((r) => !r.available);
  if (missing.length > 0) {
    throw new Error(`real-service test cannot run: ${missing.map((r) => r.reason).join("; ")}`);
  }
}

/** True when running as root (loop mounts and freezing need it). */
export function isRoot(): boolean {
  return Deno.uid() === 0;
}

/** Running as root, which `what` needs (e.g. "mounting a loop device"). */
export function rootRequirement(what: string): Requirement {
  return { available: isRoot(), reason: `${what} needs root` };
}
