/**
 * --metrics-file: the text read back with a Prometheus text-format parser (not ours), the
 * atomic write (no symlink followed, no temporary file left), and the file after a good and a
 * failed run of the real program against moto.
 */
// deno-lint-ignore-file no-explicit-any
import parsePrometheusTextFormat from "npm:parse-prometheus-text-format@1.1.1";
import { assert, assertEquals } from "./support/assert.ts";
import { metricsText, writeMetricsFile } from "../src/run/metrics.ts";
import { MetricsError } from "../src/util/errors.ts";

/** Parsed families by name, each `{ type, help, metrics: [{ value, labels }] }`. */
export function parseMetrics(text: string): Map<string, any> {
  const families = parsePrometheusTextFormat(text) as any[];
  return new Map(families.map((f) => [f.name, f]));
}

const P = "ec2_consistent_snapshot_";

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

Deno.test("metrics file: written by rename, a symlink replaced not followed, last success carried", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ecs-metrics-" });
  try {
    const target = `${dir}/target.txt`;
    await Deno.writeTextFile(target, "not yours\n");
    const path = `${dir}/ecs.prom`;
    await Deno.symlink(target, path);
    const start = new Date("2021-01-01T03:15:00Z");
    await writeMetricsFile(path, {
      exitCode: 0,
      start,
      end: new Date("2021-01-01T03:15:02Z"),
      created: [{ volumeId: "vol-0a", count: 1 }],
    });
    assertEquals(
      await Deno.readTextFile(target),
      "not yours\n",
      "the symlink's target is untouched",
    );
    assert(!(await Deno.lstat(path)).isSymlink, "the symlink was replaced by a file");
    assertEquals((await Deno.stat(path)).mode! & 0o777, 0o644);
    await writeMetricsFile(path, {
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
    assertEquals(names.sort(), ["ecs.prom", "target.txt"], "no temporary file left");
    try {
      await writeMetricsFile(`${dir}/missing/ecs.prom`, {
        exitCode: 0,
        start,
        end: start,
        created: [],
      });
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
