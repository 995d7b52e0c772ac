/** The flags the program runs with (permissions, V8's heap): `deno compile` bakes them in, `deno run` repeats them. */

/**
 * The exact `deno run` / `deno compile` flags. `scripts/run-flags` holds the same list for the
 * shell scripts; `tests/permissions_test.ts` keeps the two equal.
 *
 * All permissions: Deno 2.9 lets a program read /proc/self (mountinfo, fd links) and /sys only
 * with --allow-all, and the program runs fsfreeze and hooks (--allow-run), which is all
 * permissions in effect anyway. A young generation of 1 MB (V8's default grows it to 16 MB):
 * about 2 MB less at the peak of a run, which allocates little and lives for a second.
 *
 * @example
 * ```ts
 * const args = ["run", ...RUN_FLAGS, "src/main.ts"];
 * ```
 */
export const RUN_FLAGS: readonly string[] = ["--allow-all", "--v8-flags=--max-semi-space-size=1"];
