/**
 * The per-file-system freeze locks the holder takes for the whole hold. Stand-in until
 * src/host/freeze_lock.ts (colleague w12b, "freeze lock:" commit) is cherry-picked: it locks
 * nothing, so only the hold record keeps holds apart.
 */
import type { AcquireFreezeLocks } from "./holder.ts";

/** Takes no lock (stand-in); see the module comment. */
export const acquireFreezeLocks: AcquireFreezeLocks = () =>
  Promise.resolve({ release: () => Promise.resolve() });
