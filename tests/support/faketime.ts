/** libfaketime (Debian's libfaketime): a preload that moves the clocks of one process. */
import type { Requirement } from "./real.ts";

/** The preload's path, when installed (scripts/setup.sh installs it). */
export const FAKETIME_LIB: string | undefined = (() => {
  for (const dir of ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu"]) {
    try {
      const path = `${dir}/faketime/libfaketime.so.1`;
      Deno.statSync(path);
      return path;
    } catch { /* not here */ }
  }
  return undefined;
})();

/** What a test with a moved clock needs, for `ignore: ignoreUnless(LIBFAKETIME)`. */
export const LIBFAKETIME: Requirement = {
  available: FAKETIME_LIB !== undefined,
  reason: "libfaketime not installed (Debian: libfaketime); run scripts/setup.sh",
};

/** Environment that runs a program with its clocks moved, e.g. `clockMoved("+400d")`. */
export function clockMoved(offset: string): Record<string, string> {
  return { LD_PRELOAD: FAKETIME_LIB ?? "", FAKETIME: offset };
}
