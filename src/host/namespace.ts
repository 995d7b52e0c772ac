/**
 * A process in a private mount namespace of its own (`unshare -m --propagation private`): it
 * mounts the restored devices at their original mount points, then becomes the throwaway
 * server. Nothing of it is seen outside, and its mounts vanish when it ends, also when this
 * process is killed (the server gets SIGKILL when we die: setpriv --pdeathsig). A mount point
 * missing here (a scratch instance) is made, and said in the log ("created DIR"), so that
 * {@linkcode removeCreatedMountPoints} takes it away after.
 */

/** One file system to mount inside. */
export interface NamespaceMount {
  /** The device node. */
  device: string;
  /** The mount point (made when missing). */
  mountPoint: string;
  /** The file system type. */
  fsType: string;
  /** Mount options, e.g. "nouuid" for a copy of a mounted XFS. */
  options: string;
}

/** The server process in its namespace. */
export interface NamespaceProcess {
  /** Its process id. */
  pid: number;
  /** Resolves when it has ended. */
  status: Promise<Deno.CommandStatus>;
  /** Sends a signal; nothing when it is gone. */
  kill(signal: Deno.Signal): void;
}

// $1 the log file, then DEVICE MOUNTPOINT TYPE OPTIONS ..., "--", the server's command.
const SCRIPT = `set -e
exec >>"$1" 2>&1
shift
while [ "$1" != "--" ]; do
  if [ ! -d "$2" ]; then
    top="$2"
    while [ ! -e "$(dirname "$top")" ]; do top=$(dirname "$top"); done
    echo "created $top"
    mkdir -p "$2"
  fi
  mount -t "$3" -o "$4" "$1" "$2"
  echo "mounted $1 at $2 ($3, $4)"
  shift 4
done
shift
exec setpriv --pdeathsig KILL -- "$@"`;

/**
 * The mount options of a restored file system: XFS refuses a second mount of the same UUID
 * (the live one is mounted), so `nouuid`; the log is replayed as in a real restore (rw).
 *
 * @example
 * ```ts
 * restoreMountOptions("xfs"); // "rw,nouuid"
 * ```
 */
export function restoreMountOptions(fsType: string): string {
  return fsType === "xfs" ? "rw,nouuid" : "rw";
}

/**
 * Starts `command` in a new private mount namespace after mounting `mounts` (parents first);
 * everything it prints goes to `logFile`. A failed mount ends it (read the log).
 *
 * @example
 * ```ts
 * const mounts = [{ device: "/dev/nvme2n1", mountPoint: "/data", fsType: "xfs", options: "rw,nouuid" }];
 * const server = startInNamespace(mounts, ["/usr/sbin/mariadbd", "--no-defaults"], "/tmp/x.log");
 * server.kill("SIGTERM");
 * ```
 */
export function startInNamespace(
  mounts: readonly NamespaceMount[],
  command: readonly string[],
  logFile: string,
): NamespaceProcess {
  const ordered = [...mounts].sort((a, b) => a.mountPoint.length - b.mountPoint.length);
  const child = new Deno.Command("unshare", {
    args: [
      "-m",
      "--propagation",
      "private",
      "--",
      "/bin/sh",
      "-c",
      SCRIPT,
      "ecs-drill",
      logFile,
      ...ordered.flatMap((m) => [m.device, m.mountPoint, m.fsType, m.options]),
      "--",
      ...command,
    ],
    cwd: "/",
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  return {
    pid: child.pid,
    status: child.status,
    kill(signal) {
      try {
        child.kill(signal);
      } catch { /* already gone */ }
    },
  };
}

/** Removes the empty directories under `dir`, then `dir` if empty; never a file or a link. */
async function pruneEmpty(dir: string): Promise<void> {
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (entry.isDirectory && !entry.isSymlink) await pruneEmpty(`${dir}/${entry.name}`);
    }
    await Deno.remove(dir);
  } catch { /* not empty, or gone */ }
}

/**
 * After the namespace has ended: removes the mount points it had to make on this machine's file
 * system (named "created DIR" in its log), as far as they are still empty directories.
 *
 * @example
 * ```ts
 * await removeCreatedMountPoints("/tmp/ecs-drill-x/namespace.log");
 * ```
 */
export async function removeCreatedMountPoints(logFile: string): Promise<void> {
  let text = "";
  try {
    text = await Deno.readTextFile(logFile);
  } catch {
    return;
  }
  // Only the script's own lines, before the server's output begins (which is not trusted).
  for (const line of text.split("\n")) {
    if (!line.startsWith("created /") && !line.startsWith("mounted ")) break;
    const dir = line.startsWith("created ") ? line.slice("created ".length) : "/";
    if (dir !== "/") await pruneEmpty(dir);
  }
}
