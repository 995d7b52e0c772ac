/** Process identity from /proc: tells the watchdog that its main process is gone, pid reuse included. */

/** One process as /proc/PID/stat describes it. */
export interface ProcessStat {
  /** The one-letter state: R, S, D, Z (zombie), X (dead), ... */
  state: string;
  /** Start time in clock ticks since boot: with the pid, it names one process for good. */
  startTime: number;
}

/**
 * Parses the text of /proc/PID/stat. The command name (field 2) is in parentheses and may
 * itself hold spaces and parentheses, so the fields are counted from the last `)`.
 *
 * @example
 * ```ts
 * parseProcStat("42 (my (odd) cmd) S 1 42 42 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 777 0")?.startTime; // 777
 * ```
 */
export function parseProcStat(text: string): ProcessStat | undefined {
  const close = text.lastIndexOf(")");
  if (close < 0) return undefined;
  // After ")": field 3 (state) is index 0, field 22 (starttime) is index 19.
  const fields = text.slice(close + 1).trim().split(/\s+/);
  const startTime = Number(fields[19]);
  if (!fields[0] || !Number.isSafeInteger(startTime)) return undefined;
  return { state: fields[0], startTime };
}

/**
 * True when this process may read /proc. Deno 2.9 grants /proc (and /sys) only with
 * `--allow-all`; `--allow-read` is not enough, and `Deno.permissions.query` still says "granted".
 */
export function procReadable(): boolean {
  try {
    Deno.readTextFileSync("/proc/self/stat");
    return true;
  } catch {
    return false;
  }
}

/** Reads /proc/PID/stat; undefined when the process does not exist (any more). */
export function readProcessStat(pid: number): ProcessStat | undefined {
  try {
    return parseProcStat(Deno.readTextFileSync(`/proc/${pid}/stat`));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

/**
 * True while the process `pid` that started at `startTime` is alive: it exists, it is the same
 * process (not a new one that reuses the pid), and it is not a zombie.
 */
export function isSameProcessAlive(pid: number, startTime: number): boolean {
  const stat = readProcessStat(pid);
  if (!stat || stat.startTime !== startTime) return false;
  return stat.state !== "Z" && stat.state !== "X";
}

/** CAP_SYS_ADMIN's bit in the capability sets (linux/capability.h): FIFREEZE needs it. */
const CAP_SYS_ADMIN = 21;

/**
 * True when this process may freeze file systems: CAP_SYS_ADMIN in its effective set
 * (/proc/self/status `CapEff`), or, when that cannot be read, user id 0.
 *
 * @example
 * ```ts
 * if (!canFreeze()) console.error("freezing needs root");
 * ```
 */
export function canFreeze(statusText?: string): boolean {
  let text = statusText;
  if (text === undefined) {
    try {
      text = Deno.readTextFileSync("/proc/self/status");
    } catch {
      return Deno.uid() === 0;
    }
  }
  const hex = /^CapEff:\s*([0-9a-f]+)\s*$/im.exec(text)?.[1];
  if (hex === undefined) return Deno.uid() === 0;
  return (BigInt(`0x${hex}`) >> BigInt(CAP_SYS_ADMIN) & 1n) === 1n;
}
