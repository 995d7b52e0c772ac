/**
 * --metrics-file: the text read back with a Prometheus text-format parser (not ours), the
 * atomic write (no symlink followed, no temporary file left), and the file after a good and a
 * failed run of the real program against moto.
 */
// deno-lint-ignore-file no-explicit-any
// A parser written by others, for the tests only (never imported by src/).
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { assert, assertEquals } from "./support/assert.ts";
import { metricsText, writeMetricsFile } from "../src/run/metrics.ts";
import { MOTO, startMoto } from "./support/moto.ts";
import { ignoreUnless } from "./support/real.ts";
import { baseEnv, runProgram } from "./support/program.ts";
import { MetricsError } from "../src/util/errors.ts";

/** Parsed families by name, each `{ type, help, metrics: [{ value, labels }] }`. */
export function parseMetrics(text: string): Map<string, any> {
  const families = parsePrometheusTextFormat(text) as any[];
  return new Map(families.map((f) => [f.name, f]));
}

const P = "ec2_consistent_snapshot_";

async function exists(path: string): Promise<boolean> {
  return await Deno.lstat(path).then(() => true, () => false);
}

Deno.test("metrics text: gauges with HELP and TYPE, volume labels, read by a real parser", () => {
  const text = metricsText({
    exitCode: 0,
    start: new Date("2021-01-01T03:15:00.250Z"),
    end: new Date("2021-01-01T03:15:02Z"),
    freezeWindowMs: 145,
    lockWindowMs: 153,
    created: [{ volumeId: "vol-0a", count: 1 }, { volumeId: "vol-0b", count: 1 }],
    deleted: [{ volumeId: "vol-0a", count: 2 }, { volumeId: "vol-0b", count: 0 }],
  });
  const families = parseMetrics(text);
  for (const family of families.values()) {
    assertEquals(family.type, "GAUGE", family.name);
    assert(family.help.length > 10, family.name);
    assert(/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(family.name), family.name);
  }
  const value = (name: string, volume?: string) =>
    Number(
      families.get(P + name)?.metrics.find((m: any) =>
        volume === undefined || m.labels?.volume === volume
      )
        ?.value,
    );
  assertEquals(value("last_run_success"), 1);
  assertEquals(value("last_run_exit_code"), 0);
  assertEquals(value("last_run_start_timestamp_seconds"), 1609470900.25);
  assertEquals(value("last_run_end_timestamp_seconds"), 1609470902);
  assertEquals(value("last_success_timestamp_seconds"), 1609470902);
  assertEquals(value("last_run_freeze_window_seconds"), 0.145);
  assertEquals(value("last_run_lock_window_seconds"), 0.153);
  assertEquals(value("last_run_snapshots_created", "vol-0b"), 1);
  assertEquals(value("last_run_snapshots_deleted", "vol-0a"), 2);
  assertEquals(value("last_run_snapshots_deleted", "vol-0b"), 0);
});

Deno.test("metrics text: a failed run keeps the earlier success and leaves out what did not happen", () => {
  const text = metricsText({
    exitCode: 7,
    start: new Date("2021-01-02T03:15:00Z"),
    end: new Date("2021-01-02T03:15:01Z"),
    created: [{ volumeId: 'vol-"odd\\', count: 0 }],
    previousSuccess: new Date("2021-01-01T03:15:02Z"),
  });
  const families = parseMetrics(text);
  assertEquals(families.get(P + "last_run_success").metrics[0].value, "0");
  assertEquals(families.get(P + "last_run_exit_code").metrics[0].value, "7");
  assertEquals(families.get(P + "last_success_timestamp_seconds").metrics[0].value, "1609470902");
  assertEquals(
    families.get(P + "last_run_snapshots_created").metrics[0].labels.volume,
    'vol-"odd\\',
  );
  for (const absent of ["freeze_window_seconds", "lock_window_seconds", "snapshots_deleted"]) {
    assert(!families.has(`${P}last_run_${absent}`), absent);
  }
});

Deno.test("metrics file: written by rename, never through a symlink, last success carried", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ecs-metrics-" });
  try {
    const target = `${dir}/target.txt`;
    await Deno.writeTextFile(target, "not yours\n");
    const link = `${dir}/link.prom`;
    await Deno.symlink(target, link);
    const start = new Date("2021-01-01T03:15:00Z");
    const good = { exitCode: 0, start, created: [{ volumeId: "vol-0a", count: 1 }] };
    try {
      writeMetricsFile(link, { ...good, end: start });
      throw new Error("wrote through a symlink");
    } catch (error) {
      assert(error instanceof MetricsError && error.exitCode === 15, String(error));
    }
    assertEquals(await Deno.readTextFile(target), "not yours\n", "the link's target untouched");

    const path = `${dir}/ecs.prom`;
    writeMetricsFile(path, { ...good, end: new Date("2021-01-01T03:15:02Z") });
    assertEquals((await Deno.stat(path)).mode! & 0o777, 0o644);
    writeMetricsFile(path, {
      exitCode: 3,
      start,
      end: new Date("2021-01-02T03:15:00Z"),
      created: [{ volumeId: "vol-0a", count: 0 }],
    });
    const families = parseMetrics(await Deno.readTextFile(path));
    assertEquals(families.get(P + "last_run_success").metrics[0].value, "0");
    assertEquals(families.get(P + "last_success_timestamp_seconds").metrics[0].value, "1609470902");
    const names = [];
    for await (const entry of Deno.readDir(dir)) names.push(entry.name);
    assertEquals(names.sort(), ["ecs.prom", "link.prom", "target.txt"], "no temporary file left");
    try {
      writeMetricsFile(`${dir}/missing/ecs.prom`, { ...good, end: start });
      throw new Error("wrote into a missing directory");
    } catch (error) {
      assert(error instanceof MetricsError, String(error));
      assertEquals(error.exitCode, 15);
      assert(error.message.startsWith(`--metrics-file ${dir}/missing/ecs.prom: cannot write:`));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--metrics-file after a good and a failed run of the real program against moto", {
  ignore: ignoreUnless(MOTO),
}, async () => {
  const moto = await startMoto();
  const dir = await Deno.makeTempDir({ prefix: "ecs-metrics-e2e-" });
  try {
    const [a, b] = await moto.createVolumes(2);
    const env = baseEnv(moto.env);
    const path = `${dir}/ec2_consistent_snapshot.prom`;
    const before = Date.now() / 1000;
    const good = await runProgram(["--metrics-file", path, "--keep", "1", a, b], { env });
    assertEquals(good.code, 0, good.stderr);
    const after = Date.now() / 1000;
    let families = parseMetrics(await Deno.readTextFile(path));
    const one = (name: string, volume?: string) =>
      Number(
        families.get(P + name)?.metrics.find((m: any) =>
          volume === undefined || m.labels?.volume === volume
        )?.value,
      );
    assertEquals(one("last_run_success"), 1);
    assertEquals(one("last_run_exit_code"), 0);
    const start = one("last_run_start_timestamp_seconds");
    const end = one("last_run_end_timestamp_seconds");
    assert(before - 1 <= start && start <= end && end <= after + 1, `${before} ${start} ${end}`);
    assertEquals(one("last_success_timestamp_seconds"), end);
    assertEquals(one("last_run_snapshots_created", a), 1);
    assertEquals(one("last_run_snapshots_created", b), 1);
    assertEquals(one("last_run_snapshots_deleted", a), 0);
    assert(!families.has(P + "last_run_freeze_window_seconds"), "nothing was frozen");

    // A second good run: retention deletes the first run's snapshot of each volume.
    const second = await runProgram(["--metrics-file", path, "--keep", "1", a, b], { env });
    assertEquals(second.code, 0, second.stderr);
    families = parseMetrics(await Deno.readTextFile(path));
    assertEquals(one("last_run_snapshots_deleted", a), 1);
    assertEquals(one("last_run_snapshots_deleted", b), 1);
    const lastGood = one("last_success_timestamp_seconds");

    // A failed run (a volume moto does not have: its snapshot fails, exit 4).
    const missing = "vol-0123456789abcdef0";
    const failed = await runProgram(["--metrics-file", path, missing], { env });
    assertEquals(failed.code, 4, failed.stderr);
    families = parseMetrics(await Deno.readTextFile(path));
    assertEquals(one("last_run_success"), 0);
    assertEquals(one("last_run_exit_code"), 4);
    assertEquals(one("last_success_timestamp_seconds"), lastGood, "the last success stays");
    assertEquals(one("last_run_snapshots_created", missing), 0);
    assert(!families.has(P + "last_run_snapshots_deleted"), "no retention in a failed run");

    // A command line the parser refuses (a broken cron line) is a failed run too.
    const broken = await runProgram(["--metrics-file", path, "--keep", "-1", a], { env });
    assertEquals(broken.code, 2, broken.stderr);
    families = parseMetrics(await Deno.readTextFile(path));
    assertEquals(one("last_run_success"), 0);
    assertEquals(one("last_run_exit_code"), 2);
    assertEquals(one("last_success_timestamp_seconds"), lastGood, "the last success stays");

    // --noaction is not a run: the file stays as it is.
    const text = await Deno.readTextFile(path);
    const dry = await runProgram(["--metrics-file", path, "--noaction", a], { env });
    assertEquals(dry.code, 0, dry.stderr);
    assertEquals(await Deno.readTextFile(path), text);

    // A directory or a symbolic link at the path is refused before anything is done (exit 2);
    // a good run whose metrics file cannot be written exits 15.
    await Deno.remove(path);
    await Deno.mkdir(path);
    const unwritable = await runProgram(["--metrics-file", path, a], { env });
    assertEquals(unwritable.code, 2, unwritable.stderr);
    assert(unwritable.stderr.includes(`--metrics-file ${path}: is a directory`), unwritable.stderr);
    await Deno.remove(path);
    await Deno.symlink(`${dir}/elsewhere`, path);
    const linked = await runProgram(["--metrics-file", path, a], { env });
    assertEquals(linked.code, 2, linked.stderr);
    assert(linked.stderr.includes(`--metrics-file ${path}: is a symbolic link`), linked.stderr);
    assert(!(await exists(`${dir}/elsewhere`)), "nothing written through the link");
    // procfs takes no new files, not even from root: the write fails after a good run.
    const proc = "/proc/ec2_consistent_snapshot.prom";
    const unwritten = await runProgram(["--metrics-file", proc, a], { env });
    assertEquals(unwritten.code, 15, unwritten.stderr);
    assert(unwritten.stderr.includes(`--metrics-file ${proc}: cannot write`), unwritten.stderr);
    assertEquals(unwritten.stdout.trim().split("\n").length, 1, "the snapshot id still printed");
  } finally {
    await moto.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
