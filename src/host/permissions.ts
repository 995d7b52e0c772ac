/** The permission flags the program runs with: `deno compile` bakes them in, `deno run` repeats them. */

/**
 * The exact `deno run` / `deno compile` permission flags. `scripts/run-flags` holds the same
 * list for the shell scripts; `tests/permissions_test.ts` keeps the two equal.
 *
 * All of them: Deno 2.9 lets a program read /proc/self (mountinfo, fd links) and /sys only
 * with --allow-all, and the program runs fsfreeze and hooks (--allow-run), which is all
 * permissions in effect anyway.
 *
 * @example
 * ```ts
 * const args = ["run", ...RUN_FLAGS, "src/main.ts"];
 * ```
 */
export const RUN_FLAGS: readonly string[] = ["--allow-all"];
