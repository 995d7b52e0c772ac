/**
 * The benchmark: builds the realistic stack on one machine (moto behind a proxy that adds a
 * round trip, one XFS loop mount per volume, and once MySQL support is there a MariaDB with its
 * data on a loop mount and an application inserting rows), runs the program as users do
 * (`deno run` with the build's permission flags) and prints what users feel: freeze and lock
 * windows, the application's longest stall, wall time and peak memory, from the program's own
 * `--output json` and from outside (write probes, the application, GNU time). Then start-up
 * time and memory of `--version`, `--help`, `--noaction` and a full run.
 *
 * Usage (as root): deno run --allow-all scripts/bench.ts [--runs 5] [--rtt-ms 50]
 *   [--volumes 1,4,8] [--startup-runs 10] [--skip-startup] [--skip-snapshot] [--skip-fs]
 *   [--probe-pause-ms 1] [--json FILE] [--debug-log FILE]
 */
import { parseArgs } from "node:util";
import { startMoto } from "../tests/support/moto.ts";
import { startProxy } from "../tests/support/proxy.ts";
import { MAIN, ROOT } from "../tests/support/program.ts";
import { mountXfs, type TestMount } from "../tests/support/xfs.ts";
import { RUN_FLAGS } from "../src/host/permissions.ts";
import { findFreezeProgram } from "../src/host/freeze.ts";
import type { ProbeReport, ProbeStart } from "./bench_probe_worker.ts";
import type { AppReport } from "./bench_app.ts";
import { formatFigure, median, parseMaxRssKb, parseStatusKb, worst } from "./bench_stats.ts";

const TIME = "/usr/bin/time";

/** One run of the program, as measured. Milliseconds unless said otherwise. */
interface Sample {
  freezeWindowMs: number | null;
  lockWindowMs: number | null;
  databaseLockMs: number | null;
  createMs: number | null;
  preflightMs: number | null;
  /** Longest write blocked on any frozen mount (outside view). */
  probeBlockedMs: number | null;
  /** Longest time between two inserts of the application (outside view). */
  appStallMs: number | null;
  wallMs: number;
  /** Peak RSS of the largest single process of the tool (GNU time). */
  rssKb: number | null;
  /** Peak of the summed PSS of the tool and all its children (the watchdog), sampled. */
  treeRssKb: number | null;
}

interface Case {
  /** The floor: fsfreeze alone freezing the same mounts in order and thawing them, no program. */
  floorMs: number[];
  name: string;
  volumes: number;
  lockMode: string | null;
  samples: Sample[];
}

interface StartupCase {
  name: string;
  wallMs: number[];
  rssKb: (number | null)[];
  treeRssKb: (number | null)[];
}

/** The 1-minute load average: the figures mean little on a busy machine. */
function loadAverage(): string {
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

function usage(message: string): never {
  console.error(`bench: ${message}`);
  Deno.exit(2);
}

function positiveInt(text: string, option: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0) usage(`${option} wants a whole number`);
  return value;
}

/** Runs a command through GNU time; returns its output, wall time and peak RSS. */
async function timed(
  args: readonly string[],
  env: Record<string, string>,
): Promise<{
  code: number;
  stdout: string;
  stderr: string;
  wallMs: number;
  rssKb: number | null;
  treeRssKb: number | null;
}> {
  const rssFile = await Deno.makeTempFile({ prefix: "ecs-bench-rss-" });
  try {
    const started = performance.now();
    const child = new Deno.Command(TIME, {
      args: ["-f", "%M", "-o", rssFile, Deno.execPath(), "run", ...RUN_FLAGS, MAIN, ...args],
      env,
      clearEnv: true,
      cwd: ROOT,
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
function startProbes(mounts: readonly string[], pauseMs: number) {
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
async function startApp(socket: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", new URL("./bench_app.ts", import.meta.url).pathname, socket],
    cwd: ROOT,
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

/** The database part of the stack, when the MySQL support is in the tree. */
interface DatabaseStack {
  socket: string;
  lockModes: string[];
  stop(): Promise<void>;
}

async function startDatabase(mount: TestMount): Promise<DatabaseStack | string> {
  const here = (path: string) => {
    try {
      Deno.statSync(`${ROOT}${path}`);
      return true;
    } catch {
      return false;
    }
  };
  if (!here("src/db/mysql/database.ts") || !here("tests/support/mariadb.ts")) {
    return "database: not yet available (the MySQL support is not merged)";
  }
  const support = `${ROOT}tests/support/mariadb.ts`;
  const { startMariadb } = await import(support);
  const server = await startMariadb({ datadir: `${mount.mountPoint}/mariadb` });
  const version = String(await server.sql("SELECT VERSION()"));
  // BACKUP STAGE exists from MariaDB 10.4.
  const [major, minor] = version.trim().split(/[.-]/).map(Number);
  const lockModes = ["flush", ...(major > 10 || (major === 10 && minor >= 4) ? ["stage"] : [])];
  return { socket: server.socket, lockModes, stop: () => server.stop() };
}

async function runCase(
  spec: {
    volumes: string[];
    mounts: TestMount[];
    lockMode: string | null;
    db: DatabaseStack | null;
    runs: number;
    env: Record<string, string>;
    endpoint: string;
    pauseMs: number;
    /** Runs the program with --debug and appends its standard error here. */
    debugLog?: string;
  },
): Promise<Sample[]> {
  const samples: Sample[] = [];
  const mountPoints = spec.mounts.map((m) => m.mountPoint);
  const args = [
    ...(spec.debugLog ? ["--debug"] : []),
    "--output",
    "json",
    "--region",
    "us-east-1",
    "--ec2-endpoint",
    spec.endpoint,
    ...mountPoints.flatMap((m) => ["--freeze-filesystem", m]),
    ...(spec.lockMode && spec.db
      ? ["--mysql", "--mysql-socket", spec.db.socket, "--mysql-username", "root"]
      : []),
    ...(spec.lockMode && spec.lockMode !== "flush" ? ["--mysql-lock-mode", spec.lockMode] : []),
    ...spec.volumes,
  ];
  for (let run = 0; run < spec.runs; run++) {
    const app = spec.lockMode && spec.db ? await startApp(spec.db.socket) : null;
    const probes = startProbes(mountPoints, spec.pauseMs);
    // Let the probes and the application reach their steady pace.
    await new Promise((r) => setTimeout(r, 300));
    let result;
    let reports: ProbeReport[];
    let appReport: AppReport | undefined;
    try {
      result = await timed(args, spec.env);
    } finally {
      // The program has exited: everything it froze is thawed (or the watchdog did it).
      reports = await probes.stop();
      appReport = await app?.stop();
    }
    if (spec.debugLog) {
      await Deno.writeTextFile(spec.debugLog, `--- ${args.join(" ")}\n${result.stderr}`, {
        append: true,
      });
    }
    if (result.code !== 0) {
      throw new Error(`the program failed (exit ${result.code}):\n${result.stderr}`);
    }
    const doc = JSON.parse(result.stdout);
    const t = doc.timings;
    samples.push({
      freezeWindowMs: t.freezeWindowMs,
      lockWindowMs: t.lockWindowMs,
      databaseLockMs: t.databaseLockMs ?? null,
      createMs: t.createMs,
      preflightMs: t.preflightMs,
      probeBlockedMs: worst(reports.map((r) => r.longestMs)),
      appStallMs: appReport ? appReport.longestStallMs : null,
      wallMs: result.wallMs,
      rssKb: result.rssKb,
      treeRssKb: result.treeRssKb,
    });
  }
  return samples;
}

/**
 * The kernel's share of the freeze window: `fsfreeze -f` on each mount in order, then
 * `fsfreeze -u` in reverse order, nothing in between, under the same write load.
 */
async function freezeFloor(mounts: readonly string[], runs: number, pauseMs: number) {
  const fsfreeze = findFreezeProgram().path;
  const run = async (flag: string, mount: string) => {
    const out = await new Deno.Command(fsfreeze, {
      args: [flag, mount],
      cwd: "/",
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!out.success) throw new Error(`${fsfreeze} ${flag} ${mount} failed`);
  };
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const probes = startProbes(mounts, pauseMs);
    await new Promise((r) => setTimeout(r, 300));
    const frozen: string[] = [];
    const started = performance.now();
    try {
      for (const mount of mounts) {
        frozen.push(mount);
        await run("-f", mount);
      }
    } finally {
      for (const mount of frozen.reverse()) await run("-u", mount).catch(() => {});
      samples.push(performance.now() - started);
      await probes.stop();
    }
  }
  return samples;
}

async function startup(
  runs: number,
  env: Record<string, string>,
  endpoint: string,
  volume: string,
  mount: string,
): Promise<StartupCase[]> {
  const cases: [string, string[]][] = [
    ["--version", ["--version"]],
    ["--help", ["--help"]],
    ["--noaction", ["--noaction", "--region", "us-east-1", "--freeze-filesystem", mount, volume]],
    ["full run (1 volume)", [
      "--region",
      "us-east-1",
      "--ec2-endpoint",
      endpoint,
      "--freeze-filesystem",
      mount,
      volume,
    ]],
  ];
  const results: StartupCase[] = [];
  for (const [name, args] of cases) {
    const result: StartupCase = { name, wallMs: [], rssKb: [], treeRssKb: [] };
    for (let i = 0; i < runs; i++) {
      const out = await timed(args, env);
      if (out.code !== 0) throw new Error(`${name}: exit ${out.code}: ${out.stderr}`);
      result.wallMs.push(out.wallMs);
      result.rssKb.push(out.rssKb);
      result.treeRssKb.push(out.treeRssKb);
    }
    results.push(result);
  }
  return results;
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(" | ")} |`;
  return [line(header), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.map(line)]
    .join("\n");
}

function pair(values: (number | null)[], unit: "ms" | "MB"): string {
  const scale = (v: number | null) => v === null ? null : unit === "MB" ? v / 1024 : v;
  const m = scale(median(values));
  const w = scale(worst(values));
  return m === null ? "-" : `${formatFigure(m, unit)} / ${formatFigure(w, unit)}`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: "string", default: "5" },
      "rtt-ms": { type: "string", default: "50" },
      volumes: { type: "string", default: "1,4,8" },
      "startup-runs": { type: "string", default: "10" },
      "probe-pause-ms": { type: "string", default: "1" },
      "skip-startup": { type: "boolean", default: false },
      "skip-snapshot": { type: "boolean", default: false },
      "skip-fs": { type: "boolean", default: false },
      json: { type: "string" },
      "debug-log": { type: "string" },
    },
  });
  const runs = positiveInt(values.runs, "--runs");
  const rttMs = positiveInt(values["rtt-ms"], "--rtt-ms");
  const startupRuns = positiveInt(values["startup-runs"], "--startup-runs");
  const pauseMs = positiveInt(values["probe-pause-ms"], "--probe-pause-ms");
  const volumeCounts = values.volumes.split(",").map((v) => positiveInt(v, "--volumes"));
  if (Deno.uid() !== 0) usage("run as root: it makes loop mounts and freezes them");
  const maxVolumes = Math.max(...volumeCounts);

  const loadBefore = loadAverage();
  const moto = await startMoto();
  if (!moto) usage("moto_server is missing: run scripts/setup.sh");
  const proxy = startProxy(moto.url);
  proxy.delayMs = rttMs;
  const mounts: TestMount[] = [];
  let db: DatabaseStack | string = "database: not yet available";
  const cases: Case[] = [];
  let startupCases: StartupCase[] = [];
  const home = await Deno.makeTempDir({ prefix: "ecs-bench-home-" });
  try {
    const volumes = await moto.createVolumes(maxVolumes);
    // One more mount than volumes: the database's, frozen together with the first volume's.
    for (let i = 0; i < maxVolumes; i++) mounts.push(await mountXfs());
    const env: Record<string, string> = {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      HOME: home,
      DENO_DIR: Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME")}/.cache/deno`,
      DENO_NO_UPDATE_CHECK: "1",
      ...moto.env,
      AWS_ENDPOINT_URL_EC2: proxy.url,
    };
    // Warm deno's module cache so that the first measured run is not a compile.
    await timed(["--help"], env);
    await runCase({
      volumes: volumes.slice(0, 1),
      mounts: mounts.slice(0, 1),
      lockMode: null,
      db: null,
      runs: 1,
      env,
      endpoint: proxy.url,
      pauseMs,
    });

    if (!values["skip-snapshot"]) {
      for (const n of values["skip-fs"] ? [] : volumeCounts) {
        console.error(`bench: ${n} volume(s), file systems only, ${runs} runs`);
        cases.push({
          floorMs: await freezeFloor(mounts.slice(0, n).map((m) => m.mountPoint), runs, pauseMs),
          name: `${n} vol, fs only`,
          volumes: n,
          lockMode: null,
          samples: await runCase({
            volumes: volumes.slice(0, n),
            mounts: mounts.slice(0, n),
            lockMode: null,
            db: null,
            runs,
            env,
            endpoint: proxy.url,
            pauseMs,
            debugLog: values["debug-log"],
          }),
        });
      }
      db = await startDatabase(mounts[0]);
      if (typeof db !== "string") {
        for (const lockMode of db.lockModes) {
          for (const n of volumeCounts) {
            console.error(`bench: ${n} volume(s), MariaDB lock mode ${lockMode}, ${runs} runs`);
            cases.push({
              floorMs: [],
              name: `${n} vol, mysql ${lockMode}`,
              volumes: n,
              lockMode,
              samples: await runCase({
                volumes: volumes.slice(0, n),
                mounts: mounts.slice(0, n),
                lockMode,
                db,
                runs,
                env,
                endpoint: proxy.url,
                pauseMs,
                debugLog: values["debug-log"],
              }),
            });
          }
        }
      }
    }
    if (!values["skip-startup"]) {
      console.error(`bench: start-up, ${startupRuns} runs each`);
      startupCases = await startup(startupRuns, env, proxy.url, volumes[0], mounts[0].mountPoint);
    }
  } finally {
    if (typeof db !== "string") await db.stop().catch((e) => console.error(`bench: ${e}`));
    for (const mount of mounts) await mount.unmount().catch((e) => console.error(`bench: ${e}`));
    await proxy.stop();
    await moto.stop();
    await Deno.remove(home, { recursive: true });
  }

  console.log(
    `ec2-consistent-snapshot benchmark: rtt ${rttMs} ms, ${runs} runs per case, ` +
      `deno ${Deno.version.deno}, ${navigator.hardwareConcurrency} cores, load average ` +
      `${loadBefore} before / ${loadAverage()} after; median / worst\n`,
  );
  if (cases.length > 0) {
    console.log(table(
      [
        "case",
        "freeze window (json)",
        "blocked write (probe)",
        "lock window (json)",
        "app stall",
        "create round (json)",
        "fsfreeze alone",
        "wall",
        "peak RSS",
        "peak PSS with watchdog",
      ],
      cases.map((c) => [
        c.name,
        pair(c.samples.map((s) => s.freezeWindowMs), "ms"),
        pair(c.samples.map((s) => s.probeBlockedMs), "ms"),
        pair(c.samples.map((s) => s.lockWindowMs), "ms"),
        c.lockMode ? pair(c.samples.map((s) => s.appStallMs), "ms") : "-",
        pair(c.samples.map((s) => s.createMs), "ms"),
        pair(c.floorMs, "ms"),
        pair(c.samples.map((s) => s.wallMs), "ms"),
        pair(c.samples.map((s) => s.rssKb), "MB"),
        pair(c.samples.map((s) => s.treeRssKb), "MB"),
      ]),
    ));
    if (typeof db === "string") console.log(`\n${db}`);
  }
  if (startupCases.length > 0) {
    console.log(
      "\n" + table(
        ["command (deno run)", "wall", "peak RSS", "peak PSS with children"],
        startupCases.map((s) => [
          s.name,
          pair(s.wallMs, "ms"),
          pair(s.rssKb, "MB"),
          pair(s.treeRssKb, "MB"),
        ]),
      ),
    );
  }
  if (values.json) {
    await Deno.writeTextFile(
      values.json,
      JSON.stringify({ rttMs, runs, cases, startup: startupCases }, null, 2) + "\n",
    );
  }
}

if (import.meta.main) await main();
