/** The permission flags the program runs with: `deno compile` bakes them in, `deno run` repeats them. */

/**
 * The exact `deno run` / `deno compile` permission flags. `scripts/run-flags` holds the same
 * list for the shell scripts; `tests/permissions_test.ts` keeps the two equal.
 *
 * @example
 * ```ts
 * const args = ["run", ...RUN_FLAGS, "src/main.ts"];
 * ```
 */
export const RUN_FLAGS: readonly string[] = [
  "--allow-read",
  "--allow-write",
  "--allow-net",
  "--allow-env",
  "--allow-run",
  "--allow-sys",
  "--no-prompt",
];
