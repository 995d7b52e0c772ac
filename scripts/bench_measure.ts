/**
 * The benchmark's outside view of a process: wall time and peak memory of a command (GNU time's
 * maximum RSS, the kernel's VmHWM of the process; the summed PSS of its process tree, sampled),
 * write probes on mounts, and the application inserting rows.
 */
import type { ProbeReport, ProbeStart } from "./bench_probe_worker.ts";
import type { AppReport } from "./bench_app.ts";
import { parseMaxRssKb, parseStatusKb } from "./bench_stats.ts";

const TIME = "/usr/bin/time";

/** The 1-minute load average: the figures mean little on a busy machine. */
export function loadAverage(): string {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ")[0];
  } catch {
    return "?";
  }
}

/** The process and its descendants, from /proc/PID/task/TID/children. */
function processTree(root: number): number[] {
  const pids: number[] = [];
  const visit = (pid: number) => {
    pids.push(pid);
    let tasks: Deno.DirEntry[] = [];
    try {
      tasks = [...Deno.readDirSync(`/proc/${pid}/task`)];
    } catch {
      return; // gone
    }
    for (const task of tasks) {
      let children = "";
      try {
        children = Deno.readTextFileSync(`/proc/${pid}/task/${task.name}/children`);
      } catch {
        continue;
      }
      for (const child of children.trim().split(/\s+/)) if (child) visit(Number(child));
    }
  };
  visit(root);
  return pids;
}

/**
 * Samples the memory of a process tree every few milliseconds; `stop` gives the peak. Summed
 * as PSS (shared pages such as deno's own code divided among the processes that map them), so
 * the deno binary mapped by the program and by its watchdog is not counted twice.
 */
function sampleTreeRss(root: number, everyMs = 20) {
  let peak = 0;
  const sample = () => {
    let sum = 0;
    for (const pid of new Set(processTree(root))) {
      try {
        sum += parseStatusKb(Deno.readTextFileSync(`/proc/${pid}/smaps_rollup`), "Pss") ?? 0;
      } catch { /* gone */ }
    }
    peak = Math.max(peak, sum);
  };
  const timer = setInterval(sample, everyMs);
  return {
    stop(): number | null {
      clearInterval(timer);
      return peak > 0 ? peak : null;
    },
  };
}

/** One command as measured from outside. */
export interface Timed {
  code: number;
  stdout: string;
  stderr: string;
  /** Start to exit. */
  wallMs: number;
  /** Peak RSS of the largest single process (GNU time: the kernel's VmHWM at its exit). */
  rssKb: number | null;
  /** Peak of the summed PSS of the process and all its children, sampled. */
  treeRssKb: number | null;
}

/** Runs a command line through GNU time with only `env` for environment. */
export async function timed(
  command: readonly string[],
  env: Record<string, string>,
  cwd: string,
): Promise<Timed> {
  const rssFile = await Deno.makeTempFile({ prefix: "ecs-bench-rss-" });
  try {
    const started = performance.now();
    const child = new Deno.Command(TIME, {
      args: ["-f", "%M", "-o", rssFile, ...command],
      env,
      clearEnv: true,
      cwd,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    // The tree under GNU time, without GNU time itself (its own RSS is a few hundred kB).
    const tree = sampleTreeRss(child.pid);
    const out = await child.output();
    const wallMs = performance.now() - started;
    const treeRssKb = tree.stop();
    const decoder = new TextDecoder();
    return {
      code: out.code,
      stdout: decoder.decode(out.stdout),
      stderr: decoder.decode(out.stderr),
      wallMs,
      rssKb: parseMaxRssKb(await Deno.readTextFile(rssFile)),
      treeRssKb,
    };
  } finally {
    await Deno.remove(rssFile).catch(() => {});
  }
}

/** Write probes on the given mounts, each in a Worker of its own. */
export function startProbes(mounts: readonly string[], pauseMs: number) {
  const stop = new Int32Array(new SharedArrayBuffer(4));
  const reports = mounts.map((mount) => {
    const worker = new Worker(new URL("./bench_probe_worker.ts", import.meta.url), {
      type: "module",
    });
    const report = new Promise<ProbeReport>((resolve, reject) => {
      worker.onmessage = (event: MessageEvent<ProbeReport>) => resolve(event.data);
      worker.onerror = (event) => {
        event.preventDefault();
        reject(new Error(`write probe on ${mount}: ${event.message}`));
      };
    });
    const start: ProbeStart = { path: `${mount}/.bench-probe`, stop, pauseMs };
    worker.postMessage(start);
    return report.finally(() => worker.terminate());
  });
  return {
    /** Stops the probes (each finishes its current write first) and returns their reports. */
    async stop(): Promise<ProbeReport[]> {
      Atomics.store(stop, 0, 1);
      return await Promise.all(reports);
    },
  };
}

/** The application inserting rows, a process of its own. */
export async function startApp(socket: string, cwd: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", new URL("./bench_app.ts", import.meta.url).pathname, socket],
    cwd,
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("ready\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("the application did not start");
    text += value;
  }
  text = text.slice(text.indexOf("ready\n") + 6);
  return {
    async stop(): Promise<AppReport> {
      await child.stdin.close();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        text += value;
      }
      await child.status;
      return JSON.parse(text.trim().split("\n").at(-1)!) as AppReport;
    },
  };
}
