/**
 * The benchmark: builds the realistic stack on one machine (moto behind a proxy that adds a
 * round trip, one XFS loop mount per volume, and a MariaDB with its data on a loop mount and an
 * application inserting rows), runs the program as it ships (the bundle under `deno run` with the
 * build's flags) and prints what users feel: freeze and lock windows, the application's longest
 * stall, wall time and peak memory, from the program's own `--output json` and from outside
 * (write probes, the application, GNU time). Then start-up time and memory of `--version`,
 * `--help`, `--noaction` and a full run.
 *
 * Side by side: `--compare "COMMAND"` runs another tool too (for example the old Perl
 * ec2-consistent-snapshot: `--compare "perl /path/to/ec2-consistent-snapshot"`), in turn with
 * this program (one run of each, then the next), on the same endpoint, mounts and database, with
 * the same command line less this program's own options (`--output json`, `--debug`) and without
 * the cases it may not have (`--version`, `--help`, `--mysql-lock-mode stage`). Its windows are
 * seen from outside only (write probes, the application); ~/.awssecret holds moto's keys for it.
 *
 * Usage (as root): deno run --allow-all scripts/bench.ts [--runs 5] [--rtt-ms 50]
 *   [--volumes 1,4,8] [--startup-runs 10] [--skip-startup] [--skip-snapshot] [--skip-fs]
 *   [--skip-mysql] [--probe-pause-ms 1] [--compare COMMAND] [--compare-name NAME] [--json FILE]
 *   [--debug-log FILE]
 */
import { parseArgs } from "node:util";
import { startMoto, TEST_CREDENTIALS } from "../tests/support/moto.ts";
import { startProxy } from "../tests/support/proxy.ts";
import { programCommand, ROOT } from "../tests/support/program.ts";
import { mountXfs, type TestMount } from "../tests/support/xfs.ts";
import { findFreezeProgram } from "../src/host/freeze.ts";
import type { ProbeReport } from "./bench_probe_worker.ts";
import type { AppReport } from "./bench_app.ts";
import { loadAverage, startApp, startProbes, type Timed, timed } from "./bench_measure.ts";
import { pair, table, worst } from "./bench_stats.ts";

/** One run of a tool, as measured. Milliseconds unless said otherwise. */
interface Sample {
  /** The program's own report (--output json); null for the compared tool. */
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
  /** Peak RSS of the largest single process of the tool (GNU time: VmHWM). */
  rssKb: number | null;
  /** Peak of the summed PSS of the tool and all its children (the watchdog), sampled. */
  treeRssKb: number | null;
}

/** A command the benchmark runs: this program, or the one given with --compare. */
interface Tool {
  name: string;
  /** The command line for these arguments. */
  command(args: readonly string[]): string[];
  /** This program: it reports its own timings (--output json) and a failure stops the bench. */
  ours: boolean;
}

interface Case {
  /** The floor: fsfreeze alone freezing the same mounts in order and thawing them, no program. */
  floorMs: number[];
  name: string;
  tool: string;
  volumes: number;
  lockMode: string | null;
  samples: Sample[];
  /** Runs of the compared tool that exited non-zero (left out of the figures). */
  failures: number;
}

interface StartupCase {
  name: string;
  tool: string;
  wallMs: number[];
  rssKb: (number | null)[];
  treeRssKb: (number | null)[];
  failures: number;
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

/** This program as it ships: the bundle under deno run with the build's flags ($ECS_BINARY: that). */
const THIS_PROGRAM: Tool = {
  name: "this program",
  command: (args) => {
    const { cmd, args: all } = programCommand(args);
    return [cmd, ...all];
  },
  ours: true,
};

/** The tool of --compare: its words, then the arguments less this program's own options. */
function comparedTool(commandLine: string, name: string | undefined): Tool {
  const words = commandLine.trim().split(/\s+/).filter((w) => w !== "");
  if (words.length === 0) usage("--compare wants a command");
  return {
    name: name ?? words.at(-1)!.split("/").at(-1)!,
    command: (args) => [...words, ...withoutOwnOptions(args)],
    ours: false,
  };
}

/** The arguments without --output json and --debug, which only this program has. */
function withoutOwnOptions(args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--output") i++;
    else if (args[i] !== "--debug") out.push(args[i]);
  }
  return out;
}

/** A failed run of the compared tool: its last line of standard error, once per case. */
function reportFailure(tool: Tool, what: string, result: Timed): void {
  const last = result.stderr.trim().split("\n").at(-1) ?? "";
  console.error(`bench: ${tool.name}, ${what}: exit ${result.code}: ${last}`);
}

/** The database part of the stack. */
interface DatabaseStack {
  socket: string;
  lockModes: string[];
  stop(): Promise<void>;
}

async function startDatabase(mount: TestMount): Promise<DatabaseStack> {
  const { startMariadb } = await import("../tests/support/mariadb.ts");
  const server = await startMariadb({ datadir: `${mount.mountPoint}/mariadb` });
  const version = String(await server.sql("SELECT VERSION()"));
  // BACKUP STAGE exists from MariaDB 10.4.
  const [major, minor] = version.trim().split(/[.-]/).map(Number);
  const lockModes = ["flush", ...(major > 10 || (major === 10 && minor >= 4) ? ["stage"] : [])];
  return { socket: server.socket, lockModes, stop: () => server.stop() };
}

/** One case (volumes, lock mode): `runs` runs of each tool, in turn. */
async function runCase(
  spec: {
    name: string;
    tools: Tool[];
    volumes: string[];
    mounts: TestMount[];
    lockMode: string | null;
    db: DatabaseStack | null;
    runs: number;
    env: Record<string, string>;
    endpoint: string;
    pauseMs: number;
    floorMs: number[];
    /** Runs the program with --debug and appends its standard error here. */
    debugLog?: string;
  },
): Promise<Case[]> {
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
  const tools = spec.tools.filter((t) =>
    t.ours || spec.lockMode === null || spec.lockMode === "flush"
  );
  const cases = tools.map((tool): Case => ({
    floorMs: tool.ours ? spec.floorMs : [],
    name: spec.name,
    tool: tool.name,
    volumes: spec.volumes.length,
    lockMode: spec.lockMode,
    samples: [],
    failures: 0,
  }));
  for (let run = 0; run < spec.runs; run++) {
    for (const [index, tool] of tools.entries()) {
      const app = spec.lockMode && spec.db ? await startApp(spec.db.socket, ROOT) : null;
      const probes = startProbes(mountPoints, spec.pauseMs);
      // Let the probes and the application reach their steady pace.
      await new Promise((r) => setTimeout(r, 300));
      let result;
      let reports: ProbeReport[];
      let appReport: AppReport | undefined;
      try {
        result = await timed(tool.command(args), spec.env, ROOT);
      } finally {
        // The tool has exited: everything it froze is thawed (or the watchdog did it).
        reports = await probes.stop();
        appReport = await app?.stop();
      }
      if (spec.debugLog && tool.ours) {
        await Deno.writeTextFile(spec.debugLog, `--- ${args.join(" ")}\n${result.stderr}`, {
          append: true,
        });
      }
      if (result.code !== 0) {
        if (tool.ours) {
          throw new Error(`the program failed (exit ${result.code}):\n${result.stderr}`);
        }
        if (cases[index].failures++ === 0) reportFailure(tool, spec.name, result);
        continue;
      }
      const t = tool.ours ? JSON.parse(result.stdout).timings : {};
      cases[index].samples.push({
        freezeWindowMs: t.freezeWindowMs ?? null,
        lockWindowMs: t.lockWindowMs ?? null,
        databaseLockMs: t.databaseLockMs ?? null,
        createMs: t.createMs ?? null,
        preflightMs: t.preflightMs ?? null,
        probeBlockedMs: worst(reports.map((r) => r.longestMs)),
        appStallMs: appReport ? appReport.longestStallMs : null,
        wallMs: result.wallMs,
        rssKb: result.rssKb,
        treeRssKb: result.treeRssKb,
      });
    }
  }
  return cases;
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

/** Start-up cases; the compared tool runs the two it shares (--noaction, a full run), in turn. */
async function startup(
  tools: Tool[],
  runs: number,
  env: Record<string, string>,
  endpoint: string,
  volume: string,
  mount: string,
): Promise<StartupCase[]> {
  const cases: [string, string[], boolean][] = [
    ["--version", ["--version"], false],
    ["--help", ["--help"], false],
    ["--noaction", [
      "--noaction",
      "--region",
      "us-east-1",
      "--freeze-filesystem",
      mount,
      volume,
    ], true],
    ["full run (1 volume)", [
      "--region",
      "us-east-1",
      "--ec2-endpoint",
      endpoint,
      "--freeze-filesystem",
      mount,
      volume,
    ], true],
  ];
  const results: StartupCase[] = [];
  for (const [name, args, shared] of cases) {
    const those = tools.filter((t) => t.ours || shared);
    const byTool = those.map((tool): StartupCase => ({
      name,
      tool: tool.name,
      wallMs: [],
      rssKb: [],
      treeRssKb: [],
      failures: 0,
    }));
    for (let i = 0; i < runs; i++) {
      for (const [index, tool] of those.entries()) {
        const out = await timed(tool.command(args), env, ROOT);
        if (out.code !== 0) {
          if (tool.ours) throw new Error(`${name}: exit ${out.code}: ${out.stderr}`);
          if (byTool[index].failures++ === 0) reportFailure(tool, name, out);
          continue;
        }
        byTool[index].wallMs.push(out.wallMs);
        byTool[index].rssKb.push(out.rssKb);
        byTool[index].treeRssKb.push(out.treeRssKb);
      }
    }
    results.push(...byTool);
  }
  return results;
}

/** The row's name: the case, and the tool when there are two, and failed runs if any. */
function rowName(name: string, tool: string, failures: number, compared: boolean): string {
  const failed = failures > 0 ? ` (${failures} failed)` : "";
  return compared ? `${name}: ${tool}${failed}` : `${name}${failed}`;
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
      "skip-mysql": { type: "boolean", default: false },
      compare: { type: "string" },
      "compare-name": { type: "string" },
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
  const tools = [THIS_PROGRAM];
  if (values.compare !== undefined) {
    tools.push(comparedTool(values.compare, values["compare-name"]));
  }
  const compared = tools.length > 1;

  const loadBefore = loadAverage();
  const moto = await startMoto();
  if (!moto) usage("moto_server is missing: run scripts/setup.sh");
  const proxy = startProxy(moto.url);
  proxy.delayMs = rttMs;
  const mounts: TestMount[] = [];
  let db: DatabaseStack | null = null;
  const cases: Case[] = [];
  let startupCases: StartupCase[] = [];
  const home = await Deno.makeTempDir({ prefix: "ecs-bench-home-" });
  try {
    const volumes = await moto.createVolumes(maxVolumes);
    // The database's data lives on the first volume's mount, frozen together with it.
    for (let i = 0; i < maxVolumes; i++) mounts.push(await mountXfs());
    // The old tool's way to the keys (this program takes them from the environment first).
    await Deno.writeTextFile(
      `${home}/.awssecret`,
      `${TEST_CREDENTIALS.accessKeyId}\n${TEST_CREDENTIALS.secretAccessKey}\n`,
      { mode: 0o600 },
    );
    const env: Record<string, string> = {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      HOME: home,
      DENO_DIR: Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME")}/.cache/deno`,
      DENO_NO_UPDATE_CHECK: "1",
      ...moto.env,
      AWS_ENDPOINT_URL_EC2: proxy.url,
    };
    const common = { tools, env, endpoint: proxy.url, pauseMs, debugLog: values["debug-log"] };
    // Warm deno's code cache and the page cache, so that the first measured run is no compile.
    await timed(THIS_PROGRAM.command(["--help"]), env, ROOT);
    await runCase({
      ...common,
      debugLog: undefined,
      name: "warm-up",
      volumes: volumes.slice(0, 1),
      mounts: mounts.slice(0, 1),
      lockMode: null,
      db: null,
      runs: 1,
      floorMs: [],
    });

    if (!values["skip-snapshot"]) {
      for (const n of values["skip-fs"] ? [] : volumeCounts) {
        console.error(`bench: ${n} volume(s), file systems only, ${runs} runs`);
        cases.push(
          ...await runCase({
            ...common,
            name: `${n} vol, fs only`,
            volumes: volumes.slice(0, n),
            mounts: mounts.slice(0, n),
            lockMode: null,
            db: null,
            runs,
            floorMs: await freezeFloor(mounts.slice(0, n).map((m) => m.mountPoint), runs, pauseMs),
          }),
        );
      }
      if (!values["skip-mysql"]) {
        db = await startDatabase(mounts[0]);
        for (const lockMode of db.lockModes) {
          for (const n of volumeCounts) {
            console.error(`bench: ${n} volume(s), MariaDB lock mode ${lockMode}, ${runs} runs`);
            cases.push(
              ...await runCase({
                ...common,
                name: `${n} vol, mysql ${lockMode}`,
                volumes: volumes.slice(0, n),
                mounts: mounts.slice(0, n),
                lockMode,
                db,
                runs,
                floorMs: [],
              }),
            );
          }
        }
      }
    }
    if (!values["skip-startup"]) {
      console.error(`bench: start-up, ${startupRuns} runs each`);
      startupCases = await startup(
        tools,
        startupRuns,
        env,
        proxy.url,
        volumes[0],
        mounts[0].mountPoint,
      );
    }
  } finally {
    if (db) await db.stop().catch((e) => console.error(`bench: ${e}`));
    for (const mount of mounts) await mount.unmount().catch((e) => console.error(`bench: ${e}`));
    await proxy.stop();
    await moto.stop();
    await Deno.remove(home, { recursive: true });
  }

  console.log(
    `ec2-consistent-snapshot benchmark: rtt ${rttMs} ms, ${runs} runs per case, ` +
      `deno ${Deno.version.deno}, ${navigator.hardwareConcurrency} cores, load average ` +
      `${loadBefore} before / ${loadAverage()} after; median / worst` +
      (compared ? `; side by side with: ${values.compare}` : "") + "\n",
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
        rowName(c.name, c.tool, c.failures, compared),
        pair(c.samples.map((s) => s.freezeWindowMs), "ms"),
        pair(c.samples.map((s) => s.probeBlockedMs), "ms"),
        pair(c.samples.map((s) => s.lockWindowMs), "ms"),
        c.lockMode ? pair(c.samples.map((s) => s.appStallMs), "ms") : "-",
        pair(c.samples.map((s) => s.createMs), "ms"),
        c.floorMs.length > 0 ? pair(c.floorMs, "ms") : "-",
        pair(c.samples.map((s) => s.wallMs), "ms"),
        pair(c.samples.map((s) => s.rssKb), "MB"),
        pair(c.samples.map((s) => s.treeRssKb), "MB"),
      ]),
    ));
  }
  if (startupCases.length > 0) {
    console.log(
      "\n" + table(
        ["command", "wall", "peak RSS", "peak PSS with children"],
        startupCases.map((s) => [
          rowName(s.name, s.tool, s.failures, compared),
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
      JSON.stringify(
        { rttMs, runs, compare: values.compare ?? null, cases, startup: startupCases },
        null,
        2,
      ) +
        "\n",
    );
  }
}

if (import.meta.main) await main();
